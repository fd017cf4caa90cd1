"""The per-image record of instance segmentation data, shared by every instance reader.

Every instance reader (COCO instances, PASCAL VOC SegmentationObject, the synthetic shapes)
produces `InstanceRecord`s; the segmentation pipeline and evaluators consume them.

Fields (``InstanceRecord``):
    image_id:    int, the dataset's image id (COCO ``image_id``; VOC: the index of the image in
                 its split list; synthetic: its COCO id).
    file_name:   str, absolute path of the encoded image.
    height, width: int, image size in pixels.
    segments:    list of `InstanceSegment`, one per *usable* instance (non-crowd, non-empty mask
                 of a selected category).
    ignore_rle:  one compressed COCO RLE {'size': [H, W], 'counts': str} of the pixels whose
                 detection loss is ignored (COCO crowd regions, VOC void/boundary pixels), or
                 None. `ignore_mask()` gives it as an (H, W) uint8 array (1 = ignored).
    source:      the annotation file (or PNG) the record came from, for error messages.

`InstanceSegment`:
    category_index: int, 0-based index into the dataset's `InstanceCategories` (the model's
                    detection channel).
    rle:            compressed COCO RLE of the instance mask at image size (counts as str).
    annotation_id:  int, the source annotation id (VOC: the object index in the PNG).
    area:           float, mask area in pixels.
    bbox:           (4,) float32 (x, y, w, h) of the mask.

Masks may overlap in the source (COCO polygons sometimes do). `instance_label_map` resolves an
overlap by giving the pixel to the *smaller* instance, which is nearly always the one in front
(an occluder's mask is drawn over the occluded object's).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from pycocotools import mask as mask_utils

from associative_embedding.core.record import rle_bytes, rle_str

__all__ = [
    "InstanceCategories",
    "InstanceRecord",
    "InstanceSegment",
    "encode_mask",
    "instance_label_map",
    "masks_to_label_map",
]


@dataclasses.dataclass(frozen=True)
class InstanceCategories:
    """The categories of an instance dataset, in model channel order.

    Attributes:
        names: (C,) category names; channel c of the detection maps is category names[c].
        ids: (C,) the dataset's category ids (COCO `category_id`, VOC class index 1..20), used
            when writing COCO results.
    """

    names: tuple[str, ...]
    ids: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.ids):
            raise ValueError(f"{len(self.names)} category names but {len(self.ids)} ids")
        if len(set(self.ids)) != len(self.ids):
            raise ValueError(f"duplicate category ids: {self.ids}")

    @property
    def num_categories(self) -> int:
        return len(self.names)

    def index_of_id(self, category_id: int) -> int:
        """Channel index of a dataset category id (ValueError naming it when unknown)."""
        try:
            return self.ids.index(int(category_id))
        except ValueError:
            raise ValueError(f"category id {category_id} is not one of {self.ids}") from None

    def to_coco(self) -> list[dict]:
        """COCO `categories` entries."""
        return [{"id": int(i), "name": n} for n, i in zip(self.names, self.ids, strict=True)]


def encode_mask(mask: np.ndarray) -> dict:
    """Compressed COCO RLE (counts as str, JSON-ready) of an (H, W) boolean/0-1 mask."""
    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return rle_str(rle)


def decode_rle(rle: dict) -> np.ndarray:
    """(H, W) uint8 mask of a compressed COCO RLE (counts str or bytes)."""
    return mask_utils.decode(rle_bytes(rle))


@dataclasses.dataclass
class InstanceSegment:
    """One instance: its category channel and mask. See the module docstring."""

    category_index: int
    rle: dict
    annotation_id: int = -1
    area: float = 0.0
    bbox: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(4, np.float32))

    def mask(self) -> np.ndarray:
        """(H, W) uint8 mask (1 = instance)."""
        return decode_rle(self.rle)

    @classmethod
    def from_mask(
        cls, mask: np.ndarray, category_index: int, annotation_id: int = -1
    ) -> InstanceSegment:
        """A segment of an (H, W) mask, with its area and box computed."""
        rle = encode_mask(mask)
        bytes_rle = rle_bytes(rle)
        return cls(
            category_index=int(category_index),
            rle=rle,
            annotation_id=int(annotation_id),
            area=float(mask_utils.area(bytes_rle)),
            bbox=np.asarray(mask_utils.toBbox(bytes_rle), np.float32),
        )


@dataclasses.dataclass
class InstanceRecord:
    """One image with its instances. See the module docstring for every field's contract."""

    image_id: int
    file_name: str
    height: int
    width: int
    segments: list[InstanceSegment] = dataclasses.field(default_factory=list)
    ignore_rle: dict | None = None
    source: str = ""

    def __post_init__(self) -> None:
        for segment in self.segments:
            size = [int(s) for s in segment.rle["size"]]
            if size != [self.height, self.width]:
                raise ValueError(
                    f"{self.source or self.file_name}: image {self.image_id} is "
                    f"{self.height}x{self.width} but annotation {segment.annotation_id}'s mask "
                    f"is {size[0]}x{size[1]}"
                )

    @property
    def num_instances(self) -> int:
        return len(self.segments)

    @property
    def category_indices(self) -> np.ndarray:
        """(N,) int32 channel index of each segment."""
        return np.asarray([s.category_index for s in self.segments], np.int32)

    def masks(self) -> np.ndarray:
        """(N, H, W) uint8 instance masks (as annotated, overlaps kept)."""
        if not self.segments:
            return np.zeros((0, self.height, self.width), np.uint8)
        return np.stack([segment.mask() for segment in self.segments])

    def ignore_mask(self) -> np.ndarray:
        """(H, W) uint8, 1 where the detection loss is ignored."""
        if self.ignore_rle is None:
            return np.zeros((self.height, self.width), np.uint8)
        return decode_rle(self.ignore_rle)


def instance_label_map(record: InstanceRecord) -> np.ndarray:
    """(H, W) int32 label map: 0 = background, n + 1 = record.segments[n].

    Overlapping pixels go to the smaller instance (see the module docstring), so every label
    map pixel names at most one instance.
    """
    return masks_to_label_map(record.masks())


def masks_to_label_map(masks: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """(H, W) int32 label map of (N, H, W) masks, smaller instances over larger ones."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (N, H, W), got shape {masks.shape}")
    label_map = np.zeros(masks.shape[1:], np.int32)
    areas = masks.reshape(len(masks), -1).sum(axis=1)
    for index in np.argsort(-areas, kind="stable"):
        label_map[masks[index] > 0] = index + 1
    return label_map
