"""Instance-segmentation losses (paper Sec. 3.4): detection MSE against the union of a
category's instance masks with a per-category weight map, and the grouping loss on pixels
sampled inside each instance.

Like the pose losses these are pure, vectorised TensorFlow functions of (outputs, targets), with
the same dtype policy (float64 kept, everything else computed in float32) and the same push
kernel (`push_kernel`).
"""

from __future__ import annotations

from collections.abc import Mapping

import tensorflow as tf

from associative_embedding.losses.grouping import check_push_type, push_kernel
from associative_embedding.losses.heatmap import compute_dtype, squared_error_mean
from associative_embedding.losses.stacked import check_outputs_and_targets, weighted_stack_means
from associative_embedding.modeling.outputs import split_outputs

SEGMENTATION_NORMALIZATIONS = ("mean", "sum")


def _instance_tags(
    tags: tf.Tensor, instance_pixels: tf.Tensor, instance_category: tf.Tensor
) -> tf.Tensor:
    """Tags of the sampled pixels in their instance's category channel.

    Args:
        tags: (B, S, h, w, C, D).
        instance_pixels: (B, N, P) int flat indices y * w + x.
        instance_category: (B, N) int category channel of each instance.

    Returns:
        (B, S, N, P, D).
    """
    shape = tf.shape(tags)
    batch, stacks, num_categories, tag_dim = shape[0], shape[1], shape[4], shape[5]
    flat = tf.reshape(tags, [batch, stacks, -1, tag_dim])  # (B, S, h*w*C, D)
    category = tf.cast(instance_category, tf.int32)
    pixels = tf.cast(instance_pixels, tf.int32)
    # Padding rows may hold -1 categories: clamp so the gather stays in bounds (they are
    # masked out by instance_valid).
    category = tf.clip_by_value(category, 0, num_categories - 1)
    index = pixels * num_categories + category[:, :, None]  # (B, N, P)
    index = tf.clip_by_value(index, 0, tf.shape(flat)[2] - 1)
    index = tf.repeat(index[:, None], stacks, axis=1)  # (B, S, N, P)
    return tf.gather(flat, index, batch_dims=2)


def sampled_pixel_grouping_loss(
    tags: tf.Tensor,
    instance_pixels: tf.Tensor,
    instance_category: tf.Tensor,
    instance_valid: tf.Tensor,
    *,
    push_type: str = "exp",
    normalization: str = "mean",
) -> tuple[tf.Tensor, tf.Tensor]:
    """The instance-segmentation grouping loss of paper Sec. 3.4, one value per image.

    With S_n the P pixels sampled inside instance n, h(x) the D-dim tag of x in the channel of
    n's category, and the push taken between instances *of the same category* (each category
    has its own tag map):

        mean (default):  pull = (1/N) sum_n (1/P^2) sum_{x, x' in S_n} ||h(x) - h(x')||^2 / D
                         push = (1/M) sum_{n != n'} (1/P^2) sum_{x, x'} f(h(x), h(x'))
        sum (paper):     pull = sum_n sum_{x, x'} ||h(x) - h(x')||^2
                         push = sum_{n != n'} sum_{x, x'} f(h(x), h(x'))

    with x in S_n and x' in S_n' in the push sums, N = number of valid instances, M = number
    of ordered pairs (n, n'), n != n', of valid instances of one category;
    f(a, b) = exp(-||a - b||^2) (`exp`, the paper's form with 2 sigma^2 = 1, as for pose)
    or relu(1 - ||a - b||) (`hinge`). 'sum' is the printed formula
    (its scale grows with P^2 and the instance count, hence the paper's small weight 1e-4);
    'mean' makes the weights independent of P and of the crowd size.

    Args:
        tags: (B, h, w, C, D) or stacked (B, S, h, w, C, D) tag maps.
        instance_pixels: (B, N, P) int flat pixel indices y * w + x of the samples.
        instance_category: (B, N) int category channel of each instance.
        instance_valid: (B, N) {0, 1}; padding rows are 0.
        push_type: 'exp' or 'hinge'.
        normalization: 'mean' or 'sum'.

    Returns:
        push, pull: (B,) each, or (B, S) for stacked tags; float32 (float64 for float64 tags).
    """
    check_push_type(push_type)
    if normalization not in SEGMENTATION_NORMALIZATIONS:
        raise ValueError(
            f"normalization must be one of {SEGMENTATION_NORMALIZATIONS}, got {normalization!r}."
        )
    tags = tf.convert_to_tensor(tags)
    stacked = tags.shape.rank == 6
    if not stacked:
        if tags.shape.rank is not None and tags.shape.rank != 5:
            raise ValueError(
                f"sampled_pixel_grouping_loss: tags must be (B, h, w, C, D) or "
                f"(B, S, h, w, C, D), got shape {tags.shape}."
            )
        tags = tags[:, None]
    dtype = compute_dtype(tags.dtype)
    samples = _instance_tags(tf.cast(tags, dtype), instance_pixels, instance_category)
    valid = tf.cast(instance_valid, tf.bool)  # (B, N)
    category = tf.cast(instance_category, tf.int32)
    num_samples = tf.cast(tf.shape(samples)[3], dtype)
    tag_dim = tf.cast(tf.shape(samples)[4], dtype)
    samples = tf.where(valid[:, None, :, None, None], samples, tf.zeros_like(samples))

    # pull: all ordered pixel pairs inside each instance, (B, S, N, P, P).
    within = samples[:, :, :, :, None, :] - samples[:, :, :, None, :, :]
    within_squared = tf.reduce_sum(tf.square(within), axis=-1)
    pull_per_instance = tf.reduce_sum(within_squared, axis=[-2, -1])  # (B, S, N)
    pull_per_instance = tf.where(
        valid[:, None], pull_per_instance, tf.zeros_like(pull_per_instance)
    )
    pull_sum = tf.reduce_sum(pull_per_instance, axis=-1)  # (B, S)

    # push: pixel pairs across distinct valid instances of the same category, over the
    # flattened (N * P) samples (TF broadcasts only up to a few axes): (B, S, N*P, N*P).
    sample_shape = tf.shape(samples)
    flat = tf.reshape(samples, [sample_shape[0], sample_shape[1], -1, sample_shape[4]])
    across_squared = tf.reduce_sum(
        tf.square(flat[:, :, :, None, :] - flat[:, :, None, :, :]), axis=-1
    )
    instance_index = tf.range(tf.shape(valid)[1])
    pair_valid = (
        valid[:, :, None]
        & valid[:, None, :]
        & tf.equal(category[:, :, None], category[:, None, :])
        & tf.not_equal(instance_index[:, None], instance_index[None, :])
    )  # (B, N, N)
    samples_per_instance = sample_shape[3]
    sample_pair_valid = tf.repeat(
        tf.repeat(pair_valid, samples_per_instance, axis=1), samples_per_instance, axis=2
    )[:, None]  # (B, 1, N*P, N*P)
    kernel = push_kernel(across_squared, sample_pair_valid, push_type)
    push_sum = tf.reduce_sum(kernel, axis=[-2, -1])  # (B, S)

    if normalization == "sum":
        push, pull = push_sum, pull_sum
    else:
        num_instances = tf.reduce_sum(tf.cast(valid, dtype), axis=-1)  # (B,)
        num_pairs = tf.reduce_sum(tf.cast(pair_valid, dtype), axis=[-2, -1])  # (B,)
        pairs_per_instance = num_samples * num_samples
        pull = tf.math.divide_no_nan(
            pull_sum, (num_instances * pairs_per_instance * tag_dim)[:, None]
        )
        push = tf.math.divide_no_nan(push_sum, (num_pairs * pairs_per_instance)[:, None])
    if not stacked:
        return push[:, 0], pull[:, 0]
    return push, pull


def per_example_segmentation_loss(
    outputs: tf.Tensor,
    targets: Mapping[str, tf.Tensor],
    *,
    num_categories: int,
    tag_dim: int = 1,
    detection_weight: float = 1.0,
    pull_weight: float = 1e-4,
    push_weight: float = 1e-4,
    push_type: str = "exp",
    normalization: str = "mean",
    detection_foreground_weight: float = 0.0,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """Instance-segmentation training loss per image, each term averaged over the stacks.

    detection: per image, mean over (h, w, C) of weight * (1 + fg * target) * (pred - target)^2
    (the paper's MSE against the union of the category's instance masks, with the ignore
    mask folded into `weight`); pull / push: `sampled_pixel_grouping_loss`.

    Args:
        outputs: (B, S, h, w, C * (1 + D)) network outputs (C detection maps, then C * D tags).
        targets: the segmentation batch: 'detection_target' (B, h, w, C), 'detection_weight'
            (B, h, w, C), 'instance_pixels' (B, N, P), 'instance_category' (B, N),
            'instance_valid' (B, N). Other keys are ignored.
        num_categories: C.
        tag_dim: D.
        detection_weight, pull_weight, push_weight: term weights (paper: 1, 1e-4, 1e-4 with the
            'sum' normalisation).
        push_type: 'exp' or 'hinge'.
        normalization: 'mean' or 'sum' (see `sampled_pixel_grouping_loss`).
        detection_foreground_weight: like the pose `heatmap_foreground_weight` (0 = plain MSE).

    Returns:
        loss: (B,) weighted sum; parts: {'detection', 'pull', 'push'} unweighted (B,) terms.
    """
    outputs = tf.convert_to_tensor(outputs)
    check_outputs_and_targets(
        outputs,
        targets,
        ("detection_target", "detection_weight", "instance_pixels", "instance_category",
         "instance_valid"),
        where="segmentation loss",
        layout="(B, S, h, w, C * (1 + D))",
    )
    detection, tags = split_outputs(outputs, num_categories, tag_dim)
    dtype = compute_dtype(outputs.dtype)
    detection = tf.cast(detection, dtype)
    target = tf.cast(targets["detection_target"], dtype)[:, None]
    weight = tf.cast(targets["detection_weight"], dtype)[:, None]
    detection_per_stack = squared_error_mean(
        detection, target, weight, detection_foreground_weight
    )  # (B, S)
    push, pull = sampled_pixel_grouping_loss(
        tags,
        targets["instance_pixels"],
        targets["instance_category"],
        targets["instance_valid"],
        push_type=push_type,
        normalization=normalization,
    )
    return weighted_stack_means(
        {"detection": detection_per_stack, "pull": pull, "push": push},
        {"detection": detection_weight, "pull": pull_weight, "push": push_weight},
    )
