"""RefinementTrainer: the experiments' smoke variants train and evaluate; the loss; the metric."""

from __future__ import annotations

import importlib
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from associative_embedding.core.keypoint_info import get_keypoint_info
from associative_embedding.data import readers, synthetic
from associative_embedding.data.augment import AugmentConfig
from associative_embedding.modeling import loading
from associative_embedding.tasks.pose.config import base_config
from associative_embedding.tasks.refinement import data as refine_data
from associative_embedding.tasks.refinement.refine import PoseRefiner
from associative_embedding.tasks.refinement.trainer import (
    RefinementTrainer,
    evaluate_people,
    refinement_loss,
)
from associative_embedding.tasks.registry import make_trainer
from associative_embedding.training.trainer import LOSS_LOG_NAME

COCO = get_keypoint_info("coco")
EXPERIMENTS = ("synthetic_refine", "coco_refine_hg", "mpii_refine_hg")


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


def _numpy_loss(outputs, heatmaps, mask, weight, foreground_weight):
    """mean over stacks of mean over (h, w, K) of mask (1 + f t) (p - t)^2, per example."""
    squared = (outputs - heatmaps[:, None]) ** 2 * mask[:, None, ..., None]
    squared *= 1.0 + foreground_weight * heatmaps[:, None]
    per_stack = squared.mean(axis=(2, 3, 4))
    return weight * per_stack.mean(axis=1)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_smoke_variant_trains_two_steps_and_evaluates(name, tmp_path, monkeypatch, request):
    if name in ("coco_refine_hg", "mpii_refine_hg"):
        request.getfixturevalue("shared_data")  # skips when ../shared/data is absent
    monkeypatch.chdir(tmp_path)  # data paths resolve from the repository, not the CWD
    config = _get_config(name, "smoke")
    config.train.loss_log = True
    workdir = tmp_path / "workdir"
    trainer = make_trainer(config, str(workdir))
    assert isinstance(trainer, RefinementTrainer)
    assert trainer.model.count_params() < 500_000
    # Heatmap-only network: K output channels.
    probe = trainer.model(tf.zeros([1, trainer.crop_size, trainer.crop_size, 3]))
    assert probe.shape[-1] == get_keypoint_info(config.dataset.keypoints).num_joints
    metrics = trainer.train()

    assert trainer.step == 2
    assert tf.train.latest_checkpoint(str(workdir / "checkpoints")).endswith("ckpt-2")
    with open(workdir / LOSS_LOG_NAME) as handle:
        logged = [json.loads(line) for line in handle]
    assert [entry["step"] for entry in logged] == [1, 2]
    assert all(set(entry) == {"step", "loss", "heatmap"} for entry in logged)
    assert all(np.isfinite(entry["loss"]) and entry["loss"] > 0 for entry in logged)
    assert metrics["step"] == 2
    assert {"AP", "mean_oks", "num_people"} <= set(metrics)
    # COCO-format data is scored by OKS AP (with AP50); MPII by the multi-person mAP per joint.
    assert ("AP/head_top" if config.dataset.kind == "mpii" else "AP50") in metrics
    assert metrics["num_people"] > 0 and 0.0 <= metrics["AP"] <= 1.0
    saved = json.loads((workdir / "metrics.json").read_text())
    assert saved["step"] == 2 and "AP" in saved
    assert (workdir / "best" / "model.index").exists()
    tags = _tensorboard_tags(workdir / "tensorboard")
    assert {"train/loss", "train/heatmap", "eval/AP", "eval/crops"} <= tags


def test_loss_equals_numpy_on_a_hand_built_batch():
    rng = np.random.default_rng(0)
    batch_size, stacks, size, joints = 2, 3, 4, 5
    outputs = rng.normal(size=(batch_size, stacks, size, size, joints)).astype(np.float32)
    heatmaps = rng.uniform(size=(batch_size, size, size, joints)).astype(np.float32)
    mask = np.ones((batch_size, size, size), np.float32)
    mask[0, :2, 1:] = 0.0
    batch = {"heatmaps": tf.constant(heatmaps), "mask": tf.constant(mask)}
    for weight, foreground in ((1.0, 0.0), (0.5, 10.0)):
        loss, parts = refinement_loss(
            tf.constant(outputs), batch, num_joints=joints, heatmap_weight=weight,
            foreground_weight=foreground,
        )
        expected = _numpy_loss(outputs.astype(np.float64), heatmaps, mask, weight, foreground)
        np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5)
        np.testing.assert_allclose(parts["heatmap"].numpy(), expected / weight, rtol=1e-5)


def test_trainer_loss_uses_the_config_weights(tmp_path):
    config = _get_config("synthetic_refine", "smoke")
    config.loss.heatmap_weight = 2.0
    config.loss.heatmap_foreground_weight = 3.0
    trainer = RefinementTrainer(config, str(tmp_path))
    joints, size = COCO.num_joints, trainer.crop_size // 4
    rng = np.random.default_rng(1)
    outputs = rng.normal(size=(2, config.model.num_stacks, size, size, joints)).astype(np.float32)
    heatmaps = rng.uniform(size=(2, size, size, joints)).astype(np.float32)
    mask = (rng.uniform(size=(2, size, size)) > 0.3).astype(np.float32)
    loss, parts = trainer.build_losses(
        tf.constant(outputs), {"heatmaps": tf.constant(heatmaps), "mask": tf.constant(mask)}
    )
    assert set(parts) == set(trainer.loss_parts) == {"heatmap"}
    np.testing.assert_allclose(
        loss.numpy(), _numpy_loss(outputs.astype(np.float64), heatmaps, mask, 2.0, 3.0),
        rtol=1e-5,
    )


def test_tag_dim_must_be_zero(tmp_path):
    config = _get_config("synthetic_refine", "smoke")
    config.model.tag_dim = 1
    with pytest.raises(ValueError, match="tag_dim must be 0"):
        RefinementTrainer(config, str(tmp_path))
    pose_config = base_config()
    pose_config.task = "refinement"
    pose_config.model.tag_dim = 0
    with pytest.raises(ValueError, match="no 'refine' section"):
        RefinementTrainer(pose_config, str(tmp_path))


def test_coco_config_states_the_chosen_recipe():
    config = _get_config("coco_refine_hg")
    assert config.task == "refinement" and config.model.tag_dim == 0
    assert config.model.num_stacks == 4 and not config.model.batch_norm
    assert tuple(config.model.widths) == (256, 384, 512, 640, 768)
    assert config.codec.input_size == 256 and config.refine.crop_size == 0
    assert (config.refine.min_side, config.refine.margin) == (60.0, 1.3)
    assert config.train.global_batch_size == 32 and config.optimizer.learning_rate == 2e-4
    assert config.dataset.train_annotations == ""  # paths come from flags
    for name in EXPERIMENTS:
        with pytest.raises(ValueError, match="unknown variant"):
            _get_config(name, "huge")


class _TargetPredictor:
    """Returns, call after call, the training targets of the next image's people."""

    def __init__(self, targets: list[np.ndarray]) -> None:
        self.targets = list(targets)

    def __call__(self, images) -> np.ndarray:
        maps = self.targets.pop(0)
        assert len(maps) == images.shape[0]
        return maps


def test_ground_truth_heatmaps_score_perfectly(tmp_path):
    """The training targets, read back by the evaluation path, give every person OKS ~1.

    This ties the training crops (TF, tasks.refinement.data) to the evaluation/inference crops
    (cv2, tasks.refinement.crops/refine) and the peak read-out to the targets' sub-pixel position.
    """
    root = tmp_path / "synthetic"
    synthetic.generate_synthetic_dataset(
        root, split="val", num_images=3, seed=1, image_size=128, show_progress=False
    )
    split = readers.read_split(
        synthetic.annotation_path(root, "val"), root / "val", dataset="coco"
    )
    records = split.records
    crop_size = 128
    dataset = refine_data.build_person_dataset(
        records, training=False, batch_size=64, keypoint_info=COCO,
        augment_config=AugmentConfig(input_size=crop_size), sigma=1.0, subpixel_targets=True,
    )
    heatmaps = np.concatenate([batch["heatmaps"].numpy() for batch in dataset])
    counts = [record.num_people for record in records if record.num_people]
    assert sum(counts) == len(heatmaps) > 0
    targets = np.split(heatmaps, np.cumsum(counts)[:-1])
    predictor = loading.Predictor(_TargetPredictor(targets), input_multiple=64)
    refiner = PoseRefiner(predictor, COCO, crop_sizes=(crop_size,), flip=False,
                          adjust="taylor")
    metrics, _ = evaluate_people(refiner, split, records, adjust="taylor")
    assert metrics["num_people"] == len(heatmaps)
    assert metrics["mean_oks"] > 0.99
    assert metrics["AP"] == pytest.approx(1.0)
