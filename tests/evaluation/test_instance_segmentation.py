"""Tests for the instance segmentation evaluator (SDS / VOC mAP^r and COCO segm AP)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from associative_embedding.data.instances import (
    InstanceCategories,
    InstanceRecord,
    InstanceSegment,
    encode_mask,
)
from associative_embedding.evaluation.instance_segmentation import (
    COCO_METRIC_NAMES,
    METRICS_FILE_NAME,
    RESULTS_FILE_NAME,
    InstanceSegmentationEvaluator,
    average_precision,
    match_predictions,
    records_to_coco,
)

HEIGHT, WIDTH = 40, 60
CATEGORIES = InstanceCategories(names=("circle", "square", "triangle"), ids=(3, 5, 9))


@dataclasses.dataclass
class Prediction:
    """Stands in for codec.instance_decode.DecodedInstance (any object with these works)."""

    category_index: int
    mask: np.ndarray
    score: float


def box_mask(y0: int, x0: int, height: int, width: int, shape=(HEIGHT, WIDTH)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[y0 : y0 + height, x0 : x0 + width] = True
    return mask


def make_record(image_id: int, masks_and_categories, ignore=None, shape=(HEIGHT, WIDTH)):
    segments = [
        InstanceSegment.from_mask(mask, category, annotation_id=n + 1)
        for n, (mask, category) in enumerate(masks_and_categories)
    ]
    return InstanceRecord(
        image_id=image_id,
        file_name=f"/images/{image_id}.png",
        height=shape[0],
        width=shape[1],
        segments=segments,
        ignore_rle=None if ignore is None else encode_mask(ignore),
        source="test",
    )


def evaluate(records_and_predictions, **options) -> dict[str, float]:
    options.setdefault("coco_segm", False)
    evaluator = InstanceSegmentationEvaluator(CATEGORIES, **options)
    for record, predictions in records_and_predictions:
        evaluator.process(record, predictions)
    return evaluator.evaluate()


def two_square_image():
    """One image, two 10x10 'square' instances."""
    g1, g2 = box_mask(0, 0, 10, 10), box_mask(20, 30, 10, 10)
    return make_record(1, [(g1, 1), (g2, 1)]), g1, g2


# ---------------------------------------------------------------------------------------------
# AP^r on hand-built cases.


def test_perfect_predictions_score_one_at_both_thresholds():
    pairs = []
    for image_id in range(1, 4):
        ground_truth = [
            (box_mask(2 * image_id, 3, 8, 12), 0),
            (box_mask(20, 5 * image_id, 10, 10), 1),
            (box_mask(25, 40, 6, 6), 1),
        ]
        record = make_record(image_id, ground_truth)
        predictions = [
            Prediction(category, mask, score=0.1 * (n + 1))
            for n, (mask, category) in enumerate(ground_truth)
        ]
        pairs.append((record, predictions))
    metrics = evaluate(pairs)
    assert metrics["mAPr@0.5"] == 1.0
    assert metrics["mAPr@0.7"] == 1.0
    for threshold in ("0.5", "0.7"):
        assert metrics[f"APr@{threshold}/circle"] == 1.0
        assert metrics[f"APr@{threshold}/square"] == 1.0
        assert f"APr@{threshold}/triangle" not in metrics  # no ground truth
    assert metrics["num_images"] == 3
    assert metrics["num_predictions"] == 9


def test_iou_of_0_6_counts_at_0_5_but_not_at_0_7():
    record, g1, g2 = two_square_image()
    partial = box_mask(0, 0, 6, 10)  # 60 of g1's 100 pixels, nothing else: IoU 0.6
    predictions = [Prediction(1, partial, 0.9), Prediction(1, g2, 0.8)]
    metrics = evaluate([(record, predictions)])
    assert metrics["APr@0.5/square"] == pytest.approx(1.0)
    # At 0.7 the ranked labels are FP, TP: precision (0, 1/2), recall (0, 1/2). The envelope is
    # 1/2 up to recall 1/2, then nothing: AP = 1/2 * 1/2.
    assert metrics["APr@0.7/square"] == pytest.approx(0.25)
    assert metrics["mAPr@0.7"] == pytest.approx(0.25)


def test_duplicates_are_false_positives():
    record, g1, g2 = two_square_image()
    predictions = [
        Prediction(1, g1, 0.9),
        Prediction(1, g1, 0.8),  # duplicate of a matched instance
        Prediction(1, g2, 0.7),
    ]
    metrics = evaluate([(record, predictions)])
    # Labels TP, FP, TP: precision (1, 1/2, 2/3), recall (1/2, 1/2, 1):
    # AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.
    assert metrics["APr@0.5/square"] == pytest.approx(5.0 / 6.0)
    assert metrics["APr@0.7/square"] == pytest.approx(5.0 / 6.0)


@pytest.mark.parametrize(
    ("false_positive_score", "expected"),
    [(0.95, 2.0 / 3.0), (0.8, 5.0 / 6.0), (0.1, 1.0)],
)
def test_score_ordering_changes_average_precision(false_positive_score, expected):
    record, g1, g2 = two_square_image()
    background = box_mask(30, 0, 5, 5)  # touches no instance
    predictions = [
        Prediction(1, g1, 0.9),
        Prediction(1, g2, 0.7),
        Prediction(1, background, false_positive_score),
    ]
    # FP first: precision (0, 1/2, 2/3), recall (0, 1/2, 1) -> 1/2 * 2/3 + 1/2 * 2/3 = 2/3.
    # FP second: as the duplicate case, 5/6. FP last: 1.
    metrics = evaluate([(record, predictions)])
    assert metrics["APr@0.5/square"] == pytest.approx(expected)


def test_mean_is_over_categories():
    record, g1, g2 = two_square_image()
    circle = box_mask(0, 40, 10, 10)
    record = make_record(1, [(g1, 1), (g2, 1), (circle, 0)])
    predictions = [
        Prediction(1, box_mask(0, 0, 6, 10), 0.9),  # IoU 0.6 with g1
        Prediction(1, g2, 0.8),
        Prediction(0, circle, 0.5),
    ]
    metrics = evaluate([(record, predictions)])
    assert metrics["APr@0.7/circle"] == pytest.approx(1.0)
    assert metrics["APr@0.7/square"] == pytest.approx(0.25)
    assert metrics["mAPr@0.7"] == pytest.approx((1.0 + 0.25) / 2)
    assert metrics["mAPr@0.5"] == pytest.approx(1.0)


def test_categories_without_ground_truth_are_left_out_and_missed_ones_score_zero():
    circle = box_mask(0, 40, 10, 10)
    square = box_mask(20, 0, 10, 10)
    first = make_record(1, [(circle, 0)])
    second = make_record(2, [(square, 1)])
    metrics = evaluate(
        [
            (first, [Prediction(0, circle, 0.9), Prediction(2, box_mask(30, 30, 5, 5), 0.99)]),
            (second, []),  # the square is never predicted
        ]
    )
    assert metrics["APr@0.5/circle"] == 1.0
    assert metrics["APr@0.5/square"] == 0.0
    assert "APr@0.5/triangle" not in metrics  # predictions but no ground truth
    assert metrics["mAPr@0.5"] == pytest.approx(0.5)


def test_ground_truth_of_another_category_never_matches():
    record = make_record(1, [(box_mask(0, 0, 10, 10), 0)])
    metrics = evaluate([(record, [Prediction(1, box_mask(0, 0, 10, 10), 0.9)])])
    assert metrics["APr@0.5/circle"] == 0.0
    assert "APr@0.5/square" not in metrics


def test_predictions_may_be_mappings():
    record, g1, g2 = two_square_image()
    predictions = [
        {"category_index": 1, "mask": g1.astype(np.uint8), "score": 0.5},
        {"category_index": 1, "mask": g2, "score": 0.4},
    ]
    assert evaluate([(record, predictions)])["mAPr@0.7"] == 1.0


def test_exclude_void_removes_ignored_pixels_from_the_iou():
    instance = box_mask(10, 10, 10, 10)
    spilled = box_mask(8, 8, 14, 14)  # the instance plus a 2-pixel ring: IoU 100/196
    void = spilled & ~instance
    record = make_record(1, [(instance, 1)], ignore=void)
    pairs = [(record, [Prediction(1, spilled, 0.9)])]
    assert evaluate(pairs)["APr@0.5/square"] == 1.0  # 0.51 >= 0.5
    assert evaluate(pairs)["APr@0.7/square"] == 0.0
    assert evaluate(pairs, exclude_void=True)["APr@0.7/square"] == 1.0


# ---------------------------------------------------------------------------------------------
# Matching and AP integration against references.


def test_matching_rules_sds_and_voc():
    # Prediction 0 takes instance 0. Prediction 1's best instance is 0 (taken) but it also
    # overlaps instance 1 at exactly the threshold.
    ious = np.array([[0.9, 0.0], [0.8, 0.5]])
    scores = np.array([0.9, 0.8])
    np.testing.assert_array_equal(match_predictions(ious, scores, 0.5, "sds"), [True, True])
    np.testing.assert_array_equal(match_predictions(ious, scores, 0.5, "voc"), [True, False])
    np.testing.assert_array_equal(match_predictions(ious, scores, 0.51, "sds"), [True, False])
    # Matching follows scores, not input order.
    np.testing.assert_array_equal(
        match_predictions(ious[::-1], scores[::-1], 0.5, "voc"), [False, True]
    )
    np.testing.assert_array_equal(
        match_predictions(np.zeros((3, 0)), np.ones(3), 0.5), [False, False, False]
    )
    with pytest.raises(ValueError, match="matching"):
        match_predictions(ious, scores, 0.5, "hungarian")


def reference_all_points_ap(scores, labels, num_ground_truth):
    """Each true positive adds 1/G recall at the best precision reached at its rank or later."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    precisions, true_positives = [], 0
    for rank, index in enumerate(order, start=1):
        true_positives += labels[index]
        precisions.append(true_positives / rank)
    total = 0.0
    for rank, index in enumerate(order):
        if labels[index]:
            total += max(precisions[rank:]) / num_ground_truth
    return total


def reference_eleven_point_ap(scores, labels, num_ground_truth):
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    points, true_positives = [], 0
    for rank, index in enumerate(order, start=1):
        true_positives += labels[index]
        points.append((true_positives / num_ground_truth, true_positives / rank))
    total = 0.0
    for step in range(11):
        reachable = [p for r, p in points if r >= step / 10 - 1e-12]
        total += max(reachable, default=0.0) / 11
    return total


def test_average_precision_matches_python_references():
    rng = np.random.default_rng(0)
    for trial in range(50):
        count = int(rng.integers(1, 40))
        scores = rng.permutation(count).astype(np.float64)  # distinct: no tie ambiguity
        labels = rng.random(count) < rng.random()
        num_ground_truth = int(labels.sum() + rng.integers(0 if labels.any() else 1, 5))
        assert average_precision(scores, labels, num_ground_truth) == pytest.approx(
            reference_all_points_ap(scores.tolist(), labels.tolist(), num_ground_truth)
        ), trial
        assert average_precision(scores, labels, num_ground_truth, "11_point") == pytest.approx(
            reference_eleven_point_ap(scores.tolist(), labels.tolist(), num_ground_truth)
        ), trial
    assert np.isnan(average_precision([0.5], [False], 0))
    assert average_precision([], [], 3) == 0.0
    with pytest.raises(ValueError, match="method"):
        average_precision([0.5], [True], 1, "101_point")


def dense_iou(first: np.ndarray, second: np.ndarray) -> float:
    union = np.logical_or(first, second).sum()
    return float(np.logical_and(first, second).sum() / union) if union else 0.0


def reference_map(images, thresholds, num_categories):
    """Pure NumPy/Python SDS evaluation of [(gt [(mask, c)], predictions [(mask, c, s)])]."""
    result = {}
    for threshold in thresholds:
        aps = []
        for category in range(num_categories):
            scores, labels, num_ground_truth = [], [], 0
            for ground_truth, predictions in images:
                instances = [mask for mask, c in ground_truth if c == category]
                num_ground_truth += len(instances)
                mine = [(mask, s) for mask, c, s in predictions if c == category]
                matched = [False] * len(instances)
                for mask, score in sorted(mine, key=lambda item: -item[1]):
                    best, best_iou = -1, -1.0
                    for n, instance in enumerate(instances):
                        iou = dense_iou(mask, instance)
                        if not matched[n] and iou > best_iou:
                            best, best_iou = n, iou
                    hit = best >= 0 and best_iou >= threshold
                    if hit:
                        matched[best] = True
                    scores.append(score)
                    labels.append(hit)
            if num_ground_truth:
                aps.append(reference_all_points_ap(scores, labels, num_ground_truth))
        result[threshold] = float(np.mean(aps))
    return result


def test_random_case_matches_dense_reference():
    rng = np.random.default_rng(7)
    images, pairs = [], []
    for image_id in range(1, 7):
        ground_truth = []
        for _ in range(int(rng.integers(0, 5))):
            y0, x0 = rng.integers(0, HEIGHT - 8), rng.integers(0, WIDTH - 8)
            size_y, size_x = rng.integers(4, 16, size=2)
            ground_truth.append((box_mask(y0, x0, size_y, size_x), int(rng.integers(0, 3))))
        predictions = []
        for mask, category in ground_truth:  # jittered copies, sometimes duplicated
            for _ in range(int(rng.integers(0, 3))):
                shift = rng.integers(-3, 4, size=2)
                jittered = np.roll(mask, tuple(shift), axis=(0, 1))
                predictions.append((jittered, category, float(rng.random())))
        for _ in range(int(rng.integers(0, 3))):  # background false positives
            y0, x0 = rng.integers(0, HEIGHT - 8), rng.integers(0, WIDTH - 8)
            predictions.append((box_mask(y0, x0, 6, 6), int(rng.integers(0, 3)), rng.random()))
        images.append((ground_truth, predictions))
        pairs.append(
            (
                make_record(image_id, ground_truth),
                [Prediction(c, mask, score) for mask, c, score in predictions],
            )
        )
    thresholds = (0.3, 0.5, 0.7)
    metrics = evaluate(pairs, iou_thresholds=thresholds)
    expected = reference_map(images, thresholds, CATEGORIES.num_categories)
    for threshold in thresholds:
        assert metrics[f"mAPr@{threshold:g}"] == pytest.approx(expected[threshold])
    assert 0.0 < metrics["mAPr@0.5"] < 1.0  # the case exercises both hits and misses


# ---------------------------------------------------------------------------------------------
# COCO segm and files.


def ground_truth_as_predictions(records):
    return [
        (
            record,
            [
                Prediction(segment.category_index, segment.mask().astype(bool), 1.0)
                for segment in record.segments
            ],
        )
        for record in records
    ]


def sample_records():
    return [
        make_record(1, [(box_mask(2, 3, 8, 12), 0), (box_mask(20, 20, 10, 15), 1)]),
        make_record(2, [(box_mask(5, 5, 20, 20), 1), (box_mask(10, 30, 12, 12), 2)]),
        make_record(3, []),
    ]


def test_coco_segm_ap_is_one_for_ground_truth_and_results_load(tmp_path):
    records = sample_records()
    evaluator = InstanceSegmentationEvaluator(CATEGORIES, output_dir=tmp_path)
    for record, predictions in ground_truth_as_predictions(records):
        evaluator.process(record, predictions)
    metrics = evaluator.evaluate()
    assert metrics["segm_AP"] == pytest.approx(1.0)
    assert metrics["segm_AP50"] == pytest.approx(1.0)
    assert metrics["segm_AP75"] == pytest.approx(1.0)
    assert metrics["segm_APs"] == pytest.approx(1.0)  # every instance is < 32^2 pixels
    assert metrics["segm_APl"] == -1.0  # no ground truth in that area range
    assert set(COCO_METRIC_NAMES) <= set(metrics)
    for name in CATEGORIES.names:
        assert metrics[f"segm_AP/{name}"] == pytest.approx(1.0)
    assert metrics["mAPr@0.5"] == metrics["mAPr@0.7"] == 1.0

    coco_gt = COCO()
    coco_gt.dataset = records_to_coco(records, CATEGORIES)
    coco_gt.createIndex()
    coco_dt = coco_gt.loadRes(str(tmp_path / RESULTS_FILE_NAME))
    assert len(coco_dt.anns) == 4
    assert sorted(ann["category_id"] for ann in coco_dt.anns.values()) == [3, 5, 5, 9]
    loaded = json.loads((tmp_path / METRICS_FILE_NAME).read_text())
    assert loaded == pytest.approx(metrics)


def test_coco_segm_penalises_a_half_mask():
    records = sample_records()
    evaluator = InstanceSegmentationEvaluator(CATEGORIES)
    for record, predictions in ground_truth_as_predictions(records):
        for prediction in predictions:
            rows = np.flatnonzero(prediction.mask.any(axis=1))
            prediction.mask[rows[: len(rows) // 2]] = False  # IoU about 0.5
        evaluator.process(record, predictions)
    metrics = evaluator.evaluate()
    assert metrics["segm_AP75"] == 0.0
    assert 0.0 < metrics["segm_AP"] < 0.2


def test_coco_annotations_keep_crowd_regions(tmp_path):
    instance = box_mask(2, 2, 10, 10)
    crowd = box_mask(20, 30, 15, 20)
    record = make_record(1, [(instance, 1)], ignore=crowd)
    dataset = records_to_coco([record], CATEGORIES)
    dataset["annotations"].append(
        {
            "id": 2,
            "image_id": 1,
            "category_id": 5,
            "segmentation": encode_mask(crowd),
            "area": float(crowd.sum()),
            "bbox": [30.0, 20.0, 20.0, 15.0],
            "iscrowd": 1,
        }
    )
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(dataset))
    predictions = [Prediction(1, instance, 0.9), Prediction(1, crowd, 0.95)]

    with_crowd = InstanceSegmentationEvaluator(CATEGORIES, coco_annotations=path)
    with_crowd.process(record, predictions)
    assert with_crowd.evaluate()["segm_AP"] == pytest.approx(1.0)  # crowd hit is ignored

    from_records = InstanceSegmentationEvaluator(CATEGORIES)
    from_records.process(record, predictions)
    assert from_records.evaluate()["segm_AP"] < 0.6  # a top-scored false positive

    outsider = make_record(2, [])
    with pytest.raises(ValueError, match="not in the COCO ground-truth"):
        with_crowd.process(outsider, [])


def test_images_without_predictions_and_reset():
    records = sample_records()
    evaluator = InstanceSegmentationEvaluator(CATEGORIES)
    assert evaluator.evaluate() == {}
    for record in records:
        evaluator.process(record, [])
    metrics = evaluator.evaluate()
    assert metrics["mAPr@0.5"] == 0.0
    assert metrics["segm_AP"] == 0.0
    assert metrics["num_predictions"] == 0
    evaluator.reset()
    assert evaluator.evaluate() == {}
    evaluator.process(records[0], [])  # no longer "processed twice" after reset


def test_bad_input_is_reported_with_the_image():
    record, g1, _ = two_square_image()
    evaluator = InstanceSegmentationEvaluator(CATEGORIES)
    with pytest.raises(ValueError, match=r"test: image 1: prediction 0 mask is \(10, 10\)"):
        evaluator.process(record, [Prediction(1, np.ones((10, 10), bool), 0.5)])
    with pytest.raises(ValueError, match="dtype float"):
        evaluator.process(record, [Prediction(1, g1.astype(np.float32), 0.5)])
    with pytest.raises(ValueError, match="category index 3"):
        evaluator.process(record, [Prediction(3, g1, 0.5)])
    with pytest.raises(ValueError, match="score nan"):
        evaluator.process(record, [Prediction(1, g1, float("nan"))])
    evaluator.process(record, [Prediction(1, g1, 0.5)])
    with pytest.raises(ValueError, match="processed twice"):
        evaluator.process(record, [])
    with pytest.raises(ValueError, match="iou_thresholds"):
        InstanceSegmentationEvaluator(CATEGORIES, iou_thresholds=(0.0,))
    with pytest.raises(ValueError, match="ap_method"):
        InstanceSegmentationEvaluator(CATEGORIES, ap_method="coco")


def test_voc_rule_and_eleven_point_options_change_the_result():
    # Overlapping instances: prediction 2's best instance is the one prediction 1 took.
    g1 = box_mask(0, 0, 10, 10)
    g2 = box_mask(0, 6, 10, 10)  # overlaps g1 by 40 pixels
    record = make_record(1, [(g1, 1), (g2, 1)])
    between = box_mask(0, 2, 10, 10)  # IoU 80/120 with g1, 60/140 with g2
    predictions = [Prediction(1, g1, 0.9), Prediction(1, between, 0.8)]
    sds = evaluate([(record, predictions)], iou_thresholds=(0.4,))
    voc = evaluate([(record, predictions)], iou_thresholds=(0.4,), matching="voc")
    assert sds["mAPr@0.4"] == pytest.approx(1.0)
    # VOC: TP, FP with recall stuck at 1/2 -> AP 1/2; 11-point: 6 of 11 recall points at 1.
    assert voc["mAPr@0.4"] == pytest.approx(0.5)
    eleven = evaluate(
        [(record, predictions)], iou_thresholds=(0.4,), matching="voc", ap_method="11_point"
    )
    assert eleven["mAPr@0.4"] == pytest.approx(6.0 / 11.0)
