"""Our numbers for a table row, read from a metrics file or taken from a metrics dict.

``read_metrics_file(path)`` reads a ``metrics.json`` of ``tools/evaluate.py`` or of a training
evaluation (non-numeric entries such as 'refine_checkpoint' are skipped), a COCO-server-style
JSON (pycocotools ``stats`` list or 'AP_50'/'AP_medium'-style names), CodaLab's ``scores.txt``
("AP: 0.655" lines) or the text ``COCOeval.summarize()`` prints. ``row_result`` matches such
metrics to a table's columns. Metrics are fractions in [0, 1] as this package writes them;
missing or undefined values are listed, not guessed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from associative_embedding.reproduce.tables import COCO_STATS_ORDER, OurRow, PaperTable


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

