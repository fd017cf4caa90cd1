"""Grouping statistics of a COCO-format keypoint dataset (synthetic or real)."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
from pycocotools import mask as mask_utils


@dataclasses.dataclass(frozen=True)
class SyntheticStatistics:
    """Grouping-relevant statistics of a COCO-format keypoint dataset.

    Only annotated people count (non-crowd, a labelled joint): COCO evaluation ignores
    the others, so they make no grouping problem to score.

    Attributes:
        num_images: images listed.
        num_people: annotated people.
        mean_people_per_image: num_people / num_images.
        fraction_three_or_more: fraction of images with >= 3 annotated people.
        fraction_overlapping_pair: fraction of images with two annotated people whose boxes
            have IoU >= ``iou_threshold``.
        occluded_joint_fraction: labelled joints with v == 1 over all labelled joints.
        iou_threshold: the box IoU threshold used above.
    """

    num_images: int
    num_people: int
    mean_people_per_image: float
    fraction_three_or_more: float
    fraction_overlapping_pair: float
    occluded_joint_fraction: float
    iou_threshold: float


def _load_dataset(dataset: dict | str | os.PathLike) -> dict:
    """The COCO dict itself, or the one its JSON path holds."""
    if not isinstance(dataset, dict):
        with open(dataset) as handle:
            dataset = json.load(handle)
    return dataset


def compute_statistics(
    dataset: dict | str | os.PathLike, iou_threshold: float = 0.3
) -> SyntheticStatistics:
    """Grouping statistics of a COCO keypoint dataset (a loaded dict or a JSON path).

    Args:
        dataset: the COCO dict or the path of its JSON file.
        iou_threshold: box IoU at which two people count as overlapping.

    Returns:
        The statistics; fractions are over all listed images.
    """
    dataset = _load_dataset(dataset)
    boxes_by_image: dict[int, list[list[float]]] = {image["id"]: [] for image in dataset["images"]}
    labelled = occluded = 0
    num_people = 0
    for annotation in dataset["annotations"]:
        visibility = np.asarray(annotation["keypoints"], dtype=np.float64)[2::3]
        if annotation.get("iscrowd", 0) or not np.any(visibility > 0):
            continue
        num_people += 1
        boxes_by_image.setdefault(annotation["image_id"], []).append(annotation["bbox"])
        labelled += int(np.count_nonzero(visibility > 0))
        occluded += int(np.count_nonzero(visibility == 1))
    num_images = len(boxes_by_image)
    three_or_more = overlapping = 0
    for boxes in boxes_by_image.values():
        three_or_more += len(boxes) >= 3
        if len(boxes) >= 2:
            ious = mask_utils.iou(boxes, boxes, [0] * len(boxes))
            np.fill_diagonal(ious, 0.0)
            overlapping += bool(np.any(ious >= iou_threshold))
    denominator = max(num_images, 1)
    return SyntheticStatistics(
        num_images=num_images,
        num_people=num_people,
        mean_people_per_image=num_people / denominator,
        fraction_three_or_more=three_or_more / denominator,
        fraction_overlapping_pair=overlapping / denominator,
        occluded_joint_fraction=occluded / max(labelled, 1),
        iou_threshold=iou_threshold,
    )


def annotated_heights(
    dataset: dict | str | os.PathLike, image_pixels_per_output_pixel: float = 1.0
) -> np.ndarray:
    """Box heights of the annotated people (non-crowd, ``num_keypoints > 0``), (N,) float64.

    Args:
        dataset: the COCO dict or the path of its JSON file.
        image_pixels_per_output_pixel: divides the heights, e.g. ``image_size / input_size *
            output_stride`` for heights in the network's output pixels (8 for 256x256 images at
            128 input and stride 4).
    """
    dataset = _load_dataset(dataset)
    heights = [
        annotation["bbox"][3]
        for annotation in dataset["annotations"]
        if not annotation.get("iscrowd", 0) and annotation.get("num_keypoints", 0)
    ]
    return np.asarray(heights, dtype=np.float64) / float(image_pixels_per_output_pixel)
