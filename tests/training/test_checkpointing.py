"""CheckpointKeeper (fallback from damaged checkpoints, non-chief scratch) and PreemptionGuard."""

from __future__ import annotations

import logging
import os
import signal

import numpy as np
import pytest
import tensorflow as tf

from associative_embedding.training.checkpointing import CheckpointKeeper, PreemptionGuard


def _keeper(directory, value: float = 0.0, **kwargs) -> tuple[CheckpointKeeper, tf.Variable]:
    variable = tf.Variable(np.full((64, 64), value, np.float32))
    keeper = CheckpointKeeper(str(directory), tf.train.Checkpoint(weights=variable), **kwargs)
    return keeper, variable


def _save_steps(directory, steps) -> None:
    keeper, variable = _keeper(directory)
    for step in steps:
        variable.assign(np.full((64, 64), step, np.float32))
        keeper.save(step)


def _data_file(directory, step: int) -> str:
    return os.path.join(directory, f"ckpt-{step}.data-00000-of-00001")


def test_restores_the_newest_checkpoint(tmp_path):
    _save_steps(tmp_path, [1, 2, 3])
    keeper, variable = _keeper(tmp_path, value=-1.0)
    assert keeper.restore_latest() == os.path.join(tmp_path, "ckpt-3")
    assert float(variable[0, 0]) == 3.0


def test_fresh_directory_restores_nothing(tmp_path):
    keeper, variable = _keeper(tmp_path / "empty", value=-1.0)
    assert keeper.restore_latest() is None
    assert float(variable[0, 0]) == -1.0


@pytest.mark.parametrize("damage", ["truncate_data", "empty_data", "delete_index", "garble_index"])
def test_damaged_latest_falls_back_to_previous_with_warning(tmp_path, caplog, damage):
    _save_steps(tmp_path, [1, 2, 3])
    if damage == "truncate_data":
        path = _data_file(tmp_path, 3)
        with open(path, "r+b") as handle:
            handle.truncate(os.path.getsize(path) // 2)
    elif damage == "empty_data":
        open(_data_file(tmp_path, 3), "wb").close()
    elif damage == "delete_index":
        os.remove(os.path.join(tmp_path, "ckpt-3.index"))
    else:
        with open(os.path.join(tmp_path, "ckpt-3.index"), "wb") as handle:
            handle.write(b"\x00garbage" * 8)
    keeper, variable = _keeper(tmp_path, value=-1.0)
    with caplog.at_level(logging.WARNING):
        restored = keeper.restore_latest()
    assert restored == os.path.join(tmp_path, "ckpt-2")
    assert float(variable[0, 0]) == 2.0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("ckpt-3" in message and "falling back" in message for message in warnings)


def test_all_checkpoints_damaged_is_an_error(tmp_path):
    _save_steps(tmp_path, [1, 2])
    for step in (1, 2):
        open(_data_file(tmp_path, step), "wb").close()
    keeper, _ = _keeper(tmp_path)
    with pytest.raises(RuntimeError, match="none of the checkpoints"):
        keeper.restore_latest()


def test_max_to_keep_must_allow_a_fallback(tmp_path):
    with pytest.raises(ValueError, match="max_to_keep"):
        _keeper(tmp_path, max_to_keep=1)


def test_non_chief_reads_the_chief_directory_and_writes_elsewhere(tmp_path):
    _save_steps(tmp_path, [4])
    before = sorted(os.listdir(tmp_path))
    keeper, variable = _keeper(tmp_path, value=-1.0, is_chief=False, worker_index=1)
    assert keeper.restore_latest() == os.path.join(tmp_path, "ckpt-4")
    assert float(variable[0, 0]) == 4.0
    path = keeper.save(5)
    assert not path.startswith(str(tmp_path))
    assert not os.path.exists(os.path.dirname(path))  # the scratch copy is deleted
    assert sorted(os.listdir(tmp_path)) == before


def test_preemption_guard_turns_signals_into_a_stop_request():
    def fail(signum, frame):
        raise AssertionError("the guard did not catch the signal")

    previous = signal.signal(signal.SIGTERM, fail)
    try:
        with PreemptionGuard() as guard:
            assert not guard.stop_requested
            os.kill(os.getpid(), signal.SIGTERM)
            assert guard.stop_requested and guard.signal_received == signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) is fail  # handlers restored
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_second_sigint_interrupts():
    with PreemptionGuard() as guard:
        os.kill(os.getpid(), signal.SIGINT)
        assert guard.stop_requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
