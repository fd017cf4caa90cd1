"""End-to-end tests of tools/reproduce.py (the README's command: --table 4 --smoke)."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

from associative_embedding.reproduce import get_table

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[2]
TOOL = PROJECT_ROOT / "tools" / "reproduce.py"


def run_tool(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(
        [sys.executable, str(TOOL), *args, "--noprogress"],
        capture_output=True, text=True, timeout=timeout, env=environment, cwd=PROJECT_ROOT,
    )


def table_cells(stdout: str) -> list[list[str]]:
    """The printed table's rows as cell lists (header and rule excluded)."""
    rows = [line for line in stdout.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]]


NUMBER = re.compile(r"^\d+\.\d{3}$|^n/a$")


def test_table4_smoke_prints_all_four_rows_with_paper_numbers_and_ours(tmp_path):
    result = run_tool("--table=4", "--smoke", f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    table = get_table(4)
    cells = table_cells(result.stdout)
    assert len(cells) == 2 * len(table.rows)
    for index, row in enumerate(table.rows):
        paper, ours = cells[2 * index], cells[2 * index + 1]
        assert paper == [row.label, "paper", *(f"{value:.3f}" for value in row.paper)]
        assert ours[:2] == ["", "ours"]
        # Our numbers, one per column (n/a where pycocotools has no ground truth, e.g. APL).
        assert len(ours) == 2 + len(table.columns)
        assert all(NUMBER.match(cell) for cell in ours[2:]), ours
        assert re.match(r"^\d\.\d{3}$", ours[2])  # AP itself is always defined
    assert "SMOKE RUN" in result.stdout
    assert "NOT the paper's MS-COCO test-dev" in result.stdout
    payload = json.loads((tmp_path / "table4.json").read_text())
    assert [row["key"] for row in payload["rows"]] == [row.key for row in table.rows]
    assert all(row["ours"] is not None for row in payload["rows"])
    assert (tmp_path / "table4.md").read_text().startswith("## Table 4.")


def test_metrics_files_only(tmp_path):
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"AP": 0.5, "AP50": 0.75, "AP75": 0.5, "APM": 0.25,
                                   "refine_checkpoint": "runs/refine"}))
    result = run_tool("--table=4", f"--metrics=single={metrics}", f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    cells = table_cells(result.stdout)
    assert cells[1] == ["", "ours", "0.500", "0.750", "0.500", "0.250", "n/a"]
    assert cells[3][2:] == ["not run"] * 5
    assert "MISSING in the metrics: APL" in result.stdout
    assert "on whatever split they were computed" in result.stdout
    assert (tmp_path / "table4.json").is_file()


def test_usage_errors_name_the_problem(tmp_path):
    result = run_tool("--table=2")
    assert result.returncode != 0
    assert "nothing to show" in result.stderr
    result = run_tool("--table=4", f"--metrics={tmp_path / 'm.json'}")
    assert result.returncode != 0
    assert "give ROW=path" in result.stderr
    result = run_tool("--table=3", f"--metrics=ours={tmp_path / 'absent.json'}")
    assert result.returncode != 0
    assert "absent.json" in result.stderr


@pytest.mark.slow
def test_table5_smoke(tmp_path):
    result = run_tool("--table=5", "--smoke", f"--work_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    cells = table_cells(result.stdout)
    assert cells[-2] == ["Our method", "paper", "35.1", "26.0"]
    assert cells[-1][:2] == ["", "ours"] and all(
        re.match(r"^\d+\.\d$", cell) for cell in cells[-1][2:]
    )
    assert (tmp_path / "table5" / "ours" / "metrics.json").is_file()


@pytest.mark.slow
def test_table1_smoke(tmp_path, shared_data):
    result = run_tool("--table=1", "--smoke", f"--work_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    cells = table_cells(result.stdout)
    assert cells[-2][:3] == ["Our method", "paper", "92.1"]
    assert cells[-1][:2] == ["", "ours"] and len(cells[-1]) == 10
    assert "refinement" in result.stdout
