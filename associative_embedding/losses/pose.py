"""The pose training loss: heatmap, pull and push terms of every stack, weighted and summed.

Distributed training: `per_example_total_loss` returns the (B,) weighted loss per image; scale it
by the *global* batch size (TF Model Garden / `tf.distribute` convention), e.g.
`tf.nn.compute_average_loss(per_example, global_batch_size=B_global)` inside `strategy.run`, and
sum the replica gradients (which MirroredStrategy's optimizer update does). `total_loss` is the
plain mean over the local batch, for single-device training and logging.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from associative_embedding.losses.grouping import (
    KeypointsLike,
    check_push_type,
    stacked_grouping_loss,
)
from associative_embedding.losses.heatmap import compute_dtype, squared_error_mean
from associative_embedding.losses.stacked import check_outputs_and_targets, weighted_stack_means
from associative_embedding.modeling.outputs import split_outputs

# The official loss weights (pose-ae-train): detection 1, pull 1e-3, push 1e-3.
DEFAULT_HEATMAP_WEIGHT = 1.0
DEFAULT_PULL_WEIGHT = 1e-3
DEFAULT_PUSH_WEIGHT = 1e-3


def per_example_total_loss(
    outputs: tf.Tensor,
    targets: Mapping[str, KeypointsLike],
    *,
    num_joints: int,
    tag_dim: int = 1,
    heatmap_weight: float = DEFAULT_HEATMAP_WEIGHT,
    pull_weight: float = DEFAULT_PULL_WEIGHT,
    push_weight: float = DEFAULT_PUSH_WEIGHT,
    push_type: str = "exp",
    heatmap_foreground_weight: float = 0.0,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """Weighted training loss per image, each term averaged over the stacks.

    For distributed training scale the result by the global batch size, e.g.
    `tf.nn.compute_average_loss(loss, global_batch_size=...)` inside `strategy.run`.

    Args:
        outputs: (B, S, h, w, K * (1 + D)) network outputs (layout of modeling/outputs.py).
        targets: dict with 'heatmaps' (B, h, w, K), 'mask' (B, h, w) and 'keypoints'
            (B, P, K, 3) dense or (B, [P], K, 3) ragged (x, y, valid) in output pixels.
            Other keys are ignored.
        num_joints: K.
        tag_dim: D.
        heatmap_weight: weight of the heatmap term.
        pull_weight: weight of the pull term.
        push_weight: weight of the push term.
        push_type: 'exp' or 'hinge', see `grouping_loss`.
        heatmap_foreground_weight: see `heatmap_loss` (0 = official plain MSE).

    Returns:
        loss: (B,) heatmap_weight * heatmap + pull_weight * pull + push_weight * push.
        parts: {'heatmap', 'pull', 'push'}: the unweighted (B,) terms, each a mean over stacks.
    """
    check_push_type(push_type)
    outputs = tf.convert_to_tensor(outputs)
    check_outputs_and_targets(
        outputs,
        targets,
        ("heatmaps", "mask", "keypoints"),
        where="total_loss",
        layout="(B, S, h, w, K * (1 + D))",
    )
    heatmaps, tags = split_outputs(outputs, num_joints, tag_dim)
    dtype = compute_dtype(outputs.dtype)
    heatmaps = tf.cast(heatmaps, dtype)
    target_heatmaps = tf.cast(targets["heatmaps"], dtype)
    mask = tf.cast(targets["mask"], dtype)

    # (B, S, h, w, K) against targets broadcast over the stack axis.
    heatmap_per_stack = squared_error_mean(
        heatmaps, target_heatmaps[:, None], mask[:, None, ..., None], heatmap_foreground_weight
    )
    push_per_stack, pull_per_stack = stacked_grouping_loss(tags, targets["keypoints"], push_type)
    return weighted_stack_means(
        {"heatmap": heatmap_per_stack, "pull": pull_per_stack, "push": push_per_stack},
        {"heatmap": heatmap_weight, "pull": pull_weight, "push": push_weight},
    )


def total_loss(
    outputs: tf.Tensor, targets: Mapping[str, KeypointsLike], **options: Any
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """Combined training loss over all stacks, averaged over stacks and the (local) batch.

    Args:
        outputs: (B, S, h, w, K * (1 + D)) network outputs.
        targets: as for `per_example_total_loss`.
        **options: the keyword arguments of `per_example_total_loss` (num_joints is required;
            official weights (1, 1e-3, 1e-3) by default).

    Returns:
        loss: scalar weighted sum heatmap_weight * heatmap + pull_weight * pull
            + push_weight * push.
        parts: {'heatmap', 'pull', 'push'}: unweighted scalar terms, each averaged over stacks
            and batch (for logging).
    """
    per_example, per_example_parts = per_example_total_loss(outputs, targets, **options)
    parts = {name: tf.reduce_mean(value) for name, value in per_example_parts.items()}
    return tf.reduce_mean(per_example), parts
