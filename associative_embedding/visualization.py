"""Drawing poses on images: per-person colours, a dataset's skeleton, joint-score threshold."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import cv2
import numpy as np


def person_colours(count: int) -> list[tuple[int, int, int]]:
    """`count` well-separated RGB colours (golden-ratio hue steps), deterministic."""
    colours = []
    for index in range(count):
        hue = (index * 0.618033988749895) % 1.0
        red, green, blue = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
        colours.append((int(red * 255), int(green * 255), int(blue * 255)))
    return colours


def draw_poses(
    image: np.ndarray,
    poses: np.ndarray,
    skeleton: Sequence[tuple[int, int]],
    *,
    score_threshold: float = 0.1,
    thickness: int | None = None,
) -> np.ndarray:
    """Draws each person's limbs and joints in its own colour.

    Args:
        image: (H, W, 3) uint8 RGB; not modified.
        poses: (P, K, 3) (x, y, score) in image pixels (pixel-centre convention).
        skeleton: limbs as pairs of joint indices (e.g. `KeypointInfo.skeleton`).
        score_threshold: joints with a lower score are not drawn (nor their limbs).
        thickness: line thickness in pixels (default scales with the image size).

    Returns:
        A new (H, W, 3) uint8 RGB image.
    """
    canvas = np.ascontiguousarray(image, dtype=np.uint8).copy()
    poses = np.asarray(poses, dtype=np.float32).reshape(-1, *np.shape(poses)[-2:])
    if thickness is None:
        thickness = max(1, int(round(max(canvas.shape[:2]) / 200)))
    radius = thickness + 1
    for colour, pose in zip(person_colours(len(poses)), poses, strict=True):
        visible = pose[:, 2] >= score_threshold
        points = np.round(pose[:, :2]).astype(np.int32)
        for first, second in skeleton:
            if visible[first] and visible[second]:
                cv2.line(canvas, tuple(points[first]), tuple(points[second]), colour, thickness,
                         cv2.LINE_AA)
        for joint in np.flatnonzero(visible):
            cv2.circle(canvas, tuple(points[joint]), radius, colour, -1, cv2.LINE_AA)
    return canvas
