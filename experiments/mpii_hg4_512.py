"""MPII multi-person pose, the paper's recipe (Newell et al. 2017, Sec. 4.1) with MPII's 16 joints.

Command (MPII Human Pose in $MPII: the images and the common JSON conversion of the
annotations, e.g. HRNet's/mmpose's train.json and valid.json; the official .mat release
also works):
    python tools/train.py --config=experiments/mpii_hg4_512.py --workdir=runs/mpii_hg4_512 \
        --strategy=mirrored \
        --config.dataset.train_annotations=$MPII/annotations/train.json \
        --config.dataset.train_images=$MPII/images \
        --config.dataset.val_annotations=$MPII/annotations/valid.json \
        --config.dataset.val_images=$MPII/images
Several machines: the same command on each with --strategy=multi_worker and TF_CONFIG set (work
dir readable by every worker; only the chief writes there). Rerunning resumes.

Hardware assumed: one machine with 4-8 GPUs of >= 16 GB each, mirrored (global batch 32).

Settings: the network and training recipe of the paper's Sec. 4.1, which it uses for both MPII
and COCO: 4-stack hourglass (official widths, no BatchNorm), input 512 / output 128, batch 32,
Adam 2e-4 dropped to 1e-5 after 100k iterations, loss weights heatmap 1, pull 1e-3, push 1e-3
with the exp push; 16 joints with MPII's flip pairs and grouping order (keypoints='mpii').

Expected result: the paper's MPII Multi-Person test mAP 77.5 (Table 1; 1758 groups, evaluated
by the benchmark's server). Training-time evaluation reports the multi-person mAP of joint
detections (Pishchulin et al.'s PCKh-0.5 matching) on the validation split given, as 'AP'.

Variants:
    :smoke  a tiny model for a few steps on the 5 images of
            ../shared/data/mmpose_samples/mpii (test_mpii.json; train = val), resolved from
            the repository root, for tests and CI.
"""

from __future__ import annotations

import pathlib

import ml_collections

from associative_embedding.training.config import base_config

# ../shared/data beside the repository (the experiments folder's parent), not the CWD.
SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
MPII_SAMPLES = SHARED_DATA / "mmpose_samples" / "mpii"


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config()
    config.dataset.kind = "mpii"
    config.dataset.keypoints = "mpii"
    # train/val paths come from --config.dataset.* flags (see the docstring).

    config.model.num_stacks = 4
    config.model.widths = (256, 384, 512, 640, 768)
    config.model.stem_widths = (64, 128)
    config.model.feature_width = 0
    config.model.tag_dim = 1
    config.model.batch_norm = False

    config.input.input_size = 512
    config.input.output_stride = 4
    config.input.sigma = 0.0  # output_size / 64 = 2 at 128
    config.input.max_people = 30

    config.loss.heatmap_weight = 1.0
    config.loss.pull_weight = 1e-3
    config.loss.push_weight = 1e-3
    config.loss.push_type = "exp"

    config.optimizer.learning_rate = 2e-4
    config.optimizer.schedule = "step"
    config.optimizer.final_learning_rate = 1e-5
    config.optimizer.decay_step = 100_000
    config.optimizer.warmup_steps = 0
    config.optimizer.clipnorm = 0.0

    config.train.global_batch_size = 32
    config.train.num_steps = 200_000
    config.train.log_every = 100
    config.train.checkpoint_every = 2000

    config.eval.every_steps = 10_000
    config.eval.input_size = 512
    config.eval.max_images = 500
    config.eval.scales = (1.0,)
    config.eval.flip = False

    if variant == "smoke":
        annotations = str(MPII_SAMPLES / "test_mpii.json")
        config.dataset.train_annotations = annotations
        config.dataset.train_images = str(MPII_SAMPLES)
        config.dataset.val_annotations = annotations
        config.dataset.val_images = str(MPII_SAMPLES)
        _make_tiny(config)
    elif variant:
        raise ValueError(f"unknown variant {variant!r}; choose '' or 'smoke'")
    return config


def _make_tiny(config: ml_collections.ConfigDict) -> None:
    """A 2-stack, 16-channel model at 64 input for a few steps (seconds on a CPU)."""
    config.model.num_stacks = 2
    config.model.widths = (16, 16, 16, 16, 16)
    config.model.stem_widths = (8, 16)
    config.model.feature_width = 16
    config.input.input_size = 64
    config.input.shuffle_buffer_size = 64
    config.train.global_batch_size = 2
    config.train.num_steps = 2
    config.train.log_every = 1
    config.train.checkpoint_every = 1
    config.eval.every_steps = 0
    config.eval.input_size = 64
    config.eval.max_images = 4
    config.eval.num_drawn_images = 2
