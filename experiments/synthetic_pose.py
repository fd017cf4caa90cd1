"""Embedded default: learn detection AND grouping of synthetic people on a CPU in minutes.

Command (README command (a)):
    python tools/train.py --config=experiments/synthetic_pose.py --workdir=runs/synthetic_pose

Hardware assumed: 2 CPU cores, no GPU. The synthetic dataset (articulated stick-figure people,
256x256, >= 30% of validation images with >= 3 people) is generated into WORKDIR/synthetic on
the first run. Expected: <= 10 minutes, COCO OKS AP >= 0.40 on the synthetic validation split
(single scale) and AP_gt_detections (GT heatmaps + predicted tags, the paper's diagnostic)
>= 0.60. Variants:
    :long   ~60 minutes, target AP >= 0.70.
    :smoke  a few steps on tiny data (CI).

Departures from the official recipe, and why (REFERENCE.md, training dynamics measured here):
a small 2-stack hourglass at 128-pixel-ish input instead of 4 stacks at 512; Adam at a larger
learning rate with cosine decay; the hinge push (HigherHRNet's max-margin form) at weight 1e-2,
because the official exp push collapses tags from a random init in short runs.
"""

from __future__ import annotations

import ml_collections

from associative_embedding.training.config import base_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config()
    config.dataset.kind = "synthetic"
    config.dataset.keypoints = "coco"
    config.dataset.synthetic_num_train = 4000
    config.dataset.synthetic_num_val = 200
    config.dataset.synthetic_image_size = 256

    config.model.num_stacks = 2
    config.model.widths = (64, 80, 96, 112, 128)
    config.model.stem_widths = (32, 64)
    config.model.feature_width = 64

    config.input.input_size = 128
    config.input.output_stride = 4

    config.loss.push_type = "hinge"
    config.loss.pull_weight = 1e-2
    config.loss.push_weight = 1e-2

    config.optimizer.learning_rate = 2e-3
    config.optimizer.schedule = "cosine"
    config.optimizer.final_learning_rate = 1e-5
    config.optimizer.warmup_steps = 100

    config.train.global_batch_size = 16
    config.train.num_steps = 2000
    config.train.log_every = 50
    config.train.checkpoint_every = 500
    config.train.time_limit_minutes = 0.0

    config.eval.every_steps = 1000
    config.eval.input_size = 128
    config.eval.max_images = 0

    if variant == "long":
        config.train.num_steps = 12000
        config.eval.every_steps = 2000
    elif variant == "smoke":
        config.dataset.synthetic_num_train = 16
        config.dataset.synthetic_num_val = 4
        config.dataset.synthetic_image_size = 128
        config.model.widths = (16, 16, 16, 16, 16)
        config.model.stem_widths = (8, 16)
        config.model.feature_width = 16
        config.input.input_size = 64
        config.eval.input_size = 64
        config.train.global_batch_size = 2
        config.train.num_steps = 2
        config.train.log_every = 1
        config.train.checkpoint_every = 1
        config.eval.every_steps = 0
        config.eval.num_drawn_images = 2
    elif variant:
        raise ValueError(f"unknown variant {variant!r}; choose '', 'long' or 'smoke'")
    return config
