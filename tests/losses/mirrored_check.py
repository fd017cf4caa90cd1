"""Runs the losses inside a 2-replica MirroredStrategy on 2 logical CPU devices.

Run as a script (tests/losses/test_pose.py starts it in a subprocess, because logical devices
must be configured before TensorFlow initialises its devices). Exits 0 and prints one JSON line
{"ok": true, ...} when the per-example losses, the globally scaled loss and the gradients computed
per replica equal the single-device values; exits 1 with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

from associative_embedding import losses  # noqa: E402

GLOBAL_BATCH = 4
STACKS, HEIGHT, WIDTH, JOINTS, TAG_DIM, PEOPLE = 2, 8, 10, 4, 2, 5
WEIGHTS = {"heatmap_weight": 1.0, "pull_weight": 0.3, "push_weight": 0.7}


def _make_batch(seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    outputs = rng.normal(size=(GLOBAL_BATCH, STACKS, HEIGHT, WIDTH, JOINTS * (1 + TAG_DIM)))
    keypoints = np.zeros((GLOBAL_BATCH, PEOPLE, JOINTS, 3), np.float32)
    keypoints[..., 0] = rng.integers(0, WIDTH, size=keypoints.shape[:-1])
    keypoints[..., 1] = rng.integers(0, HEIGHT, size=keypoints.shape[:-1])
    keypoints[..., 2] = rng.random(size=keypoints.shape[:-1]) < 0.6
    keypoints[1] = 0.0  # an image without people
    keypoints[2, 1:] = 0.0  # an image with one person
    targets = {
        "heatmaps": rng.random((GLOBAL_BATCH, HEIGHT, WIDTH, JOINTS)).astype(np.float32),
        "mask": (rng.random((GLOBAL_BATCH, HEIGHT, WIDTH)) < 0.8).astype(np.float32),
        "keypoints": keypoints,
        "index": np.arange(GLOBAL_BATCH, dtype=np.int32),
    }
    return outputs.astype(np.float32), targets


def _check(push_type: str, strategy: tf.distribute.Strategy) -> dict[str, float]:
    outputs, targets = _make_batch(seed=7 if push_type == "exp" else 8)
    kwargs = dict(num_joints=JOINTS, tag_dim=TAG_DIM, push_type=push_type, **WEIGHTS)

    # Single-device reference: per-example losses and the gradient of their mean.
    outputs_tensor = tf.constant(outputs)
    with tf.GradientTape() as tape:
        tape.watch(outputs_tensor)
        expected, expected_parts = losses.per_example_total_loss(outputs_tensor, targets, **kwargs)
        expected_mean = tf.reduce_mean(expected)
    expected_gradient = tape.gradient(expected_mean, outputs_tensor).numpy()

    dataset = tf.data.Dataset.from_tensor_slices((outputs, targets)).batch(GLOBAL_BATCH)
    distributed = strategy.experimental_distribute_dataset(dataset)

    @tf.function
    def step(batch_outputs, batch_targets):
        def replica_fn(replica_outputs, replica_targets):
            with tf.GradientTape() as replica_tape:
                replica_tape.watch(replica_outputs)
                per_example, parts = losses.per_example_total_loss(
                    replica_outputs, replica_targets, **kwargs
                )
                # Model Garden convention: divide by the global batch, sum over replicas.
                scaled = tf.nn.compute_average_loss(per_example, global_batch_size=GLOBAL_BATCH)
            gradient = replica_tape.gradient(scaled, replica_outputs)
            replica_id = tf.distribute.get_replica_context().replica_id_in_sync_group
            return per_example, parts, scaled, gradient, replica_targets["index"], replica_id

        return strategy.run(replica_fn, args=(batch_outputs, batch_targets))

    per_example, parts, scaled, gradient, index, replica_id = step(*next(iter(distributed)))
    local = strategy.experimental_local_results
    replica_ids = sorted(int(value.numpy()) for value in local(replica_id))
    if replica_ids != [0, 1]:
        raise AssertionError(f"expected replicas [0, 1], got {replica_ids}")
    if any(value.shape[0] != GLOBAL_BATCH // 2 for value in local(per_example)):
        raise AssertionError("the global batch was not split evenly over the 2 replicas")
    order = np.concatenate([value.numpy() for value in local(index)])
    if sorted(order.tolist()) != list(range(GLOBAL_BATCH)):
        raise AssertionError(f"replica batches do not cover the global batch: {order}")

    def gather(values):
        merged = np.concatenate([value.numpy() for value in local(values)])
        result = np.empty_like(merged)
        result[order] = merged
        return result

    np.testing.assert_allclose(gather(per_example), expected.numpy(), rtol=1e-5, atol=1e-7)
    for name in ("heatmap", "pull", "push"):
        np.testing.assert_allclose(
            gather(parts[name]), expected_parts[name].numpy(), rtol=1e-5, atol=1e-7
        )
    reduced = strategy.reduce(tf.distribute.ReduceOp.SUM, scaled, axis=None).numpy()
    np.testing.assert_allclose(reduced, expected_mean.numpy(), rtol=1e-5)
    replica_gradient = gather(gradient)
    if not np.all(np.isfinite(replica_gradient)):
        raise AssertionError("non-finite replica gradient")
    np.testing.assert_allclose(replica_gradient, expected_gradient, rtol=1e-5, atol=1e-9)
    return {
        "loss": float(reduced),
        "push_mean": float(expected_parts["push"].numpy().mean()),
        "replicas": len(replica_ids),
    }


def main() -> int:
    if len(tf.config.list_logical_devices("CPU")) != 2:
        print(json.dumps({"ok": False, "reason": "could not create 2 logical CPU devices"}))
        return 1
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    if strategy.num_replicas_in_sync != 2:
        print(json.dumps({"ok": False, "reason": "not 2 replicas"}))
        return 1
    try:
        results = {push_type: _check(push_type, strategy) for push_type in losses.PUSH_TYPES}
    except AssertionError as error:
        print(json.dumps({"ok": False, "reason": str(error)}))
        return 1
    print(json.dumps({"ok": True, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
