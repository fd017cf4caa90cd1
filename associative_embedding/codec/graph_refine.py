"""In-graph adjust and refine of the TensorFlow grouping decoder.

Step 3 of ``codec.graph_decoder``: integer peaks to heatmap corner coordinates with the
NumPy decoder's adjust rules (quarter-pixel shift or log-heatmap Taylor offsets), and refine,
which fills every person's missing joints from the full maps (the first maximum of
``heatmap - round(||tag - mean||)`` in row-major order), in the NumPy decoder's float32
operation order.
"""

from __future__ import annotations

import tensorflow as tf

# Missing (person, joint) pairs refined per while-loop step: (chunk, h*w) maps at a time.
_REFINE_CHUNK = 32


def _map_values(
    heatmaps: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor, joints: tf.Tensor
) -> tf.Tensor:
    """heatmaps[rows, cols, joints] for int32 index tensors of one shape (any), float32."""
    return tf.gather_nd(heatmaps, tf.stack([rows, cols, joints], axis=-1))


def corner_coordinates(
    heatmaps: tf.Tensor, ys: tf.Tensor, xs: tf.Tensor, joints: tf.Tensor, adjust: bool | str
) -> tuple[tf.Tensor, tf.Tensor]:
    """Integer peaks to heatmap corner coordinates, with the NumPy decoder's adjust.

    Args:
        heatmaps: (h, w, K) float32 maps the adjust reads (neighbours clamped to the map).
        ys: (...) int32 peak rows.
        xs: (...) int32 peak columns, the shape of ``ys``.
        joints: (...) int32 joint type of each peak, the shape of ``ys``.
        adjust: True or "official" (+-0.25 towards the higher neighbour, -0.25 on ties),
            "symmetric" (0 on ties), "taylor" (log-heatmap offsets) or False.

    Returns:
        x, y: (...) float32 coordinates, integer peak + 0.5 + adjust offset.
    """
    x = tf.cast(xs, tf.float32) + 0.5
    y = tf.cast(ys, tf.float32) + 0.5
    if adjust == "taylor":
        x = x + _taylor_offsets(heatmaps, ys, xs, joints, axis=1)
        y = y + _taylor_offsets(heatmaps, ys, xs, joints, axis=0)
    elif adjust:
        height, width = tf.shape(heatmaps)[0], tf.shape(heatmaps)[1]
        right = _map_values(heatmaps, ys, tf.minimum(xs + 1, width - 1), joints)
        left = _map_values(heatmaps, ys, tf.maximum(xs - 1, 0), joints)
        below = _map_values(heatmaps, tf.minimum(ys + 1, height - 1), xs, joints)
        above = _map_values(heatmaps, tf.maximum(ys - 1, 0), xs, joints)
        if adjust == "symmetric":
            x = x + 0.25 * tf.sign(right - left)
            y = y + 0.25 * tf.sign(below - above)
        else:
            # The official rule: -0.25 on ties.
            x = x + tf.where(right > left, 0.25, -0.25)
            y = y + tf.where(below > above, 0.25, -0.25)
    return x, y


def _taylor_offsets(
    heatmaps: tf.Tensor, ys: tf.Tensor, xs: tf.Tensor, joints: tf.Tensor, axis: int
) -> tf.Tensor:
    """Log-heatmap Taylor sub-pixel offsets along one axis, as the NumPy decoder's.

    Args:
        heatmaps: (h, w, K) float32.
        ys, xs, joints: (...) int32 peak rows, columns and joint types.
        axis: 0 for offsets along rows (y), 1 along columns (x).

    Returns:
        (...) float32 offsets, 0 where the log-heatmap is not a parabola with a maximum there,
        clipped to +-0.5.
    """
    size = tf.shape(heatmaps)[axis]
    positions = ys if axis == 0 else xs
    before = tf.maximum(positions - 1, 0)
    after = tf.minimum(positions + 1, size - 1)
    if axis == 0:
        previous = _map_values(heatmaps, before, xs, joints)
        following = _map_values(heatmaps, after, xs, joints)
    else:
        previous = _map_values(heatmaps, ys, before, joints)
        following = _map_values(heatmaps, ys, after, joints)
    centre = _map_values(heatmaps, ys, xs, joints)
    values = tf.cast(tf.stack([previous, centre, following]), tf.float64)
    usable = (positions > 0) & (positions < size - 1) & tf.reduce_all(values > 0, axis=0)
    logs = tf.math.log(tf.where(values > 0, values, tf.ones((), tf.float64)))
    first = 0.5 * (logs[2] - logs[0])
    second = logs[2] - 2.0 * logs[1] + logs[0]
    usable &= second < 0
    safe_second = tf.where(usable, second, -tf.ones((), tf.float64))
    offsets = tf.where(usable, -first / safe_second, tf.zeros((), tf.float64))
    return tf.cast(tf.clip_by_value(offsets, -0.5, 0.5), tf.float32)


def refine_poses(
    heatmaps: tf.Tensor,
    tags: tf.Tensor,
    poses: tf.Tensor,
    missing: tf.Tensor,
    person_means: tf.Tensor,
    adjust: bool | str,
    refine_score: str,
) -> tf.Tensor:
    """Fills the missing joints of every person (as the NumPy decoder's refine).

    Every missing (person, joint) pair gets the map ``heatmap - round(||tag - mean||_2)`` over
    all pixels and its first maximum in row-major order. Pairs are processed
    ``_REFINE_CHUNK`` at a time in a while loop, so memory stays at a few (chunk, h*w) maps
    whatever the number of people, and the graph holds one copy of the computation.

    Args:
        heatmaps: (h, w, K) float32.
        tags: (h, w, K, D) float32.
        poses: (M, K, 3) float32 grouped poses.
        missing: (M, K) bool, joints to fill (people in use only).
        person_means: (M, D) float32 mean tag of each person's grouped joints.

    Returns:
        (M, K, 3) poses with the filled joints.
    """
    num_joints, tag_dim = tags.shape[2], tags.shape[3]
    height, width = tf.shape(heatmaps)[0], tf.shape(heatmaps)[1]
    num_pixels = height * width
    heat_by_joint = tf.transpose(tf.reshape(heatmaps, [num_pixels, num_joints]))  # (K, h*w)
    tags_by_joint = tf.transpose(
        tf.reshape(tags, [num_pixels, num_joints, tag_dim]), [1, 2, 0]
    )  # (K, D, h*w)
    # All (person, joint) pairs, the Q missing ones first (row-major), in a static-size list:
    # only the first ceil(Q / chunk) chunks are computed, and nothing has a dynamic shape
    # (so the decoder also compiles with XLA).
    num_slots = missing.shape[0] * num_joints
    flat_missing = tf.reshape(missing, [num_slots])
    pair_order = tf.argsort(tf.cast(~flat_missing, tf.int32), stable=True)  # (M*K,)
    num_pairs = tf.reduce_sum(tf.cast(flat_missing, tf.int32))
    num_chunks = (num_pairs + _REFINE_CHUNK - 1) // _REFINE_CHUNK
    max_chunks = -(-num_slots // _REFINE_CHUNK)
    padded = tf.pad(pair_order, [[0, max_chunks * _REFINE_CHUNK - num_slots]])
    pixel_ids = tf.range(num_pixels)

    def chunk_body(chunk, best_pixels, best_heat):
        # tf.slice with a constant size keeps the chunk's static shape under XLA.
        chunk_slots = tf.slice(padded, [chunk * _REFINE_CHUNK], [_REFINE_CHUNK])
        joints = chunk_slots % num_joints
        means = tf.gather(person_means, chunk_slots // num_joints)  # (C, D)
        joint_tags = tf.gather(tags_by_joint, joints)  # (C, D, h*w)
        heat = tf.gather(heat_by_joint, joints)  # (C, h*w)
        # The NumPy decoder's float32 order: |t - m| for D = 1, else ((0 + s_0) + s_1) + ...
        if tag_dim == 1:
            value = tf.abs(joint_tags[:, 0] - means[:, :1])
        else:
            value = tf.square(joint_tags[:, 0] - means[:, :1])
            for dim in range(1, tag_dim):
                value = value + tf.square(joint_tags[:, dim] - means[:, dim:dim + 1])
            value = tf.sqrt(value)
        value = heat - tf.round(value)  # half to even, like np.rint
        # First maximum in row-major order, like np.argmax (tf.argmax does not promise it).
        is_best = tf.equal(value, tf.reduce_max(value, axis=1, keepdims=True))
        best = tf.reduce_min(tf.where(is_best, pixel_ids[None, :], num_pixels), axis=1)
        positions = (chunk * _REFINE_CHUNK + tf.range(_REFINE_CHUNK))[:, None]
        return (
            chunk + 1,
            tf.tensor_scatter_nd_update(best_pixels, positions, best),
            tf.tensor_scatter_nd_update(
                best_heat, positions, tf.gather(heat, best, batch_dims=1)
            ),
        )

    # Entries beyond the computed chunks stay 0 and are masked out below.
    _, best_pixels, best_heat = tf.while_loop(
        lambda chunk, *_: chunk < num_chunks,
        chunk_body,
        (
            tf.constant(0),
            tf.zeros([max_chunks * _REFINE_CHUNK], tf.int32),
            tf.zeros([max_chunks * _REFINE_CHUNK], tf.float32),
        ),
    )
    best_pixels, best_heat = best_pixels[:num_slots], best_heat[:num_slots]
    found = (tf.range(num_slots) < num_pairs) & (best_heat > 0)
    joints = pair_order % num_joints
    x, y = corner_coordinates(heatmaps, best_pixels // width, best_pixels % width, joints, adjust)
    score = tf.ones_like(best_heat) if refine_score == "official" else best_heat
    flat_poses = tf.reshape(poses, [num_slots, 3])
    filled = tf.where(
        found[:, None], tf.stack([x, y, score], axis=1), tf.gather(flat_poses, pair_order)
    )
    # pair_order is a permutation, so every slot is written once.
    flat_poses = tf.tensor_scatter_nd_update(flat_poses, pair_order[:, None], filled)
    return tf.reshape(flat_poses, tf.shape(poses))
