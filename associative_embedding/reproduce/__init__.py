"""The paper's result tables (Newell, Huang, Deng 2017, Tables 1-5) and the runs that fill them.

``tools/reproduce.py --table N`` prints one table in the paper's layout: the paper's rows (the
other methods it compares with, then its "Our method" rows) and, under each "Our method" row,
the same metrics measured with this package. The pieces, each usable alone: ``tables`` (the
paper's numbers as printed: ``TABLES``, ``get_table``), ``metrics_io`` (our numbers from a
metrics file: ``read_metrics_file``, ``row_result``), ``report`` (``format_markdown``,
``report_json``, ``write_report``), ``checkpoints`` (which checkpoint, config and synthetic
split a run gives), ``evaluate`` (``evaluate_pose_rows``, ``evaluate_segmentation_row``: the
rows evaluated in process) and ``runner`` (``run_smoke``: the whole chain on tiny data).
"""

from associative_embedding.reproduce.checkpoints import (
    resolve_checkpoint,
    synthetic_val_split,
    training_config_of,
)
from associative_embedding.reproduce.evaluate import (
    PoseEvaluationOptions,
    PoseTestSettings,
    evaluate_pose_rows,
    evaluate_segmentation_row,
    pose_test_settings,
)
from associative_embedding.reproduce.metrics_io import (
    RowResult,
    normalize_key,
    parse_metrics_argument,
    read_metrics_file,
    read_metrics_rows,
    row_result,
)
from associative_embedding.reproduce.report import (
    TableReport,
    evaluated_split_note,
    format_markdown,
    report_json,
    write_report,
)
from associative_embedding.reproduce.runner import (
    EXPERIMENTS_DIR,
    load_experiment,
    run_smoke,
    train_smoke_run,
)
from associative_embedding.reproduce.tables import (
    COCO_STATS_ORDER,
    OURS,
    PAPER_MULTI_SCALES,
    SINGLE_SCALE,
    TABLES,
    TASK_COCO,
    TASK_MPII,
    TASK_SEGMENTATION,
    Column,
    OurRow,
    PaperRow,
    PaperTable,
    get_table,
)

__all__ = [
    "COCO_STATS_ORDER",
    "EXPERIMENTS_DIR",
    "OURS",
    "PAPER_MULTI_SCALES",
    "SINGLE_SCALE",
    "TABLES",
    "TASK_COCO",
    "TASK_MPII",
    "TASK_SEGMENTATION",
    "Column",
    "OurRow",
    "PaperRow",
    "PaperTable",
    "PoseEvaluationOptions",
    "PoseTestSettings",
    "RowResult",
    "TableReport",
    "evaluate_pose_rows",
    "evaluate_segmentation_row",
    "evaluated_split_note",
    "format_markdown",
    "get_table",
    "load_experiment",
    "normalize_key",
    "parse_metrics_argument",
    "pose_test_settings",
    "read_metrics_file",
    "read_metrics_rows",
    "report_json",
    "resolve_checkpoint",
    "row_result",
    "run_smoke",
    "synthetic_val_split",
    "train_smoke_run",
    "training_config_of",
    "write_report",
]
