"""In-graph grouping decoder: ``codec.group_poses`` written in TensorFlow ops.

``group_poses_tf`` decodes one image's heatmaps (h, w, K) and tags (h, w, K, D) into people
exactly like the NumPy decoder ``associative_embedding.codec.group_poses`` (read its module
docstring: it is the specification, including our deviations from the official code), but with
TensorFlow ops only, so it runs inside a ``tf.function`` with dynamic h and w, inside a
SavedModel signature (TF Serving) and without Python, NumPy or SciPy at serving time:

1. Candidates: ``nms_kernel`` max-pool NMS (plateaus keep every equal pixel), score strictly
   above ``detection_threshold``, ``top_k`` per joint type by ``tf.math.top_k`` (stable: equal
   scores keep row-major pixel order, like the NumPy lexsort).
2. Grouping in ``grouping_order`` (a ``tf.while_loop`` over joint types), with the cost
   ``round(d) * 100 - score`` (``d`` RMS or L2 tag distance), ``block_distant_pairs`` and the
   same prohibitive constant. The assignment is a TensorFlow port of SciPy's
   ``linear_sum_assignment`` (``rectangular_lsap.cpp``: Crouse's shortest augmenting path
   Jonker-Volgenant variant), replicating its column scan order, its tie-breaking and its
   floating-point operation order, so it returns the same assignment as SciPy, also among
   tied optima (the official cost ties a lot). With ``block_distant_pairs=True``, when every
   candidate and every person has at most one acceptable partner, the solver is skipped: the
   optimum then provably contains exactly those pairs.
3. Adjust (True/"official", "symmetric", "taylor", False), person score (mean over K before
   refine), refine (rounded L2 tag distance, first maximum in row-major order, score 1 or
   the heatmap value), people sorted by score, descending and stable.

Every array keeps the NumPy decoder's dtype and operation order (grouping in float64, refine
and coordinates in float32), so results are bit-identical to ``group_poses`` in practice;
``adjust="taylor"`` may differ by one float32 ulp (``tf.math.log`` and NumPy's ``log`` can
differ in the last float64 bit).

Candidates, people and refined (person, joint) pairs live in buffers padded to ``top_k``,
``max_people`` and ``max_people * K``, so ``group_poses_padded_tf`` has static shapes apart from
h and w; ``group_poses_tf`` only slices its output to the P decoded people.

XLA: ``group_poses_padded_tf`` compiles with ``tf.function(jit_compile=True)`` (one compilation
per map size, then ~2.5x faster than the graph on CPU); ``group_poses_tf`` does not compile
usefully, since its output size depends on the values (XLA would fold the inputs into
constants and recompile for every input).

Typical use in an exported model::

    decode = build_group_poses_function(num_joints=17, tag_dim=1)
    poses, scores = decode(heatmaps, tags)  # (P, 17, 3), (P,)
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from associative_embedding.codec.decode import (
    validate_decoder_options,
)

_INF = float("inf")
# Missing (person, joint) pairs refined per while-loop step: (chunk, h*w) maps at a time.
_REFINE_CHUNK = 32


def group_poses_tf(
    heatmaps: tf.Tensor,
    tags: tf.Tensor,
    *,
    detection_threshold: float = 0.1,
    tag_threshold: float = 1.0,
    max_people: int = 30,
    nms_kernel: int = 3,
    top_k: int = 30,
    adjust: bool | str = "official",
    refine: bool = True,
    refine_score: str = "official",
    grouping_order: Sequence[int] | None = None,
    tag_distance: str = "rms",
    block_distant_pairs: bool = True,
    check_finite: bool = True,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Decodes one image's heatmaps and tags into people with TensorFlow ops.

    Same options and results as ``associative_embedding.codec.group_poses``; the options are
    Python values fixed at trace time, the maps may have dynamic height and width.

    Args:
        heatmaps: (h, w, K) detection heatmaps (cast to float32); K must be static.
        tags: (h, w, K, D) tags, or (h, w, K) for D = 1 (cast to float32); D must be static.
        detection_threshold: candidates need a score strictly above this.
        tag_threshold: a candidate joins a person only if their tag distance is below this.
        max_people: at most this many people are returned.
        nms_kernel: odd side of the square max-pool window of the non-maximum suppression.
        top_k: candidates kept per joint type.
        adjust: True or "official", "symmetric", "taylor" or False (see ``group_poses``).
        refine: fill each person's missing joints from the full maps.
        refine_score: "official" (1.0) or "heatmap" (the heatmap value) for refined joints.
        grouping_order: the K joint indices in grouping order; None picks
            ``default_grouping_order(K)``.
        tag_distance: "rms" (official) or "l2" for grouping.
        block_distant_pairs: give pairs with distance >= tag_threshold one prohibitive cost.
        check_finite: raise ``tf.errors.InvalidArgumentError`` at run time on NaN or inf in
            the maps (the NumPy decoder raises ValueError); False skips the check.

    Returns:
        poses: (P, K, 3) float32, (x, y, score) per joint in heatmap corner coordinates
            (integer peak + adjust + 0.5); missing joints are (0, 0, 0).
        scores: (P,) float32 person scores (mean joint score before refine), descending.

    Raises:
        ValueError: on invalid options or statically inconsistent shapes.
        tf.errors.InvalidArgumentError: (at run time) on inconsistent dynamic shapes, empty
            maps or non-finite values.
    """
    poses, scores, num_people = group_poses_padded_tf(
        heatmaps,
        tags,
        detection_threshold=detection_threshold,
        tag_threshold=tag_threshold,
        max_people=max_people,
        nms_kernel=nms_kernel,
        top_k=top_k,
        adjust=adjust,
        refine=refine,
        refine_score=refine_score,
        grouping_order=grouping_order,
        tag_distance=tag_distance,
        block_distant_pairs=block_distant_pairs,
        check_finite=check_finite,
    )
    return poses[:num_people], scores[:num_people]


def group_poses_padded_tf(
    heatmaps: tf.Tensor,
    tags: tf.Tensor,
    *,
    detection_threshold: float = 0.1,
    tag_threshold: float = 1.0,
    max_people: int = 30,
    nms_kernel: int = 3,
    top_k: int = 30,
    adjust: bool | str = "official",
    refine: bool = True,
    refine_score: str = "official",
    grouping_order: Sequence[int] | None = None,
    tag_distance: str = "rms",
    block_distant_pairs: bool = True,
    check_finite: bool = True,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``group_poses_tf`` with outputs padded to ``max_people`` (static output shapes).

    The decoded people come first, sorted by score (descending, stable), then all-zero
    slots. Every shape in this function is static apart from h and w, so it also compiles
    with XLA (``tf.function(jit_compile=True)``, one compilation per map size), which
    ``group_poses_tf`` does not do usefully: its output size depends on the data.

    Args:
        heatmaps: (h, w, K) detection heatmaps (cast to float32); K must be static.
        tags: (h, w, K, D) tags, or (h, w, K) for D = 1 (cast to float32); D must be static.
        detection_threshold, tag_threshold, max_people, nms_kernel, top_k, adjust, refine,
        refine_score, grouping_order, tag_distance, block_distant_pairs, check_finite: as
            in ``group_poses_tf``.

    Returns:
        poses: (max_people, K, 3) float32, the P decoded people then zeros.
        scores: (max_people,) float32 person scores, descending, then zeros.
        num_people: scalar int32, P.

    Raises:
        ValueError: on invalid options or statically inconsistent shapes.
        tf.errors.InvalidArgumentError: (at run time) on inconsistent dynamic shapes, empty
            maps or non-finite values.
    """
    heatmaps, tags = _prepare_maps(heatmaps, tags, check_finite)
    num_joints = heatmaps.shape[2]
    order = _validate_options(
        num_joints, grouping_order, nms_kernel, top_k, max_people, tag_distance, refine_score,
        adjust,
    )
    if max_people == 0:
        return (
            tf.zeros((0, num_joints, 3), tf.float32),
            tf.zeros((0,), tf.float32),
            tf.constant(0, tf.int32),
        )

    cand_pixels, cand_scores, cand_counts = _find_candidates(
        heatmaps, nms_kernel, detection_threshold, top_k
    )
    height, width = tf.shape(heatmaps)[0], tf.shape(heatmaps)[1]
    tag_dim = tags.shape[3]
    # (K, h*w, D): joint-major so that each joint's candidates are one batched gather.
    tags_by_joint = tf.transpose(tf.reshape(tags, [height * width, num_joints, tag_dim]), [1, 0, 2])
    cand_tags = tf.gather(tags_by_joint, cand_pixels, batch_dims=1)  # (K, T, D)

    members, tag_sums, sizes, count = _group(
        cand_scores, cand_counts, cand_tags, order, max_people,
        tag_threshold=tag_threshold, tag_distance=tag_distance,
        block_distant_pairs=block_distant_pairs,
    )

    # Grouped joints of the (padded) people slots.
    present = members >= 0  # (M, K)
    joint_ids = tf.broadcast_to(tf.range(num_joints)[None, :], tf.shape(members))
    # (K, M) gathers of each joint type's candidates, then person-major.
    safe_members = tf.transpose(tf.maximum(members, 0))
    pixels = tf.transpose(tf.gather(cand_pixels, safe_members, batch_dims=1))  # (M, K)
    joint_scores = tf.transpose(tf.gather(cand_scores, safe_members, batch_dims=1))  # (M, K)
    xs, ys = _corner_coordinates(heatmaps, pixels // width, pixels % width, joint_ids, adjust)
    poses = tf.where(
        present[:, :, None],
        tf.stack([xs, ys, joint_scores], axis=-1),
        tf.zeros((), tf.float32),
    )  # (M, K, 3)
    # Exact in float64 for scores of similar magnitude, like the NumPy float64 sum.
    person_scores = tf.cast(
        tf.reduce_sum(tf.cast(poses[:, :, 2], tf.float64), axis=1) / num_joints, tf.float32
    )

    if refine:
        person_means = tf.cast(
            tag_sums / tf.cast(tf.maximum(sizes, 1), tf.float64)[:, None], tf.float32
        )
        missing = (tf.range(max_people) < count)[:, None] & ~present
        poses = _refine(heatmaps, tags, poses, missing, person_means, adjust, refine_score)

    # Unused slots (all-zero poses, score 0) sort last; the stable sort keeps the NumPy
    # decoder's order among equal scores.
    alive = tf.range(max_people) < count
    ranking = tf.argsort(
        tf.where(alive, person_scores, -_INF), direction="DESCENDING", stable=True
    )
    return tf.gather(poses, ranking), tf.gather(person_scores, ranking), count


def build_group_poses_function(
    num_joints: int, tag_dim: int, **options
) -> tf.types.experimental.PolymorphicFunction:
    """A ``tf.function`` of ``group_poses_tf`` traced once for any map size.

    Args:
        num_joints: K.
        tag_dim: D.
        **options: keyword options of ``group_poses_tf``.

    Returns:
        A function (heatmaps (h, w, K) float32, tags (h, w, K, D) float32) -> (poses (P, K, 3),
        scores (P,)) with that input signature (dynamic h, w), ready for
        ``tf.saved_model.save`` as a signature or a method of a ``tf.Module``.
    """
    # Validate eagerly so that a bad option fails here, not at the first call.
    unknown = set(options) - set(inspect.signature(group_poses_tf).parameters) - {
        "heatmaps", "tags"
    }
    if unknown:
        raise TypeError(f"Unknown group_poses_tf options: {sorted(unknown)}.")
    _validate_options(
        num_joints,
        options.get("grouping_order"),
        options.get("nms_kernel", 3),
        options.get("top_k", 30),
        options.get("max_people", 30),
        options.get("tag_distance", "rms"),
        options.get("refine_score", "official"),
        options.get("adjust", "official"),
    )
    if tag_dim < 1:
        raise ValueError(f"tag_dim must be >= 1, got {tag_dim}.")

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, num_joints], tf.float32, name="heatmaps"),
            tf.TensorSpec([None, None, num_joints, tag_dim], tf.float32, name="tags"),
        ]
    )
    def decode(heatmaps: tf.Tensor, tags: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return group_poses_tf(heatmaps, tags, **options)

    return decode


# ----------------------------------------------------------------------------- validation


def _prepare_maps(
    heatmaps: tf.Tensor, tags: tf.Tensor, check_finite: bool
) -> tuple[tf.Tensor, tf.Tensor]:
    heatmaps = tf.cast(tf.convert_to_tensor(heatmaps), tf.float32)
    tags = tf.cast(tf.convert_to_tensor(tags), tf.float32)
    if heatmaps.shape.rank != 3 or heatmaps.shape[2] is None:
        raise ValueError(
            f"heatmaps must be (h, w, K) with a static K, got shape {heatmaps.shape}."
        )
    if tags.shape.rank == 3:
        tags = tags[..., None]
    if (
        tags.shape.rank != 4
        or tags.shape[3] is None
        or tags.shape[3] < 1
        or not tags.shape[:3].is_compatible_with(heatmaps.shape)
    ):
        raise ValueError(
            f"tags must be (h, w, K, D) with a static D, or (h, w, K), matching heatmaps "
            f"{heatmaps.shape}, got shape {tags.shape}."
        )
    if heatmaps.shape[2] < 1:
        raise ValueError(f"heatmaps need K >= 1 joint types, got shape {heatmaps.shape}.")
    checks = [
        tf.debugging.assert_positive(
            tf.shape(heatmaps)[:2], message="heatmaps must have h, w >= 1"
        ),
        tf.debugging.assert_equal(
            tf.shape(tags)[:3], tf.shape(heatmaps), message="tags (h, w, K) must match heatmaps"
        ),
    ]
    if check_finite:
        checks += [
            tf.debugging.assert_all_finite(heatmaps, "heatmaps must be finite (NaN or inf)"),
            tf.debugging.assert_all_finite(tags, "tags must be finite (NaN or inf)"),
        ]
    with tf.control_dependencies(checks):
        return tf.identity(heatmaps), tf.identity(tags)


def _validate_options(*args, **kwargs) -> tuple[int, ...]:
    """The NumPy decoder's checks and messages (``validate_decoder_options``), as a tuple."""
    return tuple(int(joint) for joint in validate_decoder_options(*args, **kwargs))


# ----------------------------------------------------------------------------- candidates


def _find_candidates(
    heatmaps: tf.Tensor, nms_kernel: int, detection_threshold: float, top_k: int
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """NMS + threshold + top-k for all joint types at once.

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


# ----------------------------------------------------------------------------- grouping


def _group(
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


# ----------------------------------------------------------------------------- assignment


def linear_sum_assignment_tf(
    cost: tf.Tensor, num_rows: tf.Tensor | int, num_cols: tf.Tensor | int
) -> tf.Tensor:
    """Minimum-cost rectangular assignment, the same as ``scipy.optimize.linear_sum_assignment``.

    A port of SciPy's ``rectangular_lsap.cpp`` (shortest augmenting path, Crouse 2016) to
    TensorFlow while loops, vectorised over columns. It keeps SciPy's transpose of tall
    matrices, its column scan order (``remaining`` filled in reverse, removals swap in the
    last element), its rule for equal path costs (prefer a free column) and its float64
    operation order, so it picks the same optimum as SciPy among tied ones.

    Args:
        cost: (R, C) float64 with static R, C; only ``cost[:num_rows, :num_cols]`` is used and
            it must be finite.
        num_rows: scalar int32, rows in use (<= R).
        num_cols: scalar int32, columns in use (<= C).

    Returns:
        (R,) int32: the column assigned to each row, -1 for unassigned rows (rows beyond
        ``num_rows``, and ``num_rows - num_cols`` rows when there are more rows than columns).
    """
    cost = tf.cast(cost, tf.float64)
    num_rows = tf.convert_to_tensor(num_rows, tf.int32)
    num_cols = tf.convert_to_tensor(num_cols, tf.int32)
    max_rows, max_cols = cost.shape
    size = max(max_rows, max_cols)
    padded = tf.pad(cost, [[0, size - max_rows], [0, size - max_cols]])
    # SciPy transposes tall matrices so that every row gets a column.
    transpose = num_cols < num_rows
    work = tf.where(transpose, tf.transpose(padded), padded)
    col4row, row4col = _shortest_augmenting_path(
        work, tf.minimum(num_rows, num_cols), tf.maximum(num_rows, num_cols), size
    )
    return tf.where(transpose, row4col, col4row)[:max_rows]


def _shortest_augmenting_path(
    cost: tf.Tensor, num_rows: tf.Tensor, num_cols: tf.Tensor, size: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """SciPy's ``solve`` for a wide problem (num_rows <= num_cols) in a (size, size) buffer.

    Returns:
        col4row: (size,) int32 column of each row (-1 beyond num_rows).
        row4col: (size,) int32 row of each column (-1 if unassigned).
    """
    positions = tf.range(size)
    infinity = tf.constant(_INF, tf.float64)
    in_cols = positions < num_cols

    def greedy_rows(cur_row, u, v, col4row, row4col):
        """Rows from cur_row on whose SciPy search ends at its first step, all at once.

        A row's first step (min_val = 0, every column remaining, scanned from the last column
        to the first) picks the smallest free column among its minimum reduced costs if there
        is one; the search then ends there, u[row] += minimum and v is unchanged (v -= 0), so
        only row4col carries over to the next row. The run stops at the first row with no free
        minimum or with a minimum column taken by an earlier row of the run (there the
        earlier assignment could change its choice); that row gets the full search.
        """
        # The same float64 expression as the first search step (min_val = 0).
        reduced = ((tf.constant(0.0, tf.float64) + cost) - u[:, None]) - v[None, :]
        reduced = tf.where(in_cols[None, :], reduced, infinity)
        lowest = tf.reduce_min(reduced, axis=1)
        tied = in_cols[None, :] & tf.equal(reduced, lowest[:, None])
        free_tied = tied & tf.equal(row4col, -1)[None, :]
        choice = tf.reduce_min(tf.where(free_tied, positions[None, :], size), axis=1)
        pending = (positions >= cur_row) & (positions < num_rows)
        chosen = pending[:, None] & tf.equal(positions[None, :], choice[:, None])  # (S, S)
        taken_before = tf.cumsum(tf.cast(chosen, tf.int32), axis=0, exclusive=True) > 0
        conflict = tf.reduce_any(tied & taken_before, axis=1)
        greedy = pending & (choice < size) & ~conflict
        stop = tf.reduce_min(tf.where((positions >= cur_row) & ~greedy, positions, size))
        run = pending & (positions < stop)
        col4row = tf.where(run, choice, col4row)
        owner = tf.reduce_max(
            tf.where(chosen & run[:, None], positions[:, None], -1), axis=0
        )
        row4col = tf.where(owner >= 0, owner, row4col)
        u = tf.where(run, u + lowest, u)
        return stop, u, v, col4row, row4col

    def search_row(cur_row, u, v, col4row, row4col):
        """SciPy's ``augmenting_path`` + dual update + augmentation for one row."""

        def search_body(i, min_val, path_costs, path, rows_seen, cols_seen, remaining,
                        num_remaining, sink):
            rows_seen = rows_seen | tf.equal(positions, i)
            # Same association as the C++ ``minVal + cost[i][j] - u[i] - v[j]``.
            reduced = ((min_val + tf.gather(cost, i)) - tf.gather(u, i)) - v
            improve = in_cols & ~cols_seen & (reduced < path_costs)
            path_costs = tf.where(improve, reduced, path_costs)
            path = tf.where(improve, i, path)
            # SciPy scans ``remaining`` in order and takes the first minimum, replaced by a
            # later equal one whose column is free: i.e. the last free minimum if any, else
            # the first minimum.
            active = positions < num_remaining
            scan_cols = tf.where(active, remaining, 0)
            scan_costs = tf.where(active, tf.gather(path_costs, scan_cols), infinity)
            lowest = tf.reduce_min(scan_costs)
            tied = active & tf.equal(scan_costs, lowest)
            free = tied & tf.equal(tf.gather(row4col, scan_cols), -1)
            first_tied = tf.reduce_min(tf.where(tied, positions, size))
            last_free = tf.reduce_max(tf.where(free, positions, -1))
            index = tf.where(last_free >= 0, last_free, first_tied)
            col = tf.gather(remaining, index)
            owner = tf.gather(row4col, col)
            sink = tf.where(owner < 0, col, -1)
            i = tf.where(owner < 0, i, owner)
            cols_seen = cols_seen | tf.equal(positions, col)
            num_remaining = num_remaining - 1
            remaining = tf.where(
                tf.equal(positions, index), tf.gather(remaining, num_remaining), remaining
            )
            return (i, lowest, path_costs, path, rows_seen, cols_seen, remaining,
                    num_remaining, sink)

        # Filled in reverse, as SciPy does (a constant matrix gives the identity).
        remaining = tf.where(in_cols, num_cols - positions - 1, 0)
        _, min_val, path_costs, path, rows_seen, cols_seen, _, _, sink = tf.while_loop(
            lambda *state: state[-1] < 0,
            search_body,
            (
                cur_row,
                tf.constant(0.0, tf.float64),
                tf.fill([size], infinity),
                tf.fill([size], -1),
                tf.zeros([size], tf.bool),
                tf.zeros([size], tf.bool),
                remaining,
                num_cols,
                tf.constant(-1),
            ),
            maximum_iterations=size,
        )

        # Dual update, in SciPy's order and association.
        is_cur = tf.equal(positions, cur_row)
        u = tf.where(is_cur, u + min_val, u)
        previous = tf.gather(path_costs, tf.maximum(col4row, 0))
        u = tf.where(rows_seen & ~is_cur, u + (min_val - previous), u)
        v = tf.where(cols_seen, v - (min_val - path_costs), v)

        def augment_body(col, done, col4row, row4col):
            row = tf.gather(path, col)
            row4col = tf.where(tf.equal(positions, col), row, row4col)
            next_col = tf.gather(col4row, row)
            col4row = tf.where(tf.equal(positions, row), col, col4row)
            return next_col, tf.equal(row, cur_row), col4row, row4col

        _, _, col4row, row4col = tf.while_loop(
            lambda col, done, *_: ~done,
            augment_body,
            (sink, tf.constant(False), col4row, row4col),
            maximum_iterations=size,
        )
        return cur_row + 1, u, v, col4row, row4col

    def row_body(cur_row, u, v, col4row, row4col):
        greedy_state = greedy_rows(cur_row, u, v, col4row, row4col)
        # Most rows of a grouping problem take their unique acceptable person at once; the
        # batched step keeps the slow per-row search for the contested ones.
        return tf.cond(
            greedy_state[0] > cur_row,
            lambda: greedy_state,
            lambda: search_row(cur_row, u, v, col4row, row4col),
        )

    _, _, _, col4row, row4col = tf.while_loop(
        lambda cur_row, *_: cur_row < num_rows,
        row_body,
        (
            tf.constant(0),
            tf.zeros([size], tf.float64),
            tf.zeros([size], tf.float64),
            tf.fill([size], -1),
            tf.fill([size], -1),
        ),
    )
    return col4row, row4col


# ----------------------------------------------------------------------------- adjust, refine


def _corner_coordinates(
    heatmaps: tf.Tensor, ys: tf.Tensor, xs: tf.Tensor, joints: tf.Tensor, adjust: bool | str
) -> tuple[tf.Tensor, tf.Tensor]:
    """Integer peaks (any shape, int32) -> float32 heatmap corner coordinates x, y (+0.5),
    with the NumPy decoder's adjust (neighbours clamped to the map)."""
    x = tf.cast(xs, tf.float32) + 0.5
    y = tf.cast(ys, tf.float32) + 0.5
    if adjust == "taylor":
        x = x + _taylor_offsets(heatmaps, ys, xs, joints, axis=1)
        y = y + _taylor_offsets(heatmaps, ys, xs, joints, axis=0)
    elif adjust:
        height, width = tf.shape(heatmaps)[0], tf.shape(heatmaps)[1]

        def value(rows, cols):
            return tf.gather_nd(heatmaps, tf.stack([rows, cols, joints], axis=-1))

        right = value(ys, tf.minimum(xs + 1, width - 1))
        left = value(ys, tf.maximum(xs - 1, 0))
        below = value(tf.minimum(ys + 1, height - 1), xs)
        above = value(tf.maximum(ys - 1, 0), xs)
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
    """Log-heatmap Taylor sub-pixel offsets along one axis (0 = rows, 1 = columns), float32,
    as ``codec.decode._taylor_offsets`` (0 where not a log-parabola maximum, clipped to
    +-0.5)."""
    size = tf.shape(heatmaps)[axis]
    positions = ys if axis == 0 else xs
    before = tf.maximum(positions - 1, 0)
    after = tf.minimum(positions + 1, size - 1)

    def value(rows, cols):
        return tf.gather_nd(heatmaps, tf.stack([rows, cols, joints], axis=-1))

    if axis == 0:
        previous, following = value(before, xs), value(after, xs)
    else:
        previous, following = value(ys, before), value(ys, after)
    centre = value(ys, xs)
    values = tf.cast(tf.stack([previous, centre, following]), tf.float64)
    usable = (positions > 0) & (positions < size - 1) & tf.reduce_all(values > 0, axis=0)
    logs = tf.math.log(tf.where(values > 0, values, tf.ones((), tf.float64)))
    first = 0.5 * (logs[2] - logs[0])
    second = logs[2] - 2.0 * logs[1] + logs[0]
    usable &= second < 0
    safe_second = tf.where(usable, second, -tf.ones((), tf.float64))
    offsets = tf.where(usable, -first / safe_second, tf.zeros((), tf.float64))
    return tf.cast(tf.clip_by_value(offsets, -0.5, 0.5), tf.float32)


def _refine(
    heatmaps: tf.Tensor,
    tags: tf.Tensor,
    poses: tf.Tensor,
    missing: tf.Tensor,
    person_means: tf.Tensor,
    adjust: bool | str,
    refine_score: str,
) -> tf.Tensor:
    """Fills the missing joints of every person (see ``codec.decode._refine``).

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
    x, y = _corner_coordinates(heatmaps, best_pixels // width, best_pixels % width, joints, adjust)
    score = tf.ones_like(best_heat) if refine_score == "official" else best_heat
    flat_poses = tf.reshape(poses, [num_slots, 3])
    filled = tf.where(
        found[:, None], tf.stack([x, y, score], axis=1), tf.gather(flat_poses, pair_order)
    )
    # pair_order is a permutation, so every slot is written once.
    flat_poses = tf.tensor_scatter_nd_update(flat_poses, pair_order[:, None], filled)
    return tf.reshape(flat_poses, tf.shape(poses))
