"""Tracking metrics against values computed by hand on tiny sequences."""

from __future__ import annotations

import numpy as np
import pytest

from associative_embedding.evaluation.tracking import (
    FrameTracks,
    box_tracking_metrics,
    posetrack_joint_distances,
    posetrack_joint_metrics,
)

BOX_A = [0.0, 0.0, 10.0, 10.0]
BOX_B = [20.0, 0.0, 30.0, 10.0]
FAR = [100.0, 100.0, 110.0, 110.0]


def frame(ids, boxes):
    return FrameTracks(ids=np.array(ids), boxes=np.array(boxes, np.float64).reshape(-1, 4))


def swap_video():
    """GT 1 at A, 2 at B. Frame 0: pred 7 at A, 8 at B. Frame 1: 8 at A, 7 at B (two switches).
    Frame 2: only GT 1; pred 7 at A (GT 1 was last matched to 8: a third switch), 9 far (FP)."""
    return [
        (frame([1, 2], [BOX_A, BOX_B]), frame([7, 8], [BOX_A, BOX_B])),
        (frame([1, 2], [BOX_A, BOX_B]), frame([8, 7], [BOX_A, BOX_B])),
        (frame([1], [BOX_A]), frame([7, 9], [BOX_A, FAR])),
    ]


def test_box_metrics_by_hand():
    metrics = box_tracking_metrics([swap_video()])
    assert metrics["num_frames"] == 3
    assert metrics["num_objects"] == 5
    assert metrics["num_predictions"] == 6
    assert metrics["num_matches"] == 2
    assert metrics["num_switches"] == 3
    assert metrics["num_false_positives"] == 1
    assert metrics["num_misses"] == 0
    assert metrics["mota"] == pytest.approx(1 - (0 + 3 + 1) / 5)
    assert metrics["precision"] == pytest.approx(5 / 6)
    assert metrics["recall"] == pytest.approx(1.0)
    # Best global identity map: 1 <-> 7 (frames 0, 2) and 2 <-> 8 (frame 0): IDTP = 3,
    # IDFN = 5 - 3, IDFP = 6 - 3, IDF1 = 2 * 3 / (2 * 3 + 3 + 2).
    assert metrics["idtp"] == 3
    assert metrics["idf1"] == pytest.approx(6 / 11)


def test_box_iou_threshold_and_videos_are_independent():
    shifted = [4.0, 0.0, 14.0, 10.0]  # IoU with A = 60 / 140 < 0.5: a miss and a false positive.
    near = [2.0, 0.0, 12.0, 10.0]  # IoU with A = 80 / 120 >= 0.5: a match.
    video = [
        (frame([1], [BOX_A]), frame([3], [near])),
        (frame([1], [BOX_A]), frame([3], [shifted])),
    ]
    metrics = box_tracking_metrics([video])
    assert (metrics["num_matches"], metrics["num_misses"], metrics["num_false_positives"]) == (
        1, 1, 1,
    )
    assert metrics["mota"] == pytest.approx(1 - 2 / 2)
    # Two videos reusing the same ids: counts add up, no switch across videos, same rates.
    twice = box_tracking_metrics([swap_video(), swap_video()])
    once = box_tracking_metrics([swap_video()])
    assert twice["num_switches"] == 2 * once["num_switches"]
    assert twice["mota"] == pytest.approx(once["mota"])
    assert twice["idf1"] == pytest.approx(once["idf1"])


def test_perfect_tracking_and_empty_frames():
    video = [
        (frame([1, 2], [BOX_A, BOX_B]), frame([5, 6], [BOX_A, BOX_B])),
        (frame([], []), frame([], [])),
        (frame([2], [BOX_B]), frame([6], [BOX_B])),
    ]
    metrics = box_tracking_metrics([video])
    assert metrics["mota"] == 1.0 and metrics["idf1"] == 1.0 and metrics["num_switches"] == 0
    assert metrics["num_frames"] == 3


def test_duplicate_ids_raise():
    with pytest.raises(ValueError, match="unique"):
        box_tracking_metrics([[(frame([1, 1], [BOX_A, BOX_B]), frame([], []))]])


HEAD = np.array([[0.0, 0.0, 30.0, 40.0]])  # diagonal 50: head size 0.6 * 50 = 30, match <= 15 px.
GT_POSE = np.array([[[100.0, 100.0, 2.0], [100.0, 200.0, 2.0]]])


def gt_frame():
    return FrameTracks(ids=np.array([1]), poses=GT_POSE, head_boxes=HEAD)


def pred_frame(ids, poses):
    return FrameTracks(ids=np.array(ids), poses=np.array(poses, np.float64))


def test_posetrack_joint_metrics_by_hand():
    frame0 = pred_frame(
        [5, 9],
        [
            # Joint 0 is 10 / 30 head sizes off (a match), joint 1 20 / 30 (not).
            [[110.0, 100.0, 0.9], [100.0, 220.0, 0.9]],
            [[100.0, 100.0, 0.0], [100.0, 200.0, 0.0]],  # absent joints (score 0): ignored
        ],
    )
    frame1 = pred_frame(
        [5, 6],
        [
            [[300.0, 300.0, 0.5], [300.0, 300.0, 0.5]],  # far: a false positive on both joints
            [[100.0, 100.0, 0.8], [100.0, 200.0, 0.8]],  # exact
        ],
    )
    metrics = posetrack_joint_metrics([[(gt_frame(), frame0), (gt_frame(), frame1)]])
    joint0, joint1 = metrics["per_joint"]
    # Joint 0: frame 0 match (1 <-> 5); frame 1 GT 1 goes to 6 (switch), 5 is a false positive.
    assert (joint0["num_matches"], joint0["num_switches"], joint0["num_false_positives"]) == (
        1, 1, 1,
    )
    assert joint0["mota"] == pytest.approx(1 - 2 / 2)
    assert joint0["precision"] == pytest.approx(2 / 3)
    assert joint0["recall"] == pytest.approx(1.0)
    # Joint 1: frame 0 miss + false positive; frame 1 match with 6 (first match: no switch), FP 5.
    assert (joint1["num_matches"], joint1["num_switches"], joint1["num_false_positives"]) == (
        1, 0, 2,
    )
    assert joint1["num_misses"] == 1
    assert joint1["mota"] == pytest.approx(1 - 3 / 2)
    assert joint1["precision"] == pytest.approx(1 / 3)
    assert joint1["recall"] == pytest.approx(1 / 2)
    assert metrics["mota"] == pytest.approx((0.0 - 0.5) / 2)
    assert metrics["precision"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert metrics["recall"] == pytest.approx((1 + 0.5) / 2)
    assert metrics["num_switches"] == 1
    assert metrics["num_frames"] == 2


def test_posetrack_threshold_is_inclusive_and_unannotated_joints_are_not_objects():
    exact = pred_frame([5], [[[115.0, 100.0, 1.0], [100.0, 215.01, 1.0]]])
    (_, _, d0), (_, _, d1) = posetrack_joint_distances(gt_frame(), exact)
    assert d0[0, 0] == pytest.approx(0.5)
    assert np.isnan(d1[0, 0])
    unannotated = FrameTracks(
        ids=np.array([1]), poses=GT_POSE * [1.0, 1.0, 0.0], head_boxes=HEAD
    )
    metrics = posetrack_joint_metrics([[(unannotated, exact)]])
    assert metrics["num_objects"] == 0 and np.isnan(metrics["mota"])
    assert metrics["num_false_positives"] == 2


def test_posetrack_needs_head_boxes():
    with pytest.raises(ValueError, match="head boxes"):
        posetrack_joint_distances(FrameTracks(ids=np.array([1]), poses=GT_POSE), gt_frame())
