"""Smoke job: build the stacked hourglass, run a forward pass and the losses on random data.

Usage:
    python tools/smoke.py                       # small 2-stack model at 128x128 (seconds on CPU)
    python tools/smoke.py --full                # the paper's 4-stack model at 512x512

Prints the parameter count, every tensor's shape and the loss parts, and exits non-zero when a
loss is not finite. This is the README's main command until the training driver lands.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from associative_embedding.core import startup  # noqa: E402

# Before anything imports TensorFlow or tqdm: quiet start-up, visible progress bars.
startup.start_tool()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from associative_embedding import losses  # noqa: E402
from associative_embedding.modeling import StackedHourglass, split_outputs  # noqa: E402

_FULL = flags.DEFINE_bool("full", False, "Use the paper's 4-stack model at 512x512 input.")
_BATCH = flags.DEFINE_integer("batch_size", 2, "Images in the random batch.")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.")


def random_targets(
    rng: np.random.Generator, batch: int, out_size: int, num_joints: int, max_people: int = 30
) -> dict[str, tf.Tensor]:
    """Well-formed random targets: Gaussian-free heatmaps in [0,1), a mask, 3 people per image."""
    keypoints = np.zeros((batch, max_people, num_joints, 3), np.float32)
    keypoints[:, :3, :, :2] = rng.integers(0, out_size, size=(batch, 3, num_joints, 2))
    keypoints[:, :3, :, 2] = rng.random((batch, 3, num_joints)) < 0.8
    return {
        "heatmaps": tf.constant(rng.random((batch, out_size, out_size, num_joints)), tf.float32),
        "mask": tf.ones((batch, out_size, out_size), tf.float32),
        "keypoints": tf.constant(keypoints),
    }


def main(argv: list[str]) -> None:
    del argv
    tf.keras.utils.set_random_seed(_SEED.value)
    if _FULL.value:
        model, input_size = StackedHourglass(), 512
    else:
        model, input_size = StackedHourglass(num_stacks=2, widths=(32, 48, 64, 80, 96),
                                             stem_widths=(16, 32)), 128
    rng = np.random.default_rng(_SEED.value)
    images = tf.constant(rng.random((_BATCH.value, input_size, input_size, 3)), tf.float32)
    outputs = model(images, training=False)
    heatmaps, tags = split_outputs(outputs, model.num_joints, model.tag_dim)
    targets = random_targets(rng, _BATCH.value, input_size // model.output_stride,
                             model.num_joints)
    loss, parts = losses.total_loss(outputs, targets, num_joints=model.num_joints,
                                    tag_dim=model.tag_dim)
    print(f"model parameters: {model.count_params():,}")
    print(f"images:    {tuple(images.shape)}")
    print(f"outputs:   {tuple(outputs.shape)}  (batch, stacks, h, w, K*(1+D))")
    print(f"heatmaps:  {tuple(heatmaps.shape)}")
    print(f"tags:      {tuple(tags.shape)}")
    for name, value in {"total": loss, **parts}.items():
        print(f"loss/{name:8s} {float(value):.6f}")
    values = [float(loss)] + [float(v) for v in parts.values()]
    if not all(np.isfinite(values)):
        raise SystemExit("smoke run produced a non-finite loss")
    print("smoke run OK")


if __name__ == "__main__":
    startup.run_tool(main)
