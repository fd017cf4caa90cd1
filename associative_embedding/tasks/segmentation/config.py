"""The configuration schema of instance-segmentation experiments (ml_collections).

It shares the model, optimizer and train sections (and their defaults) with every task
(`training.config.task_config`), so the tasks use one model builder, one loop and one
driver; `task = 'segmentation'` selects `SegmentationTrainer` in `tools/train.py`. The dataset,
codec, input, loss and eval sections are the segmentation ones below; `codec` says once what the
instance target encoder and the instance decoder share (input size, output stride) and holds
each one's options. Paper settings (Sec. 4.2):
256 input / 64 output, grouping loss weight 1e-4, three test scales (x0.5, x1, x1.5) whose
proposals are merged by NMS.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import ml_collections

from associative_embedding.tasks.segmentation.config_checks import DATASET_KINDS
from associative_embedding.training.config import augmentation_fields, task_config

__all__ = [
    "DATASET_KINDS",
    "instance_decoder_options",
    "segmentation_base_config",
    "shrink_segmentation_for_smoke",
]


def segmentation_base_config() -> ml_collections.ConfigDict:
    """Defaults = the paper's VOC recipe (Sec. 4.2) on a 4-stack hourglass."""
    config = task_config("segmentation")

    config.dataset = ml_collections.ConfigDict(
        dict(
            # 'synthetic_shapes' (generated into WORKDIR/synthetic_shapes when missing),
            # 'coco' (any COCO instances file) or 'voc' (VOCdevkit/VOC2012 SegmentationObject).
            kind="voc",
            num_categories=20,  # must equal the categories the reader finds (checked)
            category_ids=(),  # COCO: ids to keep, in channel order; () = every category
            train_annotations="",
            train_images="",
            val_annotations="",
            val_images="",
            voc_root="",  # VOCdevkit/VOC2012 (kind='voc')
            voc_train_split="train",
            voc_val_split="val",
            # Synthetic shapes (kind='synthetic_shapes').
            synthetic_dir="",  # '' = WORKDIR/synthetic_shapes
            synthetic_num_train=2000,
            synthetic_num_val=300,
            synthetic_image_size=128,
            synthetic_seed=0,
        )
    )

    config.codec = ml_collections.ConfigDict(
        dict(
            # The network's input side: the training crops and the scale-1 test input.
            input_size=256,
            output_stride=4,
            # The target encoder (data.instances): instances encoded per training image, the
            # pixels each one contributes to the grouping loss, and area-averaged detection
            # targets.
            max_instances=20,
            pixels_per_instance=16,
            area_average_targets=True,
            # The instance decoder (codec.instance_decode.decode_instances).
            detection_threshold=0.5,
            bandwidth=0.5,  # tag-space window of the histogram / density NMS
            method="auto",  # 'auto' | 'histogram' (D = 1) | 'density'
            min_instance_pixels=10,
            max_output_instances=30,  # instances decoded per test image
            max_tag_distance=0.0,  # 0 = every foreground pixel joins its nearest identifier
        )
    )

    config.input = ml_collections.ConfigDict(
        dict(
            # Supervised instance sizes, sqrt(visible area) in input pixels (paper: objects
            # outside a size range are masked out of the loss). 0 / inf = every size.
            min_instance_size=0.0,
            max_instance_size=math.inf,
            **augmentation_fields(),
        )
    )

    config.loss = ml_collections.ConfigDict(
        dict(
            detection_weight=1.0,
            pull_weight=1e-4,  # paper: 1e-4 with the printed (summed) formula
            push_weight=1e-4,
            push_type="exp",
            normalization="sum",  # 'sum' (paper's formula) | 'mean' (scale-free)
            detection_foreground_weight=0.0,
        )
    )

    config.eval = ml_collections.ConfigDict(
        dict(
            every_steps=5000,
            max_images=0,
            scales=(0.5, 1.0, 1.5),  # paper: proposals at x0.5, x1, x1.5, NMS across scales
            scale_nms_iou=0.5,
            num_drawn_images=8,
        )
    )
    return config


def instance_decoder_options(codec_config: Mapping[str, Any]) -> dict[str, Any]:
    """`codec.instance_decode.decode_instances` keyword arguments from a `codec` section (a
    ConfigDict or the dict of a work dir's config.json)."""
    max_distance = float(codec_config.get("max_tag_distance", 0.0))
    return {
        "detection_threshold": float(codec_config["detection_threshold"]),
        "bandwidth": float(codec_config["bandwidth"]),
        "method": codec_config.get("method", "auto"),
        "min_instance_pixels": int(codec_config["min_instance_pixels"]),
        "max_instances": int(codec_config["max_output_instances"]),
        "max_tag_distance": max_distance if max_distance > 0 else None,
    }


def shrink_segmentation_for_smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A 2-stack, 16-channel model at 64 input for 2 steps (seconds on a CPU), in place."""
    config.model.update(
        num_stacks=2, widths=(16, 16, 16, 16, 16), stem_widths=(8, 16), feature_width=16
    )
    config.codec.update(input_size=64, max_instances=8, pixels_per_instance=4)
    config.input.update(shuffle_buffer_size=64)
    config.train.update(global_batch_size=2, num_steps=2, log_every=1, checkpoint_every=1)
    config.eval.update(every_steps=0, max_images=4, num_drawn_images=2, scales=(1.0,))
    return config
