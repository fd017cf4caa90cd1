"""Tests of the single-person refinement at inference (tasks/refinement/refine.py) and its use by
PoseEstimator, ImagePoseEstimator and tools/evaluate.py / tools/predict.py."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest

from associative_embedding.core import transforms
from associative_embedding.core.keypoint_info import COCO
from associative_embedding.core.record import PoseRecord
from associative_embedding.data import readers
from associative_embedding.data.image_bounds import clip_poses_to_image
from associative_embedding.modeling import loading
from associative_embedding.tasks.pose import estimator as predictor_lib
from associative_embedding.tasks.pose.image_estimator import ImagePoseEstimator
from associative_embedding.tasks.pose.oracle import ground_truth_heatmaps, ground_truth_tags
from associative_embedding.tasks.refinement import crops
from associative_embedding.tasks.refinement.refine import (
    PoseRefiner,
    load_refiner,
    locate_peaks,
    parse_crop_sizes,
)

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[3]
K = COCO.num_joints
SIZE = 256  # the test image is SIZE x SIZE
DISPLACED_JOINT = 9  # left wrist: a left/right joint, so flip re-indexing matters


def coordinate_image() -> np.ndarray:
    """(SIZE, SIZE, 3) uint8 whose pixels encode their position: R = x, G = y, B = 255.

    A crop of it tells a fake network exactly where in the image each crop pixel lies.
    """
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    return np.stack([xs, ys, np.full_like(xs, 255)], axis=-1).astype(np.uint8)


def true_poses() -> np.ndarray:
    """(2, K, 2) joint positions of two people side by side in the test image."""
    rng = np.random.default_rng(3)
    left = np.stack([rng.uniform(30, 100, K), rng.uniform(40, 200, K)], axis=-1)
    right = np.stack([rng.uniform(150, 225, K), rng.uniform(50, 210, K)], axis=-1)
    return np.stack([left, right])


class CropFake:
    """A single-person network that finds the true person in each crop.

    It reads the image position of the crop's pixels from the coordinate image (least squares
    over the pixels inside the image), takes the true person nearest to the crop centre and
    renders, per joint, a Gaussian of height ``peak`` (``flipped_peak`` for mirrored crops) at
    the joint's exact sub-pixel position on the (S / 4)^2 output grid. A mirrored crop (its
    x axis reversed) gets each joint in its mirror partner's channel, as a real network would.
    """

    def __init__(self, poses, *, peak=0.9, flipped_peak=None, sigma=1.5, channels=K):
        self.poses = np.asarray(poses, np.float64)
        self.peak = peak
        self.flipped_peak = peak if flipped_peak is None else flipped_peak
        self.sigma, self.channels = sigma, channels
        self.batch_shapes = []

    def crop_from_image(self, crop):
        inside = crop[..., 2] > 0.999
        inside = cv2.erode(inside.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        rows, columns = np.nonzero(inside)
        design = np.stack([columns, rows, np.ones_like(rows)], axis=-1).astype(np.float64)
        targets = crop[rows, columns, :2].astype(np.float64) * 255.0
        solution, *_ = np.linalg.lstsq(design, targets, rcond=None)
        image_from_crop = np.eye(3)
        image_from_crop[:2] = solution.T
        return np.linalg.inv(image_from_crop)

    def __call__(self, images):
        images = np.asarray(images)
        self.batch_shapes.append(images.shape)
        count, size = images.shape[0], images.shape[1]
        grid = size // 4
        ys, xs = np.mgrid[0:grid, 0:grid].astype(np.float64)
        outputs = np.zeros((count, grid, grid, self.channels), np.float32)
        for index, crop in enumerate(images):
            crop_from_image = self.crop_from_image(crop)
            centre = transforms.transform_points(
                np.array([[(size - 1) / 2] * 2]), np.linalg.inv(crop_from_image)
            )[0]
            person = np.argmin(np.linalg.norm(self.poses.mean(axis=1) - centre, axis=1))
            in_crop = transforms.transform_points(self.poses[person], crop_from_image)
            in_output = (in_crop + 0.5) / 4 - 0.5
            flipped = crop_from_image[0, 0] < 0
            peak = self.flipped_peak if flipped else self.peak
            for joint in range(K):
                channel = COCO.flip_index[joint] if flipped else joint
                distance2 = (xs - in_output[joint, 0]) ** 2 + (ys - in_output[joint, 1]) ** 2
                outputs[index, :, :, channel] = peak * np.exp(-distance2 / (2 * self.sigma**2))
        return outputs[:, None]  # (B, S = 1, h, w, C)


def make_refiner(fake, **options) -> PoseRefiner:
    return PoseRefiner(
        loading.Predictor(fake, input_multiple=64, source="fake"), COCO, **options
    )


def detected_poses(*, jitter=1.0, score=0.7, seed=0):
    """(2, K, 3) decoded-looking poses: the true ones jittered by up to `jitter` px."""
    rng = np.random.default_rng(seed)
    truth = true_poses()
    poses = np.concatenate(
        [truth + rng.uniform(-jitter, jitter, truth.shape), np.full((2, K, 1), score)], axis=-1
    )
    return poses.astype(np.float32), np.array([0.6, 0.5], np.float32)


def tolerance(crop_size=256):
    """Image pixels of a quarter output pixel (+ a margin) for the people of true_poses: the
    Gaussian's nearest pixel and the quarter-pixel adjust stay within it."""
    side = max(np.ptp(true_poses(), axis=1).max(), 60) * 1.3
    return 0.3 * 4 * side / crop_size + 0.1


# ------------------------------------------------------------------ peaks


def test_locate_peaks_official_adjust_and_values():
    heatmaps = np.zeros((2, 8, 10, 3), np.float32)
    heatmaps[0, 3, 4, 0] = 1.0
    heatmaps[0, 3, 5, 0] = 0.5  # right neighbour larger: +0.25; rows tie: -0.25
    # Bottom-right corner: the neighbours beyond the map are clamped to the peak itself,
    # which beats the inner neighbours (as in codec.group_poses): +0.25 on both axes.
    heatmaps[1, 7, 9, 2] = 0.8
    heatmaps[1, 6, 9, 2] = 0.3
    peaks = locate_peaks(heatmaps)
    np.testing.assert_allclose(peaks[0, 0], [4.75, 3.25, 1.0])
    np.testing.assert_allclose(peaks[1, 2], [9.75, 7.75, 0.8])
    np.testing.assert_allclose(locate_peaks(heatmaps, "none")[0, 0], [4.5, 3.5, 1.0])
    np.testing.assert_allclose(locate_peaks(heatmaps, "symmetric")[0, 0], [4.75, 3.5, 1.0])
    # Taylor: exact for a sampled Gaussian.
    ys, xs = np.mgrid[0:16, 0:16]
    gaussian = np.exp(-((xs - 6.3) ** 2 + (ys - 9.6) ** 2) / (2 * 2.0**2))
    peaks = locate_peaks(gaussian[None, :, :, None], "taylor")
    np.testing.assert_allclose(peaks[0, 0, :2], [6.8, 10.1], atol=1e-4)
    with pytest.raises(ValueError, match="adjust"):
        locate_peaks(heatmaps, "quarter")


def test_parse_crop_sizes():
    assert parse_crop_sizes("192,256,320") == (192, 256, 320)
    assert parse_crop_sizes(["256"]) == (256,)
    for bad in ("", "256,x", "0"):
        with pytest.raises(ValueError, match="crop sizes"):
            parse_crop_sizes(bad)


# ------------------------------------------------------------------ the refinement rules


def test_confident_heatmaps_replace_a_displaced_joint():
    truth = true_poses()
    poses, scores = detected_poses()
    poses[0, DISPLACED_JOINT, :2] += (15.0, -9.0)
    fake = CropFake(truth, peak=0.9)
    refiner = make_refiner(fake)
    refined, refined_scores = refiner(coordinate_image(), poses, scores)
    assert refined.shape == poses.shape and refined.dtype == np.float32
    np.testing.assert_allclose(refined[..., :2], truth, atol=tolerance())
    # Every joint was replaced: the scores are the refined heatmap values.
    assert np.all(refined[..., 2] > 0.9 * 0.85) and np.all(refined[..., 2] <= 0.9)
    np.testing.assert_array_equal(refined_scores, scores)  # 'keep', as the official demo
    # One batch per crop size: both people and their mirrors.
    assert fake.batch_shapes == [(4, 256, 256, 3)]
    assert refiner.stats.people == 2 and refiner.stats.reverted == 0
    assert refiner.stats.joints_replaced == 2 * K and refiner.stats.joints_filled == 0
    # The refiner does not modify its inputs.
    assert poses[0, DISPLACED_JOINT, 0] == pytest.approx(truth[0, DISPLACED_JOINT, 0] + 15, abs=1)


def test_weak_heatmaps_leave_the_pose_alone_but_fill_missing_joints():
    truth = true_poses()
    poses, scores = detected_poses()
    poses[0, DISPLACED_JOINT, :2] += (15.0, -9.0)
    poses[1, 3] = 0.0  # missing joint (the decoder's (0, 0, 0))
    refiner = make_refiner(CropFake(truth, peak=0.1))  # below the 0.15 threshold
    refined, _ = refiner(coordinate_image(), poses, scores)
    untouched = np.ones((2, K), bool)
    untouched[1, 3] = False
    np.testing.assert_array_equal(refined[untouched], poses[untouched])
    np.testing.assert_allclose(refined[1, 3, :2], truth[1, 3], atol=tolerance())
    assert 0.08 < refined[1, 3, 2] <= 0.1
    assert refiner.stats.joints_filled == 1 and refiner.stats.joints_replaced == 0
    # A lower threshold accepts the weak heatmaps.
    refined, _ = make_refiner(CropFake(truth, peak=0.1), threshold=0.05)(
        coordinate_image(), poses, scores
    )
    np.testing.assert_allclose(refined[..., :2], truth, atol=tolerance())


def test_the_demo_minmax_normalisation_accepts_weak_heatmaps():
    truth = true_poses()
    poses, scores = detected_poses()
    poses[0, DISPLACED_JOINT, :2] += (15.0, -9.0)
    refiner = make_refiner(CropFake(truth, peak=0.1), heatmap_normalization="minmax")
    refined, _ = refiner(coordinate_image(), poses, scores)
    np.testing.assert_allclose(refined[..., :2], truth, atol=tolerance())
    assert np.all(refined[..., 2] > 0.85)  # normalised peaks, about 1


def test_implausible_moves_keep_the_original_pose():
    truth = true_poses()
    poses, scores = detected_poses()
    poses[0, :, 0] += 25.0  # the whole left person 25 px off: every refined joint moves 25 px
    image = coordinate_image()
    refiner = make_refiner(CropFake(truth))
    refined, _ = refiner(image, poses, scores)
    np.testing.assert_array_equal(refined[0], poses[0])
    np.testing.assert_allclose(refined[1, :, :2], truth[1], atol=tolerance())  # not affected
    assert refiner.stats.reverted == 1
    # A radius beyond the move (absolute, or relative to the crop side) accepts it.
    for options in ({"agree_radius": 30.0}, {"agree_radius_scale": 0.2}):
        refined, _ = make_refiner(CropFake(truth), **options)(image, poses, scores)
        np.testing.assert_allclose(refined[..., :2], truth, atol=tolerance())
    # A few far joints among agreeing ones: refined, far joints included (official rule:
    # reject only when fewer than 20 % of the detected joints agree).
    poses, scores = detected_poses()
    poses[0, :12, 0] += 25.0  # 5 of 17 agree (29 %)
    refined, _ = make_refiner(CropFake(truth))(image, poses, scores)
    np.testing.assert_allclose(refined[0, :, :2], truth[0], atol=tolerance())
    poses[0, 12:14, 0] += 25.0  # 3 of 17 agree (18 %): rejected
    refined, _ = make_refiner(CropFake(truth))(image, poses, scores)
    np.testing.assert_array_equal(refined[0], poses[0])


def test_flip_averages_the_mirrored_crops():
    truth = true_poses()
    poses, scores = detected_poses()
    image = coordinate_image()
    plain, _ = make_refiner(CropFake(truth, peak=0.8, flipped_peak=0.4), flip=False)(
        image, poses, scores
    )
    fake = CropFake(truth, peak=0.8, flipped_peak=0.4)
    flipped, _ = make_refiner(fake, flip=True)(image, poses, scores)
    assert fake.batch_shapes == [(4, 256, 256, 3)]
    # A flip-consistent network: the mirrored maps come back onto the same pixels (and the
    # same channels), so the positions agree and the values are the average of 0.8 and 0.4.
    np.testing.assert_allclose(flipped[..., :2], plain[..., :2], atol=1e-3)
    np.testing.assert_allclose(flipped[..., 2], plain[..., 2] * 0.6 / 0.8, rtol=1e-4)


def test_several_crop_sizes_are_fused_on_the_largest_grid():
    truth = true_poses()
    poses, scores = detected_poses()
    poses[1, DISPLACED_JOINT, :2] += (-12.0, 14.0)
    fake = CropFake(truth)
    refiner = make_refiner(fake, crop_sizes=(128, 192, 256), max_batch=3)
    heatmaps, crop_from_images, stride = refiner.crop_heatmaps(
        coordinate_image(), np.stack([crops.keypoint_box(pose) for pose in poses])
    )
    assert heatmaps.shape == (2, 64, 64, K) and crop_from_images.shape == (2, 3, 3)
    assert stride == 4
    # 2 people + 2 mirrors per size, at most 3 crops per call.
    assert [shape[:2] for shape in fake.batch_shapes] == [(3, 128), (1, 128), (3, 192),
                                                          (1, 192), (3, 256), (1, 256)]
    refined, _ = make_refiner(CropFake(truth), crop_sizes=(128, 192, 256))(
        coordinate_image(), poses, scores
    )
    np.testing.assert_allclose(refined[..., :2], truth, atol=tolerance())


def test_person_scores_people_without_joints_and_errors():
    truth = true_poses()
    poses, scores = detected_poses()
    poses = np.concatenate([poses, np.zeros((1, K, 3), np.float32)])  # nobody there
    scores = np.array([0.6, 0.5, 0.0], np.float32)
    fake = CropFake(truth, peak=0.9)
    refined, refined_scores = make_refiner(fake, person_score="mean")(
        coordinate_image(), poses, scores
    )
    assert fake.batch_shapes == [(4, 256, 256, 3)]  # the empty person is not cropped
    np.testing.assert_array_equal(refined[2], poses[2])
    np.testing.assert_allclose(refined_scores, refined[:, :, 2].mean(axis=1), rtol=1e-6)
    assert np.all(np.diff(refined_scores) <= 0)
    empty, empty_scores = make_refiner(fake)(coordinate_image(), np.zeros((0, K, 3)), [])
    assert empty.shape == (0, K, 3) and empty_scores.shape == (0,)

    with pytest.raises(ValueError, match="multiples of 64"):
        make_refiner(fake, crop_sizes=(200,))
    with pytest.raises(ValueError, match="person_score"):
        make_refiner(fake, person_score="max")
    with pytest.raises(ValueError, match=r"\(P, 17, 3\)"):
        make_refiner(fake)(coordinate_image(), np.zeros((1, 14, 3)), [0.0])
    with pytest.raises(ValueError, match="output channels"):
        make_refiner(CropFake(truth, channels=20))(coordinate_image(), poses, scores)


# ------------------------------------------------------------------ estimators


class MultiPersonFake:
    """A multi-person network returning ground-truth maps (peaks + separated tags) of given
    poses for the unscaled 256 x 256 input (and its mirror)."""

    def __init__(self, poses):
        self.keypoints = np.concatenate([poses, np.ones(poses.shape[:2] + (1,))], axis=-1)

    def __call__(self, images):
        output_hw = (SIZE // 4, SIZE // 4)
        heatmaps = ground_truth_heatmaps(self.keypoints, output_hw, stride=4)
        tags = ground_truth_tags(self.keypoints, output_hw, stride=4)[..., 0]
        outputs = [np.concatenate([heatmaps, tags], axis=-1)]
        if images.shape[0] == 2:
            index = list(COCO.flip_index) + [K + joint for joint in COCO.flip_index]
            outputs.append(outputs[0][:, ::-1][..., index])
        return np.stack(outputs)


def image_record(image: np.ndarray, keypoints: np.ndarray) -> PoseRecord:
    ok, png = cv2.imencode(".png", image[..., ::-1])
    assert ok
    num_people = keypoints.shape[0]
    return PoseRecord(
        image_id=1, file_name="", height=SIZE, width=SIZE,
        keypoints=keypoints.astype(np.float32), boxes=np.zeros((num_people, 4)),
        areas=np.full(num_people, 5000.0), annotation_ids=np.arange(num_people),
        image_bytes=png.tobytes(),
    )


@pytest.mark.parametrize("flip", [False, True])
def test_pose_estimators_with_a_refiner(flip):
    truth = true_poses()
    displaced = truth.copy()
    displaced[0, DISPLACED_JOINT] += (15.0, -9.0)
    image = coordinate_image()
    network = loading.Predictor(MultiPersonFake(displaced), source="multi-person fake")
    config = predictor_lib.InferenceConfig(input_size=SIZE, flip=flip)
    record = image_record(image, np.concatenate([truth, np.full((2, K, 1), 2.0)], axis=-1))

    def by_left_person(poses):
        return poses[np.argsort(poses[:, :, 0].mean(axis=1))]

    plain = predictor_lib.PoseEstimator(network, COCO, config)(record)
    # The decoder alone reproduces the displaced joint (stride-4 integer peaks, whose equal
    # neighbours the official adjust moves by -0.25: up to 3 input pixels off).
    np.testing.assert_allclose(by_left_person(plain["poses"])[..., :2], displaced, atol=3.01)

    refiner = make_refiner(CropFake(truth))
    refined = predictor_lib.PoseEstimator(network, COCO, config, refiner)(record)
    np.testing.assert_allclose(by_left_person(refined["poses"])[..., :2], truth, atol=tolerance())
    np.testing.assert_array_equal(refined["scores"], plain["scores"])

    prediction = ImagePoseEstimator(network, COCO, config, make_refiner(CropFake(truth)))(image)
    np.testing.assert_allclose(prediction.poses, refined["poses"], atol=1e-4)
    # map_poses follow the refined poses (decoder corner coordinates of the fused maps).
    np.testing.assert_allclose(
        prediction.map_poses[..., :2],
        transforms.transform_points(prediction.poses, prediction.map_from_image)[..., :2] + 0.5,
        atol=1e-4,
    )


def test_oracle_estimation_reads_the_image_for_the_refiner():
    truth = true_poses()
    image = coordinate_image()
    record = image_record(image, np.concatenate([truth, np.full((2, K, 1), 2.0)], axis=-1))
    config = predictor_lib.InferenceConfig(input_size=SIZE, oracles={"gt_heatmaps", "gt_tags"})
    refiner = make_refiner(CropFake(truth))
    result = predictor_lib.PoseEstimator(None, COCO, config, refiner)(record)
    assert refiner.stats.people == 2
    order = np.argsort(result["poses"][:, :, 0].mean(axis=1))
    np.testing.assert_allclose(result["poses"][order, :, :2], truth, atol=tolerance())


# ------------------------------------------------------------------ saved models and tools


TINY = {"num_stacks": 1, "widths": (8, 8), "stem_widths": (8, 8)}


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """A tiny multi-person model and a tiny single-person (tag_dim 0) model as .keras files,
    and a refinement training work dir of the latter."""
    import keras
    import tensorflow as tf

    from associative_embedding.core.run_dir import CONFIG_NAME
    from associative_embedding.modeling.hourglass import StackedHourglass
    from associative_embedding.modeling.loading import build_model_from_config
    from associative_embedding.tasks.refinement.trainer import refinement_base_config

    folder = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(0)
    StackedHourglass(num_joints=K, **TINY).save(folder / "multi.keras")
    StackedHourglass(num_joints=K, tag_dim=0, **TINY).save(folder / "refine.keras")
    config = refinement_base_config()
    config.model.update(TINY)
    config.refine.crop_size = 64
    config.eval.update(flip=False)
    config.codec.adjust = "taylor"
    workdir = folder / "refine_run"
    workdir.mkdir()
    (workdir / CONFIG_NAME).write_text(config.to_json_best_effort(indent=2))
    tf.train.Checkpoint(model=build_model_from_config(config)).write(
        str(workdir / "best" / "model")
    )
    return folder


def test_load_refiner_from_keras_file_and_work_dir(tiny_models):
    image = coordinate_image()
    poses, scores = detected_poses()
    for path in (tiny_models / "refine.keras", tiny_models / "refine_run"):
        refiner = load_refiner(path, COCO, crop_sizes=(64, 128))
        refined, _ = refiner(image, poses, scores)
        assert refined.shape == poses.shape and np.isfinite(refined).all()
        assert refiner.stats.people == 2
    # A training run's settings are the defaults: crop size, eval.flip, codec.adjust.
    refiner = load_refiner(tiny_models / "refine_run", COCO)
    assert (refiner.crop_sizes, refiner.flip, refiner.adjust) == ((64,), False, "taylor")
    assert (refiner.min_side, refiner.margin) == (60.0, 1.3)
    refiner = load_refiner(tiny_models / "refine.keras", COCO)
    assert (refiner.crop_sizes, refiner.flip, refiner.adjust) == ((256,), True, "official")
    with pytest.raises(ValueError, match="14"):
        from associative_embedding.core.keypoint_info import CROWDPOSE

        load_refiner(tiny_models / "refine_run", CROWDPOSE)
    with pytest.raises(FileNotFoundError):
        load_refiner(tiny_models / "missing.keras", COCO)


def write_split(folder: pathlib.Path) -> pathlib.Path:
    image = coordinate_image()
    cv2.imwrite(str(folder / "image.png"), image[..., ::-1])
    truth = true_poses()
    annotations = []
    for index, person in enumerate(truth):
        keypoints = np.concatenate([person, np.full((K, 1), 2.0)], axis=-1)
        low, high = person.min(axis=0), person.max(axis=0)
        annotations.append({
            "id": index + 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
            "area": float(np.prod(high - low)), "bbox": [*low.tolist(), *(high - low).tolist()],
            "num_keypoints": K, "keypoints": keypoints.reshape(-1).tolist(),
        })
    path = folder / "annotations.json"
    path.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "image.png", "height": SIZE, "width": SIZE}],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person", "keypoints": list(COCO.joint_names)}],
    }))
    return path


def run_tool(name: str, *args: str) -> subprocess.CompletedProcess:
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "tools" / name), *args, "--noprogress"],
        capture_output=True, text=True, timeout=300, env=environment, cwd=PROJECT_ROOT,
    )


def test_evaluate_tool_with_refine_checkpoint(tiny_models, tmp_path):
    annotations = write_split(tmp_path)
    output = tmp_path / "out"
    result = run_tool(
        "evaluate.py", f"--annotations={annotations}", f"--images={tmp_path}",
        f"--model={tiny_models / 'multi.keras'}", "--input_size=256",
        "--detection_threshold=0.0", f"--refine_checkpoint={tiny_models / 'refine.keras'}",
        "--refine_crop_sizes=64,128", "--refine_threshold=0.0", "--refine_agree_radius=1e6",
        f"--output_dir={output}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "refined" in result.stdout and "refine.keras" in result.stdout
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["num_images"] == 1 and metrics["refine_checkpoint"].endswith("refine.keras")
    results = json.loads((output / "keypoint_results.json").read_text())
    tool_poses = np.array([r["keypoints"] for r in results]).reshape(-1, K, 3)

    # The same pipeline in this process: the tool's results are the refined poses.
    split = readers.read_split(annotations, tmp_path)
    config = predictor_lib.InferenceConfig(input_size=256, decoder={"detection_threshold": 0.0})
    network = loading.load_predictor(tiny_models / "multi.keras")
    refiner = load_refiner(
        tiny_models / "refine.keras", COCO, crop_sizes=(64, 128), threshold=0.0,
        agree_radius=1e6,
    )
    plain = predictor_lib.PoseEstimator(network, COCO, config)(split.records[0])
    refined = predictor_lib.PoseEstimator(network, COCO, config, refiner)(split.records[0])
    people = refined["poses"][(refined["poses"][..., 2] > 0).any(-1)]
    # Written results hold joints clipped into the image, as every results file does.
    record = split.records[0]
    people = clip_poses_to_image(people, record.height, record.width)
    assert tool_poses.shape == people.shape and len(people) > 0
    written = people[..., 2] > 0  # absent joints are written as (0, 0, 0)
    np.testing.assert_allclose(tool_poses[written], people[written], atol=1e-3)
    assert refiner.stats.people == len(refined["poses"]) and refiner.stats.reverted == 0
    assert not np.allclose(refined["poses"][..., :2], plain["poses"][..., :2], atol=1.0)


def test_predict_tool_with_refine_checkpoint(tiny_models, tmp_path):
    cv2.imwrite(str(tmp_path / "image.png"), coordinate_image()[..., ::-1])
    result = run_tool(
        "predict.py", f"--input={tmp_path / 'image.png'}",
        f"--checkpoint={tiny_models / 'multi.keras'}", "--input_size=256",
        "--detection_threshold=0.0", f"--refine_checkpoint={tiny_models / 'refine_run'}",
        f"--output_dir={tmp_path / 'out'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "refined" in result.stdout
    assert (tmp_path / "out" / "results.json").is_file()
