"""COCO single-person refinement network (paper Sec. 4.1, Tables 2-4 "+ refine").

Command (COCO 2017 unpacked under $COCO; one machine with all its GPUs):
    python tools/train.py --config=experiments/coco_refine_hg.py --workdir=runs/coco_refine_hg \
        --strategy=mirrored \
        --config.dataset.train_annotations=$COCO/annotations/person_keypoints_train2017.json \
        --config.dataset.train_images=$COCO/train2017 \
        --config.dataset.val_annotations=$COCO/annotations/person_keypoints_val2017.json \
        --config.dataset.val_images=$COCO/val2017
The refiner then loads WORKDIR (tasks.refinement.refine.PoseRefiner) to refine the grouped people of
the multi-person model (experiments/coco_hg4_512.py).

What is known (the paper and the official code): the paper refines each person
"following prior work [6]" with "a single-person pose model [40] (stacked hourglass) trained on
the same dataset"; the official training code does not contain it (only the official TF1 demo
runs one, at inference), and the demo crops each grouped person around its keypoints' box with
side max(w, h, 60) * 1.3. Nothing else of its training recipe is published.

What is chosen here: the package's official hourglass (4 stacks, widths 256-384-512-640-768,
no BatchNorm, tag_dim 0 = K heatmap channels only) at the stacked-hourglass paper's
single-person resolution, input 256 / output 64 (σ = 1); crops by the demo's rule around the
labelled keypoints' box of every person with >= 1 labelled joint (tasks/refinement/data.py); the
pose recipe's optimizer (Adam 2e-4, batch 32, dropped to 1e-5 after 100k of 150k iterations)
and augmentation (rotation ±30°, crop side ×0.75-1.25, flip with joint swap, colour jitter),
with translation jitter ±0.1 of the crop side (the crop is centred on the person already);
plain MSE heatmap loss, crowd and unlabelled people masked, other people in the crop are
background (the network reports the centred person).

Expected result: no paper number exists for the refinement network alone; the paper's gain
from refinement is COCO test-dev AP 0.566 → 0.628 (single scale) and 0.630 → 0.655 (multi
scale). The training-time evaluation ('AP', every 5000 steps on the people of the first 500
val2017 images) crops every ground-truth person from its ground-truth keypoints and counts it
as one detection: it measures the network on correctly grouped people, not the pipeline
(not measured on COCO here: no GPU).

Hardware assumed: one machine with 1-8 GPUs (the network of experiments/coco_hg4_512.py without
its tag channels; a 256 x 256 crop costs a quarter of a 512 x 512 image).

Variants:
    :smoke  a tiny model for 2 steps on ../shared/data/coco_mini_train2017 (train = val),
            resolved from the repository root, for tests and CI.
"""

from __future__ import annotations

import pathlib

import ml_collections

from associative_embedding.tasks.pose.config import shrink_for_smoke
from associative_embedding.tasks.refinement.trainer import refinement_base_config

# ../shared/data beside the repository (the experiments folder's parent), not the CWD.
SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
COCO_MINI = SHARED_DATA / "coco_mini_train2017"


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = refinement_base_config()
    config.dataset.kind = "coco"
    config.dataset.keypoints = "coco"
    config.dataset.ignore = "crowd_and_unlabelled"
    # train/val paths come from --config.dataset.* flags (see the docstring).

    config.model.update(
        num_stacks=4, widths=(256, 384, 512, 640, 768), stem_widths=(64, 128),
        feature_width=0, tag_dim=0, batch_norm=False,
    )
    config.codec.update(
        input_size=256, output_stride=4, sigma=0.0, subpixel_targets=False, adjust="official"
    )
    config.input.update(
        max_rotation_degrees=30.0, scale_range=(0.75, 1.25), max_translation=0.1,
        flip_probability=0.5, color_jitter=True,
    )
    config.loss.update(heatmap_weight=1.0, heatmap_foreground_weight=0.0)
    config.optimizer.update(
        learning_rate=2e-4, schedule="step", final_learning_rate=1e-5, decay_step=100_000,
        warmup_steps=0, clipnorm=0.0,
    )
    config.train.update(
        global_batch_size=32, num_steps=150_000, log_every=100, checkpoint_every=2000
    )
    config.eval.update(every_steps=5000, max_images=500, flip=False)
    config.refine.update(min_side=60.0, margin=1.3, crop_size=0, min_joints=1)

    if variant == "smoke":
        config.dataset.train_annotations = str(COCO_MINI / "person_keypoints_train2017.json")
        config.dataset.train_images = str(COCO_MINI / "images")
        config.dataset.val_annotations = config.dataset.train_annotations
        config.dataset.val_images = config.dataset.train_images
        shrink_for_smoke(config)
    elif variant:
        raise ValueError(f"unknown variant {variant!r}; choose '' or 'smoke'")
    return config
