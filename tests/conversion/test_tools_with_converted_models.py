"""Converted models through the tools: predict (with the demo's refinement network as
--refine_checkpoint), evaluate and export, and the exported predict_poses signature."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conversion.demo_graph import save_demo_snapshot

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE = os.path.join(ROOT, "tests", "conversion", "fixtures", "posenet_tiny_zip.pth")
COCO_MINI = os.path.join(ROOT, "..", "shared", "data", "coco_mini_train2017")


def _tool(name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", name), *args],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


def test_converted_models_run_through_predict_evaluate_and_export(tmp_path):
    pose = str(tmp_path / "pose_ae_train.keras")
    refine = str(tmp_path / "refine.keras")
    _tool("convert_weights.py", "--format=pose_ae_train", f"--input={FIXTURE}", f"--output={pose}")
    snapshot = tmp_path / "refinement"
    snapshot.mkdir()
    images = np.random.default_rng(0).uniform(0, 255, (1, 32, 48, 3)).astype(np.float32)
    save_demo_snapshot(str(snapshot), images, 17, f=8, increase=4, depth=2, stacks=2, stem=(4, 6))
    _tool(
        "convert_weights.py", "--format=pose_ae_demo_refine", f"--input={snapshot}",
        f"--output={refine}",
    )  # fmt: skip
    photo = os.path.join(ROOT, "..", "shared", "data", "photos", "astronaut.png")
    if not os.path.isfile(photo):
        pytest.skip("../shared/data/photos is absent")
    small = ["--input_size=128", "--refine_crop_sizes=64"]
    out = _tool(
        "predict.py", f"--checkpoint={pose}", f"--refine_checkpoint={refine}",
        f"--input={photo}", f"--output_dir={tmp_path / 'pred'}", *small,
    )  # fmt: skip
    assert "release default: --flip=True" in out and "refined" in out
    with open(tmp_path / "pred" / "predictions.json") as file:
        assert len(json.load(file)) == 1
    if os.path.isdir(COCO_MINI):
        out = _tool(
            "evaluate.py", f"--model={pose}", f"--refine_checkpoint={refine}",
            f"--annotations={COCO_MINI}/person_keypoints_train2017.json",
            f"--images={COCO_MINI}/images", "--max_images=1", "--progress=false",
            f"--output_dir={tmp_path / 'eval'}", *small,
        )  # fmt: skip
        assert "AP = " in out
    _tool(
        "export.py", f"--checkpoint={pose}", f"--export_dir={tmp_path / 'export'}",
        "--dataset=coco", "--input_size=128",
    )  # fmt: skip
    import tensorflow as tf

    predict_poses = tf.saved_model.load(str(tmp_path / "export" / "1")).signatures["predict_poses"]
    outputs = predict_poses(image=tf.zeros((96, 160, 3), tf.uint8))
    assert outputs["poses"].shape[1:] == (17, 3)
