"""Synthetic people written as a real COCO person-keypoint dataset.

Nothing here needs a download: ``generate_synthetic_dataset`` writes images plus a
``person_keypoints_<split>.json`` that pycocotools, the COCO reader and COCO evaluation read
exactly like the real thing, so the whole training and evaluation stack can run on a laptop or
in CI. ``scene`` describes what the images show and how the keypoints are labelled.

Annotation fields: ``bbox`` is the box of the person's own (amodal, clipped to the image) mask,
``[x, y, w, h]`` with pixel j spanning [j, j+1); ``segmentation`` is the outer contour of that
mask (one polygon; more only in the rare case that truncation at the image border splits the
mask into pieces, one polygon per piece) in COCO polygon coordinates (pixel centres at
j + 0.5); ``area`` is the pycocotools area of that polygon; ``num_keypoints`` is the count of
v > 0; ``iscrowd`` is 0.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import pathlib

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from associative_embedding.core.keypoint_info import COCO
from associative_embedding.data.synthetic.config import DEFAULT_IMAGE_SIZE, SyntheticConfig
from associative_embedding.data.synthetic.scene import SyntheticScene, render_scene
from associative_embedding.data.synthetic.writer import ImageEncoding, SplitWriter


def coco_person_category() -> dict:
    """The COCO 'person' category with the 17 keypoint names and the 1-based skeleton."""
    return {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(COCO.joint_names),
        "skeleton": [[first + 1, second + 1] for first, second in COCO.skeleton],
    }


def _mask_polygons(mask: np.ndarray) -> list[list[float]]:
    """Outer contours of a bool mask as COCO polygons (pixel centres at j + 0.5)."""
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    polygons = []
    for contour in sorted(contours, key=lambda c: -cv2.contourArea(c)):
        # Within half a pixel of the outline; keeps the JSON ~3x smaller than the raw chain.
        contour = cv2.approxPolyDP(contour, 0.5, True)
        points = contour.reshape(-1, 2).astype(np.float64) + 0.5
        if len(points) < 3:  # a 1-2 pixel sliver: widen it into a tiny square around it
            low, high = points.min(axis=0) - 0.5, points.max(axis=0) + 0.5
            points = np.array(
                [[low[0], low[1]], [high[0], low[1]], [high[0], high[1]], [low[0], high[1]]]
            )
        polygons.append(points.ravel().tolist())
    return polygons


def scene_annotations(scene: SyntheticScene, image_id: int, first_annotation_id: int) -> list[dict]:
    """COCO keypoint annotations of a scene's people (ids consecutive from the given one)."""
    height, width = scene.image.shape[:2]
    annotations = []
    for index, person in enumerate(scene.people):
        polygons = _mask_polygons(person.mask)
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
        rows = np.flatnonzero(person.mask.any(axis=1))
        columns = np.flatnonzero(person.mask.any(axis=0))
        x0, y0 = int(columns[0]), int(rows[0])
        box = [float(x0), float(y0), float(columns[-1] + 1 - x0), float(rows[-1] + 1 - y0)]
        # A sliver at the frame's edge (a person entering a clip) can trace to a zero-area
        # polygon; its pixel count is then the area, which COCO requires to be positive.
        area = float(mask_utils.area(rle)) or float(np.count_nonzero(person.mask))
        keypoints = np.round(person.keypoints, 2).tolist()
        keypoints = [value for x, y, v in keypoints for value in (x, y, int(v))]
        annotations.append(
            {
                "id": first_annotation_id + index,
                "image_id": image_id,
                "category_id": 1,
                "iscrowd": 0,
                "bbox": box,
                "area": area,
                "segmentation": polygons,
                "num_keypoints": int(np.count_nonzero(person.keypoints[:, 2] > 0)),
                "keypoints": keypoints,
            }
        )
    return annotations


def _image_annotations(scene: SyntheticScene, image_id: int) -> list[dict]:
    """A written image's annotations, ids from 1 (the caller renumbers them in image order).

    Computed where the image was rendered: a worker sends back these few kB instead of the
    scene's full-size person masks.
    """
    return scene_annotations(scene, image_id, 1)


def annotation_path(out_dir: str | os.PathLike, split: str) -> pathlib.Path:
    """``out_dir/annotations/person_keypoints_<split>.json``."""
    return pathlib.Path(out_dir) / "annotations" / f"person_keypoints_{split}.json"


def generate_synthetic_dataset(
    out_dir: str | os.PathLike,
    *,
    split: str,
    num_images: int,
    seed: int,
    image_size: int = DEFAULT_IMAGE_SIZE,
    config: SyntheticConfig | None = None,
    show_progress: bool = False,
    workers: int = 0,
) -> pathlib.Path:
    """Writes a COCO-format person-keypoint dataset of synthetic people.

    Layout: ``out_dir/<split>/<image_id:012d>.jpg`` and
    ``out_dir/annotations/person_keypoints_<split>.json`` (image ids 1..num_images, annotation
    ids consecutive from 1). The output depends only on (split, num_images, seed, image_size,
    config), not on ``workers``: the same arguments give byte-identical files.

    Args:
        out_dir: dataset root (created if needed; existing files of the split are overwritten).
        split: split name, e.g. 'train' or 'val' (also mixed into the random seed).
        num_images: number of images (>= 1).
        seed: non-negative base seed.
        image_size: side of the square images in pixels.
        config: scene distribution; defaults to ``SyntheticConfig()``.
        show_progress: show a tqdm progress bar.
        workers: processes that render and write the images (``writer.resolve_workers``):
            0 = one per CPU (a small split stays in this process), 1 = serial, in this
            process.

    Returns:
        The path of the annotation JSON.

    Raises:
        ValueError: naming the first bad argument.
        writer.SyntheticImageError: naming the image that could not be made.
    """
    config = config or SyntheticConfig()
    writer = SplitWriter(
        out_dir, split, num_images=num_images, seed=seed, image_size=image_size
    )
    json_path = annotation_path(out_dir, split)
    json_path.parent.mkdir(parents=True, exist_ok=True)

    encoding = ImageEncoding(".jpg", "JPEG", (cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality))
    images, annotations = [], []
    for image_id, path, image_annotations in writer.write_images(
        functools.partial(render_scene, image_size=image_size, config=config),
        encoding,
        summarize=_image_annotations,
        progress_label="synthetic" if show_progress else None,
        workers=workers,
    ):
        images.append(
            {"id": image_id, "file_name": path.name, "height": image_size, "width": image_size}
        )
        for annotation in image_annotations:
            annotation["id"] = len(annotations) + 1
            annotations.append(annotation)

    dataset = {
        "info": {
            "description": "Synthetic articulated stick-figure people "
            "(associative_embedding.data.synthetic)",
            "split": split,
            "seed": seed,
            "image_size": image_size,
            "config": dataclasses.asdict(config),
        },
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [coco_person_category()],
    }
    temporary = json_path.with_suffix(".json.tmp")
    with open(temporary, "w") as handle:
        # json.dumps uses the C encoder; json.dump to a stream would not.
        handle.write(json.dumps(dataset, separators=(",", ":")))
    os.replace(temporary, json_path)
    return json_path
