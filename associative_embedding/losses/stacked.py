"""What the task losses of a stacked network share: the input checks and the weighted sum.

A task loss (pose: heatmap + pull + push; segmentation: detection + pull + push) computes each
term per image and stack, averages every term over the stacks (all stacks are supervised
equally) and sums the averages with the term weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import tensorflow as tf


def check_outputs_and_targets(
    outputs: tf.Tensor,
    targets: Mapping[str, object],
    required: Sequence[str],
    *,
    where: str,
    layout: str,
) -> None:
    """Raises when the outputs are not stacked (rank 5) or a target is missing.

    Args:
        outputs: the network outputs, expected (B, S, h, w, channels).
        targets: the batch of targets.
        required: the target keys the loss reads.
        where: the loss's name, first in the messages.
        layout: the expected outputs shape as written in the message, e.g.
            '(B, S, h, w, K * (1 + D))'.

    Raises:
        ValueError: on outputs of a static rank other than 5.
        KeyError: naming the first missing target.
    """
    if outputs.shape.rank is not None and outputs.shape.rank != 5:
        raise ValueError(f"{where}: outputs must be {layout}, got shape {outputs.shape}.")
    for key in required:
        if key not in targets:
            raise KeyError(f"{where}: targets lack {key!r} (have {sorted(targets)}).")


def weighted_stack_means(
    per_stack: Mapping[str, tf.Tensor], weights: Mapping[str, float]
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """Averages every term over the stacks and sums them with their weights.

    Args:
        per_stack: term name -> (B, S) values, in the order of the sum.
        weights: term name -> weight, for every term of `per_stack`.

    Returns:
        loss: (B,) sum over terms of weight * mean over stacks, added in `per_stack`'s order.
        parts: term name -> (B,) unweighted mean over stacks.
    """
    parts = {name: tf.reduce_mean(value, axis=1) for name, value in per_stack.items()}
    loss = None
    for name, value in parts.items():
        term = weights[name] * value
        loss = term if loss is None else loss + term
    return loss, parts
