"""The segmentation task on the shared trainer: smoke experiments, fine-tuning, predict tool."""

from __future__ import annotations

import importlib
import json
import os
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from pycocotools.coco import COCO

from associative_embedding.tasks.registry import make_trainer
from associative_embedding.tasks.segmentation.trainer import SegmentationTrainer

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[3]


def _config(name: str, variant: str = ""):
    return importlib.import_module(f"experiments.{name}").get_config(variant)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """experiments/synthetic_shapes_seg.py:smoke trained for 2 steps (once per module)."""
    workdir = tmp_path_factory.mktemp("shapes_smoke")
    config = _config("synthetic_shapes_seg", "smoke")
    trainer = make_trainer(config, str(workdir))
    assert isinstance(trainer, SegmentationTrainer)
    metrics = trainer.train()
    return workdir, trainer, metrics


def test_smoke_experiment_trains_and_evaluates(smoke_run):
    workdir, trainer, metrics = smoke_run
    assert trainer.step == 2
    assert trainer.model.count_params() < 500_000
    # num_categories * (1 + tag_dim) output channels on the shared StackedHourglass.
    assert trainer.model.output_shape[-1] == 3 * 2
    for key in ("mAPr@0.5", "mAPr@0.7", "segm_AP", "best_mAPr@0.5"):
        assert key in metrics
    saved = json.loads((workdir / "metrics.json").read_text())
    assert saved["step"] == 2 and "mAPr@0.7" in saved
    assert tf.io.gfile.exists(str(workdir / "best" / "model.index"))
    categories = json.loads((workdir / "categories.json").read_text())
    assert [c["name"] for c in categories] == ["disc", "square", "triangle"]
    assert (workdir / "eval" / "step_2" / "segm_results.json").exists()
    assert list((workdir / "eval" / "step_2" / "drawings").glob("*.jpg"))


def test_init_checkpoint_loads_weights(smoke_run, tmp_path):
    workdir, trainer, _ = smoke_run
    config = _config("synthetic_shapes_seg", "smoke")
    config.dataset.synthetic_dir = str(workdir / "synthetic_shapes")
    config.train.init_checkpoint = str(workdir / "best" / "model")
    fresh = make_trainer(config, str(tmp_path / "finetune"))
    assert not np.allclose(fresh.model.weights[0].numpy(), trainer.model.weights[0].numpy())
    fresh._initialise_from(config.train.init_checkpoint)
    for mine, theirs in zip(fresh.model.weights, trainer.model.weights, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    with pytest.raises(FileNotFoundError, match="init_checkpoint"):
        fresh._initialise_from(str(tmp_path / "missing"))


def test_num_categories_must_match_the_data(smoke_run, tmp_path):
    workdir, _, _ = smoke_run
    config = _config("synthetic_shapes_seg", "smoke")
    config.dataset.synthetic_dir = str(workdir / "synthetic_shapes")
    config.dataset.num_categories = 4
    trainer = make_trainer(config, str(tmp_path / "wrong"))
    with pytest.raises(ValueError, match="3 categories"):
        trainer.prepare_data()


def test_voc_paper_settings():
    config = _config("voc_seg_hg")
    assert config.task == "segmentation" and config.dataset.kind == "voc"
    assert config.dataset.num_categories == 20
    assert config.codec.input_size == 256
    assert config.codec.input_size // config.codec.output_stride == 64
    assert (config.loss.pull_weight, config.loss.push_weight) == (1e-4, 1e-4)
    assert config.loss.normalization == "sum" and config.loss.push_type == "exp"
    assert tuple(config.eval.scales) == (0.5, 1.0, 1.5)
    coco = _config("voc_seg_hg", "coco")
    assert coco.dataset.kind == "coco" and len(coco.dataset.category_ids) == 20
    with pytest.raises(ValueError, match="unknown variant"):
        _config("voc_seg_hg", "huge")


def _write_voc(root: pathlib.Path, names: list[str]) -> None:
    """A tiny VOC2012 tree: each image has two touching objects of classes 15 and 12."""
    palette = np.zeros((256, 3), np.uint8)
    palette[1:21] = np.random.default_rng(0).integers(0, 255, (20, 3))
    palette[255] = 224
    for folder in ("JPEGImages", "SegmentationObject", "SegmentationClass"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(names))
    for index, name in enumerate(names):
        objects = np.zeros((80, 96), np.uint8)
        objects[10:60, 10 + index:40] = 1
        objects[10:60, 40:70] = 2
        classes = np.where(objects == 1, 15, np.where(objects == 2, 12, 0)).astype(np.uint8)
        objects[9, 10:70] = 255  # a void boundary band
        classes[9, 10:70] = 255
        for folder, values in (("SegmentationObject", objects), ("SegmentationClass", classes)):
            picture = Image.fromarray(values, mode="P")
            picture.putpalette(palette.reshape(-1).tolist())
            picture.save(root / folder / f"{name}.png")
        image = np.full((80, 96, 3), 90, np.uint8)
        image[objects == 1] = (200, 30, 30)
        image[objects == 2] = (30, 30, 200)
        cv2.imwrite(str(root / "JPEGImages" / f"{name}.jpg"), image)


def test_voc_smoke_variant_trains_on_a_voc_tree(tmp_path):
    voc_root = tmp_path / "VOC2012"
    _write_voc(voc_root, ["2007_000001", "2007_000002", "2007_000003"])
    config = _config("voc_seg_hg", "smoke")
    config.dataset.voc_root = str(voc_root)
    trainer = make_trainer(config, str(tmp_path / "voc"))
    metrics = trainer.train()
    assert trainer.step == 2
    assert trainer.model.output_shape[-1] == 20 * 2
    assert "mAPr@0.5" in metrics and "APr@0.5/person" in metrics


def test_predict_tool_draws_instances(smoke_run, tmp_path):
    workdir, _, _ = smoke_run
    images = tmp_path / "images"
    images.mkdir()
    for index, path in enumerate(sorted((workdir / "synthetic_shapes" / "val").glob("*.png"))[:2]):
        (images / f"{index:012d}.png").write_bytes(path.read_bytes())
    (images / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "tools" / "predict.py"), f"--input={images}",
         f"--checkpoint={workdir}", f"--output_dir={out}", "--noprogress"],
        capture_output=True, text=True, timeout=300, env=environment, cwd=PROJECT_ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 images" in result.stdout
    predictions = json.loads((out / "predictions.json").read_text())
    assert [p["file_name"] for p in predictions] == ["000000000000.png", "000000000001.png"]
    assert all("instances" in p for p in predictions)
    assert sorted(p.name for p in (out / "drawings").iterdir()) == [
        "000000000000.png", "000000000001.png"
    ]
    results = json.loads((out / "results.json").read_text())
    if results:  # a 2-step model may find nothing; when it does, COCO must read it
        ground_truth = COCO()
        ground_truth.dataset = {
            "images": [{"id": 0, "height": 64, "width": 64}, {"id": 1, "height": 64, "width": 64}],
            "annotations": [],
            "categories": [{"id": i, "name": str(i)} for i in (1, 2, 3)],
        }
        ground_truth.createIndex()
        ground_truth.loadRes(results)


def test_evaluate_tool_scores_a_segmentation_run(smoke_run, tmp_path):
    workdir, _, _ = smoke_run
    shapes = workdir / "synthetic_shapes"
    out = tmp_path / "eval"
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "tools" / "evaluate.py"), f"--model={workdir}",
         f"--annotations={shapes / 'annotations' / 'instances_val.json'}",
         f"--images={shapes / 'val'}", f"--output_dir={out}", "--scales=1,1.5",
         "--noprogress"],
        capture_output=True, text=True, timeout=300, env=environment, cwd=PROJECT_ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mAPr@0.5 = " in result.stdout and "scales [1.0, 1.5]" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"mAPr@0.5", "mAPr@0.7", "segm_AP"} <= set(metrics)
    assert (out / "segm_results.json").exists()
