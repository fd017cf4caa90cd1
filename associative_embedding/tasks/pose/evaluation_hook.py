"""Periodic validation inside training: COCO AP, the paper's GT-detection diagnostic, drawings.

TensorBoard images per evaluation (first `eval.num_drawn_images` validation images):
'eval/predictions' (decoded skeletons), 'eval/heatmaps' (max over joints, colour-mapped over the
network input) and 'eval/tags' (the tag of the most confident joint per pixel, normalised over
the detected pixels, colour-mapped and dimmed where no joint is detected, so that each
well-grouped person shows in one colour).

The diagnostic (paper Sec. 4.1) substitutes ground-truth heatmaps for the network's detections
but keeps its predicted tags, so `AP_gt_detections` measures how well the tags group people;
a large gap between it and `AP` says detection is the bottleneck, a small one grouping. Its
other headline metrics carry the same suffix (`AP50_gt_detections`, ...). Both decode the maps
of one network pass: each validation image goes through the network once, in batches
(`PoseEstimator.network_maps`), and each estimator decodes them (`decode_maps`).

`evaluation_table` lays out one evaluation for people: the predictions and the diagnostic side
by side, each metric rounded to 3 decimals (pycocotools' own precision). The metrics carry
`test_time` (`describe_test_time`: single scale, or the scales and tag fusion, and flip), so
the report's title and metrics.json say how the number was obtained.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

from associative_embedding.core.run_dir import write_json
from associative_embedding.core.visualization import (
    DEFAULT_DRAW_THRESHOLD,
    draw_poses,
    people_to_draw,
)
from associative_embedding.data import augment, image_io
from associative_embedding.evaluation.coco_keypoints import METRIC_NAMES, CocoKeypointEvaluator
from associative_embedding.modeling.loading import Predictor, model_predictor
from associative_embedding.modeling.outputs import split_outputs
from associative_embedding.tasks.pose import oracle as oracle_lib
from associative_embedding.tasks.pose.config import decoder_options
from associative_embedding.tasks.pose.estimator import (
    DEFAULT_BATCH_IMAGES,
    InferenceConfig,
    PoseEstimator,
    build_evaluator,
)

#: Suffix of the diagnostic's metrics (ground-truth heatmaps + predicted tags).
DIAGNOSTIC_SUFFIX = "_gt_detections"
DIAGNOSTIC_DESCRIPTION = "ground-truth heatmaps + predicted tags (grouping alone)"
#: Metrics entry naming the evaluation's test-time setting (`describe_test_time`).
TEST_TIME_KEY = "test_time"

if TYPE_CHECKING:
    from associative_embedding.tasks.pose.trainer import PoseTrainer


def evaluate_model(trainer: PoseTrainer, step: int) -> dict[str, Any]:
    """Evaluates the trainer's model on its validation records; returns the metrics.

    Writes WORKDIR/eval/step_<N>/ (results JSON, metrics.json, drawn predictions) and
    TensorBoard images of the drawn predictions, heatmaps and tags (module docstring).
    """
    eval_config = trainer.config.eval
    data = trainer.data
    records = trainer.evaluation_records()
    output_dir = trainer.evaluation_dir(step)
    os.makedirs(output_dir, exist_ok=True)
    predictor = model_predictor(trainer.inference_model())
    inference = inference_config(trainer)
    estimator = PoseEstimator(predictor, trainer.keypoint_info, inference)
    evaluator = _quiet(build_evaluator(data.val_split, output_dir))
    evaluator.reset()
    # The diagnostic decodes the same network maps with its oracle (ground-truth heatmaps
    # instead of the predicted ones): one network pass serves both.
    diagnostic_estimator, diagnostic_evaluator = None, None
    if eval_config.gt_detection_diagnostic:
        diagnostic_estimator = PoseEstimator(
            predictor, trainer.keypoint_info, diagnostic_config(inference)
        )
        diagnostic_evaluator = _quiet(build_evaluator(data.val_split))
        diagnostic_evaluator.reset()
    # Keep the predictions of the first images for drawing while evaluating.
    drawn: list[tuple] = []
    drawn_maps: list[tuple[np.ndarray, np.ndarray]] = []
    for start in range(0, len(records), DEFAULT_BATCH_IMAGES):
        chunk = records[start:start + DEFAULT_BATCH_IMAGES]
        for record, maps in zip(chunk, estimator.network_maps(chunk), strict=True):
            prediction = estimator.decode_maps(record, maps)
            evaluator.process([record], [prediction])
            if diagnostic_estimator is not None:
                diagnostic_evaluator.process(
                    [record], [diagnostic_estimator.decode_maps(record, maps)]
                )
            if len(drawn) < eval_config.num_drawn_images:
                drawn.append((record, prediction))
                drawn_maps.append(_record_map_pictures(trainer, predictor, record))
    metrics = dict(evaluator.evaluate())
    metrics[TEST_TIME_KEY] = describe_test_time(inference)
    if diagnostic_evaluator is not None:
        diagnostic_metrics = diagnostic_evaluator.evaluate()
        for name in headline_metric_names(diagnostic_metrics):
            metrics[name + DIAGNOSTIC_SUFFIX] = diagnostic_metrics[name]
    # The evaluator wrote the predictions' metrics; this evaluation's file has them all.
    write_json(os.path.join(output_dir, "metrics.json"), metrics)
    _write_drawings(trainer, drawn, drawn_maps, output_dir, step)
    return metrics


def inference_config(trainer: PoseTrainer) -> InferenceConfig:
    """The test-time settings of the trainer's evaluation (`config.codec`, `config.eval`)."""
    codec = trainer.config.codec
    eval_config = trainer.config.eval
    return InferenceConfig(
        input_size=codec.input_size,
        output_stride=trainer.model.output_stride,
        scales=tuple(eval_config.scales),
        flip=eval_config.flip,
        fusion=eval_config.fusion,
        # The diagnostic's ground-truth heatmaps are the training targets.
        oracle_sigma=codec.sigma or None,
        oracle_subpixel=bool(codec.subpixel_targets),
        decoder=decoder_options(codec),
    )


def describe_test_time(inference: InferenceConfig) -> str:
    """The test-time setting in words: 'single scale', or e.g. 'scales 1.5, 1.25, 1 (official
    tag fusion)', with ', flip' when the mirrored image is added."""
    scales = tuple(inference.scales)
    if scales == (1.0,):
        text = "single scale"
    else:
        listed = ", ".join(f"{scale:g}" for scale in scales)
        text = f"scales {listed} ({inference.fusion} tag fusion)"
    return text + (", flip" if inference.flip else "")


def diagnostic_config(inference: InferenceConfig) -> InferenceConfig:
    """`inference` with the ground-truth heatmaps oracle: the diagnostic's settings."""
    return InferenceConfig(
        **{**inference.__dict__, "oracles": frozenset({oracle_lib.GT_HEATMAPS})}
    )


def headline_metric_names(metrics: dict[str, Any]) -> list[str]:
    """The metrics a summary shows: COCO's ten (AP ... ARL) or MPII's AP and its table columns
    (AP_Head, ...), in that order; never a diagnostic or per-joint entry."""
    if all(name in metrics for name in METRIC_NAMES):
        return list(METRIC_NAMES)
    names = ["AP"] if "AP" in metrics else []
    names += [
        name for name in metrics
        if name.startswith("AP_") and "/" not in name and not name.endswith(DIAGNOSTIC_SUFFIX)
    ]
    return names


def evaluation_table(metrics: dict[str, Any]) -> list[str]:
    """One evaluation's headline metrics as text lines: the predictions, and the diagnostic
    beside them when `metrics` has it; values rounded to 3 decimals, 'n/a' where pycocotools
    has no ground truth in the area range (-1) or the value is not a number."""
    names = headline_metric_names(metrics)
    diagnostic = any(name + DIAGNOSTIC_SUFFIX in metrics for name in names)
    width = max((len(name) for name in names), default=2) + 2
    header = f"  {'':{width}}{'predicted':>10}"
    if diagnostic:
        header += f"{'diagnostic':>12}"
    lines = [header]
    for name in names:
        line = f"  {name:{width}}{_metric_text(metrics.get(name)):>10}"
        if diagnostic:
            line += f"{_metric_text(metrics.get(name + DIAGNOSTIC_SUFFIX)):>12}"
        lines.append(line)
    lines.append("  predicted:  the network's heatmaps and tags")
    if diagnostic:
        lines.append(f"  diagnostic: {DIAGNOSTIC_DESCRIPTION};")
        lines.append("              the gap to 'predicted' is what detection loses")
    if any(_metric_text(metrics.get(name)) == "n/a" for name in names):
        lines.append("  n/a: no ground truth in that area range")
    return lines


def _metric_text(value: Any) -> str:
    if not isinstance(value, int | float) or not np.isfinite(value) or value < 0:
        return "n/a"
    return f"{value:.3f}"


def _quiet(evaluator: Any) -> Any:
    """The evaluator without its own summary log: the trainer prints one summary of both."""
    if isinstance(evaluator, CocoKeypointEvaluator):
        evaluator.log_summary = False
    return evaluator


def map_pictures(
    image: np.ndarray,
    heatmaps: np.ndarray,
    tags: np.ndarray,
    *,
    detection_threshold: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """Colour pictures of a network's heatmaps and tags over its input image.

    Args:
        image: (H, W, 3) float32 RGB in [0, 1], the network input (H = stride * h).
        heatmaps: (h, w, K) detection heatmaps of that input.
        tags: (h, w, K, D) tags; the first tag dimension is shown.
        detection_threshold: pixels whose strongest heatmap is below this count as background
            for the tag picture (dimmed, and left out of the tag normalisation).

    Returns:
        heatmap_picture: (H, W, 3) uint8 RGB, max over joints (clipped to [0, 1], 'jet')
            blended with the image.
        tag_picture: (H, W, 3) uint8 RGB, the tag of the most confident joint per pixel,
            normalised to [0, 1] by its range over detected pixels ('hsv' hues), brightness
            = heatmap strength.
    """
    import cv2

    height, width = image.shape[:2]
    strength = np.clip(heatmaps.max(axis=-1), 0.0, 1.0)
    best_joint = heatmaps.argmax(axis=-1)
    best_tag = np.take_along_axis(tags[..., 0], best_joint[..., None], axis=-1)[..., 0]
    detected = strength >= detection_threshold
    reference = best_tag[detected] if np.any(detected) else best_tag.reshape(-1)
    low, high = np.percentile(reference, [1, 99]) if reference.size else (0.0, 0.0)
    normalised = np.clip((best_tag - low) / max(high - low, 1e-6), 0.0, 1.0)

    def colour(values: np.ndarray, colormap: int) -> np.ndarray:
        bgr = cv2.applyColorMap(np.round(values * 255).astype(np.uint8), colormap)
        # Nearest upsampling keeps one block per map pixel (stride x stride input pixels).
        return cv2.resize(bgr[..., ::-1], (width, height), interpolation=cv2.INTER_NEAREST)

    photo = np.clip(image, 0.0, 1.0) * 255.0
    heatmap_picture = 0.4 * photo + 0.6 * colour(strength, cv2.COLORMAP_JET)
    # Hues cover 0.8 of the circle so that the lowest and the highest tag look different.
    tag_colours = colour(0.8 * normalised, cv2.COLORMAP_HSV).astype(np.float32)
    brightness = cv2.resize(strength, (width, height), interpolation=cv2.INTER_NEAREST)
    tag_picture = 0.25 * photo + 0.75 * tag_colours * brightness[..., None]
    return (
        np.clip(np.round(heatmap_picture), 0, 255).astype(np.uint8),
        np.clip(np.round(tag_picture), 0, 255).astype(np.uint8),
    )


def _record_map_pictures(
    trainer: PoseTrainer, predictor: Predictor, record
) -> tuple[np.ndarray, np.ndarray]:
    """Heatmap and tag pictures of one validation image at the scale-1 eval input."""
    image = image_io.decode_image(record.read_image_bytes(), source=record.file_name)
    inputs = augment.eval_preprocess(
        image, trainer.config.codec.input_size, predictor.input_multiple
    )
    outputs = predictor(inputs["image"][None])  # (1, h, w, K(1+D)), last stack
    heatmaps, tags = split_outputs(
        outputs, trainer.keypoint_info.num_joints, trainer.config.model.tag_dim
    )
    stride = trainer.model.output_stride
    resized_h, resized_w = (int(v) for v in inputs["resized_size"].numpy())
    map_h, map_w = -(-resized_h // stride), -(-resized_w // stride)  # maps covering the image
    return map_pictures(
        inputs["image"].numpy()[: map_h * stride, : map_w * stride],
        heatmaps.numpy()[0, :map_h, :map_w],
        tags.numpy()[0, :map_h, :map_w],
        detection_threshold=trainer.config.codec.detection_threshold,
    )


def _write_drawings(
    trainer: PoseTrainer,
    drawn: list[tuple],
    maps: list[tuple[np.ndarray, np.ndarray]],
    output_dir: str,
    step: int,
) -> None:
    import cv2

    drawing_dir = os.path.join(output_dir, "drawings")
    os.makedirs(drawing_dir, exist_ok=True)
    eval_config = trainer.config.eval
    draw_threshold = float(eval_config.get("draw_threshold", DEFAULT_DRAW_THRESHOLD))
    pictures = []
    for record, prediction in drawn:
        image = image_io.decode_image(record.read_image_bytes(), source=record.file_name)
        people = people_to_draw(prediction["scores"], draw_threshold)
        picture = draw_poses(
            image, np.asarray(prediction["poses"])[people], trainer.keypoint_info.skeleton,
            score_threshold=trainer.config.codec.detection_threshold,
        )
        cv2.imwrite(os.path.join(drawing_dir, f"{record.image_id}.jpg"), picture[..., ::-1])
        pictures.append(picture)
    if not pictures or not trainer.is_chief:
        return
    writer = tf.summary.create_file_writer(os.path.join(trainer.workdir, "tensorboard"))
    with writer.as_default(step=step):
        tf.summary.image("eval/predictions", _pad_to_square(pictures), max_outputs=len(pictures))
        if maps:
            heatmap_pictures, tag_pictures = zip(*maps, strict=True)
            tf.summary.image("eval/heatmaps", _pad_to_square(heatmap_pictures),
                             max_outputs=len(maps))
            tf.summary.image("eval/tags", _pad_to_square(tag_pictures), max_outputs=len(maps))
    writer.flush()


def _pad_to_square(pictures) -> np.ndarray:
    """Stacks (H_i, W_i, 3) uint8 pictures into (N, S, S, 3), padded right/bottom with black."""
    size = max(max(p.shape[:2]) for p in pictures)
    padded = np.zeros((len(pictures), size, size, 3), np.uint8)
    for index, picture in enumerate(pictures):
        padded[index, : picture.shape[0], : picture.shape[1]] = picture
    return padded
