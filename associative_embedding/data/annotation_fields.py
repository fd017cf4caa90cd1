"""Checks of one annotation's fields: numbers, boxes, run-length and polygon masks, keypoints.

`data.annotation_checks` runs these over a whole COCO-format file and counts what they find;
they are apart so that the file-level rules read on one page.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


def as_int(value: Any) -> int | None:
    """An integer id: an int, or a float with an integral value; None otherwise (bools too)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    return None


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
        value)


def finite_numbers(values: Any, length: int | None = None) -> np.ndarray | None:
    """`values` as float64 if it is a flat list of finite numbers (of `length`), else None."""
    if not isinstance(values, (list, tuple)) or (length is not None and len(values) != length):
        return None
    if not all(is_number(value) for value in values):
        return None
    return np.asarray(values, dtype=np.float64)


def compressed_run_lengths(counts: bytes) -> np.ndarray | None:
    """(M,) int64 run lengths of a compressed COCO RLE string, None if it is corrupt.

    A vectorised form of pycocotools' ``rleFrString``: each value is a little-endian sequence
    of 5-bit groups (character - 48, bit 0x20 = more groups follow, bit 0x10 of the last group =
    negative), and from the fourth value on each is stored as a difference to the value two
    places before it.
    """
    codes = np.frombuffer(counts, np.uint8).astype(np.int64) - 48
    if codes.size == 0:
        return np.zeros(0, np.int64)
    if np.any((codes < 0) | (codes > 63)) or codes[-1] & 0x20:
        return None
    last = (codes & 0x20) == 0  # the last group of each value
    ends = np.flatnonzero(last)
    starts = np.concatenate([[0], ends[:-1] + 1])
    group = np.arange(codes.size) - np.repeat(starts, ends - starts + 1)
    if group.max() > 11:  # > 60 bits: no real run length
        return None
    values = np.add.reduceat((codes & 0x1F) << (5 * group), starts)
    negative = (codes[ends] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * (group[ends][negative] + 1))
    runs = values.copy()
    runs[1::2] = np.cumsum(values[1::2])
    runs[2::2] = np.cumsum(values[2::2])
    return runs


def rle_is_valid(rle: Any, height: int, width: int) -> bool:
    """Whether a COCO RLE (compressed or not) has non-negative runs summing to height * width.

    pycocotools' ``area``/``toBbox``/``merge`` silently accept corrupt run lengths and return
    wrong numbers, so the readers check them once here.
    """
    if not isinstance(rle, dict) or "counts" not in rle:
        return False
    counts = rle["counts"]
    if isinstance(counts, list):
        if not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in counts):
            return False
        runs = np.asarray(counts, np.float64)
        if not np.all(np.isfinite(runs)) or np.any(runs != np.round(runs)):
            return False
    elif isinstance(counts, (str, bytes)):
        try:
            encoded = counts.encode("ascii") if isinstance(counts, str) else counts
        except UnicodeEncodeError:
            return False
        runs = compressed_run_lengths(encoded)
        if runs is None:
            return False
    else:
        return False
    return bool(np.all(runs >= 0)) and int(runs.sum()) == height * width


def usable_polygons(segmentation: Any) -> list[list[float]]:
    """The polygons of >= 6 finite numbers (even count) of a polygon-list segmentation."""
    if not isinstance(segmentation, list):
        return []
    polygons = []
    for polygon in segmentation:
        numbers = finite_numbers(polygon)
        if numbers is not None and len(numbers) >= 6 and len(numbers) % 2 == 0:
            polygons.append(numbers.tolist())
    return polygons


def segmentation_rle(annotation: dict, size: tuple[int, int] | None) -> dict | None:
    """The annotation's segmentation as one RLE of the image's size, or None if unusable."""
    if size is None:
        return None
    height, width = size
    segmentation = annotation.get("segmentation")
    if isinstance(segmentation, dict):
        rle_size = segmentation.get("size")
        if (not isinstance(rle_size, (list, tuple)) or [as_int(s) for s in rle_size]
                != [height, width] or not rle_is_valid(segmentation, height, width)):
            return None
        if isinstance(segmentation["counts"], list):
            return mask_utils.frPyObjects(segmentation, height, width)
        counts = segmentation["counts"]
        return {"size": [height, width],
                "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    polygons = usable_polygons(segmentation)
    if not polygons:
        return None
    return mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))


def segmentation_box(annotation: dict, size: tuple[int, int] | None) -> list[float] | None:
    """(x, y, w, h) of the segmentation: polygon extent, or the RLE's mask box; None if none."""
    polygons = usable_polygons(annotation.get("segmentation"))
    if polygons:
        points = np.concatenate([np.reshape(p, (-1, 2)) for p in polygons])
        low, high = points.min(axis=0), points.max(axis=0)
        return [float(low[0]), float(low[1]), float(high[0] - low[0]), float(high[1] - low[1])]
    rle = segmentation_rle(annotation, size)
    if rle is None or float(mask_utils.area(rle)) <= 0:
        return None
    return [float(v) for v in mask_utils.toBbox(rle)]


def keypoint_box(keypoints: np.ndarray) -> list[float] | None:
    """(x, y, w, h) pixel extent of the labelled joints (pixel-centre convention)."""
    labelled = keypoints[keypoints[:, 2] > 0, :2]
    if not len(labelled):
        return None
    low = labelled.min(axis=0) - 0.5
    high = labelled.max(axis=0) + 0.5
    return [float(low[0]), float(low[1]), float(high[0] - low[0]), float(high[1] - low[1])]


def valid_box(value: Any) -> bool:
    """Whether `value` is [x, y, w, h]: 4 finite numbers with w, h >= 0."""
    return (isinstance(value, (list, tuple)) and len(value) == 4
            and all(is_number(v) for v in value) and value[2] >= 0 and value[3] >= 0)


def keypoint_array(values: list, num_joints: int) -> np.ndarray:
    """(K, 3) float64 of a 3K-value list; None, text and non-finite values become NaN."""
    try:
        return np.array(values, np.float64).reshape(num_joints, 3)
    except (TypeError, ValueError):
        return np.array([v if is_number(v) else np.nan for v in values],
                        np.float64).reshape(num_joints, 3)


