"""Periodic validation inside training: COCO AP, the paper's GT-detection diagnostic, drawings.

The diagnostic (paper Sec. 4.1) substitutes ground-truth heatmaps for the network's detections
but keeps its predicted tags, so `AP_gt_detections` measures how well the tags group people;
a large gap between it and `AP` says detection is the bottleneck, a small one grouping.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from associative_embedding.data import image_io
from associative_embedding.evaluation import oracle as oracle_lib
from associative_embedding.evaluation.predictor import (
    InferenceConfig,
    PoseEstimator,
    Predictor,
    build_evaluator,
    evaluate_records,
)
from associative_embedding.visualization import draw_poses

if TYPE_CHECKING:
    from associative_embedding.training.trainer import PoseTrainer


def model_predictor(model) -> Predictor:
    """A Predictor over an in-memory Keras model (inference mode, one trace per input shape)."""
    call = tf.function(
        lambda images: model(images, training=False),
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
        reduce_retracing=True,
    )
    return Predictor(call, input_multiple=model.input_multiple, source=model.name)


def evaluate_model(trainer: PoseTrainer, step: int) -> dict[str, float]:
    """Evaluates the trainer's model on its validation records; returns the metrics.

    Writes WORKDIR/eval/step_<N>/ (results JSON, metrics.json, drawn predictions) and
    TensorBoard images of the drawn predictions.
    """
    eval_config = trainer.config.eval
    data = trainer.data
    records = data.val_records
    if eval_config.max_images > 0:
        records = records[: eval_config.max_images]
    output_dir = os.path.join(trainer.workdir, "eval", f"step_{step}")
    os.makedirs(output_dir, exist_ok=True)
    predictor = model_predictor(trainer.model)
    decoder = dict(
        detection_threshold=eval_config.detection_threshold,
        tag_threshold=eval_config.tag_threshold,
        max_people=eval_config.max_people,
        refine=eval_config.refine,
    )
    inference = InferenceConfig(
        input_size=eval_config.input_size,
        output_stride=trainer.model.output_stride,
        scales=tuple(eval_config.scales),
        flip=eval_config.flip,
        fusion=eval_config.fusion,
        decoder=decoder,
    )
    estimator = PoseEstimator(predictor, trainer.keypoint_info, inference)
    evaluator = build_evaluator(data.val_split, output_dir)
    # Keep the predictions of the first images for drawing while evaluating.
    drawn: list[tuple] = []

    def estimate_and_keep(record):
        prediction = estimator(record)
        if len(drawn) < eval_config.num_drawn_images:
            drawn.append((record, prediction))
        return prediction

    metrics = dict(evaluate_records(records, estimate_and_keep, evaluator, progress=False))
    if eval_config.gt_detection_diagnostic:
        diagnostic = InferenceConfig(
            **{**inference.__dict__, "oracles": frozenset({oracle_lib.GT_HEATMAPS})}
        )
        diagnostic_evaluator = build_evaluator(data.val_split)
        diagnostic_metrics = evaluate_records(
            records,
            PoseEstimator(predictor, trainer.keypoint_info, diagnostic),
            diagnostic_evaluator,
            progress=False,
        )
        metrics["AP_gt_detections"] = diagnostic_metrics["AP"]
    _write_drawings(trainer, drawn, output_dir, step)
    return metrics


def _write_drawings(trainer: PoseTrainer, drawn: list[tuple], output_dir: str, step: int) -> None:
    import cv2

    drawing_dir = os.path.join(output_dir, "drawings")
    os.makedirs(drawing_dir, exist_ok=True)
    pictures = []
    for record, prediction in drawn:
        image = image_io.decode_image(record.read_image_bytes(), source=record.file_name)
        picture = draw_poses(image, prediction["poses"], trainer.keypoint_info.skeleton)
        cv2.imwrite(os.path.join(drawing_dir, f"{record.image_id}.jpg"), picture[..., ::-1])
        pictures.append(picture)
    if not pictures or not trainer.is_chief:
        return
    writer = tf.summary.create_file_writer(os.path.join(trainer.workdir, "tensorboard"))
    size = max(max(p.shape[:2]) for p in pictures)
    padded = np.zeros((len(pictures), size, size, 3), np.uint8)
    for index, picture in enumerate(pictures):
        padded[index, : picture.shape[0], : picture.shape[1]] = picture
    with writer.as_default(step=step):
        tf.summary.image("eval/predictions", padded, max_outputs=len(pictures))
    writer.flush()
