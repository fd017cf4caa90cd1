"""The loop's speed options change no loss: several steps per call, device prefetch and
bf16 with the whole step XLA-compiled, each against the plain loop of a seeded tiny run."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from associative_embedding.tasks.pose.trainer import PoseTrainer
from associative_embedding.training.trainer import LOSS_LOG_NAME
from tests.training.scripts.tiny_config import tiny_config
from tests.training.subprocesses import run_script

NUM_STEPS = 6


def _config(synthetic_root, **overrides):
    """A deterministic tiny run (op determinism and input order) logging every step's loss."""
    values = dict(
        train__num_steps=NUM_STEPS,
        train__loss_log=True,
        train__deterministic=True,
        train__checkpoint_every=NUM_STEPS,
        train__log_every=2,
        train__seed=3,
    )
    values.update(overrides)
    config = tiny_config(**values)
    config.dataset.synthetic_dir = str(synthetic_root)
    return config


def _losses(workdir) -> np.ndarray:
    with open(os.path.join(workdir, LOSS_LOG_NAME)) as handle:
        logged = [json.loads(line) for line in handle]
    assert [entry["step"] for entry in logged] == list(range(1, len(logged) + 1))
    return np.array([[entry[n] for n in ("loss", "heatmap", "pull", "push")] for entry in logged])


def _train(config, workdir) -> tuple[np.ndarray, PoseTrainer]:
    trainer = PoseTrainer(config, workdir)
    trainer.train()
    return _losses(workdir), trainer


def _checkpoint_steps(workdir) -> list[int]:
    state = tf.train.get_checkpoint_state(os.path.join(workdir, "checkpoints"))
    return [int(path.rsplit("-", 1)[1]) for path in state.all_model_checkpoint_paths]


@pytest.fixture(scope="module")
def plain_losses(tmp_path_factory, synthetic_root) -> np.ndarray:
    """The plain loop's losses (one step per call, no device prefetch, float32, no XLA)."""
    losses, _ = _train(_config(synthetic_root), tmp_path_factory.mktemp("plain"))
    assert losses.shape == (NUM_STEPS, 4)
    return losses


def test_steps_per_execution_gives_the_same_losses_and_keeps_the_cadence(
    tmp_path, synthetic_root, plain_losses
):
    # 4 steps per call with checkpoints every 3 steps: calls of 3, 3 (each cut at a checkpoint).
    config = _config(synthetic_root, train__steps_per_execution=4, train__checkpoint_every=3)
    losses, trainer = _train(config, tmp_path)
    np.testing.assert_array_equal(losses, plain_losses)
    assert trainer.step == NUM_STEPS
    assert _checkpoint_steps(tmp_path) == [3, 6]
    # One graph for calls of every length.
    assert trainer._distributed_steps().experimental_get_tracing_count() == 1


def test_steps_per_execution_calls_end_on_checkpoint_eval_and_last_steps(
    tmp_path, synthetic_root
):
    config = _config(synthetic_root, train__steps_per_execution=8, train__num_steps=20,
                     train__checkpoint_every=6)
    config.eval.every_steps = 10
    trainer = PoseTrainer(config, tmp_path)
    counts, step = [], 0
    while step < 20:
        counts.append(trainer._steps_in_next_call(step))
        step += counts[-1]
    # Ends at 6, 10 (eval), 12, 18, 20.
    assert counts == [6, 4, 2, 6, 2]


def test_steps_per_execution_resumes_exactly(tmp_path, synthetic_root, plain_losses):
    # First run stops at step 3 (its last step), the second resumes to 6, 5 steps per call.
    first = _config(synthetic_root, train__steps_per_execution=5, train__num_steps=3,
                    train__checkpoint_every=3)
    PoseTrainer(first, tmp_path).train()
    second = _config(synthetic_root, train__steps_per_execution=5, train__checkpoint_every=3)
    losses, trainer = _train(second, tmp_path)
    np.testing.assert_array_equal(losses, plain_losses)
    assert trainer.step == NUM_STEPS


def test_prefetch_to_device_gives_the_same_losses(tmp_path, synthetic_root, plain_losses):
    config = _config(synthetic_root, train__prefetch_to_device=True)
    trainer = PoseTrainer(config, tmp_path)
    assert trainer.prefetches_to_device()
    trainer.train()
    np.testing.assert_array_equal(_losses(tmp_path), plain_losses)


def test_prefetch_to_device_resumes_with_a_reseeded_input(tmp_path, synthetic_root):
    first = _config(synthetic_root, train__prefetch_to_device=True, train__num_steps=3,
                    train__checkpoint_every=3)
    PoseTrainer(first, tmp_path).train()
    trainer = PoseTrainer(_config(synthetic_root, train__prefetch_to_device=True), tmp_path)
    trainer.train()
    assert trainer.step == NUM_STEPS and len(_losses(tmp_path)) == NUM_STEPS


def test_bf16_with_the_whole_step_under_xla_trains_like_float32(tmp_path, synthetic_root):
    # A subprocess: the other tests enable op determinism process-wide, which XLA's MaxPool
    # gradient does not support.
    completed = run_script(
        ["tests/training/scripts/bf16_xla_losses.py", str(synthetic_root), str(tmp_path)],
        timeout=600,
    )
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    plain, fast = np.array(result["float32"]), np.array(result["bf16_xla"])
    assert plain.shape == fast.shape == (6, 4)
    # Step 1 is before any update: bf16 rounding of the forward pass and the loss only.
    np.testing.assert_allclose(fast[0], plain[0], rtol=2e-2, atol=2e-3)
    # The later steps follow the float32 trajectory within bf16 tolerance, so the updates
    # ran (and were the same updates) inside the compiled step.
    np.testing.assert_allclose(fast[:, 0], plain[:, 0], rtol=5e-2, atol=5e-3)
    assert plain[-1, 0] < plain[0, 0] and fast[-1, 0] < fast[0, 0]
    # The XLA program of one replica step holds Adam's update: it moves the weights and the
    # step counter, and contains the update's square root.
    update = result["compiled_update"]
    assert update["sqrt_ops"] > 0
    assert update["step_after_one_call"] == 1 and update["weights_changed"]


def test_steps_per_execution_must_be_positive(tmp_path, synthetic_root):
    with pytest.raises(ValueError, match="steps_per_execution"):
        PoseTrainer(_config(synthetic_root, train__steps_per_execution=0), tmp_path)
