"""Tests of ImagePoseEstimator (pixels in memory -> poses) and infer_layout."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tensorflow as tf

from associative_embedding.core import transforms
from associative_embedding.core.keypoint_info import COCO, CROWDPOSE
from associative_embedding.core.record import PoseRecord
from associative_embedding.core.visualization import person_joint_tags
from associative_embedding.modeling import loading
from associative_embedding.tasks.pose import estimator as predictor_lib
from associative_embedding.tasks.pose.image_estimator import ImagePoseEstimator, infer_layout
from associative_embedding.tasks.pose.oracle import ground_truth_heatmaps, ground_truth_tags

TAG_SPACING = 3.0


def noise_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 smooth random image (blurred noise, so the network sees structure)."""
    noise = np.random.default_rng(seed).uniform(0, 255, (height, width, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 3) * 2 - 128, 0, 255).astype(np.uint8)


def record_of(image: np.ndarray) -> PoseRecord:
    ok, png = cv2.imencode(".png", image[..., ::-1])
    assert ok
    height, width = image.shape[:2]
    return PoseRecord(
        image_id=1, file_name="", height=height, width=width,
        keypoints=np.zeros((0, 17, 3), np.float32), boxes=np.zeros((0, 4)), areas=np.zeros(0),
        annotation_ids=np.zeros(0), image_bytes=png.tobytes(),
    )


@pytest.mark.parametrize(
    ("scales", "flip", "fusion"), [((1.0,), False, "official"), ((1.0, 0.5), True, "paper")]
)
def test_matches_pose_estimator_on_the_same_pixels(tiny_model_path, scales, flip, fusion):
    predictor = loading.load_predictor(tiny_model_path)
    config = predictor_lib.InferenceConfig(input_size=128, scales=scales, flip=flip, fusion=fusion)
    image = noise_image(150, 100)
    expected = predictor_lib.PoseEstimator(predictor, COCO, config).estimate(record_of(image))
    prediction = ImagePoseEstimator(predictor, COCO, config)(image)
    assert prediction.num_people == len(expected["scores"]) > 0
    np.testing.assert_allclose(prediction.poses, expected["poses"], atol=1e-4)
    np.testing.assert_allclose(prediction.scores, expected["scores"], atol=1e-6)
    assert prediction.image_size == (150, 100)
    tag_dim = (2 if flip else 1) * (len(scales) if fusion == "paper" else 1)
    assert prediction.tags.shape == (*prediction.heatmaps.shape, tag_dim)


class OracleNetwork:
    """A stand-in network returning ground-truth maps of known people for any input geometry.

    It recognises which scale it is called at from the padded input size, maps the people
    into that input (and its mirror for the flipped half of the batch) and renders the
    training targets: heatmap peaks at the joints, tag n * TAG_SPACING for person n.
    """

    def __init__(self, keypoints: np.ndarray, image_hw: tuple[int, int], input_sizes):
        self.keypoints = keypoints
        self.geometry = {}
        for input_size in input_sizes:
            input_from_image, _, padded_hw = transforms.eval_resize_affine(
                *image_hw, input_size, 64
            )
            self.geometry[padded_hw] = input_from_image

    def _maps(self, keypoints_in: np.ndarray, output_hw: tuple[int, int]) -> np.ndarray:
        heatmaps = ground_truth_heatmaps(keypoints_in, output_hw, stride=4)
        tags = ground_truth_tags(keypoints_in, output_hw, stride=4, tag_spacing=TAG_SPACING)
        return np.concatenate([heatmaps, tags[..., 0]], axis=-1)

    def __call__(self, images: tf.Tensor) -> np.ndarray:
        padded_hw = tuple(int(v) for v in images.shape[1:3])
        keypoints_in = transforms.transform_points(self.keypoints, self.geometry[padded_hw])
        output_hw = (padded_hw[0] // 4, padded_hw[1] // 4)
        outputs = [self._maps(keypoints_in, output_hw)]
        if images.shape[0] == 2:  # flip test: the second image is the mirror
            flipped = keypoints_in[:, list(COCO.flip_index)].copy()
            flipped[..., 0] = padded_hw[1] - 1 - flipped[..., 0]
            outputs.append(self._maps(flipped, output_hw))
        return np.stack(outputs)


def two_people(height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    keypoints = np.zeros((2, 17, 3), np.float32)
    keypoints[0, :, 0] = rng.uniform(10, width / 2 - 10, 17)
    keypoints[1, :, 0] = rng.uniform(width / 2 + 10, width - 10, 17)
    keypoints[:, :, 1] = rng.uniform(10, height - 10, (2, 17))
    keypoints[:, :, 2] = 2
    keypoints[1, 3:5, 2] = 0  # person 1 has no ears
    return keypoints


@pytest.mark.parametrize(
    ("scales", "flip", "max_error"), [((1.0,), False, 0.6), ((1.0, 0.5), True, 0.8)]
)
def test_recovers_known_people_in_image_pixels(scales, flip, max_error):
    height, width, input_size = 300, 200, 256
    keypoints = two_people(height, width)
    network = OracleNetwork(keypoints, (height, width), [input_size * s for s in scales])
    predictor = loading.Predictor(network, input_multiple=64, source="oracle")
    config = predictor_lib.InferenceConfig(
        input_size=input_size, scales=scales, flip=flip,
        decoder={"refine": False, "adjust": "symmetric"},
    )
    image = np.zeros((height, width, 3), np.uint8)
    prediction = ImagePoseEstimator(predictor, COCO, config)(image)
    assert prediction.num_people == 2
    # People are sorted by score: person 0 (all 17 joints) first.
    map_pixel = 4 * height / input_size  # 4.7 image pixels
    errors = []
    for found, truth in zip(prediction.poses, keypoints, strict=True):
        labelled = truth[:, 2] > 0
        np.testing.assert_array_equal(found[:, 2] > 0, labelled)
        errors.append(found[labelled, :2] - truth[labelled, :2])
    errors = np.concatenate(errors)
    # Quantisation to the map grid (half a map pixel; coarser peaks averaged in from scale
    # 0.5) plus the quarter-pixel adjust...
    assert np.abs(errors).max() < max_error * map_pixel, np.abs(errors).max()
    # ... but no systematic shift (a half-pixel convention slip would be 0.5 * map_pixel).
    assert np.all(np.abs(errors.mean(axis=0)) < 0.15 * map_pixel), errors.mean(axis=0)

    # The tags read back at the decoded joints are the people's tags (corner -> centre shift).
    centre_poses = prediction.map_poses - np.array([0.5, 0.5, 0.0], np.float32)
    tags = person_joint_tags(centre_poses, prediction.tags)
    np.testing.assert_allclose(tags[0][np.isfinite(tags[0])], 0.0, atol=1e-6)
    np.testing.assert_allclose(tags[1][np.isfinite(tags[1])], TAG_SPACING, atol=1e-6)
    assert np.isnan(tags[1, 3:5]).all()

    # maps_on_image: a grid covering the image; joint peaks where the joints are.
    heatmaps, _ = prediction.maps_on_image()
    grid_h, grid_w = heatmaps.shape[:2]
    assert abs(grid_h / grid_w - height / width) < 0.02
    row, column = np.unravel_index(np.argmax(heatmaps[..., 0]), (grid_h, grid_w))
    expected = keypoints[:, 0, :2] * np.array([grid_w / width, grid_h / height])
    distance = np.min(np.hypot(expected[:, 0] - column, expected[:, 1] - row))
    assert distance <= 1.0
    small, small_tags = prediction.maps_on_image(max_size=40)
    assert max(small.shape[:2]) == 40
    assert small_tags.shape[:3] == small.shape


def test_no_person_gives_empty_arrays():
    def silent(images):
        return np.zeros((images.shape[0], images.shape[1] // 4, images.shape[2] // 4, 34))

    predictor = loading.Predictor(silent, input_multiple=64)
    prediction = ImagePoseEstimator(predictor, COCO)(np.zeros((90, 120, 3), np.uint8))
    assert prediction.poses.shape == (0, 17, 3)
    assert prediction.scores.shape == (0,)


def test_rejects_oracles_and_bad_images(tiny_model_path):
    predictor = loading.load_predictor(tiny_model_path)
    with pytest.raises(ValueError, match="ground truth"):
        ImagePoseEstimator(predictor, COCO, predictor_lib.InferenceConfig(oracles={"gt_tags"}))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        ImagePoseEstimator(predictor, COCO)(np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError, match="do not fit K = 14 joints"):
        ImagePoseEstimator(predictor, CROWDPOSE)(np.zeros((64, 64, 3), np.uint8))


def fake_predictor(channels: int) -> loading.Predictor:
    def call(images):
        return np.zeros((images.shape[0], images.shape[1] // 4, images.shape[2] // 4, channels))

    return loading.Predictor(call, input_multiple=64, source=f"fake{channels}")


@pytest.mark.parametrize(
    ("channels", "dataset", "tag_dim"),
    [(34, "coco", 1), (51, "coco", 2), (28, "crowdpose", 1), (32, "mpii", 1)],
)
def test_infer_layout_from_output_channels(channels, dataset, tag_dim):
    layout = infer_layout(fake_predictor(channels))
    assert (layout.keypoint_info.name, layout.tag_dim, layout.output_stride) == (
        dataset, tag_dim, 4
    )


def test_infer_layout_errors(tiny_model_path):
    with pytest.raises(ValueError, match="cannot tell the dataset from 238"):
        infer_layout(fake_predictor(17 * 14))  # fits COCO (D = 13) and CrowdPose (D = 16)
    with pytest.raises(ValueError, match="fake35: 35 output channels do not fit coco"):
        infer_layout(fake_predictor(35), COCO)
    layout = infer_layout(loading.load_predictor(tiny_model_path))
    assert (layout.num_joints, layout.tag_dim, layout.output_stride) == (17, 1, 4)


def test_a_checkpoint_prefix_loads_like_its_work_dir(tiny_workdir):
    """load_predictor accepts WORKDIR/best/model (config.json found in the parent folder)."""
    from_workdir = loading.load_predictor(tiny_workdir)
    from_prefix = loading.load_predictor(str(tiny_workdir / "best" / "model"))
    images = np.random.default_rng(0).random((1, 64, 64, 3)).astype(np.float32)
    np.testing.assert_array_equal(from_prefix(images), from_workdir(images))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        from associative_embedding.modeling.loading import load_model_from_checkpoint

        load_model_from_checkpoint(str(tiny_workdir / "best" / "missing"))
