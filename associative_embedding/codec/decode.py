"""Grouping decoder: heatmaps + associative-embedding tags -> multi-person poses.

This is the decode half of the codec, in NumPy/SciPy/OpenCV, following the official
pose-ae-train parser and refine step:

1. **Candidates.** Non-maximum suppression by an ``nms_kernel`` x ``nms_kernel`` max-pool
   (a pixel survives if it equals the pooled value, so plateaus keep every equal pixel), the
   ``top_k`` strongest survivors per joint type, and only those with score >
   ``detection_threshold``. Ties are broken by the flat pixel index (row-major), so the
   candidate order, and everything after it, is deterministic.
2. **Grouping.** Joint types are visited in ``grouping_order``. The first type with
   candidates seeds one person per candidate. For every later type, the distance d from each
   candidate's tag to each person's mean tag (mean over the joints grouped so far) gives the
   cost ``round(d) * 100 - score``; ``scipy.optimize.linear_sum_assignment`` finds the
   minimum-cost assignment, a pair is accepted only if ``d < tag_threshold``, and every other
   candidate starts a new person (at most ``max_people`` people; the strongest candidates get
   the free slots).
3. **Adjust.** Each joint moves a quarter pixel towards its larger neighbour on each axis
   (strictly larger; neighbours are clamped to the map, rows to H - 1 and columns to W - 1),
   or by the log-heatmap Taylor offset with ``adjust='taylor'``, then +0.5, so coordinates
   are heatmap *corner* coordinates (pixel j spans [j, j + 1)), as in the official code.
   ``x_in = stride * x - 0.5`` takes them to network-input pixel centres (see
   ``associative_embedding.codec.fusion.poses_to_image``).
4. **Person score** = mean over all K joints of the grouped joint scores (missing = 0),
   computed before refine.
5. **Refine** (fill missing joints). For each person, m = mean tag of its grouped joints; for
   each *missing* joint k, the pixel maximising ``heatmap_k - round(||tag_k - m||_2)``
   (first one in row-major order on ties) becomes the joint if its heatmap value is > 0, with
   the same adjust, and score 1 (official) or the heatmap value (``refine_score='heatmap'``,
   as HigherHRNet).

Tag distance. Grouping uses the official **RMS over tag dimensions**,
``d = sqrt(mean_d (t_d - m_d)^2)`` (``tag_distance='rms'``); ``tag_distance='l2'`` gives the
HigherHRNet/mmpose ``sqrt(sum_d (t_d - m_d)^2)``. They are equal for 1-D tags; for the 2-D tags
of flip testing RMS keeps ``tag_threshold`` in the same units as for 1-D tags. Refine always
uses the L2 norm, as the official refine does.

Deviations from the official code (only the first one changes results on sensible inputs; it is
an option, ``block_distant_pairs=False`` restores the official cost):

* ``block_distant_pairs=True``: every candidate-person pair with ``d >= tag_threshold`` gets
  one constant prohibitive cost instead of ``round(d) * 100 - score``. With the official cost
  many pairs tie exactly (e.g. d = 0.7 for the right person and d = 1.3 for a wrong one both
  cost 100 - score), the solver's tie-breaking then pairs candidates with people they cannot
  be accepted by, and each rejected pair becomes a spurious person; with missing joints this
  inflates the person count in many images. The solver now maximises the number of
  acceptable pairs first and ranks those by the official cost, so the result differs from the
  official one only where the official optimum (often one of several tied optima) spends an
  assignment on a pair that is then rejected.
* Refine computes the tag-distance map only for the missing joints (the official recomputes
  all K and discards the present ones: same result, 77-88 % of its time).
* The official refine clamps the row neighbour with the joint count (and the column neighbour
  with H - 1) when choosing the quarter-pixel direction; here rows clamp to H - 1 and columns
  to W - 1 everywhere.
* People are kept in a list, not a dict keyed by the first tag value (the official code
  silently merges two people whose first tag values are exactly equal), and when
  ``max_people`` people exist, later joint types are still matched to them (the official
  parser skips the remaining joint types).
* Output people are sorted by score, descending (stable), so the order is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from associative_embedding.codec.map_checks import validate_maps
from associative_embedding.core import keypoint_info

TAG_DISTANCES = ("rms", "l2")
REFINE_SCORES = ("official", "heatmap")
ADJUST_MODES = (True, False, "official", "symmetric", "taylor")

# The installed OpenCV (5.0) accepts at most 128 channels per image (measured), so wider
# maps are processed in chunks.
_MAX_CV_CHANNELS = 128


def default_grouping_order(num_joints: int) -> tuple[int, ...]:
    """Grouping order for K joints: COCO's official order for 17, the registered dataset with K
    joints otherwise, else 0..K-1."""
    try:
        return keypoint_info.keypoint_info_for_num_joints(num_joints).grouping_order
    except ValueError:
        return tuple(range(num_joints))


def group_poses(
    heatmaps: np.ndarray,
    tags: np.ndarray,
    *,
    detection_threshold: float = 0.1,
    tag_threshold: float = 1.0,
    max_people: int = 30,
    nms_kernel: int = 3,
    top_k: int = 30,
    adjust: bool | str = True,
    refine: bool = True,
    refine_score: str = "official",
    grouping_order: Sequence[int] | None = None,
    tag_distance: str = "rms",
    block_distant_pairs: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Decodes one image's heatmaps and tags into people (see the module docstring).

    Args:
        heatmaps: (h, w, K) detection heatmaps (any float dtype; used as float32).
        tags: (h, w, K, D) tags, or (h, w, K) for D = 1.
        detection_threshold: candidates need a score strictly above this.
        tag_threshold: a candidate joins a person only if their tag distance is below this.
        max_people: at most this many people are returned.
        nms_kernel: odd side of the square max-pool window of the non-maximum suppression.
        top_k: candidates kept per joint type (the official code uses 30).
        adjust: quarter-pixel refinement towards the larger neighbour. True or "official":
            the official rule, which moves -0.25 px when the two neighbours are equal;
            "symmetric": no move on an axis whose neighbours are equal (a symmetric peak stays
            centred: +6 AP on the stride-4 ground-truth ceiling of coco_mini, 0.80 -> 0.86);
            "taylor": sub-pixel offset from a second-order Taylor expansion of the log
            heatmap on each axis (DARK, Zhang et al. CVPR 2020, separable form), exact for a
            Gaussian peak; pair it with sub-pixel training targets
            (``KeypointEncoder(subpixel=True)``); False: no adjust.
        refine: fill each person's missing joints from the full maps.
        refine_score: score of a joint filled by refine: "official" (1.0) or "heatmap" (the
            heatmap value at the chosen pixel).
        grouping_order: the K joint indices in grouping order; None picks
            ``default_grouping_order(K)`` (COCO's official order for K = 17).
        tag_distance: "rms" (official, RMS over tag dims) or "l2" for grouping.
        block_distant_pairs: give pairs with distance >= tag_threshold one prohibitive cost
            (our fix for tie-driven spurious people); False = the official cost everywhere.

    Returns:
        poses: (P, K, 3) float32, (x, y, score) per joint in heatmap corner coordinates
            (integer peak + adjust + 0.5); missing joints are (0, 0, 0).
        scores: (P,) float32 person scores (mean joint score before refine), descending.

    Raises:
        ValueError: on inconsistent shapes, non-finite values or invalid options.
    """
    heatmaps, tags = validate_maps(heatmaps, tags, name="heatmaps", axes="h, w, K")
    height, width, num_joints = heatmaps.shape
    order = validate_decoder_options(
        num_joints, grouping_order, nms_kernel, top_k, max_people, tag_distance, refine_score,
        adjust,
    )

    pixels, joint_ids, cand_scores = _find_candidates(
        heatmaps, nms_kernel, detection_threshold, top_k
    )
    cand_tags = tags.reshape(height * width, num_joints, -1)[pixels, joint_ids]  # (N, D)

    members, tag_sums, sizes = _group(
        joint_ids, cand_scores, cand_tags, order, num_joints,
        tag_threshold=tag_threshold, max_people=max_people, tag_distance=tag_distance,
        block_distant_pairs=block_distant_pairs,
    )
    num_people = members.shape[0]
    poses = np.zeros((num_people, num_joints, 3), np.float32)
    if num_people == 0:
        return poses, np.zeros((0,), np.float32)

    present = members >= 0
    grouped = members[present]
    ys, xs = np.divmod(pixels[grouped], width)
    poses[present, 0], poses[present, 1] = to_corner_coordinates(
        heatmaps, ys, xs, joint_ids[grouped], adjust
    )
    poses[present, 2] = cand_scores[grouped]
    person_scores = (
        poses[:, :, 2].sum(axis=1, dtype=np.float64) / num_joints
    ).astype(np.float32)

    if refine:
        _refine(heatmaps, tags, poses, present, tag_sums / sizes[:, None], adjust, refine_score)

    ranking = np.argsort(-person_scores, kind="stable")
    return poses[ranking], person_scores[ranking]


# ----------------------------------------------------------------------------- validation


def validate_decoder_options(
    num_joints: int,
    grouping_order: Sequence[int] | None,
    nms_kernel: int,
    top_k: int,
    max_people: int,
    tag_distance: str,
    refine_score: str,
    adjust: bool | str,
) -> np.ndarray:
    """Checks ``group_poses``' options (shared with the in-graph decoder).

    Returns:
        (K,) int64 grouping order (``default_grouping_order(K)`` when None).

    Raises:
        ValueError: naming the bad option.
    """
    if grouping_order is None:
        grouping_order = default_grouping_order(num_joints)
    order = np.asarray(grouping_order, dtype=np.int64)
    if order.ndim != 1 or sorted(order.tolist()) != list(range(num_joints)):
        raise ValueError(
            f"grouping_order must be a permutation of 0..{num_joints - 1}, got {grouping_order}."
        )
    if nms_kernel < 1 or nms_kernel % 2 == 0:
        raise ValueError(f"nms_kernel must be a positive odd integer, got {nms_kernel}.")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}.")
    if max_people < 0:
        raise ValueError(f"max_people must be >= 0, got {max_people}.")
    if tag_distance not in TAG_DISTANCES:
        raise ValueError(f"tag_distance must be one of {TAG_DISTANCES}, got {tag_distance!r}.")
    if refine_score not in REFINE_SCORES:
        raise ValueError(f"refine_score must be one of {REFINE_SCORES}, got {refine_score!r}.")
    if adjust not in ADJUST_MODES:
        raise ValueError(f"adjust must be one of {ADJUST_MODES}, got {adjust!r}.")
    return order


# ----------------------------------------------------------------------------- candidates


_NEGATIVE_INFINITY = (-np.inf,) * 4


def _max_pool(heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """(h, w, K) max over each kernel x kernel window, per channel (-inf beyond the border)."""
    structure = np.ones((kernel, kernel), np.uint8)
    # cv2.dilate is this max-pool, ~30x faster than scipy.ndimage.maximum_filter on
    # (128, 128, 17); it takes <= 128 channels per call. The border value is given for all four
    # scalar slots: a lone -inf leaves the others 0, which OpenCV rejects for large maps
    # (copyMakeBorder asserts that they are equal).
    if heatmaps.shape[2] <= _MAX_CV_CHANNELS:
        dilated = cv2.dilate(
            heatmaps, structure, borderType=cv2.BORDER_CONSTANT, borderValue=_NEGATIVE_INFINITY
        )
        return dilated.reshape(heatmaps.shape)
    pooled = np.empty_like(heatmaps)
    for start in range(0, heatmaps.shape[2], _MAX_CV_CHANNELS):
        chunk = np.ascontiguousarray(heatmaps[:, :, start : start + _MAX_CV_CHANNELS])
        dilated = cv2.dilate(
            chunk, structure, borderType=cv2.BORDER_CONSTANT, borderValue=_NEGATIVE_INFINITY
        )
        pooled[:, :, start : start + _MAX_CV_CHANNELS] = dilated.reshape(chunk.shape)
    return pooled


def _find_candidates(
    heatmaps: np.ndarray, nms_kernel: int, detection_threshold: float, top_k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NMS + top-k + threshold for all joint types at once.

    Returns:
        pixels: (N,) row-major pixel index (y * w + x) of each candidate.
        joint_ids: (N,) its joint type.
        scores: (N,) float32 its heatmap value.
        Sorted by joint type, then score descending, then pixel index. Taking the top-k
        survivors and then dropping those <= the threshold (official) keeps the same set as
        thresholding first and then taking the top-k, which is what is done here.
    """
    num_joints = heatmaps.shape[2]
    flat_heatmaps = heatmaps.reshape(-1)
    # Few pixels pass the threshold, so test the local-maximum condition only on those.
    above = np.flatnonzero(flat_heatmaps > detection_threshold)
    if nms_kernel > 1 and len(above):
        pooled = _max_pool(heatmaps, nms_kernel).reshape(-1)
        above = above[flat_heatmaps[above] == pooled[above]]
    pixels, joint_ids = np.divmod(above, num_joints)
    scores = flat_heatmaps[above]
    order = np.lexsort((pixels, -scores, joint_ids))
    pixels, joint_ids, scores = pixels[order], joint_ids[order], scores[order]
    # Rank of each candidate within its joint type.
    first_of_joint = np.searchsorted(joint_ids, joint_ids, side="left")
    within_top_k = np.arange(len(joint_ids)) - first_of_joint < top_k
    return pixels[within_top_k], joint_ids[within_top_k], scores[within_top_k]


# ----------------------------------------------------------------------------- grouping


def _group(
    joint_ids: np.ndarray,
    cand_scores: np.ndarray,
    cand_tags: np.ndarray,
    order: np.ndarray,
    num_joints: int,
    *,
    tag_threshold: float,
    max_people: int,
    tag_distance: str,
    block_distant_pairs: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy joint-type-by-joint-type grouping (see the module docstring).

    Returns:
        members: (P, K) int64, the candidate index of each person's joint, -1 if missing.
        tag_sums: (P, D) float64, sum of the person's joint tags.
        sizes: (P,) int64, number of joints of the person.
    """
    tag_dim = cand_tags.shape[1]
    members = np.full((max_people, num_joints), -1, np.int64)
    tag_sums = np.zeros((max_people, tag_dim), np.float64)
    sizes = np.zeros((max_people,), np.int64)
    count = 0
    cand_tags = cand_tags.astype(np.float64)
    cand_scores = cand_scores.astype(np.float64)
    # One cost for every pair that cannot be accepted, larger than any difference between
    # sums of acceptable costs (|cost| <= 100 * round(threshold) + |score| per pair), so the
    # solver first maximises the number of acceptable pairs and never trades one for a tie.
    pair_bound = 100.0 * (abs(float(np.round(tag_threshold))) + 1.0)
    pair_bound += float(np.abs(cand_scores).max(initial=0.0)) + 1.0
    prohibitive = 4.0 * pair_bound * (max_people + 1)
    joint_start = np.searchsorted(joint_ids, np.arange(num_joints + 1), side="left")

    for joint in order:
        lo, hi = joint_start[joint], joint_start[joint + 1]
        if lo == hi or count == max_people == 0:
            continue
        joint_tags = cand_tags[lo:hi]
        if count == 0:
            # The first joint type with candidates seeds one person per candidate.
            num_new = min(hi - lo, max_people)
            members[:num_new, joint] = np.arange(lo, lo + num_new)
            tag_sums[:num_new] = joint_tags[:num_new]
            sizes[:num_new] = 1
            count = num_new
            continue
        means = tag_sums[:count] / sizes[:count, None]
        if tag_dim == 1:
            distances = np.abs(joint_tags[:, :1] - means[:, 0])
        else:
            squared = np.square(joint_tags[:, None, :] - means[None, :, :])
            reduced = squared.mean(axis=2) if tag_distance == "rms" else squared.sum(axis=2)
            distances = np.sqrt(reduced)
        acceptable = distances < tag_threshold
        # np.rint rounds half to even, like the official np.round.
        cost = np.rint(distances) * 100.0 - cand_scores[lo:hi, None]
        if block_distant_pairs:
            cost[~acceptable] = prohibitive
        rows, cols = linear_sum_assignment(cost)
        accepted = acceptable[rows, cols]
        rows, cols = rows[accepted], cols[accepted]
        members[cols, joint] = lo + rows
        tag_sums[cols] += joint_tags[rows]  # cols are distinct
        sizes[cols] += 1
        if len(rows) < hi - lo and count < max_people:
            # Everyone not accepted starts a new person, strongest first (candidate order).
            unmatched = np.ones(hi - lo, bool)
            unmatched[rows] = False
            new = np.flatnonzero(unmatched)[: max_people - count]
            person_ids = np.arange(count, count + len(new))
            members[person_ids, joint] = lo + new
            tag_sums[person_ids] = joint_tags[new]
            sizes[person_ids] = 1
            count += len(new)
    return members[:count], tag_sums[:count], sizes[:count]


# ----------------------------------------------------------------------------- adjust, refine


def to_corner_coordinates(
    heatmaps: np.ndarray, ys: np.ndarray, xs: np.ndarray, joints: np.ndarray, adjust: bool | str
) -> tuple[np.ndarray, np.ndarray]:
    """Integer peaks -> heatmap corner coordinates (+0.5), with the sub-pixel adjust.

    Args:
        heatmaps: (H, W, K) maps; ys, xs, joints: (N,) integer peak rows, columns, channels.
        adjust: True / 'official', 'symmetric', 'taylor' (see `_taylor_offsets`) or False.

    Returns:
        x, y: (N,) float32 corner coordinates. Shared by `group_poses` and the single-person
        refinement (`tasks.refinement.refine.locate_peaks`).

    A coordinate moves +0.25 if the next pixel on that axis is strictly larger than the
    previous one and -0.25 otherwise (ties included), as in the official parser
    (adjust=True/"official"); with adjust="symmetric" it does not move on ties. Neighbours are
    clamped to the map (rows to H - 1, columns to W - 1).
    """
    x = xs.astype(np.float32) + np.float32(0.5)
    y = ys.astype(np.float32) + np.float32(0.5)
    if adjust == "taylor" and len(xs):
        x += _taylor_offsets(heatmaps, ys, xs, joints, axis=1)
        y += _taylor_offsets(heatmaps, ys, xs, joints, axis=0)
    elif adjust and len(xs):
        height, width = heatmaps.shape[:2]
        right = heatmaps[ys, np.minimum(xs + 1, width - 1), joints]
        left = heatmaps[ys, np.maximum(xs - 1, 0), joints]
        below = heatmaps[np.minimum(ys + 1, height - 1), xs, joints]
        above = heatmaps[np.maximum(ys - 1, 0), xs, joints]
        if adjust == "symmetric":
            x += np.float32(0.25) * np.sign(right - left).astype(np.float32)
            y += np.float32(0.25) * np.sign(below - above).astype(np.float32)
        else:
            x += np.where(right > left, np.float32(0.25), np.float32(-0.25))
            y += np.where(below > above, np.float32(0.25), np.float32(-0.25))
    return x, y


def _taylor_offsets(
    heatmaps: np.ndarray, ys: np.ndarray, xs: np.ndarray, joints: np.ndarray, axis: int
) -> np.ndarray:
    """Sub-pixel offsets along one axis (0 = rows, 1 = columns) of integer peaks.

    With L the log heatmap, the offset is -L'/L'' from central differences at the peak:
    exactly (mu - peak) for a sampled Gaussian exp(-(x - mu)^2 / 2 sigma^2). It is 0 at the
    map border, where L'' >= 0 (not a maximum along the axis) or a value is <= 0 (no log), and
    clipped to [-0.5, 0.5] (a local maximum of a sampled Gaussian lies within half a pixel of
    its centre). Returns (N,) float32.
    """
    size = heatmaps.shape[axis]
    positions = ys if axis == 0 else xs
    before = np.maximum(positions - 1, 0)
    after = np.minimum(positions + 1, size - 1)
    if axis == 0:
        previous, following = heatmaps[before, xs, joints], heatmaps[after, xs, joints]
    else:
        previous, following = heatmaps[ys, before, joints], heatmaps[ys, after, joints]
    centre = heatmaps[ys, xs, joints]
    values = np.stack([previous, centre, following]).astype(np.float64)
    usable = (positions > 0) & (positions < size - 1) & (values > 0).all(axis=0)
    logs = np.log(np.where(values > 0, values, 1.0))
    first = 0.5 * (logs[2] - logs[0])
    second = logs[2] - 2.0 * logs[1] + logs[0]
    usable &= second < 0
    offsets = np.where(usable, -first / np.where(usable, second, -1.0), 0.0)
    return np.clip(offsets, -0.5, 0.5).astype(np.float32)


def _refine(
    heatmaps: np.ndarray,
    tags: np.ndarray,
    poses: np.ndarray,
    present: np.ndarray,
    person_means: np.ndarray,
    adjust: bool | str,
    refine_score: str,
) -> None:
    """Fills missing joints of every person in place (see the module docstring).

    One pass per joint type over the M people missing it: (M, h*w) values
    ``heatmap - rint(||tag - mean||_2)`` and a row-wise argmax (first maximum in row-major
    order, like the official ``np.argmax`` on the map).
    """
    height, width, num_joints, tag_dim = tags.shape
    means = person_means.astype(np.float32)
    missing = ~present
    refined_joints = np.flatnonzero(missing.any(axis=0))
    if len(refined_joints) == 0:
        return
    # Joint-major copies (K, h*w) make the per-joint passes below contiguous; cv2.transpose
    # is ~2x faster than a NumPy transpose copy.
    heat_by_joint = _joint_major(heatmaps.reshape(height * width, num_joints))
    tags_by_joint = [
        _joint_major(tags[:, :, :, dim].reshape(height * width, num_joints))
        for dim in range(tag_dim)
    ]
    filled_people, filled_joints, filled_pixels, filled_heat = [], [], [], []
    for joint in refined_joints:
        person_ids = np.flatnonzero(missing[:, joint])
        heat = heat_by_joint[joint]
        if tag_dim == 1:
            value = np.subtract(tags_by_joint[0][joint][None, :], means[person_ids, 0][:, None])
            np.abs(value, out=value)
        else:
            value = np.zeros((len(person_ids), height * width), np.float32)
            for dim in range(tag_dim):
                difference = np.subtract(
                    tags_by_joint[dim][joint][None, :], means[person_ids, dim][:, None]
                )
                value += np.square(difference, out=difference)
            np.sqrt(value, out=value)
        np.rint(value, out=value)  # half to even, like the official np.round
        np.subtract(heat[None, :], value, out=value)
        best = np.argmax(value, axis=1)
        best_heat = heat[best]
        found = best_heat > 0
        filled_people.append(person_ids[found])
        filled_joints.append(np.full(int(found.sum()), joint))
        filled_pixels.append(best[found])
        filled_heat.append(best_heat[found])
    person_ids = np.concatenate(filled_people)
    joints = np.concatenate(filled_joints)
    ys, xs = np.divmod(np.concatenate(filled_pixels), width)
    best_heat = np.concatenate(filled_heat)
    x, y = to_corner_coordinates(heatmaps, ys, xs, joints, adjust)
    poses[person_ids, joints, 0] = x
    poses[person_ids, joints, 1] = y
    poses[person_ids, joints, 2] = 1.0 if refine_score == "official" else best_heat


def _joint_major(maps: np.ndarray) -> np.ndarray:
    """(h*w, K) float32 -> contiguous (K, h*w)."""
    maps = np.ascontiguousarray(maps, dtype=np.float32)
    if maps.size == 0:
        return np.ascontiguousarray(maps.T)
    return cv2.transpose(maps)
