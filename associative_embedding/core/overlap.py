"""Overlap between people: keypoint boxes, box IoU and object keypoint similarity (OKS).

Pure NumPy, shared by the trackers (matching people across frames) and the tracking metrics
(matching predicted to ground-truth people).
"""

from __future__ import annotations

import numpy as np


def keypoint_boxes(poses: np.ndarray, min_score: float = 0.0) -> np.ndarray:
    """Tight boxes around each person's joints whose score (or visibility) is above a threshold.

    Args:
        poses: (P, K, 3) (x, y, score) per joint.
        min_score: joints need a score strictly above this to count.

    Returns:
        (P, 4) float64 boxes (x1, y1, x2, y2); a person without any counted joint gets an
        all-NaN box (it overlaps nothing).
    """
    poses = np.asarray(poses, np.float64).reshape(-1, *np.shape(poses)[-2:])
    boxes = np.full((poses.shape[0], 4), np.nan)
    for index, pose in enumerate(poses):
        visible = pose[:, 2] > min_score
        if visible.any():
            points = pose[visible, :2]
            boxes[index, :2] = points.min(axis=0)
            boxes[index, 2:] = points.max(axis=0)
    return boxes


def box_iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection over union of every pair of boxes.

    Args:
        boxes_a: (A, 4) boxes (x1, y1, x2, y2).
        boxes_b: (B, 4) boxes (x1, y1, x2, y2).

    Returns:
        (A, B) float64 IoU in [0, 1]; 0 for pairs with a NaN or empty box (the union of two
        empty boxes is 0, and 0 / 0 would be NaN).
    """
    boxes_a = np.asarray(boxes_a, np.float64).reshape(-1, 4)
    boxes_b = np.asarray(boxes_b, np.float64).reshape(-1, 4)
    top_left = np.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    bottom_right = np.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    intersection = np.prod(np.clip(bottom_right - top_left, 0.0, None), axis=-1)
    area_a = np.prod(np.clip(boxes_a[:, 2:] - boxes_a[:, :2], 0.0, None), axis=-1)
    area_b = np.prod(np.clip(boxes_b[:, 2:] - boxes_b[:, :2], 0.0, None), axis=-1)
    union = area_a[:, None] + area_b[None, :] - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = intersection / union
    return np.where(np.isfinite(iou) & (union > 0), iou, 0.0)


def oks_matrix(
    poses_a: np.ndarray, poses_b: np.ndarray, sigmas: np.ndarray, min_score: float = 0.0
) -> np.ndarray:
    """COCO object keypoint similarity of every pair of people, `poses_b` as the reference.

    OKS(a, b) = mean over joints present in both of exp(-d^2 / (2 s^2 (2 sigma_k)^2)), with d
    the joint distance and s^2 the area of b's keypoint box (COCO uses the segment area, which
    a pose alone does not have). Only joints present in both count, because a tracker compares
    two predictions, either of which may miss joints.

    Args:
        poses_a: (A, K, 3) (x, y, score).
        poses_b: (B, K, 3) (x, y, score), the reference people (their box sets the scale).
        sigmas: (K,) per-joint OKS sigmas (e.g. `keypoint_info.COCO.sigmas_array`).
        min_score: joints need a score strictly above this to count.

    Returns:
        (A, B) float64 OKS in [0, 1]; 0 for pairs with no joint in common or a reference of
        zero area.
    """
    poses_a = np.asarray(poses_a, np.float64)
    poses_b = np.asarray(poses_b, np.float64)
    sigmas = np.asarray(sigmas, np.float64)
    num_a, num_b = poses_a.shape[0], poses_b.shape[0]
    if num_a == 0 or num_b == 0:
        return np.zeros((num_a, num_b))
    if poses_a.shape[1:] != poses_b.shape[1:] or sigmas.shape != (poses_a.shape[1],):
        raise ValueError(
            f"oks_matrix: poses {poses_a.shape}, {poses_b.shape} and sigmas {sigmas.shape} "
            "disagree on the joint count K."
        )
    boxes_b = keypoint_boxes(poses_b, min_score)
    areas = np.nan_to_num(np.prod(boxes_b[:, 2:] - boxes_b[:, :2], axis=-1))  # (B,)
    squared_distance = np.sum(
        np.square(poses_a[:, None, :, :2] - poses_b[None, :, :, :2]), axis=-1
    )  # (A, B, K)
    both = (poses_a[:, None, :, 2] > min_score) & (poses_b[None, :, :, 2] > min_score)
    variance = 2.0 * areas[None, :, None] * np.square(2.0 * sigmas)[None, None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        similarity = np.exp(-squared_distance / variance)
    similarity = np.where(both & (variance > 0), similarity, 0.0)
    count = both.sum(axis=-1)
    return np.where(count > 0, similarity.sum(axis=-1) / np.maximum(count, 1), 0.0)
