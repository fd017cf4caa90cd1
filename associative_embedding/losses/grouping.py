"""Associative-embedding grouping loss for keypoints: pull tags of a person together, push
different people's tags apart.

The loss is a pure, vectorised TensorFlow function; there is no Python loop over images or
people, so it runs eagerly, inside `tf.function` (with a `None` people axis and no retracing per
people count), under XLA (`jit_compile=True`, dense keypoints only) and inside a
`tf.distribute.MirroredStrategy` replica.

Normalisation follows the official code (pose-ae-train). Per image, over the N people that have
at least one valid joint, with t_nk the D-dim tag of person n at joint k (read at the joint's
output pixel) and |n| the person's number of valid joints:

    m_n  = (1 / |n|) sum_k t_nk                                 (reference embedding)
    pull = (1 / N) sum_n (1 / |n|) sum_k ||t_nk - m_n||^2 / D
    push = 0.5 * [sum_{i<j} f(m_i, m_j)] / (N (N - 1) / 2)

i.e. the push is 0.5 times the *mean over unordered pairs* (not over N^2 ordered pairs with the
diagonal, as in the paper's printed formula or mmpose 1.x). The official code computes the same
value as 0.5 * (sum over ordered pairs with the diagonal - N) / (N (N - 1)).
f is the push kernel (`push_kernel`, shared with the segmentation loss):

- `push_type="exp"` (official, default): f = exp(-||m_i - m_j||^2) (paper form, sigma^2 = 0.5).
  Its gradient vanishes at m_i = m_j, so identical tags are a stationary point.
- `push_type="hinge"` (HigherHRNet's 'max' option, CornerNet's form):
  f = relu(1 - ||m_i - m_j||) with the Euclidean norm over the D tag dims (|m_i - m_j| for
  D = 1, exactly HigherHRNet). The norm's gradient at m_i = m_j is taken as 0 (like
  torch.abs in HigherHRNet) instead of NaN; pairs 1 or more apart give zero loss and gradient.

N = 0 gives pull = push = 0 and N = 1 gives push = 0, with finite gradients that are exactly zero
for every tag that is not read at a valid joint.
"""

from __future__ import annotations

import tensorflow as tf

from associative_embedding.losses.heatmap import compute_dtype

PUSH_TYPES = ("exp", "hinge")

KeypointsLike = tf.Tensor | tf.RaggedTensor


def check_push_type(push_type: str) -> None:
    """Raises ValueError unless `push_type` is one of `PUSH_TYPES`."""
    if push_type not in PUSH_TYPES:
        raise ValueError(f"push_type must be one of {PUSH_TYPES}, got {push_type!r}.")


def push_kernel(squared_distance: tf.Tensor, valid: tf.Tensor, push_type: str) -> tf.Tensor:
    """The push kernel f of squared tag distances, zero (with zero gradient) where not `valid`.

    Args:
        squared_distance: (...) squared Euclidean distances ||a - b||^2 between tags.
        valid: bool, broadcastable to `squared_distance`; the pairs that count.
        push_type: 'exp' (exp(-d^2)) or 'hinge' (relu(1 - d)).

    Returns:
        (...) f per pair, exactly 0 where not valid.
    """
    zeros = tf.zeros_like(squared_distance)
    # tf.where (not multiplication) so that non-finite distances of unused pairs cannot leak in.
    squared_distance = tf.where(valid, squared_distance, zeros)
    if push_type == "exp":
        kernel = tf.exp(-squared_distance)
    elif push_type == "hinge":
        # sqrt has an infinite gradient at 0 (identical tags, or unused pairs): feed it only
        # strictly positive values and define the distance's gradient at 0 as 0.
        positive = squared_distance > 0
        safe_squared = tf.where(positive, squared_distance, tf.ones_like(squared_distance))
        distance = tf.where(positive, tf.sqrt(safe_squared), zeros)
        kernel = tf.nn.relu(1.0 - distance)
    else:
        raise ValueError(f"push_type must be one of {PUSH_TYPES}, got {push_type!r}.")
    return tf.where(valid, kernel, zeros)


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
    pair_push = push_kernel(squared_distance, pair_valid[:, None, :, :], push_type)
    num_pairs = num_people * (num_people - 1.0) / 2.0  # (B,)
    push = 0.5 * tf.math.divide_no_nan(tf.reduce_sum(pair_push, axis=[-2, -1]), num_pairs[:, None])
    return push, pull


def _check_keypoints(keypoints: tf.Tensor, num_joints: int | None, where: str) -> None:
    """Raises ValueError when the static keypoint shape is not (B, P, K, 3)."""
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


def stacked_grouping_loss(
    tags: tf.Tensor, keypoints: KeypointsLike, push_type: str
) -> tuple[tf.Tensor, tf.Tensor]:
    """The grouping loss of every stack at once.

    Args:
        tags: (B, S, h, w, K, D) stacked tag maps.
        keypoints: (B, [P], K, 3) ragged or dense (x, y, valid), as for `grouping_loss`.
        push_type: 'exp' or 'hinge'.

    Returns:
        push, pull: (B, S) each.
    """
    num_joints = tags.shape[4]
    keypoints = keypoints_to_dense(keypoints, num_joints)
    _check_keypoints(keypoints, num_joints, "grouping_loss")
    dtype = compute_dtype(tags.dtype)
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
    check_push_type(push_type)
    tags = tf.convert_to_tensor(tags)
    if tags.shape.rank is not None and tags.shape.rank != 5:
        raise ValueError(f"grouping_loss: tags must be (B, h, w, K, D), got shape {tags.shape}.")
    push, pull = stacked_grouping_loss(tags[:, None], keypoints, push_type)
    return push[:, 0], pull[:, 0]
