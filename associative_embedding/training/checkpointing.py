"""Checkpoints that survive preemption and corruption.

`CheckpointKeeper` wraps tf.train.CheckpointManager over a tf.train.Checkpoint holding the model,
optimizer, global step and the tf.data iterator, so a restart continues with the very next batch.
Only the chief writes into the work dir; in a multi-worker cluster the other workers still take
part in the (collective) save, but into a throw-away directory of their own that is deleted right
after, as TensorFlow's multi-worker guide prescribes. Every worker restores from the chief's
directory, so the work dir must be readable by all workers (a shared file system).

`PreemptionGuard` turns SIGTERM/SIGINT into a flag that the training loop polls once per step:
the loop saves a checkpoint and exits cleanly instead of dying mid-step.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
import types

import tensorflow as tf
from absl import logging

from associative_embedding.core.run_dir import RESTORE_ERRORS


class CheckpointKeeper:
    """Saves every N steps, restores the newest readable checkpoint.

    Args:
        directory: where the chief keeps its checkpoints (e.g. WORKDIR/checkpoints).
        checkpoint: the tf.train.Checkpoint to save/restore.
        max_to_keep: how many recent checkpoints to keep (>= 2 so that a corrupt latest one
            can fall back to the previous one).
        is_chief: whether this worker owns `directory` (others only read it).
        worker_index: used to name the throw-away directory of a non-chief worker.
    """

    def __init__(
        self,
        directory: str,
        checkpoint: tf.train.Checkpoint,
        *,
        max_to_keep: int = 3,
        is_chief: bool = True,
        worker_index: int = 0,
    ) -> None:
        if max_to_keep < 2:
            raise ValueError("max_to_keep must be >= 2 to allow falling back from a corrupt save")
        self.is_chief = is_chief
        self.directory = directory
        self.checkpoint = checkpoint
        # Constructing a manager only reads `directory`: non-chief workers use it to restore.
        self.manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=max_to_keep)
        self.worker_index = worker_index

    def save(self, step: int) -> str:
        """Writes a checkpoint numbered `step`; returns its path (deleted on non-chief workers)."""
        if self.is_chief:
            path = self.manager.save(checkpoint_number=int(step))
            logging.info("saved checkpoint %s", path)
            return path
        scratch = tempfile.mkdtemp(prefix=f"ae_worker{self.worker_index}_ckpt_")
        try:
            manager = tf.train.CheckpointManager(self.checkpoint, scratch, max_to_keep=1)
            return manager.save(checkpoint_number=int(step))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def restore_latest(self) -> str | None:
        """Restores the newest checkpoint that reads cleanly.

        A damaged newest checkpoint (truncated or missing files) is skipped with a warning and
        the previous one is tried, down to the oldest kept.

        Returns:
            The restored checkpoint's path, or None when there is none (fresh start).

        Raises:
            RuntimeError: when checkpoints exist but none of them can be read.
        """
        candidates = list(reversed(self.manager.checkpoints))
        if not candidates:
            return None
        for path in candidates:
            try:
                status = self.checkpoint.restore(path)
                status.assert_existing_objects_matched()
            except RESTORE_ERRORS as error:
                logging.warning(
                    "checkpoint %s is unreadable (%s: %s); falling back to the previous one",
                    path, type(error).__name__, str(error).splitlines()[0] if str(error) else "",
                )
                continue
            logging.info("restored checkpoint %s", path)
            return path
        raise RuntimeError(
            f"none of the checkpoints in {self.directory} could be restored: {candidates}"
        )


class PreemptionGuard:
    """Records SIGTERM/SIGINT so the training loop can checkpoint and exit at a step boundary.

    A second SIGINT while a stop is already pending raises KeyboardInterrupt (the user insists).
    Use as a context manager; the previous handlers are restored on exit.
    """

    def __init__(self) -> None:
        self.signal_received: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: types.FrameType | None) -> None:
        del frame
        if self.signal_received == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_received = signum
        logging.warning("received %s: will checkpoint and stop after this step",
                        signal.Signals(signum).name)

    @property
    def stop_requested(self) -> bool:
        return self.signal_received is not None

    def __enter__(self) -> PreemptionGuard:
        for signum in (signal.SIGTERM, signal.SIGINT):
            # Off the main thread signals cannot be caught; the guard then does nothing.
            with contextlib.suppress(ValueError):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
