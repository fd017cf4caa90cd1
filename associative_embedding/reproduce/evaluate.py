"""Our rows evaluated in process: the pose rows (Tables 1-4) and the segmentation row (Table 5).

The decoder settings come from the checkpoint's training config
(``training.config.decoder_options``), the test settings from the paper (official multi-scale
set 2, 1, 0.5, flip test). Pose rows at the same scales share one network pass (the refined row
refines the unrefined row's poses).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

from associative_embedding.reproduce.checkpoints import resolve_checkpoint, training_config_of
from associative_embedding.reproduce.metrics_io import row_result
from associative_embedding.reproduce.report import TableReport, evaluated_split_note
from associative_embedding.reproduce.tables import (
    PAPER_MULTI_SCALES,
    SINGLE_SCALE,
    TASK_COCO,
    TASK_MPII,
    TASK_SEGMENTATION,
    OurRow,
    PaperTable,
)


@dataclasses.dataclass
class PoseEvaluationOptions:
    """How our pose rows are evaluated.

    Attributes:
        checkpoint: the multi-person model (work dir, checkpoint prefix, '.keras', SavedModel).
        refine_checkpoint: the single-person refinement network (None: rows needing it are
            not run, or, for a one-row table, run without refinement and said so).
        refine_options: ``PoseRefiner`` keyword arguments (threshold, crop_sizes, flip, ...).
        multi_scales: the multi-scale set (default the official 2, 1, 0.5).
        flip: flip test; None: on (the official test) unless the model was trained without
            flip augmentation (``input.flip_probability == 0``: its left and right joints are
            not mirror images of each other, so averaging with the mirror would mix them).
        fusion: multi-scale tag fusion, 'official' or 'paper'; None: the run's eval.fusion.
        input_size: long side of the scale-1 input; None: the run's codec.input_size.
        max_images: evaluate only the first N images (0: all).
        progress: show a progress bar.
    """

    checkpoint: str
    refine_checkpoint: str | None = None
    refine_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    multi_scales: tuple[float, ...] = PAPER_MULTI_SCALES
    flip: bool | None = None
    fusion: str | None = None
    input_size: int | None = None
    max_images: int = 0
    progress: bool = True


@dataclasses.dataclass
class PoseTestSettings:
    """The resolved test settings shared by all rows (from the run's config and the options)."""

    input_size: int
    output_stride: int
    flip: bool
    fusion: str
    decoder: dict[str, Any]

    def inference_config(self, scales: Sequence[float]) -> Any:
        from associative_embedding.tasks.pose.estimator import InferenceConfig

        return InferenceConfig(
            input_size=self.input_size,
            output_stride=self.output_stride,
            scales=tuple(scales),
            flip=self.flip,
            fusion=self.fusion,
            decoder=dict(self.decoder),
        )


def pose_test_settings(config: Any | None, options: PoseEvaluationOptions) -> PoseTestSettings:
    """Test settings from a pose run's training config (None: package defaults) and options.

    Raises:
        ValueError: when the config is not a multi-person pose run.
    """
    from associative_embedding.core.run_dir import config_task
    from associative_embedding.tasks.pose.config import base_config, decoder_options

    if config is None:
        config = base_config()
    else:
        task = config_task(config)
        if task != "pose":
            raise ValueError(
                f"{options.checkpoint}: a {task} run, not a multi-person pose model"
                + (" (Table 5 takes segmentation runs)." if task == "segmentation" else ".")
            )
    evaluation, codec = config.eval, config.codec
    flip = options.flip
    if flip is None:
        flip = float(config.input.get("flip_probability", 0.5)) > 0
    return PoseTestSettings(
        input_size=int(codec.input_size if options.input_size is None else options.input_size),
        output_stride=int(codec.get("output_stride", 4)),
        flip=bool(flip),
        fusion=str(options.fusion or evaluation.get("fusion", "official")),
        decoder=decoder_options(codec),
    )


class _KeepUnrefined:
    """A refiner wrapper for ``PoseEstimator`` that remembers the poses before refinement, so
    one network pass gives both the row without and the row with refinement."""

    def __init__(self, refiner: Callable) -> None:
        self.refiner = refiner
        self.unrefined: dict[str, Any] | None = None

    def __call__(self, image: Any, poses: Any, scores: Any) -> Any:
        self.unrefined = {"poses": poses.copy(), "scores": scores.copy()}
        return self.refiner(image, poses, scores)


def _row_dir(output_dir: str | os.PathLike, table: PaperTable, row: OurRow) -> str:
    """OUTPUT_DIR/table<N>/<row key>: where one row's files go."""
    return os.path.join(os.fspath(output_dir), f"table{table.number}", row.key)


def _describe_scales(scales: Sequence[float]) -> str:
    return ", ".join(f"{scale:g}" for scale in scales)


def evaluate_pose_rows(
    table: PaperTable,
    annotations: str | os.PathLike,
    images: str | os.PathLike,
    options: PoseEvaluationOptions,
    output_dir: str | os.PathLike,
    *,
    row_keys: Sequence[str] | None = None,
    split_description: str | None = None,
    synthetic_data: bool = False,
) -> TableReport:
    """Evaluates our rows of a pose table (1-4) on one split, in process.

    Rows at the same scales share the network pass: the refined row refines the poses of the
    unrefined one. Each row's files go to OUTPUT_DIR/table<N>/<row>/ (metrics.json with the
    settings, keypoint_results.json for COCO-format splits).

    Args:
        table: Table 1 (MPII) or 2, 3, 4 (COCO-format).
        annotations, images: the split (``evaluation.predictor.read_split`` formats).
        options: the models and test settings.
        output_dir: where the rows' files go.
        row_keys: the rows to evaluate (default all).
        split_description: how the split is named in the notes (default its annotation file).
        synthetic_data: the split is synthetic (the notes say the numbers are not comparable).

    Returns:
        A ``TableReport`` with the evaluated rows and notes (the split, rows not run).

    Raises:
        ValueError: for Table 5, a model of another task, or a split of the wrong dataset.
        FileNotFoundError: naming a missing model, annotation file or image folder.
    """
    from tqdm import tqdm

    from associative_embedding.core import run_dir
    from associative_embedding.data import readers
    from associative_embedding.modeling import loading
    from associative_embedding.tasks.pose import estimator as predictor_lib

    if table.task == TASK_SEGMENTATION:
        raise ValueError("Table 5 is instance segmentation: use evaluate_segmentation_row.")
    split = readers.read_split(annotations, images)
    expected = "mpii" if table.task == TASK_MPII else None
    if expected and split.keypoint_info.name != expected:
        raise ValueError(
            f"Table {table.number} is MPII; {annotations} has {split.keypoint_info.num_joints} "
            f"joints ({split.keypoint_info.name})."
        )
    if table.task == TASK_COCO and split.annotation_format != readers.FORMAT_COCO:
        raise ValueError(f"Table {table.number} is COCO; {annotations} is not COCO-format.")
    checkpoint = resolve_checkpoint(options.checkpoint)
    settings = pose_test_settings(training_config_of(checkpoint), options)
    rows = [table.row(key) for key in row_keys] if row_keys else list(table.rows)
    report = TableReport(table)
    description = split_description or (
        f"evaluated on {split.annotation_file} ({len(split.records)} images"
        + (f", first {options.max_images} evaluated" if options.max_images else "")
        + ")"
    )
    report.notes.append(evaluated_split_note(table, description, synthetic=synthetic_data))

    refiner = None
    if options.refine_checkpoint and any(row.refine for row in rows):
        from associative_embedding.tasks.refinement.refine import load_refiner

        refiner = load_refiner(
            resolve_checkpoint(options.refine_checkpoint), split.keypoint_info,
            **options.refine_options,
        )
    elif any(row.refine for row in rows):
        if len(table.rows) == 1:
            report.notes.append(
                "Ours WITHOUT the single-person refinement (no refinement network given): the "
                "paper's row includes it."
            )
        else:
            skipped = [row.label for row in rows if row.refine]
            report.notes.append(
                f"Not run (they need the refinement network, --refine_checkpoint): "
                f"{', '.join(skipped)}."
            )
            rows = [row for row in rows if not row.refine]

    network = loading.load_predictor(checkpoint)
    records = split.records
    if options.max_images > 0:
        records = records[: options.max_images]
    coco_ground_truth = None
    if split.annotation_format == readers.FORMAT_COCO:
        from associative_embedding.evaluation.coco_keypoints import load_coco

        coco_ground_truth = load_coco(split.annotation_file)  # loaded once for all rows

    for multi_scale in (False, True):
        group = [row for row in rows if row.multi_scale == multi_scale]
        if not group:
            continue
        scales = options.multi_scales if multi_scale else SINGLE_SCALE
        with_refiner = refiner is not None and any(row.refine for row in group)
        keeper = _KeepUnrefined(refiner) if with_refiner else None
        estimator = predictor_lib.PoseEstimator(
            network, split.keypoint_info, settings.inference_config(scales), keeper
        )
        if refiner is not None:
            from associative_embedding.tasks.refinement.refine import RefinementStats

            refiner.stats = RefinementStats()
        evaluators = {}
        for row in group:
            row_dir = _row_dir(output_dir, table, row)
            os.makedirs(row_dir, exist_ok=True)
            evaluators[row.key] = _pose_evaluator(split, coco_ground_truth, row_dir)
            evaluators[row.key].reset()
        label = "multi-scale" if multi_scale else "single-scale"
        for record in tqdm(
            records, desc=f"table {table.number} {label}", unit="img",
            disable=not options.progress,
        ):
            prediction = estimator(record)
            for row in group:
                refined = row.refine and refiner is not None
                chosen = prediction if refined or keeper is None else keeper.unrefined
                evaluators[row.key].process([record], [chosen])
        for row in group:
            refined = row.refine and refiner is not None
            metrics = dict(evaluators[row.key].evaluate())
            if not metrics:
                report.notes.append(f"{row.label}: no image was evaluated (empty split?).")
                continue
            row_settings = (
                f"scales ({_describe_scales(scales)}) of input {settings.input_size}, flip test "
                f"{'on' if settings.flip else 'off'}, tag fusion {settings.fusion}, "
                + (
                    f"refinement {options.refine_checkpoint}"
                    if refined else "no refinement"
                )
                + f"; {metrics.get('num_images', len(records))} images"
            )
            if refined:
                row_settings += f"; {refiner.stats.describe()}"
            details = {
                "settings": row_settings,
                "checkpoint": checkpoint,
                "scales": list(scales),
                "flip": settings.flip,
                "fusion": settings.fusion,
                "input_size": settings.input_size,
                "decoder": {key: value for key, value in settings.decoder.items()},
                "refine_checkpoint": options.refine_checkpoint if refined else None,
                "annotations": split.annotation_file,
                "num_images_skipped": split.num_images_skipped,
            }
            row_dir = _row_dir(output_dir, table, row)
            metrics_path = os.path.join(row_dir, "metrics.json")
            run_dir.write_json(metrics_path, {**metrics, **details})
            report.results[row.key] = row_result(
                table, row, metrics, f"evaluated ({metrics_path})", details
            )
    return report


def _pose_evaluator(split: Any, coco_ground_truth: Any, output_dir: str) -> Any:
    from associative_embedding.evaluation.coco_keypoints import CocoKeypointEvaluator
    from associative_embedding.tasks.pose import estimator as predictor_lib

    if coco_ground_truth is not None:
        return CocoKeypointEvaluator(
            coco_ground_truth, keypoint_info=split.keypoint_info, output_dir=output_dir
        )
    return predictor_lib.build_evaluator(split, output_dir)


# ------------------------------------------------------------------------------ segmentation


def evaluate_segmentation_row(
    table: PaperTable,
    checkpoint: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    voc_root: str | os.PathLike | None = None,
    voc_split: str = "val",
    annotations: str | os.PathLike | None = None,
    images: str | os.PathLike | None = None,
    scales: Sequence[float] | None = None,
    input_size: int | None = None,
    max_images: int = 0,
    progress: bool = True,
    split_description: str | None = None,
    synthetic_data: bool = False,
) -> TableReport:
    """Evaluates Table 5's row (mAP^r at IoU 0.5 and 0.7) of a segmentation run, in process.

    The segmenter is the run's (``segmentation.evaluation_hook.segmenter_from_config``: its
    eval input size, scales and decoder settings; ``scales`` / ``input_size`` override them).
    Files (metrics.json, segm_results.json, drawings/) go to OUTPUT_DIR/table5/ours/.

    Args:
        table: Table 5.
        checkpoint: a segmentation training work dir or checkpoint prefix.
        output_dir: where the row's files go.
        voc_root, voc_split: PASCAL VOC 2012 (VOCdevkit/VOC2012) and the split list, or
        annotations, images: a COCO-format instances split (e.g. the synthetic shapes).
        scales, input_size: test-time overrides.
        max_images: evaluate only the first N images (0: all).
        progress: show a progress bar.
        split_description: how the split is named in the notes.
        synthetic_data: the split is synthetic (the notes say the numbers are not comparable).

    Raises:
        ValueError: when the run is not a segmentation run, no split is given, or the split's
            categories differ from the model's.
    """
    from associative_embedding.core.run_dir import config_task, write_json
    from associative_embedding.modeling.loading import load_predictor
    from associative_embedding.tasks.segmentation.evaluation_hook import (
        evaluate_segmenter,
        segmenter_from_config,
    )

    if table.task != TASK_SEGMENTATION:
        raise ValueError(f"Table {table.number} is not instance segmentation.")
    resolved = resolve_checkpoint(checkpoint)
    config = training_config_of(resolved)
    if config is None or config_task(config) != "segmentation":
        raise ValueError(
            f"{checkpoint}: not a segmentation training run (Table 5 needs a work dir or "
            "checkpoint of tools/train.py with a segmentation experiment)."
        )
    if scales:
        config.eval.scales = tuple(float(scale) for scale in scales)
    if input_size:
        config.codec.input_size = int(input_size)
    if voc_root:
        from associative_embedding.data.voc import read_voc_instances

        records, categories = read_voc_instances(voc_root, voc_split)
        source = f"PASCAL VOC {voc_root} ({voc_split})"
    elif annotations and images:
        from associative_embedding.data.coco_instances import read_coco_instances

        records, categories = read_coco_instances(annotations, images)
        source = os.fspath(annotations)
    else:
        raise ValueError("Table 5 needs a VOC root or a COCO-format instances split.")
    if categories.num_categories != int(config.dataset.num_categories):
        raise ValueError(
            f"{source} has {categories.num_categories} categories, the model "
            f"{config.dataset.num_categories}."
        )
    if max_images > 0:
        records = records[:max_images]
    row = table.rows[0]
    row_dir = _row_dir(output_dir, table, row)
    segmenter = segmenter_from_config(load_predictor(resolved), config)
    metrics, _ = evaluate_segmenter(
        segmenter, records, categories, row_dir, progress=None if progress else True
    )
    scales_used = tuple(config.eval.scales)
    details = {
        "settings": (
            f"scales ({_describe_scales(scales_used)}) of input {config.codec.input_size}, "
            f"proposals merged by NMS; {len(records)} images"
        ),
        "checkpoint": resolved,
        "scales": list(scales_used),
        "input_size": int(config.codec.input_size),
        "split": source,
    }
    metrics_path = os.path.join(row_dir, "metrics.json")
    write_json(metrics_path, {**metrics, **details})
    report = TableReport(table)
    report.notes.append(
        evaluated_split_note(
            table, split_description or f"evaluated on {source} ({len(records)} images)",
            synthetic=synthetic_data,
        )
    )
    report.results[row.key] = row_result(table, row, metrics, f"evaluated ({metrics_path})",
                                         details)
    return report

