"""The tracking task's config checks: its dataset, codec, input, loss and eval fields.

Registered for `config.task == 'tracking'` by ``tasks.registry``; the shared sections are
checked by ``core.config_checks``. No TensorFlow is imported; the enums are spelled out, and
tests check that they agree with the code that consumes each field.
"""

from __future__ import annotations

from associative_embedding.core.config_checks import (
    ADJUST_MODES,
    ConfigChecker,
    check_keypoint_codec,
)

#: config.dataset.kind (tasks.tracking.inputs.prepare_data).
DATASET_KINDS = ("posetrack", "synthetic")
#: config.dataset.keypoints: COCO's 17 joints (the synthetic clips) or PoseTrack 2018's
#: (head_bottom and head_top in the eyes' places, not swapped by a flip).
KEYPOINT_SETS = ("coco", "posetrack")
#: config.dataset.ignore (data.coco).
IGNORE_MODES = ("crowd_and_unlabelled", "crowd")
#: config.eval.baseline_overlap (tasks.tracking.tracker.OVERLAP_TYPES).
OVERLAP_TYPES = ("oks", "iou")


def check_tracking_config(checker: ConfigChecker) -> None:
    """The tracking task's own fields."""
    checker.choice("dataset.kind", DATASET_KINDS)
    checker.choice("dataset.keypoints", KEYPOINT_SETS)
    if checker.get("dataset.kind") == "synthetic":
        checker.check("dataset.keypoints", lambda value: value == "coco",
                      "is not allowed with dataset.kind='synthetic' (the synthetic clips have "
                      "COCO's joints); use 'coco'")
    checker.choice("dataset.ignore", IGNORE_MODES)
    checker.integer("dataset.synthetic_num_frames", minimum=2)
    checker.integer("model.tag_dim", minimum=1)
    check_keypoint_codec(checker)
    checker.integer("input.frames_per_clip", minimum=1)
    checker.integer("input.max_frame_gap", minimum=1)
    frames = checker.get("dataset.synthetic_num_frames")
    clip = checker.get("input.frames_per_clip")
    gap = checker.get("input.max_frame_gap")
    if (checker.get("dataset.kind") == "synthetic" and all(
            isinstance(value, int) for value in (frames, clip, gap))
            and (clip - 1) * gap >= frames):
        checker.fail("input.max_frame_gap", f"{gap} x (input.frames_per_clip - 1) = "
                     f"{(clip - 1) * gap} spans more than dataset.synthetic_num_frames={frames}")
    for name in ("heatmap_weight", "heatmap_foreground_weight"):
        checker.number(f"loss.{name}", minimum=0.0)
    checker.integer("eval.max_videos", minimum=0, note="0 = all")
    checker.integer("eval.frame_step", minimum=1)
    checker.number("eval.max_tag_distance", minimum=0.0, exclusive_minimum=True)
    checker.number("eval.tag_momentum", minimum=0.0, maximum=0.999)
    checker.number("eval.overlap_weight", minimum=0.0)
    checker.number("eval.min_birth_score", minimum=0.0)
    checker.integer("eval.max_missed_frames", minimum=0)
    checker.choice("eval.baseline_overlap", OVERLAP_TYPES)
    checker.number("eval.baseline_min_overlap", minimum=0.0, maximum=1.0)
    checker.number("eval.box_margin", minimum=0.0)
    checker.number("eval.min_joint_score", minimum=0.0)


__all__ = [
    "ADJUST_MODES",
    "DATASET_KINDS",
    "IGNORE_MODES",
    "KEYPOINT_SETS",
    "OVERLAP_TYPES",
    "check_tracking_config",
]
