"""Person crops for the single-person refinement network (paper Sec. 4.1, Table 4).

The official TF1 demo (pose-ae-demo ``main.py``, ``refinement``) crops each detected person
around the box of its detected keypoints: a square of side ``max(w, h, 60) * 1.3`` centred on
the box centre, resized to the network's input size. Here the same square is one affine,
``crop_from_image`` (3x3 float64 on homogeneous pixel-centre coordinates, named like the
affines of ``core.transforms``):

    x_crop = crop_size / side * (x - cx) + (crop_size - 1) / 2

so the square [cx - side / 2, cx + side / 2] (pixel j spans [j - 0.5, j + 0.5]) covers the crop
pixels exactly, and the box centre lands on the crop's centre. ``cv2.warpAffine`` samples the
source at the inverse image of each destination pixel's *integer* coordinates, which is the
package's pixel-centre convention (tested), so the pixels and the affine agree.

Differences from the demo's ``crop`` (which cuts the integer-rounded square out of the image and
resizes it with ``scipy.misc.imresize``): one bilinear warp, no rounding of the square's corners,
and the same zero (black) padding outside the image.
"""

from __future__ import annotations

import cv2
import numpy as np

from associative_embedding.core import transforms

__all__ = [
    "DEFAULT_MARGIN",
    "DEFAULT_MIN_SIDE",
    "crop_image",
    "crop_side",
    "keypoint_box",
    "person_crop_affine",
    "uncrop_points",
]

# The official demo's constants: scale = max(max(x2 - x1, y2 - y1), 60) * 1.3 / 200.
DEFAULT_MIN_SIDE = 60.0
DEFAULT_MARGIN = 1.3


def keypoint_box(pose: np.ndarray, min_score: float = 0.0) -> np.ndarray:
    """Tight box of a person's joints scoring above ``min_score``.

    Args:
        pose: (K, 3) (x, y, score) in image pixels.
        min_score: joints need a score strictly above this (the demo: > 0).

    Returns:
        (4,) float64 (x, y, w, h): x, y the smallest joint coordinates, w, h the extents
        (0 for a single joint).

    Raises:
        ValueError: on a malformed pose or when no joint with a finite position scores above
            ``min_score``.
    """
    pose = np.asarray(pose, dtype=np.float64)
    if pose.ndim != 2 or pose.shape[1] < 3:
        raise ValueError(f"pose must be (K, 3) (x, y, score), got shape {pose.shape}.")
    usable = (pose[:, 2] > min_score) & np.isfinite(pose[:, :2]).all(axis=1)
    if not usable.any():
        raise ValueError(f"no joint scores above {min_score}: the person has no box.")
    xy = pose[usable, :2]
    low, high = xy.min(axis=0), xy.max(axis=0)
    return np.array([low[0], low[1], high[0] - low[0], high[1] - low[1]], np.float64)


def crop_side(
    box_xywh: np.ndarray,
    *,
    min_side: float = DEFAULT_MIN_SIDE,
    margin: float = DEFAULT_MARGIN,
) -> float:
    """Side (image pixels) of the square crop of a box: max(w, h, min_side) * margin."""
    box = np.asarray(box_xywh, dtype=np.float64)
    if box.shape != (4,) or not np.isfinite(box).all():
        raise ValueError(f"box must be 4 finite numbers (x, y, w, h), got {box_xywh!r}.")
    if box[2] < 0 or box[3] < 0:
        raise ValueError(f"box width and height must be >= 0, got {box_xywh!r}.")
    side = max(float(box[2]), float(box[3]), float(min_side)) * float(margin)
    if not side > 0:
        raise ValueError(
            f"crop side must be positive: box {box_xywh!r}, min_side {min_side}, margin {margin}."
        )
    return side


def person_crop_affine(
    box_xywh: np.ndarray,
    crop_size: int,
    *,
    min_side: float = DEFAULT_MIN_SIDE,
    margin: float = DEFAULT_MARGIN,
) -> np.ndarray:
    """Affine from image pixels to a square person crop.

    Args:
        box_xywh: (4,) (x, y, w, h) of the person in image pixels (e.g. ``keypoint_box``).
        crop_size: side S of the crop in pixels.
        min_side: the crop side is at least ``min_side * margin`` image pixels (demo: 60).
        margin: context around the box (demo: 1.3).

    Returns:
        (3, 3) float64 ``crop_from_image``: the square of side ``crop_side(box)`` centred on the
        box centre onto the S x S crop, ``x_crop = S / side * (x - cx) + (S - 1) / 2``.

    Raises:
        ValueError: on a malformed box or a non-positive crop size.
    """
    if int(crop_size) != crop_size or crop_size < 1:
        raise ValueError(f"crop_size must be a positive integer, got {crop_size!r}.")
    side = crop_side(box_xywh, min_side=min_side, margin=margin)
    x, y, width, height = (float(v) for v in box_xywh)
    center_x, center_y = x + width / 2.0, y + height / 2.0
    scale = crop_size / side
    offset = (crop_size - 1) / 2.0
    return np.array(
        [
            [scale, 0.0, offset - scale * center_x],
            [0.0, scale, offset - scale * center_y],
            [0.0, 0.0, 1.0],
        ],
        dtype=np.float64,
    )


def crop_image(
    image: np.ndarray,
    crop_from_image: np.ndarray,
    crop_size: int,
    *,
    interpolation: int = cv2.INTER_LINEAR,
) -> np.ndarray:
    """Cuts a person crop out of an image (zeros outside the image).

    Args:
        image: (H, W, C) uint8 or float image.
        crop_from_image: (3, 3) affine (``person_crop_affine``).
        crop_size: side S of the crop.
        interpolation: OpenCV interpolation flag (bilinear, like the training warps).

    Returns:
        (S, S, C) of the image's dtype: crop pixel (i, j) is the image sampled at
        ``invert(crop_from_image) @ (j, i, 1)``.
    """
    image = np.asarray(image)
    if image.ndim != 3 or min(image.shape) < 1:
        raise ValueError(f"image must be (H, W, C), got shape {image.shape}.")
    matrix = np.asarray(crop_from_image, dtype=np.float64)
    if matrix.shape != (3, 3):
        raise ValueError(f"crop_from_image must be (3, 3), got {matrix.shape}.")
    if int(crop_size) != crop_size or crop_size < 1:
        raise ValueError(f"crop_size must be a positive integer, got {crop_size!r}.")
    size = int(crop_size)
    source = image if image.dtype in (np.uint8, np.float32) else image.astype(np.float32)
    crop = cv2.warpAffine(
        np.ascontiguousarray(source),
        matrix[:2],
        (size, size),
        flags=interpolation,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    if crop.ndim == 2:  # OpenCV drops a single channel
        crop = crop[:, :, None]
    return crop.astype(image.dtype, copy=False)


def uncrop_points(points: np.ndarray, crop_from_image: np.ndarray) -> np.ndarray:
    """Crop pixel coordinates back to image pixels.

    Args:
        points: (..., 2) (x, y) in crop pixels, or (..., >2) whose further columns (scores)
            are returned unchanged.
        crop_from_image: (3, 3) affine of the crop.

    Returns:
        Array of the same shape and dtype with x, y in image pixels.
    """
    matrix = np.asarray(crop_from_image, dtype=np.float64)
    if matrix.shape != (3, 3):
        raise ValueError(f"crop_from_image must be (3, 3), got {matrix.shape}.")
    return transforms.transform_points(points, transforms.invert(matrix))
