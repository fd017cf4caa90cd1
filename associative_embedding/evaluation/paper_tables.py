"""The paper's result tables (Newell, Huang, Deng 2017, Tables 1-5) and the runs that fill them.

``tools/reproduce.py --table N`` prints one table in the paper's layout: the paper's rows (the
other methods it compares with, then its "Our method" rows) and, under each "Our method" row,
the same metrics measured with this package. The pieces, each usable alone:

``TABLES`` / ``get_table(number)``
    A ``PaperTable``: caption, columns, the paper's numbers as printed (percent for Tables 1
    and 5, fractions for Tables 2-4), the evaluation setting of each of our rows (single- or
    multi-scale, with or without the single-person refinement) and what the paper evaluated
    on (Tables 1-4 on test sets whose annotations are withheld).
``read_metrics_file(path)`` / ``row_result(table, row, metrics, source)``
    Our numbers from a metrics file: a ``metrics.json`` of ``tools/evaluate.py`` or of a
    training evaluation (non-numeric entries such as 'refine_checkpoint' are skipped), a
    COCO-server-style JSON (pycocotools ``stats`` list or 'AP_50'/'AP_medium'-style names),
    CodaLab's ``scores.txt`` ("AP: 0.655" lines) or the text ``COCOeval.summarize()`` prints.
    Metrics are fractions in [0, 1] as this package writes them; missing or undefined values
    are listed, not guessed.
``evaluate_pose_rows`` / ``evaluate_segmentation_row``
    Run the evaluations in process with the library (``evaluation.predictor``,
    ``refinement.refine.load_refiner``, ``segmentation.evaluation_hook``): the decoder settings
    come from the checkpoint's training config (``training.config.decoder_options``), the test
    settings from the paper (official multi-scale set 2, 1, 0.5, flip test). Rows at the same
    scales share one network pass (the refined row refines the unrefined row's poses).
``run_smoke(table, work_dir)``
    The whole chain on tiny data: trains the ':smoke' experiments for 2 steps
    (``training.trainer.make_trainer``) and evaluates the table's rows on their validation split.
``format_markdown(report)`` / ``report_json(report)`` / ``write_report(report, output_dir)``
    The printed table (Markdown), its JSON, and both written to disk.

The paper's rows, settings and numbers were checked against the paper's text
(../shared/paper/associative_embedding_paper.txt) and ../shared/REFERENCE.md; the test
``tests/evaluation/test_paper_tables.py`` re-reads them from the paper when it is present.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import pathlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from absl import logging

# ------------------------------------------------------------------------------ table layouts

#: The official multi-scale test set (pose-ae-train test.py, REFERENCE.md), flip test on.
PAPER_MULTI_SCALES = (2.0, 1.0, 0.5)
SINGLE_SCALE = (1.0,)
#: pycocotools' ``COCOeval.stats`` order for keypoints.
COCO_STATS_ORDER = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")

TASK_MPII = "mpii"
TASK_COCO = "coco"
TASK_SEGMENTATION = "segmentation"

#: Row key of the single "Our method" row of Tables 1, 2, 3 and 5.
OURS = "ours"


@dataclasses.dataclass(frozen=True)
class Column:
    """One metric column.

    Attributes:
        name: the paper's column header.
        keys: metrics-dict keys that hold our value, the package's own key first; matched after
            normalisation (lower case, letters and digits only: 'AP_medium' == 'apmedium').
    """

    name: str
    keys: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class PaperRow:
    """A row of another method, as the paper prints it (None: the paper prints '–')."""

    label: str
    values: tuple[float | None, ...]


@dataclasses.dataclass(frozen=True)
class OurRow:
    """An "Our method" row: the paper's numbers and how we evaluate it.

    Attributes:
        key: our name of the row ('ours', or 'single', 'single_refine', 'multi',
            'multi_refine' in Table 4); the ROW of ``--metrics=ROW=path``.
        label: the paper's label of the row.
        paper: the paper's numbers, one per column, in the paper's units.
        multi_scale: evaluated at the paper's multi-scale set (else at scale 1); pose only.
        refine: evaluated with the single-person refinement network; pose only.
    """

    key: str
    label: str
    paper: tuple[float, ...]
    multi_scale: bool = True
    refine: bool = True


@dataclasses.dataclass(frozen=True)
class PaperTable:
    """One of the paper's result tables.

    Attributes:
        number: 1-5.
        caption: the paper's caption.
        task: 'mpii', 'coco' or 'segmentation' (which evaluator fills our rows).
        columns: the metric columns.
        rows: the "Our method" rows.
        others: the other methods' rows the paper compares with.
        percent: the paper prints percent (our fractions are multiplied by 100).
        decimals: digits after the point, as printed.
        paper_split: what the paper evaluated on.
        annotations_public: whether that split's annotations are public (else only the
            benchmark's server can score it, and we evaluate on the split given instead).
        server: where the paper's split is scored when its annotations are withheld.
    """

    number: int
    caption: str
    task: str
    columns: tuple[Column, ...]
    rows: tuple[OurRow, ...]
    others: tuple[PaperRow, ...]
    percent: bool
    decimals: int
    paper_split: str
    annotations_public: bool
    server: str = ""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def row(self, key: str) -> OurRow:
        """The "Our method" row called ``key``.

        Raises:
            KeyError: naming the table's row keys.
        """
        for row in self.rows:
            if row.key == key:
                return row
        raise KeyError(
            f"Table {self.number} has no row {key!r}; its rows are "
            f"{', '.join(row.key for row in self.rows)}."
        )


def _coco_columns() -> tuple[Column, ...]:
    aliases = {
        "AP": ("AP",),
        "AP50": ("AP50", "AP_50", "AP@0.5", "AP.5"),
        "AP75": ("AP75", "AP_75", "AP@0.75", "AP.75"),
        "APM": ("APM", "AP_medium", "AP_m"),
        "APL": ("APL", "AP_large", "AP_l"),
        "AR": ("AR",),
        "AR50": ("AR50", "AR_50", "AR@0.5", "AR.5"),
        "AR75": ("AR75", "AR_75", "AR@0.75", "AR.75"),
        "ARM": ("ARM", "AR_medium", "AR_m"),
        "ARL": ("ARL", "AR_large", "AR_l"),
    }
    return tuple(Column(name, keys) for name, keys in aliases.items())


_COCO_COLUMNS = _coco_columns()
_MPII_COLUMNS = (
    Column("Head", ("AP_head", "head")),
    Column("Shoulder", ("AP_shoulder", "shoulder")),
    Column("Elbow", ("AP_elbow", "elbow")),
    Column("Wrist", ("AP_wrist", "wrist")),
    Column("Hip", ("AP_hip", "hip")),
    Column("Knee", ("AP_knee", "knee")),
    Column("Ankle", ("AP_ankle", "ankle")),
    # evaluation/mpii_multi_person.py: 'AP' is the mean over the 14 scored joints (Total).
    Column("Total", ("AP", "AP_total", "total", "mAP")),
)
_SEGMENTATION_COLUMNS = (
    Column("IOU=0.5", ("mAPr@0.5", "mAPr_0.5", "IOU=0.5")),
    Column("IOU=0.7", ("mAPr@0.7", "mAPr_0.7", "IOU=0.7")),
)

_COCO_TEST_SERVER = (
    "the COCO keypoint evaluation server (submit keypoint_results.json of the test images)"
)

TABLES: dict[int, PaperTable] = {
    1: PaperTable(
        number=1,
        caption="Table 1. Results (AP) on MPII Multi-Person.",
        task=TASK_MPII,
        columns=_MPII_COLUMNS,
        rows=(OurRow(OURS, "Our method", (92.1, 89.3, 78.9, 69.8, 76.2, 71.6, 64.7, 77.5)),),
        others=(
            PaperRow("Iqbal&Gall, ECCV16 [29]", (58.4, 53.9, 44.5, 35.0, 42.2, 36.7, 31.1, 43.1)),
            PaperRow(
                "Insafutdinov et al., ECCV16 [28]", (78.4, 72.5, 60.2, 51.0, 57.2, 52.0, 45.4, 59.5)
            ),
            PaperRow(
                "Insafutdinov et al., arXiv16a [45]",
                (89.4, 84.5, 70.4, 59.3, 68.9, 62.7, 54.6, 70.0),
            ),
            PaperRow(
                "Levinkov et al., CVPR17 [33]", (89.8, 85.2, 71.8, 59.6, 71.1, 63.0, 53.5, 70.6)
            ),
            PaperRow(
                "Insafutdinov et al., CVPR17 [27]", (88.8, 87.0, 75.9, 64.9, 74.2, 68.8, 60.5, 74.3)
            ),
            PaperRow("Cao et al., CVPR17 [6]", (91.2, 87.6, 77.7, 66.8, 75.4, 68.9, 61.7, 75.6)),
            PaperRow("Fang et al., arXiv17 [15]", (88.4, 86.5, 78.6, 70.4, 74.4, 73.0, 65.8, 76.7)),
        ),
        percent=True,
        decimals=1,
        paper_split="MPII Multi-Person test (1758 groups)",
        annotations_public=False,
        server="the MPII Human Pose benchmark (predictions are submitted to its authors)",
    ),
    2: PaperTable(
        number=2,
        caption="Table 2. Results on MS-COCO test-std, excluding systems trained with external "
        "data.",
        task=TASK_COCO,
        columns=_COCO_COLUMNS,
        rows=(
            OurRow(
                OURS, "Our method",
                (0.663, 0.865, 0.727, 0.613, 0.732, 0.715, 0.897, 0.772, 0.662, 0.787),
            ),
        ),
        others=(
            PaperRow(
                "CMU-Pose [6]",
                (0.611, 0.844, 0.667, 0.558, 0.684, 0.665, 0.872, 0.718, 0.602, 0.749),
            ),
            PaperRow(
                "G-RMI [42]",
                (0.643, 0.846, 0.704, 0.614, 0.696, 0.698, 0.885, 0.755, 0.644, 0.771),
            ),
        ),
        percent=False,
        decimals=3,
        paper_split="MS-COCO test-std",
        annotations_public=False,
        server=_COCO_TEST_SERVER,
    ),
    3: PaperTable(
        number=3,
        caption="Table 3. Results on MS-COCO test-dev, excluding systems trained with external "
        "data.",
        task=TASK_COCO,
        columns=_COCO_COLUMNS,
        rows=(
            OurRow(
                OURS, "Our method",
                (0.655, 0.868, 0.723, 0.606, 0.726, 0.702, 0.895, 0.760, 0.646, 0.781),
            ),
        ),
        others=(
            PaperRow(
                "CMU-Pose [6]",
                (0.618, 0.849, 0.675, 0.571, 0.682, 0.665, 0.872, 0.718, 0.606, 0.746),
            ),
            PaperRow(
                "Mask-RCNN [25]",
                (0.627, 0.870, 0.684, 0.574, 0.711, None, None, None, None, None),
            ),
            PaperRow(
                "G-RMI [42]",
                (0.649, 0.855, 0.713, 0.623, 0.700, 0.697, 0.887, 0.755, 0.644, 0.771),
            ),
        ),
        percent=False,
        decimals=3,
        paper_split="MS-COCO test-dev",
        annotations_public=False,
        server=_COCO_TEST_SERVER,
    ),
    4: PaperTable(
        number=4,
        caption="Table 4. Effect of multi-scale evaluation and single person refinement on "
        "MS-COCO test-dev.",
        task=TASK_COCO,
        columns=_COCO_COLUMNS[:5],
        rows=(
            OurRow("single", "single scale", (0.566, 0.818, 0.618, 0.498, 0.670),
                   multi_scale=False, refine=False),
            OurRow("single_refine", "single scale + refine", (0.628, 0.846, 0.692, 0.575, 0.706),
                   multi_scale=False, refine=True),
            OurRow("multi", "multi scale", (0.630, 0.857, 0.689, 0.580, 0.704),
                   multi_scale=True, refine=False),
            OurRow("multi_refine", "multi scale + refine", (0.655, 0.868, 0.723, 0.606, 0.726),
                   multi_scale=True, refine=True),
        ),
        others=(),
        percent=False,
        decimals=3,
        paper_split="MS-COCO test-dev",
        annotations_public=False,
        server=_COCO_TEST_SERVER,
    ),
    5: PaperTable(
        number=5,
        caption="Table 5. Semantic instance segmentation results (mAP) on PASCAL VOC 2012 "
        "validation images.",
        task=TASK_SEGMENTATION,
        columns=_SEGMENTATION_COLUMNS,
        rows=(OurRow(OURS, "Our method", (35.1, 26.0), multi_scale=True, refine=False),),
        others=(
            PaperRow("SDS [22]", (49.7, 25.3)),
            PaperRow("Hypercolumn [23]", (60.0, 40.4)),
            PaperRow("CFM [11]", (60.7, 39.6)),
            PaperRow("MPA [36]", (61.8, None)),
            PaperRow("MNC [12]", (63.5, 41.5)),
        ),
        percent=True,
        decimals=1,
        paper_split="PASCAL VOC 2012 val (1,449 images)",
        annotations_public=True,
    ),
}


def get_table(number: int) -> PaperTable:
    """The paper's Table ``number``.

    Raises:
        ValueError: for a number other than 1-5.
    """
    try:
        return TABLES[int(number)]
    except (KeyError, ValueError):
        raise ValueError(f"the paper has Tables 1-5, got {number!r}.") from None


# ------------------------------------------------------------------------------ our numbers


@dataclasses.dataclass
class RowResult:
    """Our numbers for one "Our method" row.

    Attributes:
        row: the row.
        values: one per column in the paper's units; None where missing or undefined.
        source: where the numbers come from ("read from PATH" / "evaluated on ...").
        missing: columns whose key is in none of the metrics.
        undefined: columns whose value is null, NaN or negative (pycocotools' -1: no ground
            truth in that area range).
        details: the evaluation settings and counts (JSON-serialisable).
    """

    row: OurRow
    values: tuple[float | None, ...]
    source: str
    missing: tuple[str, ...] = ()
    undefined: tuple[str, ...] = ()
    details: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class TableReport:
    """A table with our rows filled (``results`` by row key; rows not run are absent)."""

    table: PaperTable
    results: dict[str, RowResult] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)


def normalize_key(key: str) -> str:
    """'AP_medium' -> 'apmedium', 'mAPr@0.5' -> 'mapr05' (lower case, letters and digits)."""
    return re.sub(r"[^a-z0-9]", "", str(key).lower())


def _number(value: Any) -> float | None:
    """A float for int/float values (NaN for None), None for anything else (str, bool, lists)."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def read_metrics_file(path: str | os.PathLike) -> dict[str, float]:
    """Reads our numbers for one row from a metrics file.

    Accepted formats:
        * a JSON object of metrics (``metrics.json`` of ``tools/evaluate.py`` or of a training
          run): numeric entries are kept, ``null`` becomes NaN, other entries (strings such as
          'refine_checkpoint', lists such as 'history', booleans) are skipped;
        * such an object with pycocotools' ``stats`` list (the 10 keypoint metrics in
          ``COCO_STATS_ORDER``), as some evaluation-server downloads give it;
        * a text file of "NAME: value" (or "NAME = value") lines, as CodaLab's scores.txt, or
          of the lines pycocotools' ``COCOeval.summarize()`` prints.

    Raises:
        FileNotFoundError: naming the path.
        ValueError: naming the path when it holds no metrics (e.g. a results list of
            detections, which needs scoring first).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"metrics file not found: {path}")
    with open(path) as handle:
        text = handle.read()
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        payload = None
        metrics = _read_text_metrics(text)
        if not metrics:
            raise ValueError(
                f"{path}: neither JSON nor 'NAME: value' lines; expected a metrics.json of "
                "tools/evaluate.py or an evaluation server's scores."
            ) from None
        return metrics
    if isinstance(payload, list):
        raise ValueError(
            f"{path}: a JSON list (a results file of detections?), not metrics. Score it first: "
            "tools/evaluate.py for a split with annotations, the evaluation server for "
            "test-dev/test-std; then pass the metrics it returns."
        )
    if not isinstance(payload, dict):
        raise ValueError(
            f"{path}: expected a JSON object of metrics, got {type(payload).__name__}."
        )
    metrics: dict[str, float] = {}
    for key, value in payload.items():
        number = _number(value)
        if number is not None:
            metrics[str(key)] = number
    stats = payload.get("stats")
    if isinstance(stats, list) and len(stats) == len(COCO_STATS_ORDER):
        for name, value in zip(COCO_STATS_ORDER, stats, strict=True):
            number = _number(value)
            if number is not None:
                metrics.setdefault(name, number)
    return metrics


_COCOEVAL_SUMMARY_LINE = re.compile(
    r"Average (?:Precision|Recall)\s*\((AP|AR)\)\s*@\[\s*IoU=([\d.:]+)\s*\|\s*area=\s*(\w+)\s*\|"
    r"[^\]]*\]\s*=\s*([-+]?\d*\.?\d+)"
)
_COCOEVAL_IOUS = {"0.50:0.95": "", "0.50": "50", "0.75": "75"}
_COCOEVAL_AREAS = {"all": "", "small": "S", "medium": "M", "large": "L"}


def _read_text_metrics(text: str) -> dict[str, float]:
    """'NAME: value' / 'NAME = value' lines (CodaLab scores.txt) and the lines pycocotools'
    ``COCOeval.summarize()`` prints (' Average Precision (AP) @[ IoU=0.50 | area= all | ... ] =
    0.868' -> AP50)."""
    metrics = {}
    pattern = re.compile(r"^\s*([^:=]+?)\s*[:=]\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
    for line in text.splitlines():
        summary = _COCOEVAL_SUMMARY_LINE.search(line)
        if summary:
            kind, iou, area, value = summary.groups()
            if iou in _COCOEVAL_IOUS and area in _COCOEVAL_AREAS:
                metrics[kind + _COCOEVAL_IOUS[iou] + _COCOEVAL_AREAS[area]] = float(value)
            continue
        match = pattern.match(line)
        if match:
            metrics[match.group(1)] = float(match.group(2))
    return metrics


def row_result(
    table: PaperTable,
    row: OurRow,
    metrics: Mapping[str, Any],
    source: str,
    details: Mapping[str, Any] | None = None,
) -> RowResult:
    """Our row from a metrics dict (fractions in [0, 1], as this package writes them).

    Args:
        table: the table.
        row: one of its "Our method" rows.
        metrics: {key: value}; keys matched to the columns through ``Column.keys`` after
            ``normalize_key``; non-numeric values are ignored.
        source: where the metrics come from (named in messages and in the printed table).
        details: evaluation settings and counts to keep with the row.

    Raises:
        ValueError: naming ``source`` when no column of the table is in ``metrics`` (the wrong
            kind of metrics, e.g. a COCO file for the MPII table) or when a value exceeds 1 (a
            percentage where a fraction is expected).
    """
    by_key: dict[str, float] = {}
    for key, value in metrics.items():
        number = _number(value)
        if number is not None:
            by_key.setdefault(normalize_key(key), number)
    values: list[float | None] = []
    missing, undefined = [], []
    for column in table.columns:
        found = next(
            (by_key[normalize_key(key)] for key in column.keys if normalize_key(key) in by_key),
            None,
        )
        if found is None:
            missing.append(column.name)
            values.append(None)
        elif not math.isfinite(found) or found < 0:
            undefined.append(column.name)
            values.append(None)
        elif found > 1.0:
            raise ValueError(
                f"{source}: {column.name} = {found:g}, but metrics must be fractions in [0, 1] "
                "as tools/evaluate.py writes them (divide percentages by 100)."
            )
        else:
            values.append(found * 100.0 if table.percent else found)
    if len(missing) == len(table.columns):
        expected = ", ".join(column.keys[0] for column in table.columns)
        present = ", ".join(sorted(str(key) for key in metrics)) or "none"
        raise ValueError(
            f"{source}: none of Table {table.number}'s metrics ({expected}) is there; keys "
            f"present: {present}."
        )
    return RowResult(
        row=row,
        values=tuple(values),
        source=source,
        missing=tuple(missing),
        undefined=tuple(undefined),
        details=dict(details or {}),
    )


def parse_metrics_argument(table: PaperTable, entries: Sequence[str]) -> dict[str, str]:
    """``--metrics`` entries 'ROW=path' (or a bare 'path' for a one-row table) -> {row: path}.

    Raises:
        ValueError: on an unknown row, a repeated row, or a bare path for Table 4.
    """
    paths: dict[str, str] = {}
    row_keys = [row.key for row in table.rows]
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        key, separator, path = entry.partition("=")
        if not separator or os.path.exists(entry):
            if len(row_keys) != 1:
                raise ValueError(
                    f"--metrics={entry!r}: Table {table.number} has rows {', '.join(row_keys)}; "
                    "give ROW=path for each."
                )
            key, path = row_keys[0], entry
        key = key.strip()
        if key not in row_keys:
            raise ValueError(
                f"--metrics: Table {table.number} has no row {key!r}; its rows are "
                f"{', '.join(row_keys)}."
            )
        if key in paths:
            raise ValueError(f"--metrics: row {key!r} given twice.")
        paths[key] = path.strip()
    return paths


def read_metrics_rows(table: PaperTable, paths: Mapping[str, str]) -> dict[str, RowResult]:
    """``row_result`` of each {row key: metrics file} (``read_metrics_file`` formats)."""
    results = {}
    for key, path in paths.items():
        row = table.row(key)
        results[key] = row_result(table, row, read_metrics_file(path), f"read from {path}")
    return results


# ------------------------------------------------------------------------------ formatting


def _format_value(value: float | None, decimals: int, absent: str = "n/a") -> str:
    return absent if value is None else f"{value:.{decimals}f}"


def _markdown_table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table padded to aligned columns (readable as plain text too)."""
    widths = [max(len(str(cells[i])) for cells in [header, *lines]) for i in range(len(header))]

    def render(cells: Sequence[str]) -> str:
        padded = [
            str(cell).ljust(width) if index < 2 else str(cell).rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(
        "-" * (width + 2) if index < 2 else "-" * (width + 1) + ":"
        for index, width in enumerate(widths)
    ) + "|"
    return [render(header), rule, *(render(cells) for cells in lines)]


def evaluated_split_note(table: PaperTable, description: str, *, synthetic: bool = False) -> str:
    """What our rows were evaluated on; says so when that is not the paper's split (whose
    annotations may be withheld) or synthetic data."""
    note = f"Ours: {description}."
    if not table.annotations_public:
        note += (
            f" This is NOT the paper's {table.paper_split}: its annotations are not public and "
            f"only {table.server} scores it."
        )
    if synthetic:
        note += (
            " Synthetic data: the numbers show what each step of the pipeline does, they are "
            "not comparable with the paper's."
        )
    return note


def format_markdown(report: TableReport) -> str:
    """The table in the paper's layout: the other methods, then each "Our method" row as the
    paper printed it ('paper') and as measured here ('ours'), then notes on what ours are."""
    table = report.table
    header = ["Method", "", *table.column_names]
    lines = []
    for other in table.others:
        lines.append(
            # The paper prints '–' where a method reports no number.
            [other.label, "paper",
             *(_format_value(value, table.decimals, "–") for value in other.values)]
        )
    for row in table.rows:
        lines.append(
            [row.label, "paper", *(_format_value(value, table.decimals) for value in row.paper)]
        )
        result = report.results.get(row.key)
        if result is None:
            lines.append(["", "ours", *(["not run"] * len(table.columns))])
        else:
            lines.append(
                ["", "ours", *(_format_value(value, table.decimals) for value in result.values)]
            )
    blocks = [f"## {table.caption}", "\n".join(_markdown_table(header, lines))]
    if table.percent:
        blocks.append("Numbers in percent (our metrics are fractions, multiplied by 100).")
    blocks.extend(report.notes)
    row_notes = []
    for row in table.rows:
        result = report.results.get(row.key)
        if result is None:
            continue
        line = f"- {row.label}: {result.source}"
        settings = result.details.get("settings")
        if settings:
            line += f"; {settings}"
        if result.missing:
            line += f"; MISSING in the metrics: {', '.join(result.missing)}"
        if result.undefined:
            line += (
                f"; undefined (null, NaN or -1, e.g. no ground truth): "
                f"{', '.join(result.undefined)}"
            )
        row_notes.append(line)
    if row_notes:
        blocks.append("\n".join(row_notes))
    return "\n\n".join(blocks) + "\n"


def report_json(report: TableReport) -> dict[str, Any]:
    """The report as a JSON-serialisable dict (values in the paper's units; null = n/a)."""
    table = report.table
    rows = []
    for row in table.rows:
        result = report.results.get(row.key)
        entry: dict[str, Any] = {
            "key": row.key,
            "label": row.label,
            "paper": dict(zip(table.column_names, row.paper, strict=True)),
            "ours": None,
        }
        if result is not None:
            entry.update(
                ours=dict(zip(table.column_names, result.values, strict=True)),
                source=result.source,
                missing=list(result.missing),
                undefined=list(result.undefined),
                details=result.details,
            )
        rows.append(entry)
    return {
        "table": table.number,
        "caption": table.caption,
        "columns": list(table.column_names),
        "units": "percent" if table.percent else "fraction",
        "paper_split": table.paper_split,
        "paper_split_annotations_public": table.annotations_public,
        "rows": rows,
        "other_methods": [
            {
                "label": other.label,
                "paper": dict(zip(table.column_names, other.values, strict=True)),
            }
            for other in table.others
        ],
        "notes": list(report.notes),
    }


def write_report(report: TableReport, output_dir: str | os.PathLike) -> tuple[str, str]:
    """Writes OUTPUT_DIR/table<N>.md and OUTPUT_DIR/table<N>.json; returns their paths."""
    os.makedirs(output_dir, exist_ok=True)
    stem = os.path.join(os.fspath(output_dir), f"table{report.table.number}")
    with open(stem + ".md", "w") as handle:
        handle.write(format_markdown(report))
    with open(stem + ".json", "w") as handle:
        json.dump(report_json(report), handle, indent=2)
    return stem + ".md", stem + ".json"


# ------------------------------------------------------------------------------ checkpoints


def resolve_checkpoint(path: str | os.PathLike) -> str:
    """What ``load_predictor`` should load for ``path``.

    A ``tools/train.py`` work dir gives its best checkpoint (WORKDIR/best/model) or, before any
    evaluation kept one, its newest checkpoint (with a warning). Anything else (a checkpoint
    prefix, a '.keras' file, a SavedModel directory) is returned as is.

    Raises:
        FileNotFoundError: naming the path when it does not exist, or a work dir without any
            checkpoint.
    """
    import tensorflow as tf

    path = os.fspath(path)
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "config.json")):
        best = os.path.join(path, "best", "model")
        if tf.io.gfile.exists(best + ".index"):
            return best
        latest = tf.train.latest_checkpoint(os.path.join(path, "checkpoints"))
        if latest is None:
            raise FileNotFoundError(f"{path}: a training work dir without any checkpoint.")
        logging.warning("%s has no best checkpoint yet; using its newest, %s.", path, latest)
        return latest
    if not os.path.exists(path) and not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return path


def training_config_of(path: str | os.PathLike) -> Any | None:
    """The training config of a work dir or checkpoint prefix (None for a '.keras' file or a
    SavedModel, which carry none)."""
    from associative_embedding.core.run_dir import read_training_config

    try:
        return read_training_config(os.fspath(path))
    except FileNotFoundError:
        return None


def synthetic_val_split(checkpoint: str | os.PathLike) -> tuple[str, str]:
    """(annotations, images) of the validation split a synthetic training run generated.

    The run's ``dataset.synthetic_dir`` or, when empty, WORKDIR/synthetic (people) or
    WORKDIR/synthetic_shapes (shapes), as ``training.inputs`` / ``segmentation.trainer`` do.

    Raises:
        ValueError: when the run was not trained on synthetic data.
        FileNotFoundError: naming the missing annotation file.
    """
    from associative_embedding.core.run_dir import read_training_config, training_workdir
    from associative_embedding.data import synthetic, synthetic_shapes

    checkpoint = os.fspath(checkpoint)
    config = read_training_config(checkpoint)
    kind = config.dataset.kind
    workdir = training_workdir(checkpoint)
    if kind == "synthetic":
        root = config.dataset.get("synthetic_dir") or os.path.join(workdir, "synthetic")
        annotations = synthetic.annotation_path(root, "val")
    elif kind == "synthetic_shapes":
        root = config.dataset.get("synthetic_dir") or os.path.join(workdir, "synthetic_shapes")
        annotations = synthetic_shapes.shapes_annotation_path(root, "val")
    else:
        raise ValueError(
            f"{checkpoint}: trained on dataset.kind={kind!r}, not on synthetic data; give the "
            "split with --dataset_root or --annotations/--images instead of --synthetic."
        )
    if not annotations.is_file():
        raise FileNotFoundError(
            f"{checkpoint}: its synthetic validation split {annotations} is missing (it is "
            "generated by the training run; rerun tools/train.py with the same config)."
        )
    return os.fspath(annotations), os.path.join(root, "val")


# ------------------------------------------------------------------------------ pose evaluation


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
        input_size: long side of the scale-1 input; None: the run's eval.input_size.
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
        from associative_embedding.evaluation.predictor import InferenceConfig

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
    from associative_embedding.training.config import base_config, decoder_options

    if config is None:
        config = base_config()
    else:
        task = config_task(config)
        if task != "pose":
            raise ValueError(
                f"{options.checkpoint}: a {task} run, not a multi-person pose model"
                + (" (Table 5 takes segmentation runs)." if task == "segmentation" else ".")
            )
    evaluation = config.eval
    flip = options.flip
    if flip is None:
        flip = float(config.input.get("flip_probability", 0.5)) > 0
    return PoseTestSettings(
        input_size=int(evaluation.input_size if options.input_size is None else options.input_size),
        output_stride=int(config.input.get("output_stride", 4)),
        flip=bool(flip),
        fusion=str(options.fusion or evaluation.get("fusion", "official")),
        decoder=decoder_options(evaluation),
    )


class _KeepUnrefined:
    """A refiner wrapper for ``PoseEstimator`` that remembers the poses before refinement, so
    one network pass gives both the row without and the row with refinement."""

    def __init__(self, refiner: Callable) -> None:
        self.refiner = refiner
        self.unrefined: dict[str, Any] | None = None

    def __call__(self, image, poses, scores):
        self.unrefined = {"poses": poses.copy(), "scores": scores.copy()}
        return self.refiner(image, poses, scores)


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

    from associative_embedding.evaluation import predictor as predictor_lib
    from associative_embedding.modeling import loading

    if table.task == TASK_SEGMENTATION:
        raise ValueError("Table 5 is instance segmentation: use evaluate_segmentation_row.")
    split = predictor_lib.read_split(annotations, images)
    expected = "mpii" if table.task == TASK_MPII else None
    if expected and split.keypoint_info.name != expected:
        raise ValueError(
            f"Table {table.number} is MPII; {annotations} has {split.keypoint_info.num_joints} "
            f"joints ({split.keypoint_info.name})."
        )
    if table.task == TASK_COCO and split.annotation_format != predictor_lib.FORMAT_COCO:
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
        from associative_embedding.refinement.refine import load_refiner

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
    if split.annotation_format == predictor_lib.FORMAT_COCO:
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
            from associative_embedding.refinement.refine import RefinementStats

            refiner.stats = RefinementStats()
        evaluators = {}
        for row in group:
            row_dir = os.path.join(os.fspath(output_dir), f"table{table.number}", row.key)
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
            row_dir = os.path.join(os.fspath(output_dir), f"table{table.number}", row.key)
            metrics_path = os.path.join(row_dir, "metrics.json")
            predictor_lib.write_json(metrics_path, {**metrics, **details})
            report.results[row.key] = row_result(
                table, row, metrics, f"evaluated ({metrics_path})", details
            )
    return report


def _pose_evaluator(split: Any, coco_ground_truth: Any, output_dir: str) -> Any:
    from associative_embedding.evaluation import predictor as predictor_lib
    from associative_embedding.evaluation.coco_keypoints import CocoKeypointEvaluator

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
    from associative_embedding.core.run_dir import config_task
    from associative_embedding.evaluation.predictor import write_json
    from associative_embedding.modeling.loading import load_predictor
    from associative_embedding.segmentation.evaluation_hook import (
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
        config.eval.input_size = int(input_size)
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
    row_dir = os.path.join(os.fspath(output_dir), f"table{table.number}", row.key)
    segmenter = segmenter_from_config(load_predictor(resolved), config)
    metrics, _ = evaluate_segmenter(
        segmenter, records, categories, row_dir, progress=None if progress else True
    )
    scales_used = tuple(config.eval.scales)
    details = {
        "settings": (
            f"scales ({_describe_scales(scales_used)}) of input {config.eval.input_size}, "
            f"proposals merged by NMS; {len(records)} images"
        ),
        "checkpoint": resolved,
        "scales": list(scales_used),
        "input_size": int(config.eval.input_size),
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


# ------------------------------------------------------------------------------ smoke chain

#: The experiments folder beside the package (repository layout).
EXPERIMENTS_DIR = pathlib.Path(__file__).resolve().parents[2] / "experiments"


def load_experiment(spec: str) -> Any:
    """An experiment config from 'NAME.py[:variant]' in ``EXPERIMENTS_DIR`` (or a path), as
    ``tools/train.py --config`` reads it.

    Raises:
        FileNotFoundError: naming the missing config file.
    """
    file_name, _, variant = spec.partition(":")
    path = pathlib.Path(file_name)
    if not path.is_absolute() and not path.is_file():
        path = EXPERIMENTS_DIR / file_name
    if not path.is_file():
        raise FileNotFoundError(f"experiment config not found: {path}")
    module_spec = importlib.util.spec_from_file_location(f"_experiment_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(variant)


def train_smoke_run(spec: str, workdir: str, overrides: Callable[[Any], None] | None = None) -> str:
    """Trains ``spec`` (a ':smoke' experiment) into ``workdir``; returns the work dir.

    A work dir that already holds the finished run is resumed, i.e. only re-evaluated.
    """
    from associative_embedding.training.trainer import make_trainer

    config = load_experiment(spec)
    if overrides is not None:
        overrides(config)
    logging.info("smoke: training %s into %s", spec, workdir)
    make_trainer(config, workdir).train()
    return workdir


def _share_synthetic_people(root: str) -> Callable[[Any], None]:
    def override(config: Any) -> None:
        config.dataset.synthetic_dir = root

    return override


def run_smoke(
    table_number: int, work_dir: str | os.PathLike, *, progress: bool = False
) -> TableReport:
    """The whole chain on tiny data: train the ':smoke' experiments (2 steps each), then
    evaluate the table's rows on their validation split.

    Tables 2-4: synthetic_pose:smoke and synthetic_refine:smoke on one shared set of synthetic
    people (WORK_DIR/synthetic), evaluated on its 4 validation images (Table 4: all four rows).
    Table 1: mpii_hg4_512:smoke and a refinement run on the same 5 MPII sample images
    (../shared/data/mmpose_samples/mpii; train = val). Table 5: synthetic_shapes_seg:smoke.
    The numbers of 2-step models are meaningless; the chain and the layout are what is tested.

    Returns:
        The report, with a note saying it is a smoke run.
    """
    table = get_table(table_number)
    work_dir = os.fspath(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    smoke_note = (
        "SMOKE RUN: 2-step models on tiny data; the numbers only show that the chain runs."
    )
    if table.task == TASK_SEGMENTATION:
        run = train_smoke_run(
            "synthetic_shapes_seg.py:smoke", os.path.join(work_dir, "segmentation")
        )
        annotations, images = synthetic_val_split(run)
        report = evaluate_segmentation_row(
            table, run, work_dir, annotations=annotations, images=images, progress=progress,
            split_description=f"evaluated on the synthetic shapes {annotations}",
            synthetic_data=True,
        )
    else:
        if table.task == TASK_MPII:
            samples = load_experiment("mpii_hg4_512.py:smoke").dataset.val_annotations
            if not os.path.isfile(samples):
                raise FileNotFoundError(
                    f"Table 1's smoke run trains on the MPII samples {samples} (../shared/data "
                    "beside the repository), which are absent."
                )
            pose = train_smoke_run("mpii_hg4_512.py:smoke", os.path.join(work_dir, "pose_mpii"))
            refine = train_smoke_run(
                "mpii_refine_hg.py:smoke", os.path.join(work_dir, "refine_mpii")
            )
            config = load_experiment("mpii_hg4_512.py:smoke").dataset
            annotations, images = config.val_annotations, config.val_images
            description = f"evaluated on the MPII samples {annotations}"
        else:
            shared = _share_synthetic_people(os.path.join(work_dir, "synthetic"))
            pose = train_smoke_run("synthetic_pose.py:smoke", os.path.join(work_dir, "pose"),
                                   shared)
            refine = train_smoke_run(
                "synthetic_refine.py:smoke", os.path.join(work_dir, "refine"), shared
            )
            annotations, images = synthetic_val_split(pose)
            description = f"evaluated on the synthetic people {annotations}"
        options = PoseEvaluationOptions(
            checkpoint=pose, refine_checkpoint=refine, progress=progress
        )
        report = evaluate_pose_rows(
            table, annotations, images, options, work_dir, split_description=description,
            synthetic_data=table.task != TASK_MPII,
        )
    report.notes.insert(0, smoke_note)
    return report
