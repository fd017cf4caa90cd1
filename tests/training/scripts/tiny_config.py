"""A tiny training config shared by the training tests' subprocess scripts and tests.

Independent of experiments/*.py (which their owners tune): 2 stacks of 16 channels at 64 input,
COCO's 17 joints, batch 4, no BatchNorm (per-replica batch statistics would make a 2-replica step
differ from a 1-replica one by design).
"""

from __future__ import annotations

import ml_collections
import numpy as np

from associative_embedding.tasks.pose.config import base_config


def tiny_config(**overrides) -> ml_collections.ConfigDict:
    """The tiny config; `overrides` are 'section.field' = value pairs with '.' written '__'."""
    config = base_config()
    config.dataset.kind = "synthetic"
    config.dataset.keypoints = "coco"
    config.dataset.synthetic_num_train = 8
    config.dataset.synthetic_num_val = 2
    config.dataset.synthetic_image_size = 96
    config.model.num_stacks = 2
    config.model.widths = (16, 16, 16)  # hourglass depth 2: little to trace
    config.model.stem_widths = (8, 16)
    config.model.feature_width = 16
    config.model.batch_norm = False
    config.codec.input_size = 64
    config.input.shuffle_buffer_size = 8
    config.loss.pull_weight = 1e-2
    config.loss.push_weight = 1e-2
    config.loss.push_type = "hinge"
    config.optimizer.learning_rate = 1e-3
    config.optimizer.schedule = "constant"
    config.train.global_batch_size = 4
    config.train.num_steps = 2
    config.train.log_every = 1
    config.train.checkpoint_every = 1
    config.eval.every_steps = 0
    config.eval.max_images = 1
    config.eval.num_drawn_images = 1
    config.eval.gt_detection_diagnostic = False
    for key, value in overrides.items():
        section, field = key.split("__")
        config[section][field] = value
    return config


def fixed_batch(
    batch_size: int, input_size: int, num_joints: int = 17, seed: int = 0
) -> dict[str, np.ndarray]:
    """A reproducible training batch (the ``data.pipeline`` layout) with 0-3 people per image."""
    rng = np.random.default_rng(seed)
    size = input_size // 4
    keypoints = np.zeros((batch_size, 30, num_joints, 3), np.float32)
    for index in range(batch_size):
        people = index % 4  # 0, 1, 2, 3 people: empty, single and multi-person images
        keypoints[index, :people, :, 0] = rng.integers(0, size, (people, num_joints))
        keypoints[index, :people, :, 1] = rng.integers(0, size, (people, num_joints))
        keypoints[index, :people, :, 2] = rng.random((people, num_joints)) < 0.7
    return {
        "image": rng.random((batch_size, input_size, input_size, 3)).astype(np.float32),
        "heatmaps": rng.random((batch_size, size, size, num_joints)).astype(np.float32) ** 4,
        "mask": (rng.random((batch_size, size, size)) < 0.9).astype(np.float32),
        "keypoints": keypoints,
        "image_id": np.arange(batch_size, dtype=np.int64),
    }
