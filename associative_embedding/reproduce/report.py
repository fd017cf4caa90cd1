"""A table with our rows filled: the printed Markdown table, its JSON, and both on disk."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from typing import Any

from associative_embedding.reproduce.metrics_io import RowResult
from associative_embedding.reproduce.tables import PaperTable


@dataclasses.dataclass
class TableReport:
    """A table with our rows filled (``results`` by row key; rows not run are absent)."""

    table: PaperTable
    results: dict[str, RowResult] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)



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

