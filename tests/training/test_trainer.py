"""PoseTrainer: non-finite losses, SIGTERM stop + resume with the loss log, mixed bfloat16,
and (slow) SIGKILL at a random step then restart == an uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from associative_embedding.tasks.pose.trainer import PoseTrainer
from associative_embedding.training.trainer import LOSS_LOG_NAME, NonFiniteLossError
from tests.conftest import PROJECT_ROOT
from tests.training.scripts.tiny_config import tiny_config
from tests.training.subprocesses import run_script, subprocess_env


def _config(synthetic_root, **overrides):
    config = tiny_config(**overrides)
    config.dataset.synthetic_dir = str(synthetic_root)
    return config


def _read_loss_log(workdir) -> list[dict]:
    with open(os.path.join(workdir, LOSS_LOG_NAME)) as handle:
        return [json.loads(line) for line in handle]


def _checkpoint_steps(workdir) -> list[int]:
    state = tf.train.get_checkpoint_state(os.path.join(workdir, "checkpoints"))
    paths = state.all_model_checkpoint_paths if state else []
    return [int(path.rsplit("-", 1)[1]) for path in paths]


class _PushBecomesNaN(PoseTrainer):
    """The push term turns NaN from the second step on (as a diverging run would)."""

    def build_losses(self, outputs, batch):
        loss, parts = super().build_losses(outputs, batch)
        push = parts["push"]
        poisoned = tf.where(self.optimizer.iterations >= 1, np.float32(np.nan), push)
        return loss + self.config.loss.push_weight * (poisoned - push), {**parts, "push": poisoned}


def test_non_finite_loss_names_the_step_and_the_part(tmp_path, synthetic_root):
    config = _config(synthetic_root, train__num_steps=4)
    trainer = _PushBecomesNaN(config, tmp_path)
    with pytest.raises(NonFiniteLossError, match=r"step 2: .*push=nan") as raised:
        trainer.train()
    assert "heatmap" not in str(raised.value) and "pull" not in str(raised.value)
    # Step 1 was checkpointed; the poisoned step 2 was not.
    assert _checkpoint_steps(tmp_path) == [1]


class _SignalsItselfAt(PoseTrainer):
    """Sends SIGTERM to its own process once step `signal_step` is done (a preemption)."""

    signal_step = 2

    def _log(self, step, values, meter, writer):
        super()._log(step, values, meter, writer)
        if step == self.signal_step:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_saves_stops_and_resumes_with_the_loss_log(tmp_path, synthetic_root):
    def fail(signum, frame):
        raise AssertionError("SIGTERM reached the test instead of the trainer's guard")

    previous = signal.signal(signal.SIGTERM, fail)
    try:
        config = _config(synthetic_root, train__num_steps=5, train__checkpoint_every=100,
                         train__loss_log=True)
        trainer = _SignalsItselfAt(config, tmp_path)
        metrics = trainer.train()
        assert signal.getsignal(signal.SIGTERM) is fail
    finally:
        signal.signal(signal.SIGTERM, previous)
    # Stopped at the step boundary with a checkpoint of that step, before the final evaluation.
    assert trainer.step == 2 and _checkpoint_steps(tmp_path) == [2]
    assert metrics == {} and not (tmp_path / "metrics.json").exists()
    logged = _read_loss_log(tmp_path)
    assert [entry["step"] for entry in logged] == [1, 2]
    assert set(logged[0]) == {"step", "loss", "heatmap", "pull", "push"}

    # A run killed after step 2's checkpoint may have logged later steps, the last one cut
    # short; the resumed run replaces them with its own.
    with open(tmp_path / LOSS_LOG_NAME, "a") as handle:
        handle.write(json.dumps({"step": 3, "loss": -1.0}) + "\n" + '{"step": 4, "lo')
    resumed = PoseTrainer(_config(synthetic_root, train__num_steps=3, train__loss_log=True),
                          tmp_path)
    metrics = resumed.train()
    assert resumed.step == 3 and metrics["step"] == 3
    relogged = _read_loss_log(tmp_path)
    assert [entry["step"] for entry in relogged] == [1, 2, 3]
    assert relogged[:2] == logged and relogged[2]["loss"] > 0
    assert all(np.isfinite(entry["loss"]) for entry in relogged)


def test_mixed_bfloat16_gives_finite_losses(tmp_path, synthetic_root):
    previous_policy = keras.mixed_precision.global_policy()
    try:
        config = _config(synthetic_root, train__num_steps=2, train__loss_log=True,
                         train__mixed_precision="mixed_bfloat16")
        trainer = PoseTrainer(config, tmp_path)
        assert any(layer.compute_dtype == "bfloat16" for layer in trainer.model.layers)
        metrics = trainer.train()
        # Evaluations run a float32 twin holding the trained weights (what tools/predict.py
        # and exported models compute); the global policy is left as training set it.
        twin = trainer.inference_model()
        assert twin is not trainer.model
        assert all(layer.compute_dtype == "float32" for layer in twin.layers)
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        for ours, theirs in zip(twin.get_weights(), trainer.model.get_weights(), strict=True):
            np.testing.assert_array_equal(ours, theirs)
        images = np.random.default_rng(0).uniform(size=(1, 64, 64, 3)).astype(np.float32)
        in_float32 = np.asarray(twin(images, training=False))
        in_bfloat16 = np.asarray(trainer.model(images, training=False), np.float32)
        assert in_float32.dtype == np.float32
        np.testing.assert_allclose(in_float32, in_bfloat16, atol=0.1)
        assert not np.array_equal(in_float32, in_bfloat16)
        # The twin follows the weights as training changes them.
        trainer.model.trainable_variables[0].assign_add(
            tf.ones_like(trainer.model.trainable_variables[0]))
        np.testing.assert_array_equal(
            trainer.inference_model().trainable_variables[0].numpy(),
            trainer.model.trainable_variables[0].numpy())
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    logged = _read_loss_log(tmp_path)
    assert [entry["step"] for entry in logged] == [1, 2]
    for entry in logged:
        for name in ("loss", "heatmap", "pull", "push"):
            assert np.isfinite(entry[name]), entry
    # Variables stay float32 under the mixed policy; the evaluation ran on its outputs.
    assert all(v.dtype == "float32" for v in trainer.model.trainable_variables)
    assert "AP" in metrics


def test_without_a_mixed_policy_the_evaluated_network_is_the_trained_one(tmp_path,
                                                                          synthetic_root):
    trainer = PoseTrainer(_config(synthetic_root, train__num_steps=1), tmp_path)
    assert trainer.inference_model() is trainer.model


@pytest.mark.slow
def test_sigkill_at_a_random_step_then_restart_equals_an_uninterrupted_run(tmp_path):
    """Deterministic training (op determinism, ordered tf.data), 30 steps, checkpoint every 5."""
    config_flag = "--config=tests/training/scripts/tiny_experiment.py:resume"
    reference_dir, interrupted_dir = tmp_path / "reference", tmp_path / "interrupted"
    run_script(["tools/train.py", config_flag, f"--workdir={reference_dir}"], timeout=600)
    reference = _read_loss_log(reference_dir)
    assert [entry["step"] for entry in reference] == list(range(1, 31))

    seed = random.randrange(10**6)
    kill_step = random.Random(seed).randint(6, 28)  # after the first checkpoint (step 5)
    log_path = interrupted_dir / LOSS_LOG_NAME
    process = subprocess.Popen(
        [sys.executable, "tools/train.py", config_flag, f"--workdir={interrupted_dir}"],
        cwd=PROJECT_ROOT, env=subprocess_env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline and process.poll() is None:
            lines = log_path.read_text().splitlines() if log_path.exists() else []
            if len(lines) >= kill_step and _checkpoint_steps(interrupted_dir):
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
    finally:
        if process.poll() is None and time.monotonic() >= deadline:
            process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL, f"not killed (seed {seed})"
    killed_at = len(log_path.read_text().splitlines())
    last_checkpoint = max(_checkpoint_steps(interrupted_dir))
    assert last_checkpoint < 30

    run_script(["tools/train.py", config_flag, f"--workdir={interrupted_dir}"], timeout=600)
    resumed = _read_loss_log(interrupted_dir)
    context = f"seed {seed}, killed after step {killed_at}, resumed from {last_checkpoint}"
    print(context)  # shown with -s: which steps the restart redid
    assert [entry["step"] for entry in resumed] == list(range(1, 31)), context
    assert resumed == reference, context  # bit-identical losses, before and after the restart
    assert max(_checkpoint_steps(interrupted_dir)) == 30
    metrics = json.loads((interrupted_dir / "metrics.json").read_text())
    assert metrics["step"] == 30, context


def test_work_dir_rebuilds_the_trained_model_for_evaluation(tmp_path, synthetic_root):
    """config.json + best checkpoint -> the same network (load_trained_model, load_predictor)."""
    from associative_embedding.modeling.loading import load_predictor, load_trained_model

    config = _config(synthetic_root, train__num_steps=2)
    trainer = PoseTrainer(config, tmp_path)
    trainer.train()
    images = tf.random.stateless_uniform([1, 64, 64, 3], seed=[1, 2])
    expected = trainer.model(images, training=False).numpy()
    for which in ("best", "latest"):
        restored = load_trained_model(str(tmp_path), which=which)
        np.testing.assert_allclose(restored(images, training=False).numpy(), expected, atol=1e-6)
    predictor = load_predictor(tmp_path)
    np.testing.assert_allclose(predictor(images.numpy()), expected[:, -1], atol=1e-6)
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_trained_model(str(tmp_path / "checkpoints"))
