"""The TFDS feature layout shared by the pose builders, and record <-> example conversion.

One example per image (all shapes per example; P = people, K = joints):
    image:          tfds.features.Image (H, W, 3) uint8, stored as the original encoded file
                    (JPEG/PNG bytes, never re-encoded).
    image_id:       int64, the dataset's image id.
    file_name:      text, the image's base name.
    keypoints:      (P, K, 3) float32, (x, y, v) image pixels, pixel-centre convention, v in
                    {0, 1, 2} (0 = not labelled / outside the image).
    boxes:          (P, 4) float32, person boxes (x, y, w, h).
    areas:          (P,) float32, person areas (COCO ``area``).
    annotation_ids: (P,) int64, source annotation ids.
    ignore_mask:    tfds.features.Image (H, W, 1) uint8 PNG, 1 = heatmap loss ignored (crowd
                    regions and, per the builder config, people without labelled joints).
    head_boxes:     (P, 4) float32 (x1, y1, x2, y2), MPII only (PCKh normaliser).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow_datasets as tfds
from pycocotools import mask as mask_utils

from associative_embedding.core.record import PoseRecord

__all__ = ["example_to_record", "pose_features", "record_to_example"]


def pose_features(num_joints: int, *, head_boxes: bool = False) -> tfds.features.FeaturesDict:
    """The FeaturesDict of the pose builders (layout in the module docstring)."""
    features = {
        "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
        "image_id": np.int64,
        "file_name": tfds.features.Text(),
        "keypoints": tfds.features.Tensor(shape=(None, num_joints, 3), dtype=np.float32),
        "boxes": tfds.features.Tensor(shape=(None, 4), dtype=np.float32),
        "areas": tfds.features.Tensor(shape=(None,), dtype=np.float32),
        "annotation_ids": tfds.features.Tensor(shape=(None,), dtype=np.int64),
        "ignore_mask": tfds.features.Image(shape=(None, None, 1), encoding_format="png"),
    }
    if head_boxes:
        features["head_boxes"] = tfds.features.Tensor(shape=(None, 4), dtype=np.float32)
    return tfds.features.FeaturesDict(features)


def record_to_example(record: PoseRecord, *, head_boxes: bool = False) -> dict:
    """A PoseRecord as a `pose_features` example (reads the encoded image file once).

    Raises:
        FileNotFoundError: naming the image id and path when the image file is missing.
        ValueError: when `head_boxes` is asked for and the record has none.
    """
    example = {
        "image": record.read_image_bytes(),
        "image_id": np.int64(record.image_id),
        "file_name": os.path.basename(record.file_name),
        "keypoints": record.keypoints.astype(np.float32),
        "boxes": record.boxes.astype(np.float32),
        "areas": record.areas.astype(np.float32),
        "annotation_ids": record.annotation_ids.astype(np.int64),
        "ignore_mask": record.decode_ignore_mask()[..., np.newaxis],
    }
    if head_boxes:
        if record.head_boxes is None and record.num_people:
            raise ValueError(f"image {record.image_id}: record has no head boxes.")
        example["head_boxes"] = (
            np.zeros((0, 4), np.float32) if record.head_boxes is None
            else record.head_boxes.astype(np.float32)
        )
    return example


def example_to_record(example: dict) -> PoseRecord:
    """A decoded numpy example (e.g. from `tfds.as_numpy`) back as a PoseRecord.

    ``image_bytes`` stays None (the pixels are ``example['image']``), ``file_name`` is the
    stored base name and the ignore mask becomes a compressed RLE.
    """
    mask = np.asarray(example["ignore_mask"])[..., 0]
    height, width = mask.shape
    ignore_rle = None
    if mask.any():
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        ignore_rle = {"size": [int(height), int(width)], "counts": rle["counts"].decode("ascii")}
    file_name = example["file_name"]
    return PoseRecord(
        image_id=int(example["image_id"]),
        file_name=file_name.decode() if isinstance(file_name, bytes) else str(file_name),
        height=int(height),
        width=int(width),
        keypoints=example["keypoints"],
        boxes=example["boxes"],
        areas=example["areas"],
        annotation_ids=example["annotation_ids"],
        ignore_rle=ignore_rle,
        head_boxes=example.get("head_boxes"),
    )
