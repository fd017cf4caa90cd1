"""The pose task's config checks: its dataset, codec, loss and eval fields.

Registered for `config.task == 'pose'` by ``tasks.registry``; the shared
sections are checked by ``core.config_checks``. No TensorFlow is imported; the enums are
spelled out, and tests check that they agree with the code that consumes each field.
"""

from __future__ import annotations

from typing import Any

from associative_embedding.core.config_checks import (
    ADJUST_MODES,
    ConfigChecker,
    check_keypoint_codec,
    listing,
)
from associative_embedding.core.keypoint_info import get_keypoint_info

#: config.dataset.kind (tasks.pose.inputs.prepare_data).
DATASET_KINDS = ("coco", "mpii", "synthetic")
#: config.dataset.keypoints (core.keypoint_info.get_keypoint_info).
KEYPOINT_SETS = ("coco", "crowdpose", "mpii", "posetrack")
#: config.dataset.ignore (data.coco).
IGNORE_MODES = ("crowd_and_unlabelled", "crowd")
#: config.eval.fusion (codec.fusion.FUSION_MODES).
FUSION_MODES = ("official", "paper")


def check_pose_config(checker: ConfigChecker) -> None:
    """The pose task's own fields (multi-person networks: heatmaps and tags)."""
    check_keypoint_fields(checker)
    checker.integer("model.tag_dim", minimum=1)


def check_keypoint_fields(checker: ConfigChecker) -> None:
    """The fields every keypoint task (multi-person pose and its refinement network) shares:
    the dataset, the keypoint codec, the heatmap loss and the pose evaluation."""
    checker.choice("dataset.kind", DATASET_KINDS)
    checker.check("dataset.keypoints", _is_keypoint_set,
                  f"is not a keypoint set; one of {listing(KEYPOINT_SETS)}")
    checker.choice("dataset.ignore", IGNORE_MODES)
    check_keypoint_codec(checker)
    checker.boolean("input.cache_decoded_images")
    for name in ("heatmap_weight", "heatmap_foreground_weight"):
        checker.number(f"loss.{name}", minimum=0.0)
    checker.boolean("eval.flip")
    checker.choice("eval.fusion", FUSION_MODES)
    checker.boolean("eval.gt_detection_diagnostic")
    checker.number("eval.draw_threshold", minimum=0.0)


def _is_keypoint_set(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        get_keypoint_info(value)
    except ValueError:
        return False
    return True


__all__ = [
    "ADJUST_MODES",
    "DATASET_KINDS",
    "FUSION_MODES",
    "IGNORE_MODES",
    "KEYPOINT_SETS",
    "check_keypoint_fields",
    "check_pose_config",
]
