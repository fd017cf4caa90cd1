"""Prints one of the paper's result tables with the paper's numbers beside ours.

Examples:
    # CI: the whole chain on tiny data (trains 2-step ':smoke' models, evaluates all 4 rows).
    python tools/reproduce.py --table 4 --smoke

    # Table 4 on COCO val2017 (the paper's test-dev has no public annotations; the table says so).
    python tools/reproduce.py --table 4 --dataset_root=$COCO --split=val2017 \\
        --checkpoint=runs/coco_hg4_512 --refine_checkpoint=runs/coco_refine_hg \\
        --output_dir=reproduce/table4

    # Table 4 on the synthetic people a synthetic_pose run generated (WORKDIR/synthetic).
    python tools/reproduce.py --table 4 --synthetic --checkpoint=runs/synthetic_pose \\
        --refine_checkpoint=runs/synthetic_refine --output_dir=reproduce/synthetic

    # Tables 2/3 from the metrics the COCO evaluation server returned for a test-dev submission.
    python tools/reproduce.py --table 3 --metrics=test_dev_scores.json

    # Table 4 from four existing tools/evaluate.py runs.
    python tools/reproduce.py --table 4 --metrics=single=e/s/metrics.json,\\
single_refine=e/sr/metrics.json,multi=e/m/metrics.json,multi_refine=e/mr/metrics.json

    # Table 1 (MPII: the JSON conversion, annotations/valid.json + images/) and Table 5 (VOC).
    python tools/reproduce.py --table 1 --dataset_root=$MPII --checkpoint=runs/mpii_hg4_512 \\
        --refine_checkpoint=runs/mpii_refine_hg
    python tools/reproduce.py --table 5 --dataset_root=VOCdevkit/VOC2012 --checkpoint=runs/voc

Rows of --metrics=ROW=path: 'ours' for Tables 1, 2, 3, 5 (a bare path works too); 'single',
'single_refine', 'multi', 'multi_refine' for Table 4. Rows not given there are evaluated when
--checkpoint is given, else printed as 'not run'. The table goes to stdout and to
OUTPUT_DIR/table<N>.md and .json; each evaluated row's files to OUTPUT_DIR/table<N>/<row>/.
The work is done by ``associative_embedding.reproduce``; this file parses flags.
"""

from __future__ import annotations

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from associative_embedding.core import startup  # noqa: E402

# Before anything imports TensorFlow or tqdm: quiet start-up, visible progress bars.
startup.start_tool()

from absl import app, flags  # noqa: E402

from associative_embedding import reproduce as paper_tables  # noqa: E402
from associative_embedding.conversion import release_config  # noqa: E402
from associative_embedding.tasks.refinement import flags as refinement_flags  # noqa: E402

_TABLE = flags.DEFINE_enum("table", None, ["1", "2", "3", "4", "5"], "The paper's table.")
_SMOKE = flags.DEFINE_bool(
    "smoke", False,
    "Run the whole chain on tiny data: train the ':smoke' experiments for 2 steps into "
    "--work_dir, evaluate the table's rows on their validation split.",
)
_WORK_DIR = flags.DEFINE_string(
    "work_dir", None, "--smoke: where the smoke runs are trained (default: a temporary folder)."
)
_SYNTHETIC = flags.DEFINE_bool(
    "synthetic", False,
    "Evaluate on the synthetic validation split that the --checkpoint run generated "
    "(its dataset.synthetic_dir or WORKDIR/synthetic; shapes for Table 5).",
)
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None,
    "Our model: a tools/train.py work dir (its best checkpoint), a checkpoint prefix, a "
    "'.keras' file or a SavedModel (a segmentation run for Table 5).",
)
REFINEMENT = refinement_flags.define_flags()
_DATASET_ROOT = flags.DEFINE_string(
    "dataset_root", None,
    "Tables 2-4: COCO root (annotations/person_keypoints_<split>.json, <split>/); Table 1: MPII "
    "root (annotations/<split>.json, images/); Table 5: VOCdevkit/VOC2012.",
)
_SPLIT = flags.DEFINE_string(
    "split", None, "Split under --dataset_root (default val2017 / valid / val for COCO / MPII / "
    "VOC)."
)
_ANNOTATIONS = flags.DEFINE_string(
    "annotations", None, "The split's annotation file (instead of --dataset_root)."
)
_IMAGES = flags.DEFINE_string("images", None, "The split's image folder (with --annotations).")
_METRICS = flags.DEFINE_list(
    "metrics", [], "Existing metrics files as ROW=path (see the module docstring)."
)
_SCALES = flags.DEFINE_list(
    "scales", [],
    "Multi-scale set (default: the official 2,1,0.5 for pose; the run's eval.scales for Table 5).",
)
_FLIP = flags.DEFINE_bool(
    "flip", None,
    "Flip test (default: on, as the official test, unless the model was trained without flip "
    "augmentation).",
)
_FUSION = flags.DEFINE_enum(
    "fusion", None, ["official", "paper"],
    "Multi-scale tags: official (scale nearest 1) or paper (all scales); default: the run's.",
)
_INPUT_SIZE = flags.DEFINE_integer(
    "input_size", None, "Long side of the scale-1 input (default: the run's codec.input_size)."
)
_MAX_IMAGES = flags.DEFINE_integer("max_images", 0, "Evaluate only the first N images (0: all).")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None,
    "Where table<N>.md/.json and the rows' evaluation files go (default: --work_dir with "
    "--smoke; required when evaluating).",
)
_PROGRESS = flags.DEFINE_bool("progress", True, "Show progress bars.")


def _split_paths(table: paper_tables.PaperTable) -> tuple[str, str]:
    """(annotations, images) of a pose table's split from the flags."""
    if _ANNOTATIONS.value or _IMAGES.value:
        if not (_ANNOTATIONS.value and _IMAGES.value):
            raise app.UsageError("--annotations and --images go together.")
        return _ANNOTATIONS.value, _IMAGES.value
    if _SYNTHETIC.value:
        return paper_tables.synthetic_val_split(_CHECKPOINT.value)
    if not _DATASET_ROOT.value:
        raise app.UsageError(
            "give the split: --dataset_root (with --split), --annotations/--images or "
            "--synthetic."
        )
    root = _DATASET_ROOT.value
    if table.task == paper_tables.TASK_MPII:
        split = _SPLIT.value or "valid"
        return os.path.join(root, "annotations", f"{split}.json"), os.path.join(root, "images")
    split = _SPLIT.value or "val2017"
    return (
        os.path.join(root, "annotations", f"person_keypoints_{split}.json"),
        os.path.join(root, split),
    )


def _refine_options() -> dict:
    from associative_embedding.tasks.refinement.refine import parse_crop_sizes

    options = {
        "threshold": REFINEMENT.threshold.value,
        "agree_radius": REFINEMENT.agree_radius.value,
    }
    if REFINEMENT.crop_sizes.value:
        options["crop_sizes"] = parse_crop_sizes(REFINEMENT.crop_sizes.value)
    if REFINEMENT.flip.value is not None:
        options["flip"] = REFINEMENT.flip.value
    return options


def _evaluate(table: paper_tables.PaperTable, row_keys: list[str]) -> paper_tables.TableReport:
    from associative_embedding.tasks.pose.estimator import parse_scales

    scales = parse_scales(_SCALES.value) if _SCALES.value else None
    if table.task == paper_tables.TASK_SEGMENTATION:
        voc_root = None if (_ANNOTATIONS.value or _SYNTHETIC.value) else _DATASET_ROOT.value
        annotations, images = _ANNOTATIONS.value, _IMAGES.value
        if _SYNTHETIC.value:
            annotations, images = paper_tables.synthetic_val_split(_CHECKPOINT.value)
        if not (voc_root or annotations):
            raise app.UsageError(
                "Table 5 needs --dataset_root=VOCdevkit/VOC2012, --annotations/--images or "
                "--synthetic."
            )
        return paper_tables.evaluate_segmentation_row(
            table, _CHECKPOINT.value, _OUTPUT_DIR.value, voc_root=voc_root,
            voc_split=_SPLIT.value or "val", annotations=annotations, images=images,
            scales=scales, input_size=_INPUT_SIZE.value, max_images=_MAX_IMAGES.value,
            progress=_PROGRESS.value, synthetic_data=_SYNTHETIC.value,
        )
    annotations, images = _split_paths(table)
    options = paper_tables.PoseEvaluationOptions(
        checkpoint=_CHECKPOINT.value,
        refine_checkpoint=REFINEMENT.checkpoint.value,
        refine_options=_refine_options(),
        multi_scales=scales or paper_tables.PAPER_MULTI_SCALES,
        flip=_FLIP.value,
        fusion=_FUSION.value,
        input_size=_INPUT_SIZE.value,
        max_images=_MAX_IMAGES.value,
        progress=_PROGRESS.value,
    )
    return paper_tables.evaluate_pose_rows(
        table, annotations, images, options, _OUTPUT_DIR.value, row_keys=row_keys,
        synthetic_data=_SYNTHETIC.value,
    )


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    # A converted release (tools/convert_weights.py) brings its official test-time settings;
    # --scales stays the multi-scale set of the table's multi-scale rows.
    for line in release_config.apply_release_defaults(exclude=("scales",)):
        print(f"release default: --{line}")
    table = paper_tables.get_table(int(_TABLE.value))
    try:
        if _SMOKE.value:
            if _CHECKPOINT.value or _METRICS.value:
                raise app.UsageError("--smoke trains its own models: no --checkpoint/--metrics.")
            return _smoke(table)
        metrics_paths = paper_tables.parse_metrics_argument(table, _METRICS.value)
        report = paper_tables.TableReport(table)
        report.results.update(paper_tables.read_metrics_rows(table, metrics_paths))
        to_evaluate = [row.key for row in table.rows if row.key not in metrics_paths]
        if to_evaluate and _CHECKPOINT.value:
            if not _OUTPUT_DIR.value:
                raise app.UsageError("evaluating needs --output_dir.")
            evaluated = _evaluate(table, to_evaluate)
            report.results.update(evaluated.results)
            report.notes.extend(evaluated.notes)
        elif to_evaluate and not metrics_paths:
            raise app.UsageError(
                "nothing to show: give --checkpoint (and the split) to evaluate, --metrics to "
                "read existing metrics, or --smoke."
            )
        if metrics_paths and not table.annotations_public:
            report.notes.append(
                f"Rows read from metrics files: on whatever split they were computed; only "
                f"{table.server} gives {table.paper_split} numbers."
            )
    except startup.UserInputError:
        raise  # a damaged model or a bad config: its own message names the file
    except (FileNotFoundError, ValueError, KeyError) as error:
        raise app.UsageError(str(error)) from None
    _emit(report)
    return 0


def _smoke(table: paper_tables.PaperTable) -> int:
    if _WORK_DIR.value:
        report = paper_tables.run_smoke(table.number, _WORK_DIR.value, progress=_PROGRESS.value)
        _emit(report, default_dir=_WORK_DIR.value)
        return 0
    with tempfile.TemporaryDirectory(prefix="ae_reproduce_smoke_") as work_dir:
        report = paper_tables.run_smoke(table.number, work_dir, progress=_PROGRESS.value)
        _emit(report)
    return 0


def _emit(report: paper_tables.TableReport, default_dir: str | None = None) -> None:
    print(paper_tables.format_markdown(report))
    output_dir = _OUTPUT_DIR.value or default_dir
    if output_dir:
        markdown, json_path = paper_tables.write_report(report, output_dir)
        print(f"written: {markdown}, {json_path}")


if __name__ == "__main__":
    flags.mark_flag_as_required("table")
    startup.run_tool(main)
