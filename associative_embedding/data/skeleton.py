"""The tf.data skeleton every training pipeline shares (pose, instances, person crops).

A pipeline is: a source of examples sharded for this input pipeline, shuffled and repeated when
training; each example numbered and given its own stateless seed (the global seed folded with
the pipeline id, then with the example's position), so that augmentation is reproducible and
independent of parallelism; a task-specific `load(example, example_seed)`; then the per-replica
batch, prefetch and the determinism options. `PipelinePlan` resolves the settings once; the
steps below are the skeleton, and each pipeline module supplies only its source and its `load`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class PipelinePlan:
    """The resolved settings of one host's pipeline.

    Attributes:
        seed: the global seed (`resolve_seed`).
        pipeline_id: this input pipeline's index (0 without an input context).
        per_replica_batch: the batch each replica sees.
        num_epochs: passes over the data (None = forever).
    """

    seed: int
    pipeline_id: int
    per_replica_batch: int
    num_epochs: int | None

    @classmethod
    def resolve(
        cls,
        *,
        batch_size: int,
        seed: int | None,
        training: bool,
        num_epochs: int | None,
        input_context: tf.distribute.InputContext | None,
    ) -> PipelinePlan:
        """Checks the batch size, draws a seed when None, and defaults evaluation to one pass.

        Raises:
            ValueError: for a non-positive batch size or a seed outside int64.
        """
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        global_seed = resolve_seed(seed)
        pipeline_id = input_context.input_pipeline_id if input_context else 0
        per_replica_batch = (
            input_context.get_per_replica_batch_size(batch_size) if input_context else batch_size
        )
        if num_epochs is None and not training:
            num_epochs = 1
        return cls(global_seed, pipeline_id, per_replica_batch, num_epochs)


def shard(
    dataset: tf.data.Dataset, input_context: tf.distribute.InputContext | None
) -> tf.data.Dataset:
    """Keeps this input pipeline's share of the examples (every n-th)."""
    if input_context and input_context.num_input_pipelines > 1:
        dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    return dataset


def shuffle_and_repeat(
    dataset: tf.data.Dataset,
    plan: PipelinePlan,
    *,
    training: bool,
    shuffle_buffer_size: int,
) -> tf.data.Dataset:
    """Training: shuffled every epoch with the plan's seed. Then `plan.num_epochs` passes."""
    if training:
        dataset = dataset.shuffle(
            shuffle_buffer_size, seed=plan.seed, reshuffle_each_iteration=True
        )
    return dataset.repeat(plan.num_epochs) if plan.num_epochs != 1 else dataset


def load_and_batch(
    dataset: tf.data.Dataset,
    load: Callable[[Any, tf.Tensor], dict[str, tf.Tensor]],
    plan: PipelinePlan,
    *,
    training: bool,
    num_parallel_calls: int,
    deterministic: bool,
    drop_remainder: bool | None,
    skip_errors: bool = False,
    threadpool_size: int | None = None,
) -> tf.data.Dataset:
    """Maps `load(example, example_seed)` over the examples, then batches and prefetches.

    The seed of the i-th example of this pipeline is fold_in(fold_in([seed, 0], pipeline_id),
    i). The batches are per replica, the remainder dropped when training (a static batch
    shape), and the dataset carries the pipeline's options.

    Args:
        dataset: the (sharded, shuffled, repeated) examples.
        load: the pipeline's own step, one example and its (2,) int64 seed -> a dict of tensors.
        plan: the resolved settings.
        training: the default of `drop_remainder`.
        num_parallel_calls: parallelism of the map.
        deterministic: keep the element order fixed.
        drop_remainder: drop a last partial batch (None: when training).
        skip_errors: drop the examples whose `load` fails (tf.data logs each one) instead of
            failing.
        threadpool_size: private tf.data threadpool size (``dataset_options``).
    """
    dataset = dataset.enumerate()
    base_seed = tf.random.experimental.stateless_fold_in(
        tf.constant([plan.seed, 0], tf.int64), plan.pipeline_id
    )

    @tf.autograph.experimental.do_not_convert
    def seeded_load(index: tf.Tensor, example: Any) -> dict[str, tf.Tensor]:
        return load(example, tf.random.experimental.stateless_fold_in(base_seed, index))

    dataset = dataset.map(
        seeded_load, num_parallel_calls=num_parallel_calls, deterministic=deterministic
    )
    if skip_errors:
        dataset = dataset.ignore_errors(log_warning=True)
    if drop_remainder is None:
        drop_remainder = training
    dataset = dataset.batch(plan.per_replica_batch, drop_remainder=drop_remainder)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    return dataset.with_options(dataset_options(deterministic, threadpool_size))


def resolve_seed(seed: int | None) -> int:
    """A non-negative int64 seed: `seed` checked, or a random one when None."""
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint32)[0] >> 1)
    if not 0 <= int(seed) < 2**63:
        raise ValueError(f"seed must be a non-negative int64, got {seed}")
    return int(seed)


def dataset_options(
    deterministic: bool, threadpool_size: int | None = None
) -> tf.data.Options:
    """tf.data options of every pipeline: determinism, and an optional private threadpool."""
    options = tf.data.Options()
    options.deterministic = deterministic
    if threadpool_size is not None:
        options.threading.private_threadpool_size = int(threadpool_size)
        options.threading.max_intra_op_parallelism = int(threadpool_size)
    return options
