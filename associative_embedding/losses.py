"""Associative Embedding training losses: detection (heatmap) loss and grouping (tag) loss.

Pose losses first; the instance-segmentation losses (paper Sec. 3.4: detection MSE against the
union of instance masks, grouping loss on pixels sampled per instance) are at the end of the
module (`per_example_segmentation_loss`, `sampled_pixel_grouping_loss`).

All functions are pure, vectorised TensorFlow functions of (outputs, targets); there is no Python
loop over images or people, so they run eagerly, inside `tf.function` (with a `None` people axis
and no retracing per people count), under XLA (`jit_compile=True`, dense keypoints only) and
inside a `tf.distribute.MirroredStrategy` replica.

Normalisation follows the official code (princeton-vl/pose-ae-train), see REFERENCE.md "Losses":

- Heatmap loss, per image: mean over (h, w, K) of mask * (pred - gt)^2. Masked pixels contribute
  zero but stay in the denominator h * w * K.
- Grouping loss, per image, over the N people that have at least one valid joint, with t_nk the
  D-dim tag of person n at joint k (read at the joint's output pixel) and |n| the person's number
  of valid joints:

      m_n  = (1 / |n|) sum_k t_nk                                 (reference embedding)
      pull = (1 / N) sum_n (1 / |n|) sum_k ||t_nk - m_n||^2 / D
      push = 0.5 * [sum_{i<j} f(m_i, m_j)] / (N (N - 1) / 2)

  i.e. the push is 0.5 times the *mean over unordered pairs* (not over N^2 ordered pairs with the
  diagonal, as in the paper's printed formula or mmpose 1.x). The official code computes the same
  value as 0.5 * (sum over ordered pairs with the diagonal - N) / (N (N - 1)).
  f is the push kernel:

  - `push_type="exp"` (official, default): f = exp(-||m_i - m_j||^2) (paper form, sigma^2 = 0.5).
    Its gradient vanishes at m_i = m_j, so identical tags are a stationary point.
  - `push_type="hinge"` (HigherHRNet's 'max' option, CornerNet's form):
    f = relu(1 - ||m_i - m_j||) with the Euclidean norm over the D tag dims (|m_i - m_j| for
    D = 1, exactly HigherHRNet). The norm's gradient at m_i = m_j is taken as 0 (like
    torch.abs in HigherHRNet) instead of NaN; pairs 1 or more apart give zero loss and gradient.

  N = 0 gives pull = push = 0 and N = 1 gives push = 0, with finite gradients that are exactly zero
  for every tag that is not read at a valid joint.

Distributed training: `per_example_total_loss` returns the (B,) weighted loss per image; scale it
by the *global* batch size (TF Model Garden / `tf.distribute` convention), e.g.
`tf.nn.compute_average_loss(per_example, global_batch_size=B_global)` inside `strategy.run`, and
sum the replica gradients (which MirroredStrategy's optimizer update does). `total_loss` is the
plain mean over the local batch, for single-device training and logging.
"""

from __future__ import annotations

from collections.abc import Mapping

import tensorflow as tf

from associative_embedding.modeling.outputs import split_outputs

PUSH_TYPES = ("exp", "hinge")

# The official loss weights (pose-ae-train): detection 1, pull 1e-3, push 1e-3.
DEFAULT_HEATMAP_WEIGHT = 1.0
DEFAULT_PULL_WEIGHT = 1e-3
DEFAULT_PUSH_WEIGHT = 1e-3

KeypointsLike = tf.Tensor | tf.RaggedTensor


def _compute_dtype(dtype: tf.DType) -> tf.DType:
    """Losses run in float64 when given float64, otherwise in float32 (also for fp16/bf16)."""
    return tf.float64 if dtype == tf.float64 else tf.float32


def keypoints_to_dense(keypoints: KeypointsLike, num_joints: int | None = None) -> tf.Tensor:
    """Converts ragged per-image keypoints to a dense, zero-padded tensor.

    Padding rows are all zero, hence invalid (valid = 0). Call this outside an XLA-compiled
    function: ragged tensors cannot enter XLA, the dense result can.

    Args:
        keypoints: tf.RaggedTensor (B, [P], K, 3) (any ragged_rank) or a dense (B, P, K, 3)
            tensor / array of (x, y, valid).
        num_joints: K, used to fix the inner shape of a ragged input (needed when the ragged
            tensor has ragged inner dims, e.g. from `tf.ragged.constant` without `inner_shape`).

    Returns:
        (B, P_max, K, 3) float tensor; dense inputs are returned unchanged (converted to a tensor).
    """
    if isinstance(keypoints, tf.RaggedTensor):
        shape = None if num_joints is None else [None, None, num_joints, 3]
        return keypoints.to_tensor(shape=shape)
    return tf.convert_to_tensor(keypoints)


def _squared_error_mean(
    pred: tf.Tensor, target: tf.Tensor, mask: tf.Tensor, foreground_weight: float = 0.0
) -> tf.Tensor:
    """mean over the last three axes (h, w, K) of
    mask[..., None] * (1 + foreground_weight * target) * (pred - target)^2."""
    squared_error = tf.square(pred - target) * mask[..., None]
    if foreground_weight:
        squared_error *= 1.0 + foreground_weight * target
    return tf.reduce_mean(squared_error, axis=[-3, -2, -1])


def heatmap_loss(
    pred: tf.Tensor, target: tf.Tensor, mask: tf.Tensor, foreground_weight: float = 0.0
) -> tf.Tensor:
    """Masked mean squared error of detection heatmaps, one value per image.

    Args:
        pred: (B, h, w, K) predicted heatmaps.
        target: (B, h, w, K) ground-truth heatmaps.
        mask: (B, h, w), 1 = supervised, 0 = ignored (crowd / unlabelled people). Ignored pixels
            contribute zero but stay in the denominator (official normalisation).
        foreground_weight: a named deviation (0 = official): each pixel's squared error is
            weighted by 1 + foreground_weight * target, so the few pixels on the Gaussians are
            not outvoted by the ~98 % background (the plain MSE's easy optimum is a flat,
            low map; with a weight of ~10 peaks rise within hundreds of steps).

    Returns:
        (B,) per-image mean over (h, w, K) of mask * (1 + foreground_weight * target) *
        (pred - target)^2, in float32 (float64 if `pred` is float64).
    """
    pred = tf.convert_to_tensor(pred)
    dtype = _compute_dtype(pred.dtype)
    pred = tf.cast(pred, dtype)
    target = tf.cast(target, dtype)
    mask = tf.cast(mask, dtype)
    if pred.shape.rank is not None and pred.shape.rank != 4:
        raise ValueError(f"heatmap_loss: pred must be (B, h, w, K), got shape {pred.shape}.")
    if mask.shape.rank is not None and mask.shape.rank != 3:
        raise ValueError(f"heatmap_loss: mask must be (B, h, w), got shape {mask.shape}.")
    return _squared_error_mean(pred, target, mask, foreground_weight)


def _gather_joint_tags(tags: tf.Tensor, keypoints: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Reads every person's tags at its joints' output pixels, for all stacks at once.

    Args:
        tags: (B, S, h, w, K, D) tag maps.
        keypoints: (B, P, K, 3) dense (x, y, valid) in output-map pixels.

    Returns:
        joint_tags: (B, S, P, K, D); entries of invalid joints are arbitrary (finite) values.
        valid: (B, P, K) bool, valid flag > 0 and the floored pixel inside the map.
    """
    tags_shape = tf.shape(tags)
    batch, stacks, height, width = tags_shape[0], tags_shape[1], tags_shape[2], tags_shape[3]
    num_joints, tag_dim = tags_shape[4], tags_shape[5]
    num_people = tf.shape(keypoints)[1]

    keypoints = tf.cast(keypoints, tf.float32)
    x = tf.floor(keypoints[..., 0])
    y = tf.floor(keypoints[..., 1])
    # A joint outside the map has no pixel to read; it is treated as unlabelled rather than
    # clamped to the border (which would supervise the wrong pixel). NaN compares false.
    valid = (
        (keypoints[..., 2] > 0)
        & (x >= 0)
        & (y >= 0)
        & (x < tf.cast(width, tf.float32))
        & (y < tf.cast(height, tf.float32))
    )
    # Invalid joints (padding rows included) read pixel (0, 0): in bounds, and masked below.
    x = tf.cast(tf.where(valid, x, 0.0), tf.int32)
    y = tf.cast(tf.where(valid, y, 0.0), tf.int32)
    joint_index = tf.range(num_joints, dtype=tf.int32)
    flat_index = (y * width + x) * num_joints + joint_index  # (B, P, K)
    flat_index = tf.reshape(flat_index, [batch, 1, num_people * num_joints])
    flat_index = tf.broadcast_to(flat_index, [batch, stacks, num_people * num_joints])
    flat_index = tf.reshape(flat_index, [batch * stacks, num_people * num_joints])

    flat_tags = tf.reshape(tags, [batch * stacks, height * width * num_joints, tag_dim])
    joint_tags = tf.gather(flat_tags, flat_index, batch_dims=1)  # (B * S, P * K, D)
    joint_tags = tf.reshape(joint_tags, [batch, stacks, num_people, num_joints, tag_dim])
    return joint_tags, valid


def _grouping_terms(
    joint_tags: tf.Tensor, valid: tf.Tensor, push_type: str
) -> tuple[tf.Tensor, tf.Tensor]:
    """Push and pull from gathered tags (see the module docstring for the formulas).

    Args:
        joint_tags: (B, S, P, K, D) tags at the joints.
        valid: (B, P, K) bool joint validity.
        push_type: 'exp' or 'hinge'.

    Returns:
        push, pull: (B, S) each.
    """
    dtype = joint_tags.dtype
    tag_dim = tf.cast(tf.shape(joint_tags)[-1], dtype)
    joint_valid = valid[:, None, :, :]  # (B, 1, P, K)
    joints_per_person = tf.reduce_sum(tf.cast(valid, dtype), axis=-1)  # (B, P)
    person_valid = joints_per_person > 0  # (B, P)
    num_people = tf.reduce_sum(tf.cast(person_valid, dtype), axis=-1)  # (B,)

    # tf.where (not multiplication) so that non-finite values at unused pixels cannot leak in,
    # and unused tags get an exactly-zero gradient.
    masked_tags = tf.where(joint_valid[..., None], joint_tags, tf.zeros_like(joint_tags))
    means = tf.math.divide_no_nan(
        tf.reduce_sum(masked_tags, axis=3), joints_per_person[:, None, :, None]
    )  # (B, S, P, D)

    # pull = (1/N) sum_n (1/|n|) sum_k ||t_nk - m_n||^2 / D
    squared_deviation = tf.reduce_sum(tf.square(masked_tags - means[:, :, :, None, :]), axis=-1)
    squared_deviation = tf.where(
        joint_valid, squared_deviation, tf.zeros_like(squared_deviation)
    )  # (B, S, P, K)
    person_pull = tf.math.divide_no_nan(
        tf.reduce_sum(squared_deviation, axis=-1), joints_per_person[:, None, :] * tag_dim
    )  # (B, S, P)
    pull = tf.math.divide_no_nan(tf.reduce_sum(person_pull, axis=-1), num_people[:, None])

    # push = 0.5 * sum_{i<j} f(m_i, m_j) / (N (N - 1) / 2), over people with >= 1 valid joint.
    mean_difference = means[:, :, :, None, :] - means[:, :, None, :, :]  # (B, S, P, P, D)
    squared_distance = tf.reduce_sum(tf.square(mean_difference), axis=-1)  # (B, S, P, P)
    people_index = tf.range(tf.shape(means)[2])
    upper_triangle = people_index[:, None] < people_index[None, :]  # (P, P), i < j
    pair_valid = person_valid[:, :, None] & person_valid[:, None, :] & upper_triangle
    pair_valid = pair_valid[:, None, :, :]  # (B, 1, P, P)
    zeros = tf.zeros_like(squared_distance)
    if push_type == "exp":
        pair_push = tf.exp(-tf.where(pair_valid, squared_distance, zeros))
    elif push_type == "hinge":
        # sqrt has an infinite gradient at 0 (identical means, or unused pairs): feed it only
        # strictly positive values and define the distance's gradient at 0 as 0.
        positive = pair_valid & (squared_distance > 0)
        safe_squared = tf.where(positive, squared_distance, tf.ones_like(squared_distance))
        distance = tf.where(positive, tf.sqrt(safe_squared), zeros)
        pair_push = tf.nn.relu(1.0 - distance)
    else:
        raise ValueError(f"push_type must be one of {PUSH_TYPES}, got {push_type!r}.")
    pair_push = tf.where(pair_valid, pair_push, zeros)
    num_pairs = num_people * (num_people - 1.0) / 2.0  # (B,)
    push = 0.5 * tf.math.divide_no_nan(tf.reduce_sum(pair_push, axis=[-2, -1]), num_pairs[:, None])
    return push, pull


def _check_push_type(push_type: str) -> None:
    if push_type not in PUSH_TYPES:
        raise ValueError(f"push_type must be one of {PUSH_TYPES}, got {push_type!r}.")


def _check_keypoints(keypoints: tf.Tensor, num_joints: int | None, where: str) -> None:
    shape = keypoints.shape
    if shape.rank is not None and shape.rank != 4:
        raise ValueError(f"{where}: keypoints must be (B, P, K, 3), got shape {shape}.")
    if shape.rank == 4 and shape[-1] is not None and shape[-1] != 3:
        raise ValueError(f"{where}: keypoints last axis must be (x, y, valid), got {shape}.")
    if (
        shape.rank == 4
        and num_joints is not None
        and shape[2] is not None
        and shape[2] != num_joints
    ):
        raise ValueError(
            f"{where}: keypoints have {shape[2]} joints but the tags have {num_joints}."
        )


def _grouping_loss_stacked(
    tags: tf.Tensor, keypoints: KeypointsLike, push_type: str
) -> tuple[tf.Tensor, tf.Tensor]:
    """grouping loss for stacked tags (B, S, h, w, K, D) → push, pull (B, S)."""
    num_joints = tags.shape[4]
    keypoints = keypoints_to_dense(keypoints, num_joints)
    _check_keypoints(keypoints, num_joints, "grouping_loss")
    dtype = _compute_dtype(tags.dtype)
    joint_tags, valid = _gather_joint_tags(tf.cast(tags, dtype), keypoints)
    return _grouping_terms(joint_tags, valid, push_type)


def grouping_loss(
    tags: tf.Tensor, keypoints: KeypointsLike, *, push_type: str = "exp"
) -> tuple[tf.Tensor, tf.Tensor]:
    """Associative-embedding grouping loss (official normalisation), one value per image.

    See the module docstring for the exact formulas.

    Args:
        tags: (B, h, w, K, D) tag maps.
        keypoints: (B, [P], K, 3) tf.RaggedTensor or dense zero-padded (B, P, K, 3) tensor of
            (x, y, valid) in output-map pixels. x, y are floored to integer pixels; a joint counts
            iff valid > 0 and its pixel lies inside the map (others, padding rows included, are
            ignored and never read out of bounds). Under XLA pass the dense form (convert with
            `keypoints_to_dense` outside the compiled function).
        push_type: 'exp' (official, default) or 'hinge' (HigherHRNet max-margin form).

    Returns:
        push: (B,) 0.5 * mean over pairs of people of the push kernel (0 when N < 2).
        pull: (B,) mean over people of the per-person mean squared tag deviation (0 when N = 0).
        float32 (float64 if `tags` is float64).

    Raises:
        ValueError: on an unknown push_type or statically wrong shapes.
    """
    _check_push_type(push_type)
    tags = tf.convert_to_tensor(tags)
    if tags.shape.rank is not None and tags.shape.rank != 5:
        raise ValueError(f"grouping_loss: tags must be (B, h, w, K, D), got shape {tags.shape}.")
    push, pull = _grouping_loss_stacked(tags[:, None], keypoints, push_type)
    return push[:, 0], pull[:, 0]


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
    _check_push_type(push_type)
    outputs = tf.convert_to_tensor(outputs)
    if outputs.shape.rank is not None and outputs.shape.rank != 5:
        raise ValueError(
            f"total_loss: outputs must be (B, S, h, w, K * (1 + D)), got shape {outputs.shape}."
        )
    for key in ("heatmaps", "mask", "keypoints"):
        if key not in targets:
            raise KeyError(f"total_loss: targets lack {key!r} (have {sorted(targets)}).")
    heatmaps, tags = split_outputs(outputs, num_joints, tag_dim)
    dtype = _compute_dtype(outputs.dtype)
    heatmaps = tf.cast(heatmaps, dtype)
    target_heatmaps = tf.cast(targets["heatmaps"], dtype)
    mask = tf.cast(targets["mask"], dtype)

    # (B, S, h, w, K) against targets broadcast over the stack axis.
    heatmap_per_stack = _squared_error_mean(
        heatmaps, target_heatmaps[:, None], mask[:, None], heatmap_foreground_weight
    )
    push_per_stack, pull_per_stack = _grouping_loss_stacked(tags, targets["keypoints"], push_type)
    parts = {
        "heatmap": tf.reduce_mean(heatmap_per_stack, axis=1),
        "pull": tf.reduce_mean(pull_per_stack, axis=1),
        "push": tf.reduce_mean(push_per_stack, axis=1),
    }
    loss = (
        heatmap_weight * parts["heatmap"]
        + pull_weight * parts["pull"]
        + push_weight * parts["push"]
    )
    return loss, parts


def total_loss(
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
    """Combined training loss over all stacks, averaged over stacks and the (local) batch.

    Same arguments as `per_example_total_loss`; official weights (1, 1e-3, 1e-3) by default.

    Returns:
        loss: scalar weighted sum heatmap_weight * heatmap + pull_weight * pull
            + push_weight * push.
        parts: {'heatmap', 'pull', 'push'}: unweighted scalar terms, each averaged over stacks
            and batch (for logging).
    """
    per_example, per_example_parts = per_example_total_loss(
        outputs,
        targets,
        num_joints=num_joints,
        tag_dim=tag_dim,
        heatmap_weight=heatmap_weight,
        pull_weight=pull_weight,
        push_weight=push_weight,
        push_type=push_type,
        heatmap_foreground_weight=heatmap_foreground_weight,
    )
    parts = {name: tf.reduce_mean(value) for name, value in per_example_parts.items()}
    return tf.reduce_mean(per_example), parts


# --------------------------------------------------------------------------------------------
# Instance segmentation (paper Sec. 3.4): detection MSE with a per-category weight map, and the
# grouping loss on pixels sampled inside each instance.

SEGMENTATION_NORMALIZATIONS = ("mean", "sum")


def _pair_kernel(squared_distance: tf.Tensor, push_type: str) -> tf.Tensor:
    """The push kernel f of a squared tag distance (see the module docstring)."""
    if push_type == "exp":
        return tf.exp(-squared_distance)
    # Hinge: the distance's gradient at 0 is defined as 0 (sqrt is fed positive values only).
    positive = squared_distance > 0
    safe = tf.where(positive, squared_distance, tf.ones_like(squared_distance))
    distance = tf.where(positive, tf.sqrt(safe), tf.zeros_like(squared_distance))
    return tf.nn.relu(1.0 - distance)


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
    _check_push_type(push_type)
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
    dtype = _compute_dtype(tags.dtype)
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
    kernel = _pair_kernel(
        tf.where(sample_pair_valid, across_squared, tf.zeros_like(across_squared)), push_type
    )
    kernel = tf.where(sample_pair_valid, kernel, tf.zeros_like(kernel))
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
    if outputs.shape.rank is not None and outputs.shape.rank != 5:
        raise ValueError(
            "segmentation loss: outputs must be (B, S, h, w, C * (1 + D)), got shape "
            f"{outputs.shape}."
        )
    required = ("detection_target", "detection_weight", "instance_pixels",
                "instance_category", "instance_valid")
    for key in required:
        if key not in targets:
            raise KeyError(f"segmentation loss: targets lack {key!r} (have {sorted(targets)}).")
    detection, tags = split_outputs(outputs, num_categories, tag_dim)
    dtype = _compute_dtype(outputs.dtype)
    detection = tf.cast(detection, dtype)
    target = tf.cast(targets["detection_target"], dtype)[:, None]
    weight = tf.cast(targets["detection_weight"], dtype)[:, None]
    squared_error = tf.square(detection - target) * weight
    if detection_foreground_weight:
        squared_error *= 1.0 + detection_foreground_weight * target
    detection_per_stack = tf.reduce_mean(squared_error, axis=[-3, -2, -1])  # (B, S)
    push, pull = sampled_pixel_grouping_loss(
        tags,
        targets["instance_pixels"],
        targets["instance_category"],
        targets["instance_valid"],
        push_type=push_type,
        normalization=normalization,
    )
    parts = {
        "detection": tf.reduce_mean(detection_per_stack, axis=1),
        "pull": tf.reduce_mean(pull, axis=1),
        "push": tf.reduce_mean(push, axis=1),
    }
    loss = (
        detection_weight * parts["detection"]
        + pull_weight * parts["pull"]
        + push_weight * parts["push"]
    )
    return loss, parts
