"""An independent tf.compat.v1 transcription of pose-ae-demo's network (model.py of
princeton-vl/pose-ae-demo), at any width and depth, saved as the demo's `DIR/snapshot`.

Graph mode, variables '<scope>/<conv>/weights' and '/biases', TF 'SAME' convolutions and
pools, `resize_nearest_neighbor` to the skip branch's size, an Adam optimizer (its slots and
`global_step` end up in the snapshot, as in a training snapshot) and `tf.compat.v1.train.Saver`.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1


def _conv(x, kernel_shape, name, *, stride=1, relu=True):
    with v1.variable_scope(name):
        fan_in = kernel_shape[0] * kernel_shape[1] * kernel_shape[2]
        # He-scaled kernels and non-zero biases: every layer visibly shapes the outputs.
        weights = v1.get_variable(
            "weights",
            kernel_shape,
            initializer=v1.random_normal_initializer(stddev=float(np.sqrt(2.0 / fan_in))),
        )
        biases = v1.get_variable(
            "biases", [kernel_shape[-1]], initializer=v1.random_uniform_initializer(-0.1, 0.1)
        )
        out = tf.nn.conv2d(x, weights, strides=[1, stride, stride, 1], padding="SAME") + biases
        return tf.nn.relu(out) if relu else out


def _pool(x):
    return tf.nn.max_pool2d(x, [1, 2, 2, 1], [1, 2, 2, 1], "SAME")


def _hourglass(x, n, f, increase, hg_id):
    nf = f + increase
    up1 = _conv(x, [3, 3, f, f], f"{hg_id}_{n}_up1")
    low1 = _conv(_pool(x), [3, 3, f, nf], f"{hg_id}_{n}_low1")
    if n > 1:
        low2 = _hourglass(low1, n - 1, nf, increase, hg_id)
    else:
        low2 = _conv(low1, [3, 3, nf, nf], f"{hg_id}_{n}_low2")
    low3 = _conv(low2, [3, 3, nf, f], f"{hg_id}_{n}_low3")
    up2 = v1.image.resize_nearest_neighbor(low3, tf.shape(up1)[1:3])
    return up1 + up2


def demo_inference(images, channels, *, f=256, increase=128, depth=4, stacks=4, stem=(64, 128)):
    """pose-ae-demo's `inference(img, channels)`, returning every stack's prediction."""
    x = _conv(images, [7, 7, 3, stem[0]], "cnv1", stride=2)
    x = _conv(x, [3, 3, stem[0], stem[1]], "cnv2")
    x = _pool(x)
    x = _conv(x, [3, 3, stem[1], stem[1]], "cnv2b")
    x = _conv(x, [3, 3, stem[1], stem[1]], "cnv3")
    inter = _conv(x, [3, 3, stem[1], f], "cnv4")
    preds = []
    for i in range(stacks):
        hg = _hourglass(inter, depth, f, increase, i)
        cnv5 = _conv(hg, [3, 3, f, f], f"cnv5_{i}")
        cnv6 = _conv(cnv5, [1, 1, f, f], f"cnv6_{i}")
        preds.append(_conv(cnv6, [1, 1, f, channels], f"out_{i}", relu=False))
        if i < stacks - 1:
            inter = (
                inter
                + _conv(cnv6, [1, 1, f, f], f"tmp_{i}", relu=False)
                + _conv(preds[-1], [1, 1, channels, f], f"tmp_out_{i}", relu=False)
            )
    return preds


def save_demo_snapshot(
    directory: str,
    images_255: np.ndarray,
    channels: int,
    *,
    seed: int = 0,
    v1_format: bool = False,
    **sizes,
) -> np.ndarray:
    """Builds the demo network with random weights, saves DIR/snapshot, returns its outputs.

    Args:
        directory: where `snapshot.*` and `checkpoint` are written.
        images_255: (B, H, W, 3) float32 RGB in 0..255 (the demo's input).
        channels: 68 (multi-person network) or 17 (refinement network).
        seed: graph seed.
        v1_format: write the TensorFlow 1.0-era V1 checkpoint format (one 'snapshot' file)
            instead of V2 ('snapshot.index' + data shards).
        **sizes: f, increase, depth, stacks, stem of `demo_inference`.

    Returns:
        (B, S, H/4, W/4, channels) float32: every stack's prediction.
    """
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(seed)
        images = v1.placeholder(tf.float32, (None, None, None, 3))
        with v1.variable_scope("my_model"):
            preds = demo_inference(images, channels, **sizes)
        global_step = v1.train.get_or_create_global_step()
        loss = tf.add_n([tf.reduce_mean(tf.square(p)) for p in preds])
        train = v1.train.AdamOptimizer(1e-6).minimize(loss, global_step=global_step)
        saver = v1.train.Saver(
            write_version=v1.train.SaverDef.V1 if v1_format else v1.train.SaverDef.V2
        )
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            session.run(train, {images: images_255})
            outputs = session.run(preds, {images: images_255})
            saver.save(session, os.path.join(directory, "snapshot"))
    return np.stack(outputs, axis=1)
