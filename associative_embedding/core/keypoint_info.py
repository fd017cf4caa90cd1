"""Per-dataset keypoint metadata: joint names, flip pairs, OKS sigmas, skeleton, grouping order.

Every module that needs to know about a dataset's joints (flip augmentation, target encoding,
decoding order, COCO evaluation, drawing) reads it from here, so a new dataset is one entry.

Facts come from the official pose-ae-train code (flip indices, COCO grouping order) and the
datasets' own definitions (COCO and CrowdPose OKS sigmas as published with their evaluation
code; MPII sigmas as used by mmpose for OKS-style evaluation of MPII; PoseTrack's joints as its
annotation files name them, sources at ``POSETRACK``).

A bare joint count (a model's output channels, a file that names no set) stands for COCO,
CrowdPose or MPII (``keypoint_info_for_num_joints``); PoseTrack shares COCO's 17 and is known
by its joint names instead (``keypoint_info_for_names``), which every PoseTrack file carries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class KeypointInfo:
    """Static description of one dataset's keypoints.

    Attributes:
        name: dataset name ("coco", "crowdpose", "mpii", "posetrack").
        joint_names: K joint names, in the dataset's annotation order.
        flip_index: (K,) joint index that joint k becomes after a horizontal flip.
        sigmas: (K,) OKS sigmas used by COCO-style evaluation.
        skeleton: pairs of 0-based joint indices drawn as limbs.
        grouping_order: (K,) joint indices in the order the decoder groups them
            (the first joint type with detections seeds people).
    """

    name: str
    joint_names: tuple[str, ...]
    flip_index: tuple[int, ...]
    sigmas: tuple[float, ...]
    skeleton: tuple[tuple[int, int], ...]
    grouping_order: tuple[int, ...]

    def __post_init__(self) -> None:
        num_joints = len(self.joint_names)
        for field_name in ("flip_index", "sigmas", "grouping_order"):
            if len(getattr(self, field_name)) != num_joints:
                raise ValueError(
                    f"KeypointInfo {self.name!r}: {field_name} has "
                    f"{len(getattr(self, field_name))} entries, expected {num_joints}."
                )
        if sorted(self.flip_index) != list(range(num_joints)):
            raise ValueError(f"KeypointInfo {self.name!r}: flip_index is not a permutation.")
        if any(self.flip_index[self.flip_index[k]] != k for k in range(num_joints)):
            raise ValueError(f"KeypointInfo {self.name!r}: flip_index is not an involution.")
        if sorted(self.grouping_order) != list(range(num_joints)):
            raise ValueError(f"KeypointInfo {self.name!r}: grouping_order is not a permutation.")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def sigmas_array(self) -> np.ndarray:
        return np.asarray(self.sigmas, dtype=np.float64)


_COCO_SIGMAS = (
    0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72,
    0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89,
)

COCO = KeypointInfo(
    name="coco",
    joint_names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    flip_index=(0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15),
    sigmas=tuple(s / 10.0 for s in _COCO_SIGMAS),
    skeleton=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
        (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4),
        (3, 5), (4, 6),
    ),
    # Official order: nose, eyes, ears, shoulders, hips, elbows, wrists, knees, ankles.
    grouping_order=(0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16),
)

CROWDPOSE = KeypointInfo(
    name="crowdpose",
    joint_names=(
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle", "head", "neck",
    ),
    flip_index=(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12, 13),
    sigmas=tuple(
        s / 10.0
        for s in (0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89,
                  0.79, 0.79)
    ),
    skeleton=(
        (12, 13), (13, 0), (13, 1), (0, 2), (2, 4), (1, 3), (3, 5), (0, 6), (1, 7),
        (6, 7), (6, 8), (8, 10), (7, 9), (9, 11),
    ),
    # Head and neck first (most reliable in crowds), then torso outwards, as for COCO.
    grouping_order=(12, 13, 0, 1, 6, 7, 2, 3, 4, 5, 8, 9, 10, 11),
)

MPII = KeypointInfo(
    name="mpii",
    joint_names=(
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
        "pelvis", "thorax", "upper_neck", "head_top",
        "right_wrist", "right_elbow", "right_shoulder",
        "left_shoulder", "left_elbow", "left_wrist",
    ),
    flip_index=(5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10),
    sigmas=(
        0.089, 0.083, 0.107, 0.107, 0.083, 0.089, 0.026, 0.026, 0.026, 0.026,
        0.062, 0.072, 0.179, 0.179, 0.072, 0.062,
    ),
    skeleton=(
        (0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9),
        (10, 11), (11, 12), (12, 7), (7, 13), (13, 14), (14, 15),
    ),
    # Head and torso first, then limbs outwards (same idea as the official COCO order).
    grouping_order=(9, 8, 7, 6, 12, 13, 2, 3, 11, 14, 1, 4, 10, 15, 0, 5),
)

# PoseTrack 2018: COCO's 17-joint layout, but joints 1 and 2 are the bottom and the top of the
# head (not the eyes), and the ears are never annotated (15 joints are labelled).
POSETRACK = KeypointInfo(
    name="posetrack",
    # The `categories[0].keypoints` of every PoseTrack 2018 annotation file.
    joint_names=(
        "nose", "head_bottom", "head_top", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    # COCO's, except that head_bottom and head_top lie on the body's mid-line: a mirror image
    # keeps them (COCO's swaps 1 <-> 2, its eyes); mmpose's posetrack18 dataset info agrees.
    flip_index=(0, 1, 2, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15),
    # PoseTrack's own evaluation (poseval) scores joints by head-size-normalised distance
    # (PCKh), not OKS, so there are no official sigmas. COCO's are used for the joints COCO
    # shares (nose, ears, limbs); head_bottom and head_top are placed less precisely than eyes
    # (the chin/neck and the crown have no sharp landmark), so they take OpenPifPaf's
    # PoseTrack values (0.08, 0.06) instead of COCO's eye sigma (0.025, which mmpose keeps).
    sigmas=(
        0.026, 0.08, 0.06, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
        0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
    ),
    # mmpose's posetrack18 skeleton: COCO's limbs and torso; the head hangs from head_bottom
    # (nose - head_bottom, nose - head_top, head_bottom - shoulders); no ear limbs.
    skeleton=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
        (5, 7), (6, 8), (7, 9), (8, 10), (0, 1), (0, 2), (1, 5), (1, 6),
    ),
    # COCO's official order with the head first: head_bottom (the neck, seldom occluded, on
    # the mid-line), head_top, nose, then shoulders, hips, elbows, wrists, knees, ankles; the
    # never-annotated ears last, so their (untrained) detections never seed a person.
    grouping_order=(1, 2, 0, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16, 3, 4),
)

_BY_NAME = {info.name: info for info in (COCO, CROWDPOSE, MPII, POSETRACK)}
#: Every registered keypoint set's name (config.dataset.keypoints, the tools' --dataset).
KEYPOINT_SETS = tuple(_BY_NAME)
# The set a bare joint count stands for; PoseTrack (17, like COCO) is told by its joint names.
_BY_NUM_JOINTS = {info.num_joints: info for info in (COCO, CROWDPOSE, MPII)}


def get_keypoint_info(name: str) -> KeypointInfo:
    """Returns the KeypointInfo registered under `name` (case-insensitive)."""
    try:
        return _BY_NAME[name.lower()]
    except KeyError:
        raise ValueError(
            f"Unknown keypoint dataset {name!r}; known: {sorted(_BY_NAME)}."
        ) from None


def keypoint_info_for_num_joints(num_joints: int) -> KeypointInfo:
    """Returns the set a bare joint count stands for (17 → COCO, 14 → CrowdPose, 16 → MPII).

    PoseTrack also has 17 joints; a count alone never means it (see the module docstring).
    """
    try:
        return _BY_NUM_JOINTS[int(num_joints)]
    except KeyError:
        raise ValueError(f"No unique keypoint dataset with {num_joints} joints.") from None


def keypoint_info_for_names(joint_names: Sequence[str]) -> KeypointInfo | None:
    """Returns the registered set with exactly these joint names in this order, else None.

    Args:
        joint_names: K joint names, e.g. a COCO-format file's ``categories[0].keypoints``.
    """
    names = tuple(str(name) for name in joint_names)
    for info in _BY_NAME.values():
        if info.joint_names == names:
            return info
    return None
