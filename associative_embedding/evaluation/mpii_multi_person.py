"""MPII Multi-Person mAP (Pishchulin et al., DeepCut, CVPR 2016), as the official toolkit has it.

The protocol, read from the MPII evaluation toolkit (``evaluateAP.m`` / ``assignGTmulti.m``) and
its Python port in poseval (``evaluateAP.py`` / ``eval_helpers.assignGTmulti``):

1. Joints scored: the 14 "LSP" joints. MPII's pelvis (6) and thorax (7) are not evaluated and
   take no part in the matching; the official table reports Head = mean(upper neck, head top),
   Shoulder, Elbow, Wrist, Hip, Knee, Ankle (each the mean of left and right) and Total = the
   mean over the 14 joints.
2. Per image, every predicted person p and ground-truth person g:
   head size s_g = 0.6 * ||(x2 - x1, y2 - y1)|| of g's head box (SC_BIAS = 0.6);
   joint k matches when both exist and ||pred_pk - gt_gk|| / s_g <= 0.5 (PCKh@0.5);
   pck[p, g] = (number of matching joints) / (number of annotated joints of g).
3. Person assignment (greedy, not Hungarian): each prediction keeps only its best ground truth
   (argmax over g, first on ties; other entries zeroed); then each ground truth takes the
   prediction with the highest remaining pck (argmax over p, first on ties), or none when that
   value is 0. A prediction is thus matched to at most one ground truth and vice versa; a
   prediction that lost its best ground truth to another prediction stays unmatched, even if it
   overlaps a different ground-truth person.
4. Every present joint of every prediction becomes one scored detection of its joint type:
   a true positive iff its person is matched to g and the joint matches g's joint (step 2);
   otherwise a false positive (all joints of an unmatched person are false positives).
   The number of positives of joint type k is the number of annotated joints k over all images.
5. Per joint type, detections of all images are ranked by score (descending; equal scores keep
   the toolkit's order: a stable ascending sort read from the end, so among ties the later
   detection comes first), precision/recall are accumulated and AP is the VOC area under the
   monotone precision envelope (``VOCap``). A joint type with ground truth but no detection has
   AP 0; one without ground truth is NaN and left out of the mean.

Scale: this module reports AP as a **fraction in [0, 1]** (the toolkit prints ×100; the paper's
77.5 mAP is 0.775 here), to match the COCO metrics of this package.

Conventions: a predicted joint is present when its score is > ``min_joint_score`` (default 0)
and its coordinates are finite (the decoder writes absent joints with score 0); a ground-truth
joint is annotated when v > 0 (``PoseRecord.keypoints``). Coordinates are image pixels in the
package convention; head boxes come from ``PoseRecord.head_boxes`` (x1, y1, x2, y2).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from associative_embedding.core.keypoint_info import MPII, KeypointInfo
from associative_embedding.core.record import PoseRecord

PCKH_THRESHOLD = 0.5
HEAD_SIZE_FACTOR = 0.6  # SC_BIAS of the MPII toolkit.
METRICS_FILE_NAME = "metrics.json"

# MPII joint ids scored by the toolkit (its "LSP" order: ankles, knees, hips, wrists, elbows,
# shoulders, upper neck, head top); pelvis (6) and thorax (7) are not evaluated.
MPII_EVALUATED_JOINTS = (0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 8, 9)

# The toolkit's table columns (genTableAP): MPII joint ids averaged per column.
MPII_TABLE_GROUPS = {
    "head": (8, 9),
    "shoulder": (12, 13),
    "elbow": (11, 14),
    "wrist": (10, 15),
    "hip": (2, 3),
    "knee": (1, 4),
    "ankle": (0, 5),
}

_logger = logging.getLogger(__name__)


def head_sizes(head_boxes: np.ndarray, factor: float = HEAD_SIZE_FACTOR) -> np.ndarray:
    """PCKh normalisers: factor * length of the head box diagonal.

    Args:
        head_boxes: (G, 4) boxes (x1, y1, x2, y2).
        factor: SC_BIAS, 0.6 in the MPII toolkit.

    Returns:
        (G,) float64 head sizes.
    """
    head_boxes = np.asarray(head_boxes, dtype=np.float64).reshape(-1, 4)
    return factor * np.hypot(
        head_boxes[:, 2] - head_boxes[:, 0], head_boxes[:, 3] - head_boxes[:, 1]
    )


def assign_predictions(
    predicted: np.ndarray,
    predicted_present: np.ndarray,
    ground_truth: np.ndarray,
    ground_truth_present: np.ndarray,
    ground_truth_head_sizes: np.ndarray,
    threshold: float = PCKH_THRESHOLD,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image of the toolkit's ``assignGTmulti``: person matching and per-joint labels.

    Args:
        predicted: (P, J, 2) predicted joint positions.
        predicted_present: (P, J) bool, the predicted joint exists.
        ground_truth: (G, J, 2) ground-truth joint positions.
        ground_truth_present: (G, J) bool, the ground-truth joint is annotated.
        ground_truth_head_sizes: (G,) PCKh normalisers (> 0; NaN: the person never matches).
        threshold: PCKh threshold (0.5).

    Returns:
        labels: (P, J) bool, true positive (meaningful where ``predicted_present``).
        prediction_to_ground_truth: (P,) int, the matched ground-truth person or -1.
        matches: (P, G, J) bool, joint-level PCKh matches.
    """
    num_predicted, num_joints = predicted_present.shape
    num_ground_truth = ground_truth_present.shape[0]
    labels = np.zeros((num_predicted, num_joints), dtype=bool)
    prediction_to_ground_truth = np.full(num_predicted, -1, dtype=np.int64)
    if num_predicted == 0 or num_ground_truth == 0:
        return labels, prediction_to_ground_truth, np.zeros(
            (num_predicted, num_ground_truth, num_joints), dtype=bool
        )
    offsets = predicted[:, None, :, :] - ground_truth[None, :, :, :]  # (P, G, J, 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        # NaN head sizes (and NaN coordinates of absent joints) never match.
        distances = np.hypot(offsets[..., 0], offsets[..., 1]) / ground_truth_head_sizes[
            None, :, None
        ]
        both = predicted_present[:, None, :] & ground_truth_present[None, :, :]
        matches = both & (distances <= threshold)
    annotated = ground_truth_present.sum(axis=1)  # (G,)
    # A ground-truth person with no annotated joint has no match, so its pck stays 0.
    pck = matches.sum(axis=2) / np.maximum(annotated, 1)[None, :]  # (P, G)
    # Each prediction keeps only its best ground truth (np.argmax: first index on ties).
    best_ground_truth = np.argmax(pck, axis=1)
    kept = np.zeros_like(pck)
    rows = np.arange(num_predicted)
    kept[rows, best_ground_truth] = pck[rows, best_ground_truth]
    # Each ground truth takes its best remaining prediction, if that has any matching joint.
    best_prediction = np.argmax(kept, axis=0)  # (G,)
    best_value = kept[best_prediction, np.arange(num_ground_truth)]
    for ground_truth_index in np.flatnonzero(best_value > 0):
        # Unique: a prediction has a non-zero entry in one column only.
        prediction_to_ground_truth[best_prediction[ground_truth_index]] = ground_truth_index
    matched = np.flatnonzero(prediction_to_ground_truth >= 0)
    labels[matched] = matches[matched, prediction_to_ground_truth[matched]]
    labels &= predicted_present
    return labels, prediction_to_ground_truth, matches


def voc_average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """The toolkit's ``VOCap``: area under the monotone precision envelope.

    Args:
        recall: (N,) recall after each ranked detection.
        precision: (N,) precision after each ranked detection.

    Returns:
        AP in [0, 1].
    """
    recall = np.concatenate([[0.0], np.asarray(recall, np.float64), [1.0]])
    precision = np.concatenate([[0.0], np.asarray(precision, np.float64), [0.0]])
    # Precision envelope: max of precision at any higher recall.
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps]))


def ranked_precision_recall(
    scores: np.ndarray, labels: np.ndarray, num_positives: float
) -> tuple[np.ndarray, np.ndarray]:
    """The toolkit's ``getRPC``: precision and recall down the score ranking.

    Ties keep the toolkit's order: a stable ascending sort traversed from the end.

    Returns:
        precision, recall: (N,) each.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    order = np.argsort(scores, kind="stable")[::-1]
    true_positives = np.cumsum(labels[order])
    ranks = np.arange(1, scores.shape[0] + 1)
    precision = true_positives / ranks
    recall = true_positives / num_positives if num_positives > 0 else np.full(ranks.shape, np.nan)
    return precision, recall


def _unpack_prediction(prediction: Any) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(prediction, Mapping):
        return np.asarray(prediction["poses"]), prediction.get("scores")
    if isinstance(prediction, tuple | list) and len(prediction) == 2:
        return np.asarray(prediction[0]), prediction[1]
    return np.asarray(prediction), None


class MpiiMultiPersonEvaluator:
    """Multi-person mAP of joint detections (MPII toolkit ``evaluateAP``), detectron2-style.

    ``process(records, predictions)`` takes ``PoseRecord``s carrying ``head_boxes`` and, per
    image, {'poses': (P, K, 3) (x, y, score) in image pixels, 'scores': (P,)} (person scores are
    not used by this metric: each joint is ranked by its own score). ``evaluate()`` returns
    {'AP': mean over the evaluated joints, 'AP/<joint name>': per joint, 'AP_<column>': the
    toolkit's table columns (MPII only), 'num_images', 'num_people'} as fractions in [0, 1].
    """

    def __init__(
        self,
        *,
        keypoint_info: KeypointInfo = MPII,
        evaluated_joints: Sequence[int] | None = None,
        threshold: float = PCKH_THRESHOLD,
        head_size_factor: float = HEAD_SIZE_FACTOR,
        min_joint_score: float = 0.0,
        output_dir: str | os.PathLike | None = None,
    ) -> None:
        """Creates the evaluator.

        Args:
            keypoint_info: the dataset's metadata (joint names, K).
            evaluated_joints: joint indices scored; default: the toolkit's 14 for MPII, all
                joints otherwise.
            threshold: PCKh threshold (0.5).
            head_size_factor: SC_BIAS (0.6).
            min_joint_score: predicted joints with score <= this are absent.
            output_dir: where metrics.json is written (None: nothing).
        """
        self.keypoint_info = keypoint_info
        if evaluated_joints is None:
            evaluated_joints = (
                MPII_EVALUATED_JOINTS
                if keypoint_info.name == MPII.name
                else range(keypoint_info.num_joints)
            )
        self.evaluated_joints = np.asarray(list(evaluated_joints), dtype=np.int64)
        if np.any(self.evaluated_joints < 0) or np.any(
            self.evaluated_joints >= keypoint_info.num_joints
        ):
            raise ValueError(
                f"evaluated_joints {self.evaluated_joints.tolist()} out of range for "
                f"{keypoint_info.num_joints} joints."
            )
        self.threshold = threshold
        self.head_size_factor = head_size_factor
        self.min_joint_score = min_joint_score
        self.output_dir = None if output_dir is None else os.fspath(output_dir)
        self.reset()

    def reset(self) -> None:
        """Forgets every processed image."""
        num_evaluated = self.evaluated_joints.shape[0]
        self._scores: list[list[np.ndarray]] = [[] for _ in range(num_evaluated)]
        self._labels: list[list[np.ndarray]] = [[] for _ in range(num_evaluated)]
        self._num_positives = np.zeros(num_evaluated, dtype=np.int64)
        self._num_images = 0
        self._num_people = 0
        self._num_people_without_head_size = 0

    def process(self, records: Sequence[PoseRecord], predictions: Sequence[Any]) -> None:
        """Adds a batch of images.

        Args:
            records: ground truth, one ``PoseRecord`` per image, with ``head_boxes``.
            predictions: per image, {'poses': (P, K, 3), 'scores': (P,)}, a (poses, scores)
                pair or just the poses.

        Raises:
            ValueError: on a length or joint-count mismatch, or a record with people but no
                head boxes, naming the image id. People whose head box is NaN or empty are
                kept (as ground truth that no prediction can match) and counted in
                'num_people_without_head_size'.
        """
        if len(records) != len(predictions):
            raise ValueError(f"{len(records)} records but {len(predictions)} predictions.")
        num_joints = self.keypoint_info.num_joints
        joints = self.evaluated_joints
        for record, prediction in zip(records, predictions, strict=True):
            if record.num_joints != num_joints:
                raise ValueError(
                    f"image {record.image_id}: ground truth has {record.num_joints} joints, "
                    f"expected {num_joints}."
                )
            poses, _ = _unpack_prediction(prediction)
            poses = np.asarray(poses, dtype=np.float64)
            if poses.size == 0:
                poses = np.zeros((0, num_joints, 3))
            if poses.ndim != 3 or poses.shape[1:] != (num_joints, 3):
                raise ValueError(
                    f"image {record.image_id}: poses must be (P, {num_joints}, 3), "
                    f"got {poses.shape}."
                )
            ground_truth = record.keypoints.astype(np.float64)
            if record.num_people and record.head_boxes is None:
                raise ValueError(
                    f"image {record.image_id}: MPII evaluation needs head boxes "
                    "(PoseRecord.head_boxes is None)."
                )
            sizes = (
                head_sizes(record.head_boxes, self.head_size_factor)
                if record.num_people
                else np.zeros(0)
            )
            # A NaN or empty head box (the MPII JSON reader's "head box unavailable") makes
            # that person's distances NaN/inf: its joints can never match, as the reader says.
            degenerate = ~np.isfinite(sizes) | (sizes <= 0)
            self._num_people_without_head_size += int(degenerate.sum())
            sizes = np.where(degenerate, np.nan, sizes)
            predicted = poses[:, joints]
            predicted_present = (predicted[..., 2] > self.min_joint_score) & np.all(
                np.isfinite(predicted[..., :2]), axis=-1
            )
            ground_truth_present = ground_truth[:, joints, 2] > 0
            labels, _, _ = assign_predictions(
                predicted[..., :2],
                predicted_present,
                ground_truth[:, joints, :2],
                ground_truth_present,
                sizes,
                self.threshold,
            )
            for slot in range(joints.shape[0]):
                present = predicted_present[:, slot]
                self._scores[slot].append(predicted[present, slot, 2])
                self._labels[slot].append(labels[present, slot])
            self._num_positives += ground_truth_present.sum(axis=0)
            self._num_images += 1
            self._num_people += record.num_people

    def evaluate(self) -> dict[str, float]:
        """Per-joint AP and their mean (fractions in [0, 1]; see the module docstring)."""
        if self._num_images == 0:
            _logger.warning("MpiiMultiPersonEvaluator: no image was processed.")
            return {}
        names = self.keypoint_info.joint_names
        per_joint: dict[int, float] = {}
        for slot, joint in enumerate(self.evaluated_joints.tolist()):
            scores = np.concatenate(self._scores[slot]) if self._scores[slot] else np.zeros(0)
            labels = (
                np.concatenate(self._labels[slot]) if self._labels[slot] else np.zeros(0, bool)
            )
            positives = int(self._num_positives[slot])
            if positives == 0:
                per_joint[joint] = float("nan")
            elif scores.size == 0:
                per_joint[joint] = 0.0
            else:
                precision, recall = ranked_precision_recall(scores, labels, positives)
                per_joint[joint] = voc_average_precision(recall, precision)
        values = np.array(list(per_joint.values()))
        metrics: dict[str, float] = {
            "AP": float(np.nanmean(values)) if np.any(~np.isnan(values)) else float("nan")
        }
        for joint, value in per_joint.items():
            metrics[f"AP/{names[joint]}"] = value
        if self.keypoint_info.name == MPII.name:
            for column, column_joints in MPII_TABLE_GROUPS.items():
                if all(joint in per_joint for joint in column_joints):
                    metrics[f"AP_{column}"] = float(
                        np.mean([per_joint[joint] for joint in column_joints])
                    )
        metrics["num_images"] = self._num_images
        metrics["num_people"] = self._num_people
        metrics["num_people_without_head_size"] = self._num_people_without_head_size
        if self.output_dir is not None:
            os.makedirs(self.output_dir, exist_ok=True)
            with open(os.path.join(self.output_dir, METRICS_FILE_NAME), "w") as handle:
                # NaN is not JSON: write null for joints without ground truth.
                json.dump(
                    {key: (None if _is_nan(value) else value) for key, value in metrics.items()},
                    handle,
                    indent=2,
                )
        return metrics


def _is_nan(value: float) -> bool:
    return isinstance(value, float) and np.isnan(value)
