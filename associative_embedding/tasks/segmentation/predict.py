"""Instance segmentation on photos, folders, globs, videos or a webcam (tools/predict.py
--task=segmentation).

Writes under the output folder:

``results.json``
    COCO segmentation results, a flat list over all images (or frames) of ``{"file_name",
    "image_id" (when the file name is a number), "frame_id" (video), "category_id",
    "segmentation" (compressed RLE at image size), "bbox", "score"}``, what ``COCO.loadRes``
    reads.
``predictions.json``
    One entry per image or frame: ``{"file_name", "frame_id" (video), "height", "width",
    "instances": [{"category", "category_id", "score", "bbox", "area", "segmentation"}]}``;
    ``instances`` is ``[]`` for an image where nothing was found.
``drawings/<name>`` (or ``drawings/<video stem>.mp4``)
    The image with each instance's mask in its own colour, outlined and labelled
    (``visualization.draw_instances``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from absl import logging
from pycocotools import mask as mask_utils
from tqdm import tqdm

from associative_embedding.core import visualization
from associative_embedding.core.record import rle_bytes
from associative_embedding.data.instances import InstanceCategories, encode_mask
from associative_embedding.inference.sources import Source
from associative_embedding.inference.writers import (
    PREDICTIONS_FILE,
    RESULTS_FILE,
    ImageWriter,
    VideoWriter,
    image_id_from_name,
    write_json_atomically,
)
from associative_embedding.tasks.segmentation.segmenter import InstanceSegmenter

CATEGORIES_FILE = "categories.json"


def write_categories(workdir: str, categories: InstanceCategories) -> None:
    """WORKDIR/categories.json: the channel order of a segmentation run's categories."""
    with open(os.path.join(workdir, CATEGORIES_FILE), "w") as handle:
        json.dump(categories.to_coco(), handle, indent=2)


def read_categories(workdir: str, num_categories: int) -> InstanceCategories:
    """The categories a run saved, or placeholders 'category_<c>' (ids c + 1) when absent."""
    path = os.path.join(workdir, CATEGORIES_FILE)
    if os.path.isfile(path):
        with open(path) as handle:
            entries = json.load(handle)
        categories = InstanceCategories(
            tuple(entry["name"] for entry in entries), tuple(int(e["id"]) for e in entries)
        )
        if categories.num_categories == num_categories:
            return categories
        logging.warning("%s lists %d categories, the model has %d: using placeholders", path,
                        categories.num_categories, num_categories)
    return InstanceCategories(
        tuple(f"category_{c}" for c in range(num_categories)),
        tuple(range(1, num_categories + 1)),
    )


@dataclasses.dataclass
class SegmentationSummary:
    """What a run did (frames processed, instances written, files)."""

    num_frames: int
    num_instances: int
    results_path: str
    predictions_path: str
    drawing_paths: list[str]
    interrupted: bool = False


def instance_entries(
    instances: list, categories: InstanceCategories
) -> list[dict[str, Any]]:
    """JSON entries (category, id, score, bbox, area, RLE) of decoded instances."""
    entries = []
    for instance in instances:
        rle = encode_mask(instance.mask)
        bytes_rle = rle_bytes(rle)
        entries.append({
            "category": categories.names[instance.category_index],
            "category_id": int(categories.ids[instance.category_index]),
            "score": round(float(instance.score), 4),
            "bbox": [round(float(v), 2) for v in mask_utils.toBbox(bytes_rle)],
            "area": int(mask_utils.area(bytes_rle)),
            "segmentation": rle,
        })
    return entries


def run_segmentation(
    source: Source,
    segmenter: InstanceSegmenter,
    categories: InstanceCategories,
    output_dir: str,
    *,
    score_threshold: float = 0.0,
    draw: bool = True,
    progress: bool = True,
) -> SegmentationSummary:
    """Segments every frame of `source`; writes results.json, predictions.json, drawings.

    Args:
        source: the input (``inference.sources.open_source``).
        segmenter: image -> instances.
        categories: names and dataset ids of the model's channels.
        output_dir: created if needed.
        score_threshold: instances scoring below it are not drawn (the JSON keeps all).
        draw: write the drawn images (or the mp4 of a video).
        progress: show a progress bar.
    """
    os.makedirs(output_dir, exist_ok=True)
    results: list[dict[str, Any]] = []
    predictions: list[dict[str, Any]] = []
    image_writer = ImageWriter(output_dir)
    video_writer: VideoWriter | None = None
    interrupted = False
    bar = tqdm(total=source.length, desc="segment", disable=not progress,
               unit="frame" if source.is_video else "img")
    try:
        for frame in source:
            instances = segmenter(frame.image)
            entries = instance_entries(instances, categories)
            prediction: dict[str, Any] = {"file_name": frame.name}
            common: dict[str, Any] = {"file_name": frame.name}
            image_id = image_id_from_name(frame.name)
            if image_id is not None:
                common["image_id"] = image_id
            if frame.frame_id is not None:
                prediction["frame_id"] = common["frame_id"] = int(frame.frame_id)
            height, width = frame.image.shape[:2]
            prediction.update(height=int(height), width=int(width), instances=entries)
            predictions.append(prediction)
            results.extend(
                {**common, "category_id": e["category_id"], "segmentation": e["segmentation"],
                 "bbox": e["bbox"], "score": e["score"]}
                for e in entries
            )
            if draw:
                picture = visualization.draw_instances(
                    frame.image, instances, categories.names, score_threshold=score_threshold
                )
                if source.is_video:
                    if video_writer is None:
                        fps = float(getattr(source, "fps", 30.0))
                        video_writer = VideoWriter(output_dir, frame.name, fps)
                    video_writer.write(picture, input_path=frame.path)
                else:
                    image_writer.write(frame.name, picture, input_path=frame.path)
            bar.set_postfix(instances=len(results), refresh=False)
            bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
        logging.warning("interrupted after %d frames; writing what was done.", len(predictions))
    finally:
        bar.close()
        if video_writer is not None:
            video_writer.close()
        source.close()
        write_json_atomically(os.path.join(output_dir, RESULTS_FILE), results)
        write_json_atomically(os.path.join(output_dir, PREDICTIONS_FILE), predictions)
    drawings = [video_writer.path] if video_writer is not None else image_writer.paths
    return SegmentationSummary(
        num_frames=len(predictions),
        num_instances=len(results),
        results_path=os.path.join(output_dir, RESULTS_FILE),
        predictions_path=os.path.join(output_dir, PREDICTIONS_FILE),
        drawing_paths=list(drawings),
        interrupted=interrupted,
    )
