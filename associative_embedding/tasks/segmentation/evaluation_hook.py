"""Periodic validation of a segmentation run: mAP^r@0.5/0.7, COCO segm AP, drawn instances.

Writes WORKDIR/eval/step_<N>/ (segm_results.json, metrics.json, drawings/*.jpg of the first
`eval.num_drawn_images` validation images with their predicted instances) and the drawings as
the TensorBoard image 'eval/instances'.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from associative_embedding.core.run_dir import write_json
from associative_embedding.core.visualization import draw_instances
from associative_embedding.data import image_io
from associative_embedding.data.instances import InstanceCategories, InstanceRecord
from associative_embedding.evaluation.instance_segmentation import InstanceSegmentationEvaluator
from associative_embedding.modeling.loading import Predictor, model_predictor
from associative_embedding.tasks.segmentation.config import instance_decoder_options
from associative_embedding.tasks.segmentation.segmenter import InstanceSegmenter

if TYPE_CHECKING:
    from associative_embedding.tasks.segmentation.trainer import SegmentationTrainer


def segmenter_from_config(model: Any, config: Any) -> InstanceSegmenter:
    """The `InstanceSegmenter` of a training config's codec and eval sections.

    Args:
        model: a Keras model or an `modeling.loading.Predictor` (`load_predictor`).
        config: a segmentation training config (ConfigDict, or a run's config.json).
    """
    eval_config = config.eval
    predictor = model if isinstance(model, Predictor) else model_predictor(model)
    return InstanceSegmenter(
        predictor,
        num_categories=int(config.dataset.num_categories),
        tag_dim=int(config.model.tag_dim),
        input_size=int(config.codec.input_size),
        output_stride=int(config.codec.output_stride),
        scales=tuple(eval_config.scales),
        scale_nms_iou=float(eval_config.scale_nms_iou),
        decoder=instance_decoder_options(config.codec),
    )


def evaluate_segmenter(
    segmenter: InstanceSegmenter,
    records: Sequence[InstanceRecord],
    categories: InstanceCategories,
    output_dir: str,
    *,
    num_drawn_images: int = 8,
    progress: bool | None = None,
) -> tuple[dict[str, float], list[np.ndarray]]:
    """Segments every record's image and scores the instances (mAP^r, COCO segm AP).

    Writes OUTPUT_DIR/segm_results.json, OUTPUT_DIR/metrics.json and the first
    `num_drawn_images` images with their instances as OUTPUT_DIR/drawings/<image_id>.jpg.

    Returns:
        (metrics, the drawn pictures (H, W, 3) RGB uint8).
    """
    drawing_dir = os.path.join(output_dir, "drawings")
    os.makedirs(drawing_dir, exist_ok=True)
    evaluator = InstanceSegmentationEvaluator(categories, output_dir=output_dir)
    drawings = []
    for record in tqdm(records, desc="segment", unit="img", leave=False, disable=progress):
        image = image_io.read_image(record.file_name)
        instances = segmenter(image)
        evaluator.process(record, instances)
        if len(drawings) < num_drawn_images:
            drawing = draw_instances(image, instances, categories.names)
            cv2.imwrite(os.path.join(drawing_dir, f"{record.image_id}.jpg"), drawing[..., ::-1])
            drawings.append(drawing)
    metrics = {key: float(value) for key, value in evaluator.evaluate().items()}
    write_json(os.path.join(output_dir, "metrics.json"), metrics)
    return metrics, drawings


def evaluate_segmentation(trainer: SegmentationTrainer, step: int) -> dict[str, float]:
    """Evaluates the trainer's model on its validation records; returns the metrics."""
    metrics, drawings = evaluate_segmenter(
        segmenter_from_config(trainer.inference_model(), trainer.config),
        trainer.evaluation_records(),
        trainer.data.categories, trainer.evaluation_dir(step),
        num_drawn_images=trainer.config.eval.num_drawn_images,
    )
    if drawings and trainer.is_chief:
        writer = tf.summary.create_file_writer(os.path.join(trainer.workdir, "tensorboard"))
        with writer.as_default(step=step):
            size = max(d.shape[0] for d in drawings), max(d.shape[1] for d in drawings)
            padded = np.stack([
                np.pad(d, ((0, size[0] - d.shape[0]), (0, size[1] - d.shape[1]), (0, 0)))
                for d in drawings
            ])
            tf.summary.image("eval/instances", padded, max_outputs=len(drawings))
        writer.flush()
    return metrics
