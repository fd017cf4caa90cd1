"""Export of the single-person refinement network beside the pose model (tools/export.py)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np

from associative_embedding.core.keypoint_info import COCO
from associative_embedding.modeling import StackedHourglass
from associative_embedding.tasks.refinement.refine import load_refiner

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[3]
TINY = dict(num_stacks=1, widths=(8, 8, 8, 8, 8), stem_widths=(8, 8), feature_width=8)


def test_export_tool_writes_the_refinement_model(tmp_path):
    keras.utils.set_random_seed(0)
    StackedHourglass(num_joints=17, **TINY).save(tmp_path / "multi.keras")
    StackedHourglass(num_joints=17, tag_dim=0, **TINY).save(tmp_path / "refine.keras")
    export_dir = tmp_path / "exports"
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "tools" / "export.py"),
         f"--checkpoint={tmp_path / 'multi.keras'}", "--dataset=coco",
         f"--export_dir={export_dir}", "--input_size=64",
         f"--refine_checkpoint={tmp_path / 'refine.keras'}", "--refine_crop_sizes=64,128",
         "--norefine_flip", "--refine_threshold=0.2"],
        capture_output=True, text=True, timeout=300, env=environment, cwd=PROJECT_ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    version_dir = export_dir / "refinement" / "1"
    assert (version_dir / "saved_model.pb").is_file()
    description = json.loads(
        (version_dir / "assets.extra" / "refinement_config.json").read_text()
    )
    assert description["refiner"]["crop_sizes"] == [64, 128]
    assert description["refiner"]["flip"] is False and description["num_joints"] == 17

    # The export's options are the refiner's defaults, and it refines like the Keras model.
    exported = load_refiner(version_dir, COCO)
    assert (exported.crop_sizes, exported.flip, exported.threshold) == ((64, 128), False, 0.2)
    original = load_refiner(tmp_path / "refine.keras", COCO, crop_sizes=(64, 128), flip=False,
                            threshold=0.2)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    poses = np.zeros((2, 17, 3), np.float32)
    poses[..., 0] = rng.uniform(20, 140, (2, 17))
    poses[..., 1] = rng.uniform(20, 100, (2, 17))
    poses[..., 2] = 0.6
    scores = np.array([0.9, 0.8], np.float32)
    refined_exported, _ = exported(image, poses, scores)
    refined_original, _ = original(image, poses, scores)
    np.testing.assert_allclose(refined_exported, refined_original, atol=1e-3)
