"""Trains the tiny config on fixed batches in float32 and in bf16 with XLA; prints JSON.

Run in its own process: `train.deterministic` enables op determinism for the whole process,
and XLA has no deterministic MaxPool gradient, so the XLA runs cannot share the pytest process
with the deterministic runs. Fixed batches make the comparison independent of tf.data order.

    python tests/training/scripts/bf16_xla_losses.py SYNTHETIC_ROOT WORKDIR
"""

from __future__ import annotations

import json
import os
import sys

import keras
import numpy as np
import tensorflow as tf

from associative_embedding.tasks.pose.trainer import PoseTrainer
from associative_embedding.training.trainer import LOSS_LOG_NAME
from tests.training.scripts.tiny_config import fixed_batch, tiny_config

NUM_STEPS = 6


class FixedBatchTrainer(PoseTrainer):
    """Trains on NUM_STEPS reproducible batches, in order."""

    def build_replica_dataset(self, input_context, seed):
        batches = [fixed_batch(4, 64, seed=index) for index in range(NUM_STEPS)]
        stacked = {key: np.stack([b[key] for b in batches]) for key in batches[0]}
        return tf.data.Dataset.from_tensor_slices(stacked).repeat()


def losses(synthetic_root: str, workdir: str, **overrides) -> list[list[float]]:
    config = tiny_config(train__num_steps=NUM_STEPS, train__loss_log=True, train__seed=3,
                         train__checkpoint_every=NUM_STEPS, **overrides)
    config.dataset.synthetic_dir = synthetic_root
    try:
        trainer = FixedBatchTrainer(config, workdir)
        trainer.train()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    with open(os.path.join(workdir, LOSS_LOG_NAME)) as handle:
        logged = [json.loads(line) for line in handle]
    return [[entry[n] for n in ("loss", "heatmap", "pull", "push")] for entry in logged]


def compiled_update(synthetic_root: str, workdir: str) -> dict[str, object]:
    """The XLA program of one replica step: does it hold the optimizer update?"""
    config = tiny_config(train__jit_compile=True)
    config.dataset.synthetic_dir = synthetic_root
    trainer = FixedBatchTrainer(config, workdir)
    batch = {k: tf.constant(v) for k, v in fixed_batch(4, 64).items()}
    replica_step = tf.function(trainer.train_step, jit_compile=True)
    hlo = replica_step.experimental_get_compiler_ir(batch)(stage="hlo")
    before = trainer.model.trainable_variables[0].numpy()
    replica_step(batch)
    return {
        # Adam's update divides by sqrt(v) + epsilon and writes every variable back.
        "sqrt_ops": hlo.count(" sqrt("),
        "step_after_one_call": trainer.step,
        "weights_changed": bool(
            not np.array_equal(before, trainer.model.trainable_variables[0].numpy())
        ),
    }


def main(synthetic_root: str, workdir: str) -> None:
    result = {
        "float32": losses(synthetic_root, os.path.join(workdir, "float32")),
        "bf16_xla": losses(
            synthetic_root, os.path.join(workdir, "bf16_xla"),
            train__mixed_precision="mixed_bfloat16", train__jit_compile=True,
            train__steps_per_execution=4,
        ),
        "compiled_update": compiled_update(synthetic_root, os.path.join(workdir, "hlo")),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:3])
