"""The tracking task on the shared trainer: the smoke experiment trains and evaluates; the loss
of a clip is the temporal grouping loss plus the frames' heatmap loss; the config checks."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
import tensorflow as tf

from associative_embedding.core.config_checks import config_problems
from associative_embedding.losses.temporal import temporal_grouping_loss
from associative_embedding.tasks.registry import make_trainer
from associative_embedding.tasks.tracking import config_checks
from associative_embedding.tasks.tracking.evaluation_hook import BASELINE_SUFFIX, has_crossing
from associative_embedding.tasks.tracking.trainer import TrackingTrainer, per_clip_tracking_loss

METRIC_KEYS = ("MOTA", "IDF1", "IDF1_baseline", "id_switches", "id_switches_baseline")


def _config(name: str, variant: str = ""):
    return importlib.import_module(f"experiments.{name}").get_config(variant)


def test_smoke_experiment_trains_and_writes_the_tracking_metrics(tmp_path):
    config = _config("synthetic_tracking", "smoke")
    trainer = make_trainer(config, str(tmp_path))
    assert isinstance(trainer, TrackingTrainer)
    metrics = trainer.train()
    assert trainer.step == 2
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for key in METRIC_KEYS:
        assert key in metrics and key in saved
    assert (tmp_path / "eval" / "step_2" / "tracks.json").exists()
    assert tf.io.gfile.exists(str(tmp_path / "best" / "model.index"))
    assert "IDF1" in trainer.evaluation_summary(metrics)
    assert any("crossing" in line or "IDF1" in line for line in trainer.evaluation_lines(metrics))


def test_per_clip_loss_is_the_temporal_loss_plus_the_frames_heatmap_loss():
    rng = np.random.default_rng(0)
    clips, frames, stacks, size, joints, dim, people = 2, 2, 2, 8, 17, 2, 3
    outputs = rng.normal(size=(clips * frames, stacks, size, size, joints * (1 + dim)))
    outputs = tf.constant(outputs, tf.float32)
    keypoints = np.zeros((clips, frames, people, joints, 3), np.float32)
    keypoints[..., :2] = rng.integers(0, size, size=(clips, frames, people, joints, 2))
    keypoints[..., 2] = rng.random((clips, frames, people, joints)) < 0.6
    batch = {
        "heatmaps": tf.constant(rng.random((clips, frames, size, size, joints)), tf.float32),
        "mask": tf.ones((clips, frames, size, size)),
        "keypoints": tf.constant(keypoints),
    }
    loss, parts = per_clip_tracking_loss(
        outputs, batch, num_joints=joints, tag_dim=dim, heatmap_weight=1.0, pull_weight=0.5,
        push_weight=0.25, push_type="hinge",
    )
    maps = tf.reshape(outputs, (clips, frames, stacks, size, size, -1))
    tags = tf.reshape(maps[..., joints:], (clips, frames, stacks, size, size, joints, dim))
    pulls, pushes, heatmaps = [], [], []
    for stack in range(stacks):
        push, pull = temporal_grouping_loss(tags[:, :, stack], keypoints, push_type="hinge")
        pulls.append(pull)
        pushes.append(push)
        error = tf.square(maps[:, :, stack, ..., :joints] - batch["heatmaps"])
        heatmaps.append(tf.reduce_mean(error, axis=[1, 2, 3, 4]))
    np.testing.assert_allclose(parts["pull"], np.mean(pulls, axis=0), rtol=1e-5)
    np.testing.assert_allclose(parts["push"], np.mean(pushes, axis=0), rtol=1e-5)
    np.testing.assert_allclose(parts["heatmap"], np.mean(heatmaps, axis=0), rtol=1e-5)
    np.testing.assert_allclose(
        loss, parts["heatmap"] + 0.5 * parts["pull"] + 0.25 * parts["push"], rtol=1e-6
    )


def test_config_checks_name_the_bad_fields():
    config = _config("synthetic_tracking")
    assert config_problems(config) == []
    config.eval.baseline_overlap = "giou"
    config.input.max_frame_gap = 20
    config.eval.max_tag_distance = 0.0
    problems = "\n".join(config_problems(config))
    for field in ("eval.baseline_overlap", "input.max_frame_gap", "eval.max_tag_distance"):
        assert field in problems
    assert "eval.baseline_overlap" in problems


def test_config_check_enums_agree_with_the_code():
    from associative_embedding.tasks.tracking.tracker import OVERLAP_TYPES

    assert config_checks.OVERLAP_TYPES == OVERLAP_TYPES
    assert BASELINE_SUFFIX == "_baseline"


def test_posetrack_recipe_loads():
    config = _config("posetrack_hg")
    assert config.task == "tracking" and config.model.num_stacks == 4
    assert config_problems(config) == []


def test_has_crossing_on_hand_made_tracks():
    from associative_embedding.core.record import PoseRecord
    from associative_embedding.data.posetrack import PoseTrackFrame, PoseTrackVideo

    def frame(index, xs):
        keypoints = np.zeros((len(xs), 17, 3), np.float32)
        for person, x in enumerate(xs):
            keypoints[person, :, 0] = x + np.arange(17) % 3
            keypoints[person, :, 1] = 10 + np.arange(17)
            keypoints[person, :, 2] = 2
        record = PoseRecord(index, "", 64, 64, keypoints, np.zeros((len(xs), 4)),
                            np.ones(len(xs)), np.arange(len(xs)))
        return PoseTrackFrame(record, np.arange(len(xs)), "v", index, True)

    crossing = PoseTrackVideo("v", [frame(0, [5, 40]), frame(1, [40, 5])])
    parallel = PoseTrackVideo("v", [frame(0, [5, 40]), frame(1, [8, 43])])
    assert has_crossing(crossing)
    assert not has_crossing(parallel)


@pytest.mark.parametrize("name", ["synthetic_tracking", "posetrack_hg"])
def test_unknown_variant_fails(name):
    with pytest.raises(ValueError, match="unknown variant"):
        _config(name, "nope")


def test_people_on_ignored_pixels_are_not_scored():
    from associative_embedding.tasks.tracking.evaluation_hook import outside_ignore_regions

    ignore = np.zeros((20, 20), np.uint8)
    ignore[:, :10] = 1
    poses = np.zeros((3, 4, 3))
    poses[0, :, :2], poses[0, :, 2] = [[2, 2], [3, 3], [4, 4], [15, 5]], 1.0  # 3 of 4 ignored
    poses[1, :, :2], poses[1, :, 2] = [[12, 2], [13, 3], [4, 4], [15, 5]], 1.0  # 1 of 4
    poses[2, :, :2], poses[2, :, 2] = [[2, 2], [3, 3], [14, 4], [15, 5]], [1, 1, 0, 0]
    assert outside_ignore_regions(poses, ignore).tolist() == [False, True, False]


def test_posetrack_smoke_trains_on_the_shared_sample(shared_data, tmp_path):
    if not (shared_data / "mmpose_samples" / "posetrack18").is_dir():
        pytest.skip("the shared PoseTrack sample is absent")
    trainer = make_trainer(_config("posetrack_hg", "smoke"), str(tmp_path))
    metrics = trainer.train()
    assert trainer.step == 2
    for key in METRIC_KEYS:
        assert key in metrics


def test_posetrack_recipe_uses_posetracks_joints(shared_data, tmp_path):
    if not (shared_data / "mmpose_samples" / "posetrack18").is_dir():
        pytest.skip("the shared PoseTrack sample is absent")
    config = _config("posetrack_hg", "smoke")
    assert config.dataset.keypoints == "posetrack"
    trainer = make_trainer(config, str(tmp_path))
    assert trainer.keypoint_info.name == "posetrack"
    # On a flip head_bottom (1) and head_top (2) stay in place; COCO's set would swap them.
    assert list(trainer.keypoint_info.flip_index[1:3]) == [1, 2]


def test_a_file_with_other_joints_than_the_config_is_refused(shared_data, tmp_path):
    from associative_embedding.tasks.tracking.inputs import prepare_data

    if not (shared_data / "mmpose_samples" / "posetrack18").is_dir():
        pytest.skip("the shared PoseTrack sample is absent")
    config = _config("posetrack_hg", "smoke")
    config.dataset.keypoints = "coco"
    with pytest.raises(ValueError, match=r"test_posetrack18_val\.json: the videos' joints are "
                       r"the 'posetrack' set, but config\.dataset\.keypoints is 'coco'; set "
                       r"--config\.dataset\.keypoints=posetrack"):
        prepare_data(config, str(tmp_path))


def test_synthetic_clips_need_cocos_joints():
    config = _config("synthetic_tracking", "smoke")
    config.dataset.keypoints = "posetrack"
    problems = config_problems(config)
    assert len(problems) == 1 and problems[0].startswith("--config.dataset.keypoints:")
    assert "synthetic clips have COCO's joints" in problems[0]
