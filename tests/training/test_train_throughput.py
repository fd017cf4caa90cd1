"""benchmarks/train_throughput.py on the training tests' tiny experiment: the figures it
reports are consistent, the speed options reach the trainer, and --find_batch doubles the
batch until a limit."""

from __future__ import annotations

import json

import pytest

from tests.training.subprocesses import run_script

TINY = "tests/training/scripts/tiny_experiment.py"


def _run(tmp_path, *flags: str) -> dict:
    out = tmp_path / "result.json"
    run_script(
        ["benchmarks/train_throughput.py", f"--config={TINY}", "--steps=2", "--num_images=8",
         f"--json_out={out}", *flags],
        timeout=600,
    )
    return json.loads(out.read_text())


def test_find_batch_doubles_up_to_the_largest_batch_and_reports_it(tmp_path):
    result = _run(tmp_path, "--find_batch", "--batch=1", "--max_batch=4",
                  "--config.train.steps_per_execution=2")
    rows = result["results"]
    assert [row["batch"] for row in rows] == [1, 2, 4]
    assert result["steps_per_execution"] == 2
    assert result["find_batch"]["largest_batch"] == 4
    assert result["find_batch"]["images_per_s"] == pytest.approx(rows[-1]["images_per_s"])
    assert "max_batch" in result["find_batch"]["stopped"]
    for row in rows:
        # Whole calls of 2 steps: at least --steps, a multiple of 2.
        assert row["timed_steps"] >= 2 and row["timed_steps"] % 2 == 0
        assert row["images_per_s"] == pytest.approx(1e3 * row["batch"] / row["step_ms"])
        assert row["compute_ms"] > 0 and row["input_wait_ms"] >= 0
        assert row["step_ms"] <= row["compute_ms"] + row["input_wait_ms"] + 1e-6
        assert row["peak_memory_gib"] > 0 and row["train_gflop_per_image"] > 0
        # No GPU here and no --peak_tflops: MFU is not known.
        assert row["mfu"] is None
    assert result["device_kind"] == "CPU"


def test_find_batch_stops_at_the_memory_limit_and_mfu_uses_the_given_peak(tmp_path):
    # Any TensorFlow process holds more than 1 MiB: the first batch is already over the limit.
    result = _run(tmp_path, "--find_batch", "--batch=2", "--memory_limit_gb=0.001",
                  "--peak_tflops=1")
    (row,) = result["results"]
    assert row["batch"] == 2 and row["over_memory_limit"]
    assert result["find_batch"]["largest_batch"] is None
    assert "memory_limit_gb" in result["find_batch"]["stopped"]
    assert row["mfu"] == pytest.approx(row["achieved_tflops"] / 1.0)


def test_flops_count_matches_the_papers_network():
    # The official 4-stack network at 512: ~444 GFLOP forward, so ~1.33 TFLOP per training
    # image. In a subprocess: the benchmark defines absl flags when imported.
    code = (
        "from associative_embedding.modeling import StackedHourglass\n"
        "from benchmarks.train_throughput import training_flops_per_image\n"
        "print(training_flops_per_image(StackedHourglass(num_joints=17), 512))\n"
    )
    completed = run_script(["-c", code], timeout=300)
    flops = float(completed.stdout.strip().splitlines()[-1])
    assert 1.2e12 < flops < 1.45e12
