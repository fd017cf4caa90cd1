"""Tests for MPII multi-person mAP on hand-built cases whose AP is computed by hand here."""

from __future__ import annotations

import json

import numpy as np
import pytest

from associative_embedding import evaluation
from associative_embedding.core.keypoint_info import COCO, MPII
from associative_embedding.core.record import PoseRecord
from associative_embedding.evaluation.mpii_multi_person import (
    MPII_EVALUATED_JOINTS,
    MpiiMultiPersonEvaluator,
    head_sizes,
    ranked_precision_recall,
    voc_average_precision,
)

# Head box 30 x 40 px: diagonal 50, head size 0.6 * 50 = 30, PCKh@0.5 radius 15 px.
HEAD_BOX = np.array([0.0, 0.0, 30.0, 40.0])
RADIUS = 15.0


def make_person(offset_x: float) -> np.ndarray:
    """(16, 3) ground-truth joints, all annotated, spread over a 100 px wide column."""
    joints = np.zeros((16, 3))
    joints[:, 0] = offset_x + 6.0 * np.arange(16)
    joints[:, 1] = 100.0 + 20.0 * np.arange(16)
    joints[:, 2] = 1.0
    return joints


def make_record(image_id: int, people: list[np.ndarray]) -> PoseRecord:
    keypoints = np.stack(people) if people else np.zeros((0, 16, 3))
    count = keypoints.shape[0]
    return PoseRecord(
        image_id=image_id,
        file_name="",
        height=800,
        width=2000,
        keypoints=keypoints,
        boxes=np.zeros((count, 4)),
        areas=np.zeros(count),
        annotation_ids=np.arange(count),
        head_boxes=np.tile(HEAD_BOX, (count, 1)),
    )


def prediction(people: list[np.ndarray], joint_scores: list[float]) -> dict:
    """Poses from joint positions (P, 16, 2 or 3) with one score for all joints of a person."""
    poses = np.zeros((len(people), 16, 3))
    for index, (person, score) in enumerate(zip(people, joint_scores, strict=True)):
        poses[index, :, :2] = person[:, :2]
        poses[index, :, 2] = score
    return {"poses": poses, "scores": np.asarray(joint_scores, np.float64)}


def test_head_size_is_sixty_percent_of_the_head_box_diagonal():
    np.testing.assert_allclose(head_sizes(np.array([[10, 20, 40, 60]])), [30.0])


def test_voc_ap_by_hand():
    # Ranked labels TP, FP, TP with 3 positives: precision 1, 1/2, 2/3; recall 1/3, 1/3, 2/3.
    # Envelope: 1 up to recall 1/3, 2/3 up to recall 2/3, 0 after: AP = 1/3 + 2/9 = 5/9.
    precision, recall = ranked_precision_recall(
        np.array([0.9, 0.8, 0.7]), np.array([True, False, True]), 3
    )
    np.testing.assert_allclose(precision, [1, 1 / 2, 2 / 3])
    np.testing.assert_allclose(recall, [1 / 3, 1 / 3, 2 / 3])
    assert voc_average_precision(recall, precision) == pytest.approx(5 / 9)


def test_equal_scores_rank_the_later_detection_first():
    # The toolkit's getRPC sorts ascending (stable) and reads from the end: among equal scores
    # the FP (listed second) comes first. Precision 0, 1/2 at recall 0, 1: AP = 1/2.
    precision, recall = ranked_precision_recall(np.array([0.5, 0.5]), np.array([True, False]), 1)
    np.testing.assert_allclose(precision, [0, 1 / 2])
    assert voc_average_precision(recall, precision) == pytest.approx(0.5)


def test_perfect_predictions_give_map_one(tmp_path):
    people = [make_person(100), make_person(400)]
    evaluator = MpiiMultiPersonEvaluator(output_dir=tmp_path)
    evaluator.process([make_record(1, people)], [prediction(people, [0.9, 0.8])])
    metrics = evaluator.evaluate()
    assert metrics["AP"] == pytest.approx(1.0)
    assert metrics["AP_head"] == pytest.approx(1.0)
    assert "AP/pelvis" not in metrics and "AP/thorax" not in metrics  # not evaluated
    assert json.loads((tmp_path / "metrics.json").read_text())["AP"] == pytest.approx(1.0)


def test_one_joint_outside_pckh_radius():
    ground_truth = make_person(100)
    predicted = ground_truth.copy()
    predicted[0, 0] += RADIUS + 0.5  # right ankle: a false positive, the joint is missed
    predicted[1, 0] += RADIUS - 0.5  # right knee: still within 0.5 head sizes
    predicted[6, 0] += 500.0  # pelvis: not evaluated, changes nothing
    evaluator = MpiiMultiPersonEvaluator()
    evaluator.process([make_record(1, [ground_truth])], [prediction([predicted], [0.7])])
    metrics = evaluator.evaluate()
    assert metrics["AP/right_ankle"] == 0.0
    assert metrics["AP/right_knee"] == 1.0
    assert metrics["AP"] == pytest.approx(13 / 14)
    assert metrics["AP_ankle"] == pytest.approx(0.5)


def test_ranking_over_images_by_hand():
    # Image 1: two people, predictions matched to each. Person B's left wrist is off (FP).
    # Image 2: one person, matched. Left wrist detections: 0.9 TP (A), 0.8 FP (B), 0.7 TP (C),
    # 3 positives: AP = 5/9 (see test_voc_ap_by_hand); every other joint AP = 1.
    person_a, person_b, person_c = make_person(100), make_person(400), make_person(100)
    wrong_b = person_b.copy()
    wrong_b[15, 1] += 3 * RADIUS
    evaluator = MpiiMultiPersonEvaluator()
    evaluator.process(
        [make_record(1, [person_a, person_b])], [prediction([person_a, wrong_b], [0.9, 0.8])]
    )
    evaluator.process([make_record(2, [person_c])], [prediction([person_c], [0.7])])
    metrics = evaluator.evaluate()
    assert metrics["AP/left_wrist"] == pytest.approx(5 / 9)
    assert metrics["AP"] == pytest.approx((13 + 5 / 9) / 14)
    assert metrics["AP_wrist"] == pytest.approx((1 + 5 / 9) / 2)
    assert metrics["num_images"] == 2 and metrics["num_people"] == 3


def test_greedy_person_matching_leaves_the_weaker_prediction_unmatched():
    # P1 matches GT1 on all 14 joints. P2 matches GT1 on 10 joints and GT2 on the other 4:
    # its best ground truth is GT1 (10/14 > 4/14), which P1 takes (14/14), so P2 stays
    # unmatched and all its joints are false positives (a Hungarian matching would give P2 to
    # GT2). Joints where P2 sits on GT1: detections 0.9 TP, 0.5 FP with 2 positives: AP 1/2.
    # Joints where P2 sits on GT2: same ranking, same AP 1/2. mAP = 1/2.
    gt1, gt2 = make_person(100), make_person(400)
    p2 = gt1.copy()
    on_gt2 = [0, 1, 2, 3]  # four evaluated joints placed on GT2
    p2[on_gt2] = gt2[on_gt2]
    evaluator = MpiiMultiPersonEvaluator()
    evaluator.process([make_record(1, [gt1, gt2])], [prediction([gt1, p2], [0.9, 0.5])])
    metrics = evaluator.evaluate()
    assert metrics["AP"] == pytest.approx(0.5)
    # Swap the prediction order: ties and order do not matter here, the result is the same.
    evaluator.reset()
    evaluator.process([make_record(1, [gt1, gt2])], [prediction([p2, gt1], [0.5, 0.9])])
    assert evaluator.evaluate()["AP"] == pytest.approx(0.5)


def test_missing_predicted_joints_and_images_without_people():
    ground_truth = make_person(100)
    predicted = prediction([ground_truth], [0.6])
    predicted["poses"][0, 9, 2] = 0.0  # head top absent (score 0): a miss, not a detection
    spurious = prediction([make_person(700)], [0.95])  # image without people: all FPs
    evaluator = MpiiMultiPersonEvaluator()
    evaluator.process(
        [make_record(1, [ground_truth]), make_record(2, [])], [predicted, spurious]
    )
    metrics = evaluator.evaluate()
    # Head top: one detection, the FP at 0.95: AP 0. Every other joint: FP 0.95 ranked before
    # TP 0.6, 1 positive: precision 1/2 at recall 1: AP 1/2.
    assert metrics["AP/head_top"] == 0.0
    assert metrics["AP/upper_neck"] == pytest.approx(0.5)
    assert metrics["AP"] == pytest.approx(13 * 0.5 / 14)


def test_joint_without_ground_truth_is_left_out_of_the_mean(tmp_path):
    ground_truth = make_person(100)
    ground_truth[9, 2] = 0  # head top never annotated
    evaluator = MpiiMultiPersonEvaluator(output_dir=tmp_path)
    evaluator.process([make_record(1, [ground_truth])], [prediction([ground_truth], [0.9])])
    metrics = evaluator.evaluate()
    assert np.isnan(metrics["AP/head_top"])
    assert metrics["AP"] == pytest.approx(1.0)
    assert json.loads((tmp_path / "metrics.json").read_text())["AP/head_top"] is None


def test_person_without_head_size_can_never_match():
    # The MPII JSON reader gives NaN head boxes when it cannot estimate them.
    people = [make_person(100), make_person(400)]
    record = make_record(1, people)
    record.head_boxes[1] = np.nan
    evaluator = MpiiMultiPersonEvaluator()
    evaluator.process([record], [prediction(people, [0.9, 0.8])])
    metrics = evaluator.evaluate()
    # Per joint: TP 0.9, FP 0.8, 2 positives: precision 1, 1/2; recall 1/2, 1/2: AP 1/2.
    assert metrics["AP"] == pytest.approx(0.5)
    assert metrics["num_people_without_head_size"] == 1


def test_evaluated_joint_set_and_other_datasets():
    assert sorted(MPII_EVALUATED_JOINTS) == [j for j in range(16) if j not in (6, 7)]
    evaluator = MpiiMultiPersonEvaluator(keypoint_info=COCO)
    assert evaluator.evaluated_joints.tolist() == list(range(17))


def test_bad_input_is_reported():
    record = make_record(42, [make_person(100)])
    record.head_boxes = None
    evaluator = MpiiMultiPersonEvaluator()
    with pytest.raises(ValueError, match="image 42.*head boxes"):
        evaluator.process([record], [prediction([make_person(100)], [1.0])])
    with pytest.raises(ValueError, match="image 7"):
        evaluator.process([make_record(7, [make_person(0)])], [np.zeros((1, 17, 3))])
    assert evaluator.evaluate() == {}
    assert MPII.num_joints == 16
    assert evaluation.MpiiMultiPersonEvaluator is MpiiMultiPersonEvaluator
