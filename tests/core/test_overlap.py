"""Keypoint boxes, box IoU and OKS against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from associative_embedding.core.overlap import box_iou_matrix, keypoint_boxes, oks_matrix


def test_keypoint_boxes_use_present_joints_only():
    poses = np.array(
        [
            [[1.0, 2.0, 1.0], [5.0, 9.0, 0.5], [100.0, 100.0, 0.0]],
            [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
        ]
    )
    boxes = keypoint_boxes(poses)
    np.testing.assert_array_equal(boxes[0], [1, 2, 5, 9])
    assert np.isnan(boxes[1]).all()
    np.testing.assert_array_equal(keypoint_boxes(poses, min_score=0.6)[0], [1, 2, 1, 2])


def test_box_iou_by_hand():
    a = np.array([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 0.0, 0.0]])
    b = np.array([[5.0, 0.0, 15.0, 10.0], [np.nan] * 4, [0.0, 0.0, 10.0, 10.0]])
    iou = box_iou_matrix(a, b)
    np.testing.assert_allclose(iou[0], [50 / 150, 0.0, 1.0])
    np.testing.assert_array_equal(iou[1], [0.0, 0.0, 0.0])
    assert box_iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_oks_by_hand():
    sigmas = np.array([0.1, 0.2])
    reference = np.array([[[0.0, 0.0, 1.0], [10.0, 20.0, 1.0]]])  # box 10 x 20: area 200
    shifted = np.array([[[3.0, 4.0, 1.0], [10.0, 20.0, 1.0]], [[3.0, 4.0, 1.0], [0.0, 0.0, 0.0]]])
    oks = oks_matrix(shifted, reference, sigmas)
    # Joint 0: d^2 = 25, variance 2 * 200 * (2 * 0.1)^2 = 16; joint 1: d = 0.
    first = math.exp(-25 / 16)
    assert oks[0, 0] == pytest.approx((first + 1.0) / 2)
    assert oks[1, 0] == pytest.approx(first)  # joint 1 absent: only joint 0 counts
    assert oks_matrix(np.zeros((2, 2, 3)), reference, sigmas).tolist() == [[0.0], [0.0]]
    with pytest.raises(ValueError, match="joint count"):
        oks_matrix(shifted, reference, np.array([0.1]))
