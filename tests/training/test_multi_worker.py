"""A 2-worker MultiWorkerMirroredStrategy run: two local processes joined by TF_CONFIG."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from associative_embedding.tasks.pose.trainer import PoseTrainer
from experiments import synthetic_pose
from tests.conftest import PROJECT_ROOT
from tests.training.subprocesses import subprocess_env

NUM_STEPS = 3
TIMEOUT_S = 240
# The smoke config with a shallower model (less to trace) and a lighter evaluation: the test is
# about the cluster, not the AP.
OVERRIDES = {
    "model.num_stacks": 1,
    "model.widths": "(16,16,16)",
    "train.num_steps": NUM_STEPS,
    "eval.max_images": 1,
    "eval.num_drawn_images": 1,
    "eval.gt_detection_diagnostic": False,
}


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for handle in sockets:
            handle.bind(("127.0.0.1", 0))
        return [handle.getsockname()[1] for handle in sockets]
    finally:
        for handle in sockets:
            handle.close()


def _start_worker(
    index: int, ports: list[int], workdir, tmpdir, num_steps: int = NUM_STEPS
) -> subprocess.Popen:
    tf_config = {
        "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
        "task": {"type": "worker", "index": index},
    }
    command = [
        sys.executable, "tools/train.py", "--config=experiments/synthetic_pose.py:smoke",
        f"--workdir={workdir}", "--strategy=multi_worker",
        *(f"--config.{key}={value}" for key, value in OVERRIDES.items()),
        f"--config.train.num_steps={num_steps}",
    ]
    # Each worker's scratch files (the non-chief's throw-away checkpoints, its synthetic
    # images) go to its own TMPDIR, to check they are cleaned up.
    env = subprocess_env(TF_CONFIG=json.dumps(tf_config), TMPDIR=str(tmpdir))
    log = open(tmpdir / "log.txt", "a")  # noqa: SIM115 (closed with the process below)
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log)
    process.log_file = log
    return process


def _wait(processes: list[subprocess.Popen], tmpdirs, expect_success: bool = True) -> list[str]:
    deadline = time.monotonic() + TIMEOUT_S
    try:
        for process in processes:
            process.wait(timeout=max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.log_file.close()
    logs = [(tmpdir / "log.txt").read_text()[-6000:] for tmpdir in tmpdirs]
    codes = [process.returncode for process in processes]
    if expect_success and codes != [0, 0]:
        pytest.fail(f"worker exit codes {codes} (a kill means > {TIMEOUT_S} s)\n"
                    + "\n----- worker log -----\n".join(logs))
    if not expect_success and (0 in codes or -9 in codes):
        pytest.fail(f"expected both workers to fail cleanly, exit codes {codes}\n"
                    + "\n----- worker log -----\n".join(logs))
    return logs


def _run_cluster(workdirs, tmpdirs, num_steps: int, expect_success: bool = True) -> list[str]:
    ports = _free_ports(2)
    processes = [
        _start_worker(i, ports, workdirs[i], tmpdirs[i], num_steps) for i in range(2)
    ]
    return _wait(processes, tmpdirs, expect_success)


def _tmpdirs(tmp_path) -> list:
    tmpdirs = [tmp_path / "tmp0", tmp_path / "tmp1"]
    for tmpdir in tmpdirs:
        tmpdir.mkdir()
    return tmpdirs


def test_two_workers_train_and_only_the_chief_writes(tmp_path):
    workdirs = [tmp_path / "chief_workdir", tmp_path / "worker1_workdir"]
    tmpdirs = _tmpdirs(tmp_path)
    _run_cluster(workdirs, tmpdirs, NUM_STEPS)

    # The non-chief wrote nothing into its work dir and cleaned its scratch space.
    assert not workdirs[1].exists()
    assert sorted(path.name for path in tmpdirs[1].iterdir()) == ["log.txt"]
    # The chief kept the checkpoints of every step, the metrics and the TensorBoard log.
    checkpoint_dir = workdirs[0] / "checkpoints"
    latest = tf.train.latest_checkpoint(str(checkpoint_dir))
    assert latest is not None and latest.endswith(f"ckpt-{NUM_STEPS}")
    metrics = json.loads((workdirs[0] / "metrics.json").read_text())
    assert metrics["step"] == NUM_STEPS and "AP" in metrics
    assert any((workdirs[0] / "tensorboard").iterdir())

    # The chief's checkpoint restores without any strategy into a freshly built model.
    config = synthetic_pose.get_config("smoke")
    config.model.num_stacks, config.model.widths = 1, (16, 16, 16)
    trainer = PoseTrainer(config, tmp_path / "restore", tf.distribute.get_strategy(),
                          data=object())
    fresh = [weight.copy() for weight in trainer.model.get_weights()]
    status = tf.train.Checkpoint(model=trainer.model, optimizer=trainer.optimizer).restore(latest)
    # Model and optimizer are all it holds (no per-worker input state in multi-worker).
    status.assert_consumed()
    assert trainer.step == NUM_STEPS
    restored = trainer.model.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(restored, fresh, strict=True))
    assert all(np.all(np.isfinite(weight)) for weight in restored)


@pytest.mark.slow
def test_workers_resume_from_a_shared_workdir_and_refuse_unshared_ones(tmp_path):
    tmpdirs = _tmpdirs(tmp_path)
    shared = tmp_path / "shared_workdir"
    _run_cluster([shared, shared], tmpdirs, NUM_STEPS)
    # Both workers read the chief's checkpoint, agree on the step and train on to 5.
    logs = _run_cluster([shared, shared], tmpdirs, NUM_STEPS + 2)
    for log in logs:
        assert f"resuming from {shared / 'checkpoints' / 'ckpt-3'} at step 3" in log
        assert "input streams restart with seed" in log
    assert tf.train.latest_checkpoint(str(shared / "checkpoints")).endswith("ckpt-5")
    assert json.loads((shared / "metrics.json").read_text())["step"] == NUM_STEPS + 2

    # A worker that cannot see the chief's work dir restores nothing: both stop with an error
    # instead of training with diverging weights (and hanging when one finishes first).
    logs = _run_cluster([shared, tmp_path / "elsewhere"], tmpdirs, NUM_STEPS + 4,
                        expect_success=False)
    for log in logs:
        assert "workers restored different steps" in log
