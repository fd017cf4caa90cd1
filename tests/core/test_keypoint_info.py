"""The keypoint sets (associative_embedding/core/keypoint_info.py), PoseTrack's above all."""

from __future__ import annotations

import numpy as np
import pytest

from associative_embedding.core import keypoint_info
from associative_embedding.core.keypoint_info import COCO, POSETRACK
from associative_embedding.tasks.pose import config_checks as pose_checks


def test_posetrack_is_registered_and_listed_wherever_sets_are_named():
    assert keypoint_info.get_keypoint_info("posetrack") is POSETRACK
    assert keypoint_info.get_keypoint_info("PoseTrack") is POSETRACK
    assert "posetrack" in keypoint_info.KEYPOINT_SETS
    # The config checks spell their enum out (no import of the sets' module in the schema):
    # it must list every registered set.
    assert set(pose_checks.KEYPOINT_SETS) == set(keypoint_info.KEYPOINT_SETS)


def test_a_bare_joint_count_still_means_coco_and_names_tell_posetrack():
    assert keypoint_info.keypoint_info_for_num_joints(17) is COCO
    assert keypoint_info.keypoint_info_for_names(POSETRACK.joint_names) is POSETRACK
    assert keypoint_info.keypoint_info_for_names(COCO.joint_names) is COCO
    assert keypoint_info.keypoint_info_for_names(("a", "b")) is None
    with pytest.raises(ValueError, match="5 joints"):
        keypoint_info.keypoint_info_for_num_joints(5)


def test_posetrack_flip_keeps_the_head_joints_and_swaps_the_sides():
    assert POSETRACK.joint_names[1:3] == ("head_bottom", "head_top")
    flip = np.asarray(POSETRACK.flip_index)
    assert flip[1] == 1 and flip[2] == 2 and flip[0] == 0
    # Every other joint goes to its mirror twin, as in COCO.
    np.testing.assert_array_equal(flip[3:], np.asarray(COCO.flip_index)[3:])
    # A mirrored pose: x -> W - 1 - x, then joint k takes the values of joint flip[k].
    width = 100
    pose = np.stack([np.arange(17) * 3.0 + 10, np.arange(17) * 2.0 + 5, np.ones(17)], -1)
    mirrored = pose[flip].copy()
    mirrored[:, 0] = width - 1 - mirrored[:, 0]
    for joint in (0, 1, 2):  # nose, head_bottom, head_top stay where they are (mirrored)
        assert mirrored[joint, 0] == width - 1 - pose[joint, 0]
        assert mirrored[joint, 1] == pose[joint, 1]
    assert mirrored[5, 1] == pose[6, 1]  # the left shoulder is the right one mirrored


def test_posetrack_skeleton_sigmas_and_grouping_order_make_sense():
    names = POSETRACK.joint_names
    limbs = {frozenset((names[a], names[b])) for a, b in POSETRACK.skeleton}
    # The head hangs from head_bottom; no limb reaches the never-annotated ears.
    assert frozenset(("head_bottom", "left_shoulder")) in limbs
    assert not any(name.endswith("_ear") for limb in limbs for name in limb)
    # Head joints are placed less precisely than COCO's eyes; the rest are COCO's.
    assert POSETRACK.sigmas[1] > COCO.sigmas[1] and POSETRACK.sigmas[2] > COCO.sigmas[2]
    np.testing.assert_allclose(POSETRACK.sigmas[5:], COCO.sigmas[5:])
    # Grouping seeds people at the head and leaves the ears to the end.
    assert POSETRACK.grouping_order[0] == 1
    assert set(POSETRACK.grouping_order[-2:]) == {3, 4}
