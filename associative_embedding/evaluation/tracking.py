"""Multi-object tracking metrics (CLEAR MOT and identity metrics) through `motmetrics`.

Two protocols, both built on `motmetrics.MOTAccumulator` fed with distance matrices computed
here (motmetrics' own `distances.iou_matrix` calls `np.asfarray`, removed in NumPy 2):

**Person boxes** (`box_tracking_metrics`): distance = 1 - IoU of the (x1, y1, x2, y2) boxes; a
pair can match only when the distance is <= `max_iou_distance` (0.5, i.e. IoU >= 0.5, as
`motmetrics.distances.iou_matrix(max_iou=0.5)`).

**PoseTrack per-joint** (`posetrack_joint_metrics`), the rule of PoseTrack's poseval
(``evaluateTracking.py`` / ``eval_helpers.assignGTmulti``): each of the K joint types has its
own accumulator. In a frame, the objects of joint type k are the ground-truth people with joint
k annotated (v > 0) and the hypotheses are the predicted people with joint k present (score >
`min_joint_score`); a predicted joint p and a ground-truth joint g of the same type can match
iff ||p - g|| / s_g <= 0.5, where s_g = 0.6 * the diagonal of g's head box (poseval's
getHeadSize, the MPII PCKh normaliser), and the distance given to motmetrics is that
normalised distance. People take part with their track ids, so an identity change of a joint's
match counts as an ID switch of that joint. Counts are summed per joint type over all videos;
per joint, MOTA = 1 - (misses + switches + false positives) / objects, precision = matched /
predicted joints, recall = matched / annotated joints; the totals are the **means over joint
types** (poseval's "total" column), with joint types that have no annotated joint left out
(poseval would divide by zero). ID switches are also reported summed over joint types.
Predictions inside ignore regions are not removed here (poseval drops them beforehand);
filter them before calling. Person identity metrics (IDF1) are reported for boxes only, where
the protocol defines them.

Scale: fractions in [0, 1] (poseval prints x100), like the other metrics of this package.
MOTA can be negative. Every video starts fresh accumulators (track ids are per video).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import motmetrics
import numpy as np

from associative_embedding.core.overlap import box_iou_matrix
from associative_embedding.evaluation.mpii_multi_person import head_sizes

MAX_IOU_DISTANCE = 0.5
POSETRACK_DISTANCE_THRESHOLD = 0.5

# Counts summed over videos; the rates are derived from the sums.
_COUNT_METRICS = (
    "num_frames", "num_objects", "num_predictions", "num_matches", "num_switches",
    "num_false_positives", "num_misses", "idtp", "idfp", "idfn",
)


@dataclasses.dataclass(frozen=True)
class FrameTracks:
    """The tracked people of one frame (ground truth or prediction).

    Attributes:
        ids: (N,) int track ids, unique within the frame.
        boxes: (N, 4) person boxes (x1, y1, x2, y2), for the box protocol.
        poses: (N, K, 3) (x, y, v-or-score) per joint, for the per-joint protocol.
        head_boxes: (N, 4) head boxes (x1, y1, x2, y2); needed on ground truth only.
    """

    ids: np.ndarray
    boxes: np.ndarray | None = None
    poses: np.ndarray | None = None
    head_boxes: np.ndarray | None = None


# One video: per frame, (ground truth, prediction).
Video = Sequence[tuple[FrameTracks, FrameTracks]]


def _ids(frame: FrameTracks) -> np.ndarray:
    ids = np.asarray(frame.ids, np.int64).reshape(-1)
    if len(np.unique(ids)) != len(ids):
        raise ValueError(f"track ids must be unique within a frame, got {ids.tolist()}.")
    return ids


def _counts(accumulator: motmetrics.MOTAccumulator) -> dict[str, float]:
    host = motmetrics.metrics.create()
    values = host.compute(
        accumulator, metrics=list(_COUNT_METRICS), return_dataframe=False, name="video"
    )
    return {name: float(values[name]) for name in _COUNT_METRICS}


def _rates(counts: dict[str, float]) -> dict[str, float]:
    """MOTA, IDF1, precision and recall from summed counts (NaN where undefined)."""
    objects = counts["num_objects"]
    detections = counts["num_matches"] + counts["num_switches"]
    errors = counts["num_misses"] + counts["num_switches"] + counts["num_false_positives"]
    id_denominator = 2 * counts["idtp"] + counts["idfp"] + counts["idfn"]
    nan = float("nan")
    return {
        "mota": 1.0 - errors / objects if objects else nan,
        "idf1": 2 * counts["idtp"] / id_denominator if id_denominator else nan,
        "precision": detections / counts["num_predictions"] if counts["num_predictions"] else nan,
        "recall": detections / objects if objects else nan,
    }


def box_tracking_metrics(
    videos: Sequence[Video], max_iou_distance: float = MAX_IOU_DISTANCE
) -> dict[str, float]:
    """CLEAR MOT and identity metrics on person boxes (see the module docstring).

    Args:
        videos: per video, per frame, (ground truth, prediction) `FrameTracks` with `boxes`.
        max_iou_distance: a pair can match only when 1 - IoU <= this.

    Returns:
        'mota', 'idf1', 'precision', 'recall' (fractions; NaN when undefined),
        'num_switches', 'num_frames', 'num_objects', 'num_predictions', 'num_matches',
        'num_false_positives', 'num_misses', 'idtp', 'idfp', 'idfn' (counts over all videos).
    """
    totals = dict.fromkeys(_COUNT_METRICS, 0.0)
    for video in videos:
        accumulator = motmetrics.MOTAccumulator(auto_id=True)
        for ground_truth, prediction in video:
            gt_ids, pred_ids = _ids(ground_truth), _ids(prediction)
            gt_boxes = np.asarray(ground_truth.boxes, np.float64).reshape(len(gt_ids), 4)
            pred_boxes = np.asarray(prediction.boxes, np.float64).reshape(len(pred_ids), 4)
            distance = 1.0 - box_iou_matrix(gt_boxes, pred_boxes)  # (G, P)
            distance[distance > max_iou_distance] = np.nan
            accumulator.update(gt_ids, pred_ids, distance)
        for name, value in _counts(accumulator).items():
            totals[name] += value
    return {**_rates(totals), **totals}


def posetrack_joint_distances(
    ground_truth: FrameTracks,
    prediction: FrameTracks,
    min_joint_score: float = 0.0,
    threshold: float = POSETRACK_DISTANCE_THRESHOLD,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One frame of the per-joint protocol: the accumulator inputs of each joint type.

    Args:
        ground_truth: `poses` (G, K, 3) with v > 0 for annotated joints, `head_boxes` (G, 4).
        prediction: `poses` (P, K, 3) with (x, y, score).
        min_joint_score: a predicted joint is present when its score is > this.
        threshold: a pair matches iff the head-normalised distance is <= this.

    Returns:
        Per joint type k: (gt track ids (G_k,), predicted track ids (P_k,), (G_k, P_k)
        head-normalised distances, NaN where the pair cannot match).
    """
    gt_ids, pred_ids = _ids(ground_truth), _ids(prediction)
    gt_poses = np.asarray(ground_truth.poses, np.float64)
    pred_poses = np.asarray(prediction.poses, np.float64)
    # An empty side may come as shape (0,) rather than (0, K, 3): take K from the other one.
    num_joints = gt_poses.shape[-2] if gt_poses.ndim == 3 else pred_poses.shape[-2]
    gt_poses = gt_poses.reshape(len(gt_ids), num_joints, 3)
    pred_poses = pred_poses.reshape(len(pred_ids), num_joints, 3)
    if ground_truth.head_boxes is None and len(gt_ids):
        raise ValueError("the per-joint protocol needs ground-truth head boxes.")
    sizes = head_sizes(
        np.zeros((0, 4)) if ground_truth.head_boxes is None else ground_truth.head_boxes
    )  # (G,)
    gt_present = gt_poses[..., 2] > 0  # (G, K)
    pred_present = (pred_poses[..., 2] > min_joint_score) & np.all(
        np.isfinite(pred_poses[..., :2]), axis=-1
    )  # (P, K)
    offsets = gt_poses[:, None, :, :2] - pred_poses[None, :, :, :2]  # (G, P, K, 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = np.hypot(offsets[..., 0], offsets[..., 1]) / sizes[:, None, None]
    per_joint = []
    for joint in range(num_joints):
        gt_rows = np.flatnonzero(gt_present[:, joint])
        pred_rows = np.flatnonzero(pred_present[:, joint])
        distance = normalised[np.ix_(gt_rows, pred_rows, [joint])][..., 0]
        # `not <=` (rather than `>`) also blocks NaN distances from a zero-size head box.
        distance = np.where(distance <= threshold, distance, np.nan)
        per_joint.append((gt_ids[gt_rows], pred_ids[pred_rows], distance))
    return per_joint


def posetrack_joint_metrics(
    videos: Sequence[Video],
    min_joint_score: float = 0.0,
    threshold: float = POSETRACK_DISTANCE_THRESHOLD,
) -> dict:
    """PoseTrack's per-joint MOTA, precision, recall and ID switches (see the module docstring).

    Args:
        videos: per video, per frame, (ground truth, prediction) `FrameTracks` with `poses`
            (and ground-truth `head_boxes`); K is the same everywhere.
        min_joint_score: a predicted joint is present when its score is > this.
        threshold: head-normalised match distance (PoseTrack: 0.5).

    Returns:
        'mota', 'precision', 'recall': means over joint types with annotated joints;
        'num_switches', 'num_objects', 'num_misses', 'num_false_positives', 'num_frames': sums
        over joint types (num_frames: frames seen); 'per_joint': list over joint types of dicts
        with 'mota', 'precision', 'recall' and the counts.
    """
    accumulators: list[motmetrics.MOTAccumulator] = []
    per_joint_counts: list[dict[str, float]] = []
    num_frames = 0
    for video in videos:
        accumulators = []
        for ground_truth, prediction in video:
            num_frames += 1
            frame = posetrack_joint_distances(ground_truth, prediction, min_joint_score, threshold)
            if not accumulators:
                accumulators = [motmetrics.MOTAccumulator(auto_id=True) for _ in frame]
                while len(per_joint_counts) < len(frame):
                    per_joint_counts.append(dict.fromkeys(_COUNT_METRICS, 0.0))
            for accumulator, (gt_ids, pred_ids, distance) in zip(accumulators, frame, strict=True):
                accumulator.update(gt_ids, pred_ids, distance)
        for counts, accumulator in zip(per_joint_counts, accumulators, strict=False):
            for name, value in _counts(accumulator).items():
                counts[name] += value
    per_joint = [{**_rates(counts), **counts} for counts in per_joint_counts]
    scored = [joint for joint in per_joint if joint["num_objects"] > 0]

    def mean(name: str) -> float:
        values = [joint[name] for joint in scored if not np.isnan(joint[name])]
        return float(np.mean(values)) if values else float("nan")

    def total(name: str) -> float:
        return float(sum(joint[name] for joint in per_joint))

    return {
        "mota": mean("mota"),
        "precision": mean("precision"),
        "recall": mean("recall"),
        "num_switches": total("num_switches"),
        "num_objects": total("num_objects"),
        "num_misses": total("num_misses"),
        "num_false_positives": total("num_false_positives"),
        "num_frames": float(num_frames),
        "per_joint": per_joint,
    }
