"""Custom training loop for Associative Embedding (TF Model Garden-style named pieces).

    trainer = tasks.registry.make_trainer(config, workdir, strategy)   # the task's subclass
    metrics = trainer.train()

`Trainer` is the task-generic loop; a task subclass (``tasks/<task>/trainer.py``) supplies the
data and the loss: `prepare_data`, `build_replica_dataset`, `build_losses`, `evaluate`, its
`loss_parts` and the `best_metric` that picks the best checkpoint (kept by
`training.evaluation_records`). Every task shares the model builder, the optimizer, the
distributed step, checkpointing, summaries and the driver `tools/train.py`, which picks the
task from `config.task`. Pieces, each overridable: `build_model`,
`build_optimizer`, `build_inputs`, `build_losses`, `train_step`, `evaluate`.

The loop runs `train_step` under `strategy.run` (default, mirrored or
multi-worker), scales the loss by the *global* batch size (so gradients summed over replicas equal
the single-device gradient of the global batch), checkpoints model + optimizer + step + tf.data
iterator every `train.checkpoint_every` steps and on SIGTERM/SIGINT, stops with a clear message on
a non-finite loss, logs one line every `train.log_every` steps (and, with `train.loss_log`, every
step's losses to WORKDIR/losses.jsonl), writes TensorBoard summaries and evaluates periodically,
keeping the best checkpoint by the task's `best_metric` (AP for pose).

Input: each worker iterates a plain tf.data iterator whose elements stack the per-replica batches
of its local replicas, (L, B / R, ...), and the step hands slice i to local replica i. This is
what `strategy.distribute_datasets_from_function` would feed, but unlike tf.distribute's
multi-device iterators (not trackable) a plain iterator can be checkpointed, which exact resume
needs. In multi-worker training only the chief's checkpoint is kept, so a worker's input position
cannot be restored; on resume every worker restarts its input stream with a seed derived from the
resume step (a fresh shuffle, not a replay of the first batches), documented in `train`.

Keras `fit` is deliberately not used: MultiWorkerMirroredStrategy with Keras 3 `fit` is broken
(keras issue 20585), and exact resume needs the iterator in the checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import keras
import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from associative_embedding.core.config_checks import validate_config
from associative_embedding.core.run_dir import (
    CONFIG_NAME,
    RESTORE_ERRORS,
    ModelFileError,
)
from associative_embedding.modeling import StackedHourglass
from associative_embedding.modeling.loading import build_model_from_config, unreadable_model_error
from associative_embedding.training import strategy as strategy_lib
from associative_embedding.training.checkpointing import CheckpointKeeper, PreemptionGuard
from associative_embedding.training.evaluation_records import EvaluationBookkeeping
from associative_embedding.training.progress import (
    _first_step_notice,
    _needs_tracing,
    _progress_bar,
    _ThroughputMeter,
)
from associative_embedding.training.schedules import WarmupSchedule

LOSS_LOG_NAME = "losses.jsonl"


def first_local_device(strategy: tf.distribute.Strategy) -> str:
    """The device the strategy's first local replica computes on."""
    try:
        return strategy.extended.worker_devices[0]
    except RuntimeError:
        # The default strategy names no devices: it runs where TensorFlow places ops.
        gpus = tf.config.list_logical_devices("GPU")
        return gpus[0].name if gpus else "/cpu:0"


class NonFiniteLossError(RuntimeError):
    """Raised when a training loss becomes NaN or Inf; names the step and the loss part."""


class Trainer(EvaluationBookkeeping):
    """The task-generic training loop of a stacked hourglass (see the module docstring).

    Subclasses define `loss_parts`, `best_metric`, `prepare_data`, `build_replica_dataset`,
    `build_losses` and `evaluate`.

    Args:
        config: an ml_collections config following `tasks.pose.config.base_config()`.
        workdir: directory for checkpoints, TensorBoard logs, metrics.json and drawings.
        strategy: a tf.distribute strategy (default: the current one).
        data: optional `TrainingData` (records/sources for train and validation); built from
            `config.dataset` when None.
    """

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        workdir: str,
        strategy: tf.distribute.Strategy | None = None,
        data: Any | None = None,
    ) -> None:
        # Before any work: a bad field would otherwise surface in the first traced step, or
        # after training, at the first evaluation.
        validate_config(config)
        self.config = config
        self.workdir = os.fspath(workdir)
        self.strategy = strategy or tf.distribute.get_strategy()
        self.is_chief = strategy_lib.is_chief(self.strategy)
        self.num_workers = strategy_lib.num_workers(self.strategy)
        self.worker_index = strategy_lib.worker_index(self.strategy)
        self.global_batch_size = int(config.train.global_batch_size)
        replicas = self.strategy.num_replicas_in_sync
        if self.global_batch_size % replicas:
            raise ValueError(
                f"global batch size {self.global_batch_size} is not divisible by the "
                f"{replicas} replicas"
            )
        # Replicas on this machine (all of them except in multi-worker training).
        self.local_replicas = replicas // self.num_workers
        self.steps_per_execution = int(config.train.get("steps_per_execution", 1))
        if self.steps_per_execution < 1:
            raise ValueError(
                f"--config.train.steps_per_execution={self.steps_per_execution}: must be >= 1"
            )
        if self.is_chief:
            os.makedirs(self.workdir, exist_ok=True)
            # The run's full config, so the work dir alone rebuilds the model (load_trained_model,
            # tools/evaluate.py --model=WORKDIR).
            with open(os.path.join(self.workdir, CONFIG_NAME), "w") as handle:
                handle.write(config.to_json_best_effort(indent=2))
        if config.train.deterministic:
            tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(int(config.train.seed))
        if config.train.mixed_precision:
            keras.mixed_precision.set_global_policy(config.train.mixed_precision)
        self._data = data
        with self.strategy.scope():
            self.model = self.build_model()
            self.optimizer = self.build_optimizer()
            # Slots must exist before the distributed step: variables cannot be created inside
            # a replica context.
            self.optimizer.build(self.model.trainable_variables)
        self._compiled_step: Callable | None = None
        self._compiled_multi_step: Callable | None = None
        self._float32_model: keras.Model | None = None

    #: Names of the unweighted loss terms `build_losses` returns (logged and summarised).
    loss_parts: tuple[str, ...] = ()
    #: The evaluation metric whose maximum selects WORKDIR/best.
    best_metric: str = "AP"

    # ------------------------------------------------------------------ task pieces

    def prepare_data(self) -> Any:
        """The task's resolved training and validation data (`self.data`)."""
        raise NotImplementedError

    def build_replica_dataset(
        self, input_context: tf.distribute.InputContext, seed: int
    ) -> tf.data.Dataset:
        """This worker's per-replica training batches (not yet stacked over replicas)."""
        raise NotImplementedError

    def build_losses(
        self, outputs: tf.Tensor, batch: dict[str, tf.Tensor]
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """Per-example weighted loss (B,) and the unweighted parts {name: (B,)}."""
        raise NotImplementedError

    def evaluate(self, step: int) -> dict[str, float]:
        """Validation metrics (must include `best_metric`); chief only."""
        raise NotImplementedError

    # ------------------------------------------------------------------ named pieces

    def build_model(self) -> StackedHourglass:
        return build_model_from_config(self.config)

    def inference_model(self) -> keras.Model:
        """The network in float32 with the current weights, as exports and tools/predict.py run it
        (the training network itself without a mixed policy). Evaluations use this twin, built
        once, so metrics.json reports what the checkpoint gives users: bfloat16 rounds the peaks
        that thresholds and sub-pixel refinement read (tracking IDF1 0.657, float32 0.691)."""
        if not self.config.train.mixed_precision:
            return self.model
        if self._float32_model is None:
            policy = keras.mixed_precision.global_policy()
            keras.mixed_precision.set_global_policy("float32")
            try:
                self._float32_model = self.build_model()
            finally:
                keras.mixed_precision.set_global_policy(policy)
        self._float32_model.set_weights(self.model.get_weights())
        return self._float32_model

    def build_optimizer(self) -> keras.optimizers.Optimizer:
        opt = self.config.optimizer
        schedule = WarmupSchedule(
            opt.learning_rate,
            kind=opt.schedule,
            final_learning_rate=opt.final_learning_rate,
            decay_step=opt.decay_step,
            total_steps=self.config.train.num_steps,
            warmup_steps=opt.warmup_steps,
        )
        optimizer = keras.optimizers.Adam(
            learning_rate=schedule, global_clipnorm=opt.clipnorm or None
        )
        if self.config.train.mixed_precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    def build_inputs(self, seed: int | None = None) -> tf.data.Dataset:
        """This worker's training batches, stacked over its local replicas.

        Args:
            seed: input seed (default `train.seed`).

        Returns:
            A dataset of the task's batch dicts whose leaves are (L, B / R, ...):
            L local replicas, R replicas in all, B the global batch size. The input pipeline is
            sharded per worker like `distribute_datasets_from_function` does.
        """
        context = tf.distribute.InputContext(
            num_input_pipelines=self.num_workers,
            input_pipeline_id=self.worker_index,
            num_replicas_in_sync=self.strategy.num_replicas_in_sync,
        )
        seed = int(self.config.train.seed) if seed is None else int(seed)
        dataset = self.build_replica_dataset(context, seed)
        dataset = dataset.batch(self.local_replicas, drop_remainder=True)
        if self.config.train.get("prefetch_to_device", False):
            if self.prefetches_to_device():
                # The copy to the accelerator overlaps the running step instead of starting
                # when the step asks for its batch. The copying iterator cannot be saved, so
                # `train` then resumes like a multi-worker run (a reseeded input stream).
                device = first_local_device(self.strategy)
                return dataset.apply(tf.data.experimental.prefetch_to_device(device, 2))
            # Several local replicas each take a slice of the stacked batch: copying it whole
            # onto one of them first would add a device-to-device copy, not remove one.
            logging.warning(
                "train.prefetch_to_device is ignored with %d local replicas", self.local_replicas
            )
        return dataset.prefetch(1)

    def prefetches_to_device(self) -> bool:
        """Whether `build_inputs` copies batches onto the device (train.prefetch_to_device)."""
        return bool(self.config.train.get("prefetch_to_device", False)) and (
            self.local_replicas == 1
        )

    def train_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """One replica's forward/backward/update; returns its share of the logged metrics.

        The loss is divided by the *global* batch size, so the sum over replicas of the returned
        values is the global-batch mean, and MirroredStrategy's gradient all-reduce (a sum)
        gives exactly the single-device gradient of the global batch.
        """
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            outputs = self.model(batch["image"], training=True)
            per_example, parts = self.build_losses(outputs, batch)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch_size)
            scaled_loss = (
                self.optimizer.scale_loss(loss)
                if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)
                else loss
            )
        gradients = tape.gradient(scaled_loss, variables)
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        metrics = {"loss": loss}
        for name in self.loss_parts:
            metrics[name] = tf.nn.compute_average_loss(
                parts[name], global_batch_size=self.global_batch_size
            )
        return metrics

    # ------------------------------------------------------------------ plumbing

    @property
    def data(self) -> Any:
        if self._data is None:
            self._data = self.prepare_data()
        return self._data

    @property
    def step(self) -> int:
        return int(self.optimizer.iterations.numpy())

    def _distributed_step(self) -> Callable:
        """The tf.function running one global step on the next batch of an iterator."""
        if self._compiled_step is None:
            self._compiled_step = tf.function(self._one_distributed_step())
        return self._compiled_step

    def _distributed_steps(self) -> Callable:
        """The tf.function running `num_steps` global steps in one call (a graph loop).

        It returns every step's summed metrics stacked, (num_steps,) each, so the host still
        logs and checks every step. `num_steps` is a tensor: the shorter calls that end at a
        checkpoint or evaluation step reuse the same graph.
        """
        if self._compiled_multi_step is not None:
            return self._compiled_multi_step
        one_step = self._one_distributed_step()
        names = ("loss", *self.loss_parts)

        @tf.function
        def steps_fn(iterator: Iterator, num_steps: tf.Tensor) -> dict[str, tf.Tensor]:
            arrays = {name: tf.TensorArray(tf.float32, size=num_steps) for name in names}
            for index in tf.range(num_steps):
                values = one_step(iterator)
                arrays = {
                    name: arrays[name].write(index, tf.cast(values[name], tf.float32))
                    for name in names
                }
            return {name: array.stack() for name, array in arrays.items()}

        self._compiled_multi_step = steps_fn
        return steps_fn

    def _one_distributed_step(self) -> Callable:
        # The replica step holds the optimizer update, so with jit_compile XLA compiles
        # forward, loss, backward and update as one program.
        replica_step = tf.function(self.train_step, jit_compile=bool(self.config.train.jit_compile))
        local_replicas = self.local_replicas

        def step_fn(iterator: Iterator) -> dict[str, tf.Tensor]:
            stacked = next(iterator)
            # Global replica ids are worker * L + local (Mirrored and MultiWorkerMirrored).
            batch = self.strategy.experimental_distribute_values_from_function(
                lambda context: tf.nest.map_structure(
                    lambda leaf: leaf[context.replica_id_in_sync_group % local_replicas], stacked
                )
            )
            per_replica = self.strategy.run(replica_step, args=(batch,))
            return {
                name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for name, value in per_replica.items()
            }

        return step_fn

    def _steps_in_next_call(self, step: int) -> int:
        """How many steps the next call runs: `train.steps_per_execution`, cut short so that
        the call ends on the next checkpoint, evaluation or last step."""
        config = self.config.train
        count = min(self.steps_per_execution, int(config.num_steps) - step)
        for every in (int(config.checkpoint_every), int(self.config.eval.every_steps)):
            if every > 0:
                count = min(count, every - step % every)
        return max(count, 1)

    def run_steps(self, iterator: Iterator) -> list[dict[str, float]]:
        """Runs the next call's steps (one, or up to `train.steps_per_execution`).

        Args:
            iterator: an iterator over `build_inputs()`.

        Returns:
            Each step's summed metrics ('loss' and the `loss_parts`), in step order.
        """
        if self.steps_per_execution == 1:
            # The plain one-step function (the loop's graph with no loop around it).
            return [{name: float(v) for name, v in self._distributed_step()(iterator).items()}]
        count = self._steps_in_next_call(self.step)
        stacked = self._distributed_steps()(iterator, tf.constant(count, tf.int32))
        columns = {name: value.numpy() for name, value in stacked.items()}
        return [{name: float(column[i]) for name, column in columns.items()} for i in range(count)]

    def _checkpoint(self, iterator: Any | None) -> tf.train.Checkpoint:
        if iterator is None:
            return tf.train.Checkpoint(model=self.model, optimizer=self.optimizer)
        return tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, iterator=iterator)

    def train(self) -> dict[str, float]:
        """Runs (or resumes) training to `train.num_steps`; returns the final metrics.

        Resuming restores model, optimizer (with the step) and, on a single machine, the input
        iterator, so the run continues with exactly the batches it would have seen. In
        multi-worker training the checkpoint (the chief's) holds no input position: every
        worker restarts its input with a seed derived from `train.seed` and the resume step.
        So does a run with `train.prefetch_to_device` (tf.data cannot save an iterator that
        copies to a device).

        With `train.steps_per_execution` N > 1 each call runs up to N steps in a graph loop,
        ending at the next checkpoint, evaluation or last step; every step's losses are still
        logged and checked, the log lines, checkpoints and evaluations fall on the same steps,
        and the preemption and time-limit checks run between calls.
        """
        config = self.config.train
        # A plain iterator's state is per worker; only a single worker can checkpoint its own,
        # and tf.data cannot save an iterator that copies to a device.
        saves_input = self.num_workers == 1 and not self.prefetches_to_device()
        iterator = iter(self.build_inputs()) if saves_input else None
        keeper = CheckpointKeeper(
            os.path.join(self.workdir, "checkpoints"),
            self._checkpoint(iterator),
            max_to_keep=config.max_to_keep,
            is_chief=self.is_chief,
            worker_index=self.worker_index,
        )
        restored = keeper.restore_latest()
        if restored:
            logging.info("resuming from %s at step %d", restored, self.step)
        elif config.get("init_checkpoint"):
            self._initialise_from(config.init_checkpoint)
        self._check_workers_agree_on_step()
        if iterator is None:
            seed = int(config.seed)
            if self.step > 0:
                seed = int(np.random.SeedSequence([seed, self.step]).generate_state(1)[0])
                logging.warning(
                    "%s resume at step %d: input positions are not checkpointed; "
                    "the input streams restart with seed %d",
                    "multi-worker" if self.num_workers > 1 else "prefetch_to_device",
                    self.step, seed,
                )
            iterator = iter(self.build_inputs(seed=seed))
        summary_writer = self._summary_writer()
        loss_log = self._open_loss_log() if config.loss_log and self.is_chief else None
        step_fn = (
            self._distributed_step() if self.steps_per_execution == 1 else self._distributed_steps()
        )
        meter = _ThroughputMeter(self.step, config.num_steps, self.global_batch_size)
        metrics: dict[str, float] = self._read_metrics()
        deadline = (
            time.monotonic() + 60.0 * config.time_limit_minutes
            if config.time_limit_minutes > 0
            else math.inf
        )
        eval_every = int(self.config.eval.every_steps)
        progress, progress_checked, progress_start = None, False, 0

        with PreemptionGuard() as guard, contextlib.ExitStack() as cleanup:
            if loss_log is not None:
                cleanup.callback(loss_log.close)
            while self.step < config.num_steps:
                first_step = self.step + 1
                if _needs_tracing(step_fn):
                    with _first_step_notice():
                        results = self.run_steps(iterator)
                    # Throughput and ETA from the steady state, not from the tracing.
                    meter = _ThroughputMeter(self.step, config.num_steps, self.global_batch_size)
                else:
                    results = self.run_steps(iterator)
                # Every step of the call in order (one, unless train.steps_per_execution > 1):
                # the optimizer already stands at the call's last step.
                meter.update(first_step + len(results) - 1)
                for step, values in enumerate(results, start=first_step):
                    if loss_log is not None:
                        loss_log.write(json.dumps({"step": step, **values}) + "\n")
                        loss_log.flush()
                    self._check_finite(values, step)
                    if not progress_checked:
                        # Created after the first call, so that neither the tracing notices nor
                        # the tracing time (as a rate) end up in the bar.
                        progress_start = first_step + len(results) - 1
                        progress = _progress_bar(progress_start, config.num_steps)
                        progress_checked = True
                    elif progress is not None and step > progress_start:
                        progress.set_postfix(loss=f"{values['loss']:.3g}", refresh=False)
                        progress.update(1)
                    if step % config.log_every == 0 or step == config.num_steps:
                        self._log(step, values, meter, summary_writer)
                step = self.step
                stopping = guard.stop_requested or time.monotonic() > deadline
                if step % config.checkpoint_every == 0 or step == config.num_steps or stopping:
                    keeper.save(step)
                if eval_every and step % eval_every == 0 and step < config.num_steps:
                    metrics = self._evaluate_and_keep_best(step, summary_writer)
                if stopping:
                    reason = "signal" if guard.stop_requested else "time limit"
                    logging.warning("stopping at step %d (%s); checkpoint saved", step, reason)
                    break
        if progress is not None:
            progress.close()
        if self.step >= config.num_steps:
            metrics = self._evaluate_and_keep_best(self.step, summary_writer)
        if summary_writer is not None:
            summary_writer.flush()
        return metrics

    # ------------------------------------------------------------------ helpers

    def _initialise_from(self, checkpoint: str) -> None:
        """Loads the model weights (not the optimizer or step) of a checkpoint prefix."""
        if not tf.io.gfile.exists(checkpoint + ".index"):
            raise FileNotFoundError(
                f"train.init_checkpoint: no checkpoint at {checkpoint} (expected "
                f"{checkpoint}.index)"
            )
        try:
            status = tf.train.Checkpoint(model=self.model).read(checkpoint).expect_partial()
            status.assert_existing_objects_matched()
        except RESTORE_ERRORS as error:
            raise ModelFileError(
                f"train.init_checkpoint: {unreadable_model_error(checkpoint, error)}"
            ) from None
        logging.info("initialised the model from %s", checkpoint)

    def _check_finite(self, values: dict[str, float], step: int) -> None:
        bad = [name for name, value in values.items() if not np.isfinite(value)]
        if bad:
            detail = ", ".join(f"{name}={values[name]}" for name in bad)
            raise NonFiniteLossError(
                f"non-finite loss at step {step}: {detail}. Lower the learning rate, check "
                "the inputs of that step, or enable gradient clipping (optimizer.clipnorm)."
            )

    def _check_workers_agree_on_step(self) -> None:
        """Fails on every worker when they restored different steps.

        That happens when the workers do not see the same work dir (each restores from its own
        path): their weights and loop lengths would silently diverge, then hang in a collective.
        """
        if self.num_workers == 1:
            return
        # All replicas hold the same step iff R * sum(step^2) == sum(step)^2 (Cauchy-Schwarz);
        # tf.distribute reduces by SUM or MEAN only.
        step = tf.constant([self.step, self.step**2], tf.int64)
        per_replica = self.strategy.experimental_distribute_values_from_function(lambda _: step)
        total, total_of_squares = (
            int(value)
            for value in self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
        )
        if self.strategy.num_replicas_in_sync * total_of_squares != total**2:
            raise RuntimeError(
                f"workers restored different steps (this worker, {self.worker_index}, step "
                f"{self.step} from {self.workdir}; mean over replicas "
                f"{total / self.strategy.num_replicas_in_sync:g}). Multi-worker training needs "
                "the chief's work dir readable by every worker at the same path."
            )

    def _open_loss_log(self) -> Any:
        """WORKDIR/losses.jsonl for appending, cut back to the steps up to the current one.

        A run killed after its last checkpoint logged steps that the resumed run repeats; those
        lines (and a line cut short by the kill) are dropped, so the file always reads as one
        uninterrupted run: one JSON object {step, loss, heatmap, pull, push} per line.
        """
        path = os.path.join(self.workdir, LOSS_LOG_NAME)
        if os.path.exists(path):
            kept = []
            with open(path) as handle:
                for line in handle:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(entry, dict) and entry.get("step", math.inf) <= self.step:
                        kept.append(line if line.endswith("\n") else line + "\n")
            with open(path + ".tmp", "w") as handle:
                handle.writelines(kept)
            os.replace(path + ".tmp", path)
        return open(path, "a")  # noqa: SIM115 (closed by train's ExitStack)

    def _summary_writer(self) -> tf.summary.SummaryWriter | None:
        if not self.is_chief:
            return None
        return tf.summary.create_file_writer(os.path.join(self.workdir, "tensorboard"))

    def _log(
        self,
        step: int,
        values: dict[str, float],
        meter: _ThroughputMeter,
        writer: tf.summary.SummaryWriter | None,
    ) -> None:
        learning_rate = self._learning_rate_after(step)
        parts = " ".join(f"{name}={values[name]:.4g}" for name in self.loss_parts)
        logging.info(
            "step %d/%d loss=%.4g %s lr=%.3g %.1f img/s ETA %s",
            step, self.config.train.num_steps, values["loss"], parts, learning_rate,
            meter.images_per_second, meter.eta_text(),
        )
        if writer is None:
            return
        with writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(f"train/{name}", value)
            tf.summary.scalar("train/learning_rate", learning_rate)
            tf.summary.scalar("train/images_per_second", meter.images_per_second)

    def _learning_rate_after(self, step: int) -> float:
        """The learning rate once `step` steps are done (the optimizer's current one, unless
        a multi-step call has already moved it further)."""
        optimizer = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        schedule = getattr(optimizer, "_learning_rate", None)
        if step != self.step and isinstance(
            schedule, keras.optimizers.schedules.LearningRateSchedule
        ):
            return float(schedule(step))
        return float(self.optimizer.learning_rate)
