"""PoseTrack 2018 tracking with the paper's network (4-stack hourglass, 512 input).

Command (the PoseTrack 2018 release: per-video JSON files under annotations/{train,val}, image
file names relative to the dataset root):

    python tools/train.py --config=experiments/posetrack_hg.py --workdir=runs/posetrack \
        --config.dataset.train_annotations=PT/annotations/train --config.dataset.train_images=PT \
        --config.dataset.val_annotations=PT/annotations/val --config.dataset.val_images=PT

The network, schedule and loss weights are the paper's pose recipe (Sec. 4.1); the grouping loss
is the space-time one over pairs of annotated frames up to 3 annotated frames apart, and the
network sees one frame at a time (tasks/tracking/trainer.py). Tags are 4-D (model.tag_dim): a
PoseTrack frame can hold more than ten people who must stay apart from each other over time by
appearance alone, which a 1-D tag (people on a line, each a margin from its neighbours) cannot
give; this choice is not measured on PoseTrack here (no GPU was available). Nothing here was
trained; the figures of the synthetic recipe are in experiments/synthetic_tracking.py.

Variant ':smoke': 2 steps of a tiny network on the shared PoseTrack sample
(../shared/data/mmpose_samples/posetrack18, one annotated frame per video, so the clips are
single frames: input.frames_per_clip = 1), trained and validated on the same file.
"""

from __future__ import annotations

import os

import ml_collections

from associative_embedding.tasks.tracking.config import shrink_for_smoke, tracking_base_config

SAMPLE_ROOT = os.path.join(
    os.path.dirname(__file__), "..", "..", "shared", "data", "mmpose_samples", "posetrack18"
)


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = tracking_base_config()
    config.dataset.kind = "posetrack"
    # PoseTrack 2018's joints: head_bottom and head_top where COCO has the eyes; a flip keeps
    # them in place (COCO's joint set would swap them).
    config.dataset.keypoints = "posetrack"
    config.model.update(
        num_stacks=4, widths=(256, 384, 512, 640, 768), stem_widths=(64, 128),
        feature_width=0, tag_dim=4, batch_norm=False, coordinate_channels=False,
    )
    config.codec.update(input_size=512, output_stride=4, sigma=0.0, max_people=30)
    config.input.update(frames_per_clip=2, max_frame_gap=3)
    config.loss.update(heatmap_weight=1.0, pull_weight=1e-3, push_weight=1e-3, push_type="exp")
    config.optimizer.update(
        learning_rate=2e-4, schedule="step", final_learning_rate=1e-5, decay_step=100_000,
    )
    config.train.update(
        global_batch_size=16, num_steps=200_000, log_every=100, checkpoint_every=2000
    )
    config.eval.update(every_steps=10_000, max_videos=50)
    if variant == "smoke":
        root = os.path.normpath(SAMPLE_ROOT)
        annotations = os.path.join(root, "annotations", "test_posetrack18_val.json")
        config.dataset.update(
            train_annotations=annotations, train_images=root,
            val_annotations=annotations, val_images=root,
        )
        config.model.tag_dim = 2
        config.input.frames_per_clip = 1
        shrink_for_smoke(config)
    elif variant:
        raise ValueError(f"unknown variant {variant!r}; choose '' or 'smoke'")
    return config
