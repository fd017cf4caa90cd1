"""Two train steps on 1 replica and under MirroredStrategy on 2 logical CPU devices.

Run as a script (logical devices must be configured before TensorFlow initialises, so
tests/training/test_strategy.py starts it in a subprocess). Both trainers start from the same
weights and get the same fixed global batch; the trainer's own distributed step splits it over
the replicas. Prints one JSON line: the losses of both, the largest weight difference after each
step, and how far the weights moved.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3]))

from associative_embedding.training import strategy as strategy_lib  # noqa: E402

DEVICES = strategy_lib.configure_cpu_devices(2)  # before any other TF op

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from associative_embedding.tasks.pose.trainer import PoseTrainer  # noqa: E402
from tests.training.scripts.tiny_config import fixed_batch, tiny_config  # noqa: E402

GLOBAL_BATCH = 4
STEPS = 2


def stacked_iterator(batch: dict[str, np.ndarray], local_replicas: int):
    """Elements of PoseTrainer.build_inputs' layout: leaves (L, B / L, ...)."""
    stacked = {
        key: value.reshape(local_replicas, -1, *value.shape[1:]) for key, value in batch.items()
    }
    return iter(tf.data.Dataset.from_tensors(stacked).repeat())


def _max_difference(first: list[np.ndarray], second: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(a - b))) for a, b in zip(first, second, strict=True))


def main() -> None:
    config = tiny_config(train__global_batch_size=GLOBAL_BATCH)
    with tempfile.TemporaryDirectory(prefix="mirrored_step_check_") as workdir:
        print(json.dumps(_compare(config, workdir)))


def _compare(config, workdir: str) -> dict:
    single = PoseTrainer(config, os.path.join(workdir, "single"), tf.distribute.get_strategy())
    mirrored_strategy = tf.distribute.MirroredStrategy([device.name for device in DEVICES])
    mirrored = PoseTrainer(config, os.path.join(workdir, "mirrored"), mirrored_strategy)
    assert mirrored.strategy.num_replicas_in_sync == 2 and mirrored.local_replicas == 2
    initial = single.model.get_weights()
    mirrored.model.set_weights(initial)

    batches = [fixed_batch(GLOBAL_BATCH, config.codec.input_size, seed=s) for s in range(STEPS)]
    result = {"single": [], "mirrored": [], "max_weight_difference": [], "max_weight_change": []}
    for step, batch in enumerate(batches):
        for name, trainer in (("single", single), ("mirrored", mirrored)):
            step_fn = trainer._distributed_step()
            values = step_fn(stacked_iterator(batch, trainer.local_replicas))
            result[name].append({key: float(value) for key, value in values.items()})
        single_weights = single.model.get_weights()
        mirrored_weights = mirrored.model.get_weights()
        result["max_weight_difference"].append(_max_difference(single_weights, mirrored_weights))
        result["max_weight_change"].append(_max_difference(single_weights, initial))
        result[f"steps_after_{step + 1}"] = [single.step, mirrored.step]
    return result


if __name__ == "__main__":
    main()
