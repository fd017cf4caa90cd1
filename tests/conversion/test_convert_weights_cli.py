"""tools/convert_weights.py: conversion, the side config, one-line errors; release defaults."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from absl import flags

# Registers StackedHourglass and its layers for keras.saving.load_model.
import associative_embedding.modeling  # noqa: F401
from associative_embedding.conversion import release_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "convert_weights.py")
FIXTURE = os.path.join(ROOT, "tests", "conversion", "fixtures", "posenet_tiny_legacy.pth")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, TOOL, *args], capture_output=True, text=True, timeout=300, cwd=ROOT
    )


def test_converts_writes_side_config_and_reports_errors_in_one_line(tmp_path):
    output = str(tmp_path / "pose_ae_train.keras")
    result = _run("--format=pose_ae_train", f"--input={FIXTURE}", f"--output={output}")
    assert result.returncode == 0, result.stderr
    assert "52 variables assigned" in result.stdout
    model = keras.saving.load_model(output, compile=False, safe_mode=True)
    images = np.load(FIXTURE.replace("legacy.pth", "input.npy"))
    expected = np.load(FIXTURE.replace("legacy.pth", "output.npy"))[..., :34]
    assert np.abs(model(images).numpy() - expected).max() <= 1e-3 * np.abs(expected).max()
    with open(tmp_path / "pose_ae_train.release.json") as file:
        side = json.load(file)
    assert side["format"] == "pose_ae_train"
    assert side["flag_defaults"]["flip"] is True and side["flag_defaults"]["input_size"] == 512

    # A damaged file and a file of the other format: one line on stderr, exit status 1.
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(open(FIXTURE, "rb").read()[:5000])  # noqa: SIM115
    wrong = tmp_path / "wrong.pth"
    wrong.write_text("not a checkpoint\n")
    for args in (
        ("--format=pose_ae_train", f"--input={corrupt}"),
        ("--format=pose_ae_train", f"--input={wrong}"),
        ("--format=pose_ae_demo", f"--input={FIXTURE}"),
        ("--format=pose_ae_train", f"--input={tmp_path / 'missing.pth'}"),
    ):
        result = _run(*args, f"--output={tmp_path / 'out.keras'}")
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        lines = [line for line in result.stderr.splitlines() if "convert_weights" in line]
        assert len(lines) == 1 and lines[0].startswith("convert_weights: error: "), lines
        assert "Traceback" not in result.stderr
        assert not os.path.exists(tmp_path / "out.keras")


def test_help_names_every_format():
    result = _run("--help")
    # absl prints the help and exits with status 1.
    assert "Converts the authors' released" in result.stdout, result.stderr
    for name in ("pose_ae_train", "pose_ae_demo", "pose_ae_demo_refine", "--input", "--output"):
        assert name in result.stdout


@pytest.fixture
def flag_values():
    values = flags.FlagValues()
    flags.DEFINE_string("model", None, "", flag_values=values)
    flags.DEFINE_string("refine_checkpoint", None, "", flag_values=values)
    flags.DEFINE_bool("flip", False, "", flag_values=values)
    flags.DEFINE_integer("input_size", 256, "", flag_values=values)
    flags.DEFINE_list("scales", ["1"], "", flag_values=values)
    flags.DEFINE_list("refine_crop_sizes", [], "", flag_values=values)
    flags.DEFINE_float("refine_threshold", 0.2, "", flag_values=values)
    return values


def test_release_defaults_fill_only_flags_not_given(tmp_path, flag_values):
    model = str(tmp_path / "m.keras")
    refine = str(tmp_path / "r.keras")
    release_config.write_release_config(model, "pose_ae_demo", "src")
    release_config.write_release_config(refine, "pose_ae_demo_refine", "src")
    flag_values(["tool", f"--model={model}", f"--refine_checkpoint={refine}", "--input_size=128"])
    applied = release_config.apply_release_defaults(flag_values, model_flags=("model",))
    assert flag_values.flip is True
    assert flag_values.input_size == 128  # given on the command line: kept
    assert flag_values.refine_crop_sizes == ["512", "384", "320"]
    assert flag_values.refine_threshold == 0.15
    assert "flip=True" in applied and not any(line.startswith("input_size") for line in applied)


def test_excluded_flags_keep_their_defaults(tmp_path, flag_values):
    model = str(tmp_path / "m.keras")
    release_config.write_release_config(model, "pose_ae_train", "src")
    flag_values(["tool", f"--model={model}"])
    release_config.apply_release_defaults(flag_values, model_flags=("model",), exclude=("flip",))
    assert flag_values.flip is False and flag_values.input_size == 512


def test_no_side_config_changes_nothing(tmp_path, flag_values):
    flag_values(["tool", f"--model={tmp_path / 'plain.keras'}"])
    assert release_config.apply_release_defaults(flag_values, model_flags=("model",)) == []
    assert flag_values.flip is False and flag_values.input_size == 256
