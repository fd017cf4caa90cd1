"""Affine transforms between image, network-input and network-output pixel coordinates.

All matrices are 3x3 float64 acting on homogeneous pixel-centre coordinates (x, y, 1): the
centre of the pixel in column j, row i is (j, i) (see ``associative_embedding.core.record``).
A matrix named ``input_from_image`` maps image coordinates to network-input coordinates, so
``transform_points(points, input_from_image)`` takes annotated keypoints into the input image
and ``transform_points(points, invert(input_from_image))`` takes predictions back.

These NumPy helpers are the reference; the augmentation module builds the same matrices in
TensorFlow ops for use inside ``tf.data``.
"""

from __future__ import annotations

import math

import numpy as np


def scale_matrix(scale_x: float, scale_y: float | None = None) -> np.ndarray:
    """Resampling by (scale_x, scale_y) with half-pixel centres: x -> s * (x + 0.5) - 0.5."""
    scale_y = scale_x if scale_y is None else scale_y
    return np.array(
        [
            [scale_x, 0.0, 0.5 * scale_x - 0.5],
            [0.0, scale_y, 0.5 * scale_y - 0.5],
            [0.0, 0.0, 1.0],
        ],
        dtype=np.float64,
    )


def translation_matrix(dx: float, dy: float) -> np.ndarray:
    """x -> x + dx, y -> y + dy."""
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]], dtype=np.float64)


def rotation_matrix(degrees: float, center_x: float, center_y: float) -> np.ndarray:
    """Rotation by `degrees` about (center_x, center_y), counter-clockwise as seen on screen."""
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    # Screen coordinates have y down, so a visually counter-clockwise turn is a
    # mathematically clockwise one in (x, y): [[cos, sin], [-sin, cos]].
    rotate = np.array([[cos, sin, 0.0], [-sin, cos, 0.0], [0.0, 0.0, 1.0]], dtype=np.float64)
    to_origin = translation_matrix(-center_x, -center_y)
    return translation_matrix(center_x, center_y) @ rotate @ to_origin


def flip_matrix(width: int) -> np.ndarray:
    """Horizontal flip of an image `width` pixels wide: x -> width - 1 - x."""
    return np.array(
        [[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=np.float64
    )


def invert(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 3x3 affine matrix."""
    return np.linalg.inv(np.asarray(matrix, dtype=np.float64))


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Applies a 3x3 affine to points.

    Args:
        points: (..., 2) or (..., >2) array; only the first two columns (x, y) are moved, any
            further columns (visibility, score) are returned unchanged.
        matrix: (3, 3) affine.

    Returns:
        Array of the same shape and dtype as `points`.
    """
    points = np.asarray(points)
    xy = points[..., :2].astype(np.float64)
    moved = xy @ matrix[:2, :2].T + matrix[:2, 2]
    out = points.copy()
    out[..., :2] = moved.astype(points.dtype)
    return out


def padded_size(size: int, multiple: int) -> int:
    """Smallest multiple of `multiple` that is >= size."""
    return int(math.ceil(size / multiple) * multiple)


def eval_resize_affine(
    height: int, width: int, input_size: int, multiple: int = 64
) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    """Test-time preprocessing: resize the long side to `input_size`, pad right/bottom.

    Args:
        height, width: original image size.
        input_size: target length of the long side; 0 keeps the original resolution.
        multiple: the padded input's height and width are multiples of this (64 for a
            4-level hourglass with stride 4).

    Returns:
        input_from_image: (3, 3) affine from image to network-input pixel coordinates.
        resized_hw: (height, width) of the resized image before padding.
        padded_hw: (height, width) of the network input after padding.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if input_size < 0:
        raise ValueError(f"input_size must be >= 0, got {input_size}")
    scale = 1.0 if input_size == 0 else input_size / max(height, width)
    resized_h = max(1, int(round(height * scale)))
    resized_w = max(1, int(round(width * scale)))
    # Use the exact per-axis ratio of the rounded size so that the matrix matches the pixels.
    matrix = scale_matrix(resized_w / width, resized_h / height)
    padded = (padded_size(resized_h, multiple), padded_size(resized_w, multiple))
    return matrix, (resized_h, resized_w), padded


def output_from_input(stride: int) -> np.ndarray:
    """Network input to network output (heatmap) pixel-centre coordinates for a given stride."""
    return scale_matrix(1.0 / stride)
