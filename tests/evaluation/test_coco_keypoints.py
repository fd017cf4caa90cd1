"""Tests for the COCO keypoint evaluator (pycocotools COCOeval with per-dataset OKS sigmas)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from associative_embedding.core.keypoint_info import COCO as COCO_INFO
from associative_embedding.core.keypoint_info import CROWDPOSE
from associative_embedding.evaluation.coco_keypoints import (
    METRIC_NAMES,
    RESULTS_FILE_NAME,
    CocoKeypointEvaluator,
    load_coco,
    poses_to_coco_results,
)

COCO_MINI = "coco_mini_train2017/person_keypoints_train2017.json"
CROWDPOSE_SAMPLE = "mmpose_samples/crowdpose/test_crowdpose.json"


def ground_truth_predictions(coco_gt: COCO, image_ids: list[int]) -> list[dict]:
    """Per image, the usable ground-truth people as predictions with score 1 per labelled joint."""
    num_joints = len(next(iter(coco_gt.cats.values()))["keypoints"])
    predictions = []
    for image_id in image_ids:
        annotations = [
            annotation
            for annotation in coco_gt.imgToAnns[image_id]
            if not annotation["iscrowd"] and annotation["num_keypoints"] > 0
        ]
        poses = np.array([a["keypoints"] for a in annotations], np.float64).reshape(
            len(annotations), num_joints, 3
        )
        poses[..., 2] = (poses[..., 2] > 0).astype(np.float64)
        predictions.append({"poses": poses, "scores": np.ones(len(annotations))})
    return predictions


def write_synthetic_ground_truth(path, keypoints_per_image, *, category_id=1, area=10000.0):
    """Writes a COCO keypoint file: keypoints_per_image is a list of (P, K, 3) arrays."""
    num_joints = np.asarray(keypoints_per_image[0]).shape[1]
    images, annotations = [], []
    for image_index, people in enumerate(keypoints_per_image):
        images.append({"id": image_index + 1, "width": 640, "height": 480, "file_name": "x.jpg"})
        for person in np.asarray(people, np.float64):
            labelled = person[:, 2] > 0
            x0, y0 = person[labelled, :2].min(axis=0)
            x1, y1 = person[labelled, :2].max(axis=0)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_index + 1,
                    "category_id": category_id,
                    "iscrowd": 0,
                    "area": area,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "num_keypoints": int(labelled.sum()),
                    "keypoints": person.reshape(-1).tolist(),
                }
            )
    categories = [
        {"id": category_id, "name": "person", "keypoints": [f"j{k}" for k in range(num_joints)]}
    ]
    with open(path, "w") as handle:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, handle)
    return str(path)


def random_people(rng, num_people, num_joints):
    people = np.zeros((num_people, num_joints, 3))
    for index in range(num_people):
        people[index, :, 0] = 60 + 150 * index + rng.uniform(0, 100, num_joints)
        people[index, :, 1] = rng.uniform(50, 400, num_joints)
        people[index, :, 2] = 2
    return people


def test_ground_truth_as_results_gives_ap_one_on_coco_mini(shared_data, tmp_path):
    coco_gt = load_coco(shared_data / COCO_MINI)
    image_ids = sorted(coco_gt.getImgIds())
    evaluator = CocoKeypointEvaluator(coco_gt, output_dir=tmp_path)
    predictions = ground_truth_predictions(coco_gt, image_ids)
    evaluator.process(image_ids[:40], predictions[:40])
    evaluator.process([{"image_id": i} for i in image_ids[40:]], predictions[40:])
    metrics = evaluator.evaluate()
    assert set(METRIC_NAMES) <= set(metrics)
    assert metrics["AP"] == pytest.approx(1.0)
    assert metrics["AR"] == pytest.approx(1.0)
    assert metrics["AP50"] == pytest.approx(1.0)
    assert metrics["num_images"] == len(image_ids)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["AP"] == pytest.approx(1.0)
    # The results file is valid COCO results, with K triplets per person and the GT category.
    results = json.loads((tmp_path / RESULTS_FILE_NAME).read_text())
    assert len(results) == metrics["num_detections"] > 0
    assert all(len(r["keypoints"]) == 3 * 17 and r["category_id"] == 1 for r in results)
    loaded = coco_gt.loadRes(str(tmp_path / RESULTS_FILE_NAME))
    assert len(loaded.getAnnIds()) == len(results)


def test_perturbed_results_score_below_one(shared_data):
    coco_gt = load_coco(shared_data / COCO_MINI)
    image_ids = sorted(coco_gt.getImgIds())
    predictions = ground_truth_predictions(coco_gt, image_ids)
    rng = np.random.default_rng(0)
    for prediction in predictions:
        prediction["poses"][..., :2] += rng.normal(0, 8.0, prediction["poses"][..., :2].shape)
    evaluator = CocoKeypointEvaluator(coco_gt)
    evaluator.process(image_ids, predictions)
    metrics = evaluator.evaluate()
    assert 0.0 < metrics["AP"] < 0.95


def test_no_predictions_gives_zero_without_crash(tmp_path):
    people = random_people(np.random.default_rng(1), 2, 17)
    annotations = write_synthetic_ground_truth(tmp_path / "gt.json", [people])
    evaluator = CocoKeypointEvaluator(annotations, output_dir=tmp_path / "out")
    evaluator.process([1], [{"poses": np.zeros((0, 17, 3)), "scores": np.zeros(0)}])
    metrics = evaluator.evaluate()
    assert metrics["AP"] == 0.0
    assert metrics["AR"] == 0.0
    assert metrics["num_detections"] == 0
    assert json.loads((tmp_path / "out" / RESULTS_FILE_NAME).read_text()) == []


def test_nothing_processed_returns_empty_dict(tmp_path):
    annotations = write_synthetic_ground_truth(
        tmp_path / "gt.json", [random_people(np.random.default_rng(2), 1, 17)]
    )
    evaluator = CocoKeypointEvaluator(annotations)
    assert evaluator.evaluate() == {}


def test_evaluated_images_are_the_processed_ones(tmp_path):
    rng = np.random.default_rng(3)
    image_one, image_two = random_people(rng, 2, 17), random_people(rng, 1, 17)
    annotations = write_synthetic_ground_truth(tmp_path / "gt.json", [image_one, image_two])
    evaluator = CocoKeypointEvaluator(annotations)
    # Only image 1 is processed: image 2's person is not a miss.
    evaluator.process([1], [(image_one, np.ones(2))])
    assert evaluator.evaluate()["AP"] == pytest.approx(1.0)
    evaluator.reset()
    evaluator.process([1, 2], [(image_one, np.ones(2)), (np.zeros((0, 17, 3)), np.zeros(0))])
    assert evaluator.evaluate()["AR"] == pytest.approx(2 / 3)


def oks(predicted, ground_truth, sigmas, area):
    """Object keypoint similarity, written out from the COCO definition."""
    squared = np.sum((predicted[:, :2] - ground_truth[:, :2]) ** 2, axis=1)
    kappa = 2 * np.asarray(sigmas)
    labelled = ground_truth[:, 2] > 0
    return float(np.mean(np.exp(-squared / (2 * area * kappa**2))[labelled]))


@pytest.mark.parametrize("shift", [3.0, 6.0, 10.0])
def test_crowdpose_sigmas_for_fourteen_joints(tmp_path, shift):
    people = random_people(np.random.default_rng(4), 1, 14)
    annotations = write_synthetic_ground_truth(tmp_path / "gt.json", [people], area=900.0)
    predicted = people[0].copy()
    predicted[4, 0] += shift  # left wrist, sigma 0.062
    predicted[12, 1] += shift  # head, sigma 0.079
    expected_oks = oks(predicted, people[0], CROWDPOSE.sigmas, 900.0)
    thresholds = np.linspace(0.5, 0.95, 10)
    expected_ap = float(np.mean(expected_oks >= thresholds))

    evaluator = CocoKeypointEvaluator(annotations)  # K = 14 -> CrowdPose sigmas
    np.testing.assert_allclose(evaluator.sigmas, CROWDPOSE.sigmas)
    evaluator.process([1], [(predicted[None], np.ones(1))])
    metrics = evaluator.evaluate()
    np.testing.assert_allclose(evaluator.coco_eval.ious[(1, 1)], [[expected_oks]], rtol=1e-6)
    assert metrics["AP"] == pytest.approx(expected_ap)


def test_crowdpose_sample_ground_truth_as_results(shared_data, tmp_path):
    # The CrowdPose file has no 'area' key: load_coco's check fills the box area.
    coco_gt = load_coco(shared_data / CROWDPOSE_SAMPLE)
    assert all(a["area"] > 0 for a in coco_gt.dataset["annotations"])
    image_ids = sorted(coco_gt.getImgIds())
    # A COCO object the caller built from the raw file: the evaluator fills the areas on a copy.
    raw = COCO()
    raw.dataset = json.loads((shared_data / CROWDPOSE_SAMPLE).read_text())
    raw.createIndex()
    evaluator = CocoKeypointEvaluator(raw, keypoint_info=CROWDPOSE, output_dir=tmp_path)
    evaluator.process(image_ids, ground_truth_predictions(coco_gt, image_ids))
    metrics = evaluator.evaluate()
    assert metrics["AP"] == pytest.approx(1.0)
    assert "area" not in raw.dataset["annotations"][0]  # the caller's object is untouched


def test_category_id_is_read_from_the_ground_truth(tmp_path):
    people = random_people(np.random.default_rng(5), 1, 17)
    annotations = write_synthetic_ground_truth(tmp_path / "gt.json", [people], category_id=7)
    evaluator = CocoKeypointEvaluator(annotations, output_dir=tmp_path)
    evaluator.process([1], [(people, np.ones(1))])
    assert evaluator.evaluate()["AP"] == pytest.approx(1.0)
    results = json.loads((tmp_path / RESULTS_FILE_NAME).read_text())
    assert results[0]["category_id"] == 7


def test_fill_missing_joints_official_writer():
    poses = np.zeros((2, 17, 3))
    poses[0, :3] = [[10, 20, 0.9], [30, 40, 0.8], [20, 60, 0.7]]  # the other joints are absent
    results = poses_to_coco_results(5, poses, np.array([0.5, 0.1]), fill_missing_joints=True)
    assert len(results) == 1  # the person without any present joint is dropped
    keypoints = np.array(results[0]["keypoints"]).reshape(17, 3)
    np.testing.assert_allclose(keypoints[3:, :2], np.tile([20.0, 40.0], (14, 1)))
    np.testing.assert_allclose(keypoints[:, 2], 1.0)
    plain = np.array(poses_to_coco_results(5, poses, np.ones(2))[0]["keypoints"]).reshape(17, 3)
    np.testing.assert_allclose(plain[:3], poses[0, :3])
    np.testing.assert_allclose(plain[3:], 0.0)


def test_bad_input_is_reported(tmp_path):
    people = random_people(np.random.default_rng(6), 1, 17)
    annotations = write_synthetic_ground_truth(tmp_path / "gt.json", [people])
    evaluator = CocoKeypointEvaluator(annotations)
    with pytest.raises(ValueError, match="image id 99"):
        evaluator.process([99], [(people, np.ones(1))])
    with pytest.raises(ValueError, match="14"):
        evaluator.process([1], [(people[:, :14], np.ones(1))])
    with pytest.raises(ValueError, match="sigmas"):
        CocoKeypointEvaluator(annotations, keypoint_info=CROWDPOSE)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        CocoKeypointEvaluator(tmp_path / "missing.json")
    assert CocoKeypointEvaluator(annotations, keypoint_info=COCO_INFO).num_joints == 17
