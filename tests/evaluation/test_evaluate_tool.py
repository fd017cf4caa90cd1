"""End-to-end tests of the evaluation pipeline and tools/evaluate.py."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from associative_embedding.core import transforms
from associative_embedding.core.keypoint_info import COCO as COCO_INFO
from associative_embedding.data import readers
from associative_embedding.modeling import loading
from associative_embedding.tasks.pose import estimator as predictor_lib
from associative_embedding.tasks.pose.oracle import ground_truth_heatmaps, ground_truth_tags

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[2]
TOOL = PROJECT_ROOT / "tools" / "evaluate.py"
COCO_MINI = "coco_mini_train2017"


def run_tool(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(
        [sys.executable, str(TOOL), *args, "--noprogress"],
        capture_output=True, text=True, timeout=timeout, env=environment, cwd=PROJECT_ROOT,
    )


def coco_mini_args(shared_data: pathlib.Path) -> list[str]:
    folder = shared_data / COCO_MINI
    return [
        f"--annotations={folder / 'person_keypoints_train2017.json'}",
        f"--images={folder / 'images'}",
    ]


def test_tool_with_both_oracles_at_full_resolution(shared_data, tmp_path):
    result = run_tool(
        *coco_mini_args(shared_data), "--oracle=gt_heatmaps,gt_tags", "--input_size=0",
        "--output_stride=1", "--max_images=5", f"--output_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["num_images"] == 5
    assert metrics["AP"] >= 0.98
    assert "AP = " in result.stdout
    # The results file is what COCO.loadRes accepts.
    coco_gt = COCO(str(shared_data / COCO_MINI / "person_keypoints_train2017.json"))
    results = coco_gt.loadRes(str(tmp_path / "keypoint_results.json"))
    assert len(results.getAnnIds()) == metrics["num_detections"] > 0


def test_oracle_ceiling_at_stride_four_is_below_one(shared_data, tmp_path):
    folder = shared_data / COCO_MINI
    split = readers.read_split(
        folder / "person_keypoints_train2017.json", folder / "images"
    )
    config = predictor_lib.InferenceConfig(oracles={"gt_heatmaps", "gt_tags"})
    estimator = predictor_lib.PoseEstimator(None, split.keypoint_info, config)
    evaluator = predictor_lib.build_evaluator(split, tmp_path)
    metrics = predictor_lib.evaluate_records(
        split.records, estimator, evaluator, max_images=10, progress=False
    )
    # Stride-4 quantisation costs AP on small people, but every person is still found.
    assert 0.6 < metrics["AP"] < 0.98
    assert metrics["AP50"] > 0.9
    assert split.num_images_skipped == 44  # the mini set lists 80 images, ships 36


def test_mpii_sample_with_both_oracles(shared_data, tmp_path):
    folder = shared_data / "mmpose_samples" / "mpii"
    split = readers.read_split(folder / "test_mpii.json", folder)
    assert split.annotation_format == readers.FORMAT_MPII_JSON
    assert split.keypoint_info.name == "mpii"
    config = predictor_lib.InferenceConfig(oracles={"gt_heatmaps", "gt_tags"})
    estimator = predictor_lib.PoseEstimator(None, split.keypoint_info, config)
    metrics = predictor_lib.evaluate_records(
        split.records, estimator, predictor_lib.build_evaluator(split, tmp_path), progress=False
    )
    assert metrics["AP"] == pytest.approx(1.0)
    assert json.loads((tmp_path / "metrics.json").read_text())["num_images"] == 5


# ------------------------------------------------------------------ network path, fake network


def write_synthetic_split(folder: pathlib.Path) -> pathlib.Path:
    """One 300x200 image with three people; returns the annotation file."""
    height, width = 200, 300
    rng = np.random.default_rng(7)
    cv2.imwrite(str(folder / "image.png"), np.full((height, width, 3), 128, np.uint8))
    annotations = []
    for index in range(3):
        keypoints = np.zeros((17, 3))
        keypoints[:, 0] = 50 + 100 * index + rng.uniform(-35, 35, 17)
        keypoints[:, 1] = rng.uniform(20, 180, 17)
        keypoints[:, 2] = 2
        keypoints[rng.choice(17, 2, replace=False)] = 0
        annotations.append({
            "id": index + 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 8000.0,
            "bbox": [float(keypoints[:, 0].min()), 20.0, 80.0, 160.0],
            "num_keypoints": 15, "keypoints": keypoints.reshape(-1).tolist(),
        })
    categories = [{"id": 1, "name": "person", "keypoints": list(COCO_INFO.joint_names)}]
    images = [{"id": 1, "file_name": "image.png", "height": height, "width": width}]
    path = folder / "annotations.json"
    path.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    return path


class GroundTruthNetwork:
    """A fake network: for any input, the ground-truth maps of one record at that input's scale.

    Batch item 1 (the flipped input of the flip test) gets the maps of the mirrored image.
    """

    def __init__(self, record, base_size, scales, *, heatmaps=True, tags=True):
        self.record, self.base_size, self.scales = record, base_size, scales
        self.heatmaps, self.tags = heatmaps, tags
        self.calls = 0

    def __call__(self, images):
        self.calls += 1
        _, height, width, _ = images.shape
        for scale in self.scales:
            input_from_image, _, padded = transforms.eval_resize_affine(
                self.record.height, self.record.width, round(self.base_size * scale)
            )
            if tuple(padded) == (height, width):
                break
        else:
            raise AssertionError(f"unexpected input size {height}x{width}")
        keypoints = transforms.transform_points(self.record.keypoints, input_from_image)
        output_hw = (height // 4, width // 4)
        heatmaps = ground_truth_heatmaps(keypoints, output_hw, stride=4)
        tags = ground_truth_tags(keypoints, output_hw, stride=4)[..., 0]
        if not self.heatmaps:
            heatmaps = np.zeros_like(heatmaps)
        if not self.tags:
            tags = np.zeros_like(tags)
        outputs = [np.concatenate([heatmaps, tags], axis=-1)]
        if images.shape[0] == 2:
            outputs.append(outputs[0][:, ::-1][..., list(COCO_INFO.flip_index) * 2])
        return np.stack(outputs)[:, None]  # (B, S = 1, h, w, 2K)


@pytest.fixture(scope="module")
def synthetic_split(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic_split")
    annotations = write_synthetic_split(folder)
    return readers.read_split(annotations, folder)


def estimate(split, *, oracles=(), flip=False, scales=(1.0,), fusion="official", **fake_kwargs):
    record = split.records[0]
    network = GroundTruthNetwork(record, 256, scales, **fake_kwargs)
    config = predictor_lib.InferenceConfig(
        input_size=256, oracles=oracles, flip=flip, scales=scales, fusion=fusion
    )
    estimator = predictor_lib.PoseEstimator(
        loading.Predictor(network, source="fake"), split.keypoint_info, config
    )
    prediction = estimator(record)
    assert network.calls == len(scales)  # the flipped image rides in the same batch
    return prediction


def assert_matches_ground_truth(poses, record, tolerance):
    assert poses.shape[0] == record.num_people
    for person in record.keypoints:
        labelled = person[:, 2] > 0
        errors = np.abs(poses[:, labelled, :2] - person[None, labelled, :2]).max(axis=(1, 2))
        assert errors.min() <= tolerance


# One output pixel is 4 input pixels = 300 / 256 * 4 = 4.7 image pixels here; the
# quantisation and the decoder's quarter-pixel adjust stay within 0.75 output pixel.
ONE_SCALE_TOLERANCE = 0.75 * 4 * 300 / 256 + 1e-3


def test_network_path_decodes_ground_truth_maps(synthetic_split):
    record = synthetic_split.records[0]
    plain = estimate(synthetic_split)
    assert_matches_ground_truth(plain["poses"], record, ONE_SCALE_TOLERANCE)
    # Flip test of a flip-consistent network: the same poses.
    flipped = estimate(synthetic_split, flip=True)
    np.testing.assert_allclose(flipped["poses"], plain["poses"], atol=1e-4)
    np.testing.assert_allclose(flipped["scores"], plain["scores"], atol=1e-6)


@pytest.mark.parametrize("fusion", ["official", "paper"])
def test_network_path_multi_scale(synthetic_split, fusion):
    record = synthetic_split.records[0]
    prediction = estimate(synthetic_split, scales=(1.0, 0.5), flip=True, fusion=fusion)
    # Averaging with the coarser scale may move a peak by one more output pixel.
    assert_matches_ground_truth(prediction["poses"], record, 2 * ONE_SCALE_TOLERANCE)


def test_oracles_replace_the_network_maps(synthetic_split):
    reference = estimate(synthetic_split)
    # The network's heatmaps are blank: ground-truth detections with the network's tags.
    with_gt_heatmaps = estimate(synthetic_split, oracles={"gt_heatmaps"}, heatmaps=False)
    np.testing.assert_allclose(with_gt_heatmaps["poses"], reference["poses"], atol=1e-4)
    # The network's tags are all equal, so joints are grouped arbitrarily; ground-truth tags
    # restore the grouping.
    without_tags = estimate(synthetic_split, tags=False)["poses"]
    assert without_tags.shape != reference["poses"].shape or not np.allclose(
        without_tags, reference["poses"], atol=1.0
    )
    with_gt_tags = estimate(synthetic_split, oracles={"gt_tags"}, tags=False)
    np.testing.assert_allclose(with_gt_tags["poses"], reference["poses"], atol=1e-4)


def test_configuration_errors(tmp_path):
    with pytest.raises(ValueError, match="model is needed"):
        predictor_lib.PoseEstimator(None, COCO_INFO, predictor_lib.InferenceConfig())
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        loading.load_predictor(tmp_path / "missing.keras")
    (tmp_path / "weights.h5").write_bytes(b"x")
    with pytest.raises(ValueError, match="weights.h5"):
        loading.load_predictor(tmp_path / "weights.h5")
    assert predictor_lib.parse_scales("2,1,0.5") == (2.0, 1.0, 0.5)
    with pytest.raises(ValueError):
        predictor_lib.parse_scales("1,-1")


# ------------------------------------------------------------------ a real (tiny) Keras model


@pytest.fixture(scope="module")
def tiny_model_file(tmp_path_factory):
    from associative_embedding.modeling.hourglass import StackedHourglass

    model = StackedHourglass(num_stacks=2, widths=(8, 8), stem_widths=(8, 8), num_joints=17)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    return path, model


def test_load_predictor_keras_and_saved_model(tiny_model_file, tmp_path):
    path, model = tiny_model_file
    images = np.random.default_rng(0).uniform(size=(2, 64, 96, 3)).astype(np.float32)
    expected = model(images).numpy()[:, -1]
    predictor = loading.load_predictor(path)
    assert predictor.input_multiple == 8
    np.testing.assert_allclose(predictor(images), expected, atol=1e-5)
    exported = tmp_path / "saved_model"
    model.export(str(exported), verbose=False)
    from_saved_model = loading.load_predictor(exported)
    np.testing.assert_allclose(from_saved_model(images), expected, atol=1e-5)


def test_tool_with_a_tiny_random_keras_model(shared_data, tiny_model_file, tmp_path):
    path, _ = tiny_model_file
    result = run_tool(
        *coco_mini_args(shared_data), f"--model={path}", "--input_size=128", "--flip",
        "--scales=1,0.5", "--fusion=paper", "--max_images=2", "--detection_threshold=0.0",
        f"--output_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["num_images"] == 2 and 0.0 <= metrics["AP"] <= 1.0
    results = json.loads((tmp_path / "keypoint_results.json").read_text())
    assert len(results) == metrics["num_detections"]
    assert all(len(r["keypoints"]) == 51 for r in results)


# ------------------------------------------------------------------ non-square real photos


class PaddedPhotoNetwork:
    """Perfect maps of the current record's people, plus peaks in the input's padding.

    Inside the image the outputs are what a perfect network trained with sub-pixel targets
    would give (Gaussian peaks at the joints, tag n * 3 for person n). Training never
    supervises the padding that the test-time preprocessing adds right/bottom of a non-square
    photo (the loss ignores everything outside the source image), so a trained network's
    heatmaps there are arbitrary: here every joint channel peaks at 1.5 in the middle of the
    padding, with person 0's tag.
    """

    def __init__(self, input_size: int, sigma: float = 2.0):
        self.input_size, self.sigma = input_size, sigma
        self.record = None

    def _maps(self, keypoints, output_hw, padding_peak):
        heatmaps = ground_truth_heatmaps(
            keypoints, output_hw, stride=4, sigma=self.sigma, subpixel=True
        )
        tags = ground_truth_tags(keypoints, output_hw, stride=4)[..., 0]
        if padding_peak is not None:
            row, column = padding_peak
            heatmaps[row, column, :] = 1.5
            tags[row, column, :] = 0.0  # person 0's tag
        return np.concatenate([heatmaps, tags], axis=-1)

    def __call__(self, images):
        record = self.record
        _, height, width, _ = images.shape
        input_from_image, resized_hw, padded_hw = transforms.eval_resize_affine(
            record.height, record.width, self.input_size
        )
        assert tuple(padded_hw) == (height, width)
        output_hw = (height // 4, width // 4)
        # The middle of the widest band of map pixels that cover padding only (none when
        # the resized photo is a multiple of 64 on both sides, e.g. 640x480 at 512).
        first_row, first_column = (-(-size // 4) for size in resized_hw)
        peak = mirrored_peak = None
        if output_hw[0] - first_row >= max(output_hw[1] - first_column, 1):
            peak = ((first_row + output_hw[0]) // 2, output_hw[1] // 2)
        elif output_hw[1] - first_column >= 1:
            peak = (output_hw[0] // 2, (first_column + output_hw[1]) // 2)
        if peak is not None:
            mirrored_peak = (peak[0], output_hw[1] - 1 - peak[1])
        keypoints = transforms.transform_points(record.keypoints, input_from_image)
        outputs = [self._maps(keypoints, output_hw, peak)]
        if images.shape[0] == 2:  # the flip test's mirrored input: its padding is on the left
            mirrored = keypoints[:, list(COCO_INFO.flip_index)].copy()
            mirrored[..., 0] = width - 1 - mirrored[..., 0]
            outputs.append(self._maps(mirrored, output_hw, mirrored_peak))
        return np.stack(outputs)


@pytest.fixture(scope="module")
def coco_mini_split(shared_data):
    folder = shared_data / COCO_MINI
    split = readers.read_split(folder / "person_keypoints_train2017.json", folder / "images")
    # Landscape and portrait photos, most of them padded at 512.
    padded = [
        transforms.eval_resize_affine(record.height, record.width, 512)[1:]
        for record in split.records
    ]
    assert sum(resized != padded for resized, padded in padded) >= len(split.records) // 2
    return split


def padded_photo_ap(split, *, flip: bool, mask_padding: bool = True) -> float:
    network = PaddedPhotoNetwork(input_size=512)
    config = predictor_lib.InferenceConfig(
        input_size=512, flip=flip, mask_padding=mask_padding, decoder={"adjust": "taylor"}
    )
    estimator = predictor_lib.PoseEstimator(
        loading.Predictor(network, source="perfect"), split.keypoint_info, config
    )

    def estimate_record(record):
        network.record = record
        return estimator(record)

    metrics = predictor_lib.evaluate_records(
        split.records, estimate_record, predictor_lib.build_evaluator(split), progress=False
    )
    return metrics["AP"]


@pytest.mark.parametrize("flip", [False, True])
def test_perfect_maps_of_non_square_photos_round_trip_to_full_ap(coco_mini_split, flip):
    """Resize + pad of landscape and portrait photos, the network's maps, flip fusion, decoding
    and back-projection agree: perfect maps give AP ~1 although the padding holds peaks."""
    assert padded_photo_ap(coco_mini_split, flip=flip) >= 0.97


def test_padding_peaks_are_decoded_as_joints_when_not_masked(coco_mini_split):
    # The same maps without the padding mask (measured 0.79): person 0 of every padded photo
    # takes the padding's joints, which lie outside the image, and its true joints form a
    # second, lower-scored person.
    assert padded_photo_ap(coco_mini_split, flip=False, mask_padding=False) < 0.9
