"""Every experiment config: its paper settings, and its `:smoke` variant trains 2 steps."""

from __future__ import annotations

import importlib
import json
import os
import pathlib

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from associative_embedding.tasks.pose.trainer import PoseTrainer
from associative_embedding.training.trainer import LOSS_LOG_NAME

EXPERIMENTS = ("synthetic_pose", "coco_hg4_512", "mpii_hg4_512", "coco_overfit")
NEEDS_SHARED_DATA = {"coco_hg4_512", "mpii_hg4_512", "coco_overfit"}


def _get_config(name: str, variant: str = ""):
    return importlib.import_module(f"experiments.{name}").get_config(variant)


def _tensorboard_tags(logdir) -> set[str]:
    tags = set()
    for name in os.listdir(logdir):
        accumulator = event_accumulator.EventAccumulator(
            os.path.join(logdir, name), size_guidance={event_accumulator.TENSORS: 0}
        )
        accumulator.Reload()
        tags.update(accumulator.Tags()["tensors"])
    return tags


@pytest.mark.parametrize("name", ["coco_hg4_512", "mpii_hg4_512"])
def test_paper_configs_follow_section_4_1(name):
    config = _get_config(name)
    assert config.model.num_stacks == 4
    assert tuple(config.model.widths) == (256, 384, 512, 640, 768)
    assert not config.model.batch_norm and config.model.tag_dim == 1
    assert config.codec.input_size == 512
    assert config.codec.input_size // config.codec.output_stride == 128
    assert config.train.global_batch_size == 32
    optimizer = config.optimizer
    assert (optimizer.learning_rate, optimizer.final_learning_rate) == (2e-4, 1e-5)
    assert optimizer.schedule == "step" and optimizer.decay_step == 100_000
    assert optimizer.warmup_steps == 0
    loss = config.loss
    assert (loss.heatmap_weight, loss.pull_weight, loss.push_weight) == (1.0, 1e-3, 1e-3)
    assert loss.push_type == "exp"
    # Dataset paths are left to --config.dataset.* flags.
    assert config.dataset.train_annotations == "" and config.dataset.val_images == ""
    expected = ("coco", "coco") if name == "coco_hg4_512" else ("mpii", "mpii")
    assert (config.dataset.kind, config.dataset.keypoints) == expected


def test_coco_overfit_keeps_the_flip_and_evaluates_its_training_images():
    config = _get_config("coco_overfit")
    # A wrong joint swap or coordinate offset must cost AP: flip augmentation with the COCO
    # swap stays on.
    assert config.input.flip_probability > 0 and config.dataset.keypoints == "coco"
    assert config.dataset.kind == "coco"
    # Default data: ../shared/data beside the repository, whatever the working directory.
    default_data = pathlib.Path(__file__).resolve().parents[3] / "shared" / "data"
    folder = default_data / "coco_mini_train2017"
    assert config.dataset.train_annotations == str(folder / "person_keypoints_train2017.json")
    assert config.dataset.train_images == str(folder / "images")
    # Empty val fields: tasks.pose.inputs validates on the training split.
    assert config.dataset.val_annotations == "" and config.dataset.val_images == ""


def test_unknown_variant_is_an_error():
    for name in EXPERIMENTS:
        with pytest.raises(ValueError, match="unknown variant"):
            _get_config(name, "huge")


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_smoke_variant_trains_two_steps(name, tmp_path, monkeypatch, request):
    if name in NEEDS_SHARED_DATA:
        request.getfixturevalue("shared_data")  # skips when ../shared/data is absent
    monkeypatch.chdir(tmp_path)  # data paths resolve from the repository, not the CWD
    config = _get_config(name, "smoke")
    config.train.num_steps = 2
    config.train.loss_log = True
    workdir = tmp_path / "workdir"
    trainer = PoseTrainer(config, workdir)
    # A tiny model, whatever the full experiment trains.
    assert trainer.model.count_params() < 500_000
    metrics = trainer.train()

    assert trainer.step == 2
    assert tf.train.latest_checkpoint(str(workdir / "checkpoints")).endswith("ckpt-2")
    with open(workdir / LOSS_LOG_NAME) as handle:
        logged = [json.loads(line) for line in handle]
    assert [entry["step"] for entry in logged] == [1, 2]
    assert all(np.isfinite(entry[part]) for entry in logged for part in ("loss", "heatmap"))
    assert metrics["step"] == 2 and "AP" in metrics and "AP_gt_detections" in metrics
    assert json.loads((workdir / "metrics.json").read_text())["step"] == 2
    # This evaluation's own file has the diagnostic's metrics too.
    step_metrics = json.loads((workdir / "eval" / "step_2" / "metrics.json").read_text())
    assert step_metrics["AP_gt_detections"] == metrics["AP_gt_detections"]
    report = trainer.evaluation_report(metrics)
    assert report.startswith("Evaluation at step 2 on ") and "diagnostic" in report
    # TensorBoard: losses, learning rate, AP and the evaluation pictures.
    tags = _tensorboard_tags(workdir / "tensorboard")
    assert {"train/loss", "train/learning_rate", "eval/AP"} <= tags
    assert {"eval/predictions", "eval/heatmaps", "eval/tags"} <= tags
