"""The network's output layout and the one helper that splits it.

Every stacked-hourglass model in this package returns a single tensor

    outputs: (B, S, h, w, K * (1 + D)) float32

where S is the number of stacks (all supervised), (h, w) = input size / 4, K the number of
joints (or categories) and D the tag dimension. Along the last axis the first K channels are
detection heatmaps, one per joint; the remaining K * D channels are tags, joint-major: the tag
of joint k in dimension d is channel K + k * D + d.
"""

from __future__ import annotations

import tensorflow as tf


def split_outputs(
    outputs: tf.Tensor, num_joints: int, tag_dim: int = 1
) -> tuple[tf.Tensor, tf.Tensor]:
    """Splits stacked network outputs into heatmaps and tags.

    Args:
        outputs: (B, S, h, w, K * (1 + D)) tensor (a (B, h, w, K * (1 + D)) tensor of a single
            stack is accepted too and split the same way without the S axis).
        num_joints: K.
        tag_dim: D.

    Returns:
        heatmaps: (B, S, h, w, K) (or (B, h, w, K)).
        tags: (B, S, h, w, K, D) (or (B, h, w, K, D)).

    Raises:
        ValueError: when the channel count is not K * (1 + D).
    """
    outputs = tf.convert_to_tensor(outputs)
    channels = outputs.shape[-1]
    expected = num_joints * (1 + tag_dim)
    if channels is not None and channels != expected:
        raise ValueError(
            f"outputs have {channels} channels, expected num_joints * (1 + tag_dim) = "
            f"{num_joints} * (1 + {tag_dim}) = {expected}."
        )
    heatmaps = outputs[..., :num_joints]
    flat_tags = outputs[..., num_joints:]
    tags_shape = tf.concat([tf.shape(flat_tags)[:-1], [num_joints, tag_dim]], axis=0)
    tags = tf.reshape(flat_tags, tags_shape)
    # The dynamic reshape loses static dims (batch, stacks, h, w); restore what is known so
    # downstream shape checks and XLA see them.
    tags.set_shape(outputs.shape[:-1].concatenate([num_joints, tag_dim]))
    return heatmaps, tags
