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

The steps live in ``codec.graph_grouping`` (candidates, grouping) and ``codec.graph_refine``
(adjust, refine); the assignment solver is ``codec.ops.linear_sum_assignment_tf``.

Typical use in an exported model::

    decode = build_group_poses_function(num_joints=17, tag_dim=1)
    poses, scores = decode(heatmaps, tags)  # (P, 17, 3), (P,)
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from associative_embedding.codec.decode import validate_decoder_options
from associative_embedding.codec.graph_grouping import find_candidates, group_candidates
from associative_embedding.codec.graph_refine import corner_coordinates, refine_poses

_INF = float("inf")


def group_poses_tf(
    heatmaps: tf.Tensor, tags: tf.Tensor, **options: Any
) -> tuple[tf.Tensor, tf.Tensor]:
    """Decodes one image's heatmaps and tags into people with TensorFlow ops.

    Same options and results as ``associative_embedding.codec.group_poses``; the options are
    Python values fixed at trace time, the maps may have dynamic height and width.

    Args:
        heatmaps: (h, w, K) detection heatmaps (cast to float32); K must be static.
        tags: (h, w, K, D) tags, or (h, w, K) for D = 1 (cast to float32); D must be static.
        **options: the keyword options of ``group_poses_padded_tf`` (detection_threshold,
            tag_threshold, max_people, nms_kernel, top_k, adjust, refine, refine_score,
            grouping_order, tag_distance, block_distant_pairs, check_finite).

    Returns:
        poses: (P, K, 3) float32, (x, y, score) per joint in heatmap corner coordinates
            (integer peak + adjust + 0.5); missing joints are (0, 0, 0).
        scores: (P,) float32 person scores (mean joint score before refine), descending.

    Raises:
        ValueError: on invalid options or statically inconsistent shapes.
        TypeError: on an unknown option.
        tf.errors.InvalidArgumentError: (at run time) on inconsistent dynamic shapes, empty
            maps or non-finite values.
    """
    poses, scores, num_people = group_poses_padded_tf(heatmaps, tags, **options)
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

    cand_pixels, cand_scores, cand_counts = find_candidates(
        heatmaps, nms_kernel, detection_threshold, top_k
    )
    height, width = tf.shape(heatmaps)[0], tf.shape(heatmaps)[1]
    tag_dim = tags.shape[3]
    # (K, h*w, D): joint-major so that each joint's candidates are one batched gather.
    tags_by_joint = tf.transpose(tf.reshape(tags, [height * width, num_joints, tag_dim]), [1, 0, 2])
    cand_tags = tf.gather(tags_by_joint, cand_pixels, batch_dims=1)  # (K, T, D)

    members, tag_sums, sizes, count = group_candidates(
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
    xs, ys = corner_coordinates(heatmaps, pixels // width, pixels % width, joint_ids, adjust)
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
        poses = refine_poses(heatmaps, tags, poses, missing, person_means, adjust, refine_score)

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
    unknown = set(options) - set(inspect.signature(group_poses_padded_tf).parameters) - {
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
    """Casts the maps to float32 and checks their shapes (statically, then at run time).

    Args:
        heatmaps: (h, w, K) detection heatmaps; K must be static.
        tags: (h, w, K, D) tags, or (h, w, K) for D = 1; D must be static.
        check_finite: also assert at run time that both maps hold no NaN or inf.

    Returns:
        heatmaps (h, w, K) and tags (h, w, K, D), float32, behind the run-time checks.
    """
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
