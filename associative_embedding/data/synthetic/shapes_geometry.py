"""Polygons of the synthetic shapes, their rasterisation and contact between masks."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from associative_embedding.data.synthetic.shapes_config import ShapesConfig

# Channels of SHAPES_CATEGORIES.
_DISC, _SQUARE, _TRIANGLE = range(3)

# Fixed-point bits of the polygon vertices given to cv2.fillPoly (1/16 pixel).
SUBPIXEL_BITS = 4
_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8)


def local_vertices(
    category: int, size: float, rng: np.random.Generator, config: ShapesConfig
) -> np.ndarray:
    """(N, 2) polygon vertices of a shape around the origin (x right, y down)."""
    if category == _DISC:
        aspect = rng.uniform(*config.disc_aspect_range)
        angles = np.linspace(0.0, 2.0 * np.pi, 72, endpoint=False)
        points = np.stack([0.5 * size * np.cos(angles), 0.5 * size * aspect * np.sin(angles)], 1)
    elif category == _SQUARE:
        aspect = rng.uniform(*config.square_aspect_range)
        half = np.array([0.5 * size, 0.5 * size * aspect])
        points = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * half
    else:
        jitter = np.deg2rad(rng.uniform(-config.triangle_angle_jitter,
                                        config.triangle_angle_jitter, 3))
        angles = np.array([0.0, 2.0 * np.pi / 3.0, 4.0 * np.pi / 3.0]) + jitter
        points = np.stack([np.cos(angles), np.sin(angles)], 1)
        sides = np.linalg.norm(points - np.roll(points, 1, axis=0), axis=1)
        points = points * (size / sides.max())
        points -= points.mean(axis=0)  # centroid at the origin
    rotation = rng.uniform(0.0, 2.0 * np.pi)
    cos, sin = math.cos(rotation), math.sin(rotation)
    return points @ np.array([[cos, sin], [-sin, cos]])


def polygon_area(points: np.ndarray) -> float:
    """Area of the polygon with (N, 2) vertices `points` (shoelace formula)."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def rasterize(vertices: np.ndarray, image_size: int) -> np.ndarray:
    """(S, S) bool mask of the pixels whose centre lies inside the polygon."""
    canvas = np.zeros((image_size, image_size), np.uint8)
    fixed = np.round(vertices * (1 << SUBPIXEL_BITS)).astype(np.int32)
    cv2.fillPoly(canvas, [fixed], 1, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
    return canvas.astype(bool)


def touches(mask: np.ndarray, other: np.ndarray) -> bool:
    """Whether two masks are 4-adjacent or overlap."""
    return bool(np.any(cv2.dilate(mask.astype(np.uint8), _CROSS).astype(bool) & other))


def touching_pairs(masks: Sequence[np.ndarray] | np.ndarray,
                   category_indices: Sequence[int] | np.ndarray) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, of masks that share a boundary (4-adjacent pixels or overlap).

    Args:
        masks: (N, H, W) instance masks.
        category_indices: (N,) their categories; only same-category pairs are returned. Pass
            ``[0] * N`` for pairs of any categories.

    Returns:
        The pairs, sorted.
    """
    masks = np.asarray(masks).astype(bool)
    pairs = []
    for first in range(len(masks)):
        grown = cv2.dilate(masks[first].astype(np.uint8), _CROSS).astype(bool)
        for second in range(first + 1, len(masks)):
            if (category_indices[first] == category_indices[second]
                    and np.any(grown & masks[second])):
                pairs.append((first, second))
    return pairs

