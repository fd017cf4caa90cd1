"""The one per-image record every reader produces and every pipeline consumes.

Coordinate convention (used across the whole package):
    Keypoint coordinates are **pixel-centre coordinates**: the centre of the pixel in column j,
    row i is (x, y) = (j, i). A horizontal flip of an image of width W maps x to W - 1 - x.
    Resampling by a factor s (half-pixel-centre resize, as tf.image.resize does) maps
    x to s * (x + 0.5) - 0.5; the network's output stride is the special case s = 1 / stride.

Record fields (``PoseRecord``):
    image_id:        int, the dataset's image id (COCO ``image_id``).
    file_name:       str, absolute path of the encoded image ('' when ``image_bytes`` is set).
    height, width:   int, image size in pixels.
    keypoints:       (P, K, 3) float32, (x, y, v) in image pixels, one row per *usable* person
                     (non-crowd, at least one labelled joint). v: 0 = not labelled (or dropped by
                     the reader, e.g. outside the image), 1 = labelled but occluded, 2 = visible.
    boxes:           (P, 4) float32, person boxes (x, y, w, h) in image pixels.
    areas:           (P,) float32, segmentation area (COCO ``area``), used for scale-aware metrics.
    annotation_ids:  (P,) int64, the source annotation ids (-1 when the source has none; MPII
                     records give the annorect index (.mat) or the JSON entry index).
    ignore_rle:      a single compressed COCO RLE dict {'size': [H, W], 'counts': str} covering
                     the regions whose heatmap loss is ignored (crowd regions and, by default,
                     people with no labelled keypoints), or None when nothing is ignored.
                     ``decode_ignore_mask()`` gives the (H, W) uint8 mask (1 = ignored).
    image_bytes:     optional encoded image (JPEG/PNG) when the record carries the pixels.
    num_crowd:       int, crowd annotations folded into ``ignore_rle``.
    num_unlabelled:  int, people with no labelled keypoints (masked or not, per reader option).
    head_boxes:      optional (P, 4) float32 head boxes (x1, y1, x2, y2) in image pixels, the
                     PCKh normaliser of MPII evaluation; None when the source has none.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from pycocotools import mask as mask_utils


@dataclasses.dataclass
class PoseRecord:
    """One image with its people. See the module docstring for every field's contract."""

    image_id: int
    file_name: str
    height: int
    width: int
    keypoints: np.ndarray
    boxes: np.ndarray
    areas: np.ndarray
    annotation_ids: np.ndarray
    ignore_rle: dict | None = None
    image_bytes: bytes | None = None
    num_crowd: int = 0
    num_unlabelled: int = 0
    head_boxes: np.ndarray | None = None

    def __post_init__(self) -> None:
        # Readers give (0, K, 3) for images without usable people, so K is always known.
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
        if self.keypoints.ndim != 3 or self.keypoints.shape[-1] != 3:
            raise ValueError(
                f"image {self.image_id}: keypoints must be (P, K, 3), got {self.keypoints.shape}."
            )
        num_people = self.keypoints.shape[0]
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(num_people, 4)
        self.areas = np.asarray(self.areas, dtype=np.float32).reshape(num_people)
        self.annotation_ids = np.asarray(self.annotation_ids, dtype=np.int64).reshape(num_people)
        if self.head_boxes is not None:
            self.head_boxes = np.asarray(self.head_boxes, dtype=np.float32).reshape(num_people, 4)
        if self.height <= 0 or self.width <= 0:
            raise ValueError(
                f"image {self.image_id}: non-positive size {self.height}x{self.width}."
            )

    @property
    def num_people(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def num_joints(self) -> int:
        return int(self.keypoints.shape[1])

    def decode_ignore_mask(self) -> np.ndarray:
        """Returns the ignore mask, (height, width) uint8, 1 where the loss is ignored."""
        if self.ignore_rle is None:
            return np.zeros((self.height, self.width), dtype=np.uint8)
        return mask_utils.decode(rle_bytes(self.ignore_rle)).astype(np.uint8)

    def read_image_bytes(self) -> bytes:
        """Returns the encoded image, reading ``file_name`` when the record has no bytes.

        Raises:
            FileNotFoundError: naming the image id and path when the file is missing.
        """
        if self.image_bytes is not None:
            return self.image_bytes
        try:
            with open(self.file_name, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            raise FileNotFoundError(
                f"image {self.image_id}: image file not found: {self.file_name}"
            ) from None


def rle_bytes(rle: dict) -> dict:
    """A compressed COCO RLE with bytes counts (what pycocotools.mask takes); a copy."""
    counts = rle["counts"]
    return {"size": [int(s) for s in rle["size"]],
            "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def rle_str(rle: dict) -> dict:
    """A compressed COCO RLE with str counts (JSON-ready); a copy."""
    counts = rle["counts"]
    return {"size": [int(s) for s in rle["size"]],
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def merge_rles(rles: list[dict], height: int, width: int) -> dict | None:
    """Unions compressed RLEs into one JSON-friendly RLE (counts as str); None if empty."""
    if not rles:
        return None
    encoded = []
    for rle in rles:
        rle = rle_bytes(rle)
        if list(rle["size"]) != [height, width]:
            raise ValueError(f"RLE size {rle['size']} does not match image {height}x{width}.")
        encoded.append(rle)
    merged = mask_utils.merge(encoded, intersect=False)
    return rle_str(merged)
