"""In-graph candidate detection and greedy grouping of the TensorFlow grouping decoder.

Steps 1 and 2 of ``codec.graph_decoder``: non-maximum suppression, threshold and top-k
candidates per joint type, then joint-type-by-joint-type grouping of the candidates into padded
person slots with the official cost and ``linear_sum_assignment_tf``. Every shape is static
apart from the map size, and the float64 operation order is the NumPy decoder's, so the
assignments (and their ties) are the same.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from associative_embedding.codec.ops import linear_sum_assignment_tf

_INF = float("inf")


def find_candidates(
    heatmaps: tf.Tensor, nms_kernel: int, detection_threshold: float, top_k: int
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """NMS + threshold + top-k for all joint types at once.

    Args:
        heatmaps: (h, w, K) float32 detection heatmaps.
        nms_kernel: odd side of the max-pool window; 1 keeps every pixel.
        detection_threshold: candidates need a score strictly above this.
        top_k: T, candidates kept per joint type.

    Returns:
        pixels: (K, T) int32 row-major pixel index (y * w + x) of each candidate, T = top_k.
        scores: (K, T) float32 heatmap values, descending per joint type, equal values in
            pixel order; only the first ``counts[k]`` entries of row k are candidates.
        counts: (K,) int32 number of candidates per joint type.
    """
    num_joints = heatmaps.shape[2]
    keep = heatmaps > detection_threshold
    if nms_kernel > 1:
        # SAME max-pooling ignores the padding, like the NumPy decoder's -inf border.
        pooled = tf.nn.max_pool2d(heatmaps[None], nms_kernel, strides=1, padding="SAME")[0]
        keep &= tf.equal(heatmaps, pooled)
    masked = tf.where(keep, heatmaps, -_INF)
    masked = tf.transpose(tf.reshape(masked, [-1, num_joints]))  # (K, h*w)
    # top_k needs k <= length; the -inf padding also keeps T = top_k static for tiny maps.
    masked = tf.concat([masked, tf.fill([num_joints, top_k], -_INF)], axis=1)
    # top_k is stable (the lower index first among equal values), i.e. row-major pixel order.
    scores, pixels = tf.math.top_k(masked, k=top_k, sorted=True)
    valid = scores > -_INF
    counts = tf.reduce_sum(tf.cast(valid, tf.int32), axis=1)
    num_pixels = tf.shape(heatmaps)[0] * tf.shape(heatmaps)[1]
    pixels = tf.where(valid, pixels, tf.minimum(pixels, num_pixels - 1))  # in range for gathers
    scores = tf.where(valid, scores, tf.zeros((), tf.float32))
    return pixels, scores, counts


def group_candidates(
    cand_scores: tf.Tensor,
    cand_counts: tf.Tensor,
    cand_tags: tf.Tensor,
    order: tuple[int, ...],
    max_people: int,
    *,
    tag_threshold: float,
    tag_distance: str,
    block_distant_pairs: bool,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Greedy joint-type-by-joint-type grouping into ``max_people`` padded slots.

    Args:
        cand_scores: (K, T) float32 candidate scores.
        cand_counts: (K,) int32 number of valid candidates per joint type.
        cand_tags: (K, T, D) float32 candidate tags.
        order: grouping order (K joint indices).
        max_people: M, number of person slots.
        tag_threshold: a candidate joins a person only if their tag distance is below this.
        tag_distance: "rms" or "l2" distance between a candidate's tag and a person's mean.
        block_distant_pairs: give pairs at distance >= tag_threshold one prohibitive cost.

    Returns:
        members: (M, K) int32, the candidate index (within its joint type) of each person's
            joint, -1 if missing or for unused slots.
        tag_sums: (M, D) float64 sum of each person's joint tags.
        sizes: (M,) int32 number of joints of each person.
        count: scalar int32, the number of people (slots [0, count) are used).
    """
    num_joints, top_k, tag_dim = cand_tags.shape
    cand_tags = tf.cast(cand_tags, tf.float64)
    cand_scores = tf.cast(cand_scores, tf.float64)
    cand_valid = tf.range(top_k)[None, :] < cand_counts[:, None]
    # The NumPy decoder's prohibitive cost, with the same operation order (it enters the
    # solver's float64 sums, so the same value keeps the same tie-breaking).
    pair_bound = 100.0 * (abs(float(np.round(tag_threshold))) + 1.0)
    max_abs_score = tf.reduce_max(
        tf.where(cand_valid, tf.abs(cand_scores), tf.zeros((), tf.float64))
    )
    pair_bound = pair_bound + (max_abs_score + 1.0)
    prohibitive = 4.0 * pair_bound * float(max_people + 1)

    order_tensor = tf.constant(order, tf.int32)
    slots = tf.range(max_people)
    rows = tf.range(top_k)

    def body(step, members, tag_sums, sizes, count):
        # tf.gather, not tensor[index]: XLA takes a dynamic gather but needs the begin of a
        # strided slice at compile time (it would fold the whole decoder into constants).
        joint = tf.gather(order_tensor, step)
        num_cands = tf.gather(cand_counts, joint)
        joint_tags = tf.gather(cand_tags, joint)  # (T, D)
        joint_scores = tf.gather(cand_scores, joint)  # (T,)
        means = tag_sums / tf.cast(tf.maximum(sizes, 1), tf.float64)[:, None]  # (M, D)
        if tag_dim == 1:
            distances = tf.abs(joint_tags[:, :1] - means[None, :, 0])
        else:
            squared = tf.square(joint_tags[:, None, :] - means[None, :, :])  # (T, M, D)
            # Sequential sum over D, like NumPy's reduction for D < 8.
            reduced = squared[:, :, 0]
            for dim in range(1, tag_dim):
                reduced = reduced + squared[:, :, dim]
            if tag_distance == "rms":
                reduced = reduced / float(tag_dim)
            distances = tf.sqrt(reduced)
        in_use = (rows < num_cands)[:, None] & (slots < count)[None, :]
        acceptable = in_use & (distances < tag_threshold)
        # tf.round rounds half to even, like np.rint.
        cost = tf.round(distances) * 100.0 - joint_scores[:, None]
        if block_distant_pairs:
            cost = tf.where(acceptable, cost, prohibitive)
            degree = tf.cast(acceptable, tf.int32)
            unambiguous = tf.reduce_all(tf.reduce_sum(degree, axis=0) <= 1) & tf.reduce_all(
                tf.reduce_sum(degree, axis=1) <= 1
            )
            # Every optimum contains all acceptable pairs when they form a matching (the
            # prohibitive cost outweighs any difference of acceptable costs), so the solver,
            # the slow part, is needed only where acceptable pairs compete.
            row_to_col = tf.cond(
                unambiguous,
                lambda: tf.where(
                    tf.reduce_any(acceptable, axis=1),
                    tf.argmax(degree, axis=1, output_type=tf.int32),
                    -1,
                ),
                lambda: linear_sum_assignment_tf(cost, num_cands, count),
            )
        else:
            row_to_col = linear_sum_assignment_tf(cost, num_cands, count)
        matched = row_to_col >= 0
        accepted = matched & tf.gather(
            acceptable, tf.maximum(row_to_col, 0), axis=1, batch_dims=1
        )
        # Everyone not accepted starts a new person, strongest first (candidate order).
        unmatched = (rows < num_cands) & ~accepted
        rank = tf.cumsum(tf.cast(unmatched, tf.int32)) - 1
        new = unmatched & (rank < max_people - count)
        person_of_cand = tf.where(accepted, row_to_col, tf.where(new, count + rank, -1))
        cand_of_person = tf.reduce_max(
            tf.where(person_of_cand[:, None] == slots[None, :], rows[:, None], -1), axis=0
        )  # (M,)
        has_joint = cand_of_person >= 0
        is_joint = tf.equal(tf.range(num_joints), joint)[None, :]
        members = tf.where(is_joint, cand_of_person[:, None], members)
        added = tf.gather(joint_tags, tf.maximum(cand_of_person, 0))
        tag_sums = tf.where(has_joint[:, None], tag_sums + added, tag_sums)
        sizes = sizes + tf.cast(has_joint, tf.int32)
        count = count + tf.reduce_sum(tf.cast(new, tf.int32))
        return step + 1, members, tag_sums, sizes, count

    _, members, tag_sums, sizes, count = tf.while_loop(
        lambda step, *_: step < num_joints,
        body,
        (
            tf.constant(0),
            tf.fill([max_people, num_joints], -1),
            tf.zeros([max_people, tag_dim], tf.float64),
            tf.zeros([max_people], tf.int32),
            tf.constant(0),
        ),
    )
    return members, tag_sums, sizes, count
