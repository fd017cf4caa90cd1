"""Tests of the person-crop geometry (tasks/refinement/crops.py)."""

from __future__ import annotations

import numpy as np
import pytest

from associative_embedding.core import transforms
from associative_embedding.tasks.refinement import crops

# (x, y, w, h) boxes: tall, wide, tiny (min_side applies), a single joint, partly outside.
BOXES = [
    (40.0, 30.0, 60.0, 150.0),
    (10.5, 80.25, 170.0, 45.0),
    (100.0, 100.0, 20.0, 10.0),
    (75.0, 60.0, 0.0, 0.0),
    (-30.0, 150.0, 90.0, 120.0),
]
CROP_SIZES = [64, 192, 256, 320]


def test_keypoint_box_uses_joints_above_min_score():
    pose = np.array([[10, 20, 0.9], [50, 5, 0.5], [300, 300, 0.0], [30, 80, 0.2]], np.float32)
    np.testing.assert_allclose(crops.keypoint_box(pose), [10, 5, 40, 75])
    np.testing.assert_allclose(crops.keypoint_box(pose, min_score=0.3), [10, 5, 40, 15])
    with pytest.raises(ValueError, match="no joint"):
        crops.keypoint_box(pose, min_score=0.95)
    with pytest.raises(ValueError, match=r"\(K, 3\)"):
        crops.keypoint_box(np.zeros((17, 2)))


@pytest.mark.parametrize("box", BOXES)
@pytest.mark.parametrize("crop_size", CROP_SIZES)
def test_affine_maps_the_square_onto_the_crop(box, crop_size):
    crop_from_image = crops.person_crop_affine(box, crop_size)
    x, y, width, height = box
    side = max(width, height, 60.0) * 1.3
    assert crops.crop_side(box) == pytest.approx(side)
    center = np.array([x + width / 2, y + height / 2])
    # The square's outer edges (pixel-centre convention: half a pixel beyond the centres) go
    # to the crop's outer edges, its centre to the crop's centre.
    corners = np.array([center - side / 2, center + side / 2, center])
    expected = np.array([[-0.5, -0.5], [crop_size - 0.5] * 2, [(crop_size - 1) / 2] * 2])
    np.testing.assert_allclose(
        transforms.transform_points(corners, crop_from_image), expected, atol=1e-9
    )


@pytest.mark.parametrize("box", BOXES)
@pytest.mark.parametrize("crop_size", CROP_SIZES)
def test_crop_uncrop_round_trip(box, crop_size):
    rng = np.random.default_rng(crop_size)
    crop_from_image = crops.person_crop_affine(box, crop_size, min_side=40.0, margin=1.5)
    points = rng.uniform(-50, 400, size=(7, 17, 2))
    in_crop = transforms.transform_points(points, crop_from_image)
    np.testing.assert_allclose(crops.uncrop_points(in_crop, crop_from_image), points, atol=1e-6)
    # Extra columns (scores) pass through unchanged.
    scored = np.concatenate([in_crop, rng.uniform(size=(7, 17, 1))], axis=-1).astype(np.float32)
    back = crops.uncrop_points(scored, crop_from_image)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back[..., 2], scored[..., 2])
    np.testing.assert_allclose(back[..., :2], points, atol=0.5)  # float32 precision


def blob_image(height, width, center, sigma):
    """(H, W, 3) float32 image with a Gaussian blob at a sub-pixel (x, y) image point."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    blob = np.exp(-((xs - center[0]) ** 2 + (ys - center[1]) ** 2) / (2 * sigma**2))
    return np.repeat(blob[..., None], 3, axis=-1).astype(np.float32)


def weighted_centre(image):
    ys, xs = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    weights = image[..., 0].astype(np.float64)
    return np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()


@pytest.mark.parametrize("box", BOXES[:3])
@pytest.mark.parametrize("crop_size", [64, 256, 320])
def test_an_image_point_appears_at_its_predicted_crop_pixel(box, crop_size):
    x, y, width, height = box
    point = np.array([x + 0.3 * width + 0.37, y + 0.6 * height - 0.21])
    image = blob_image(300, 260, point, sigma=6.0)
    crop_from_image = crops.person_crop_affine(box, crop_size)
    crop = crops.crop_image(image, crop_from_image, crop_size)
    assert crop.shape == (crop_size, crop_size, 3) and crop.dtype == np.float32
    predicted = transforms.transform_points(point[None], crop_from_image)[0]
    # A half-pixel convention error would show as a 0.5 px offset.
    np.testing.assert_allclose(weighted_centre(crop), predicted, atol=0.1)


def test_a_single_pixel_lands_on_the_nearest_crop_pixel_uint8():
    # Upsampling crop (3.2x): a lone bright image pixel peaks at the crop pixel nearest to its
    # predicted position, and bilinear sampling puts exactly its value there when the
    # prediction is an integer crop pixel.
    image = np.zeros((120, 100, 3), np.uint8)
    image[47, 31] = (255, 128, 7)
    box = (31.0 - 30.0, 47.0 - 30.0, 60.0, 60.0)  # centred on the pixel; side 78
    crop_size = 256
    crop_from_image = crops.person_crop_affine(box, crop_size)
    crop = crops.crop_image(image, crop_from_image, crop_size)
    assert crop.dtype == np.uint8
    predicted = transforms.transform_points(np.array([[31.0, 47.0]]), crop_from_image)[0]
    np.testing.assert_allclose(predicted, [(crop_size - 1) / 2] * 2)  # the centre, 127.5
    row, column = np.unravel_index(np.argmax(crop[..., 0]), crop.shape[:2])
    assert abs(column - predicted[0]) <= 0.5 and abs(row - predicted[1]) <= 0.5
    # A crop whose scale is 4 and whose grid puts the pixel exactly on crop pixel (128, 128):
    # bilinear sampling there returns the pixel's own value.
    box = (31.0 - 32.125, 47.0 - 32.125, 64.0, 64.0)  # side 64, centre (30.875, 46.875)
    crop_from_image = crops.person_crop_affine(box, crop_size, margin=1.0)
    predicted = transforms.transform_points(np.array([[31.0, 47.0]]), crop_from_image)[0]
    np.testing.assert_allclose(predicted, [128.0, 128.0])
    crop = crops.crop_image(image, crop_from_image, crop_size)
    assert tuple(int(v) for v in crop[128, 128]) == (255, 128, 7)
    assert crop[128, 127, 0] < 255 and crop[127, 128, 0] < 255


def test_outside_the_image_is_black_and_errors_are_clear():
    image = np.full((50, 40, 3), 200, np.uint8)
    crop_from_image = crops.person_crop_affine((-100.0, -100.0, 10.0, 10.0), 64)
    assert crops.crop_image(image, crop_from_image, 64).max() == 0
    with pytest.raises(ValueError, match="crop_size"):
        crops.person_crop_affine((0, 0, 10, 10), 0)
    with pytest.raises(ValueError, match="box"):
        crops.person_crop_affine((0, 0, -1, 10), 64)
    with pytest.raises(ValueError, match="positive"):
        crops.person_crop_affine((0, 0, 0, 0), 64, min_side=0.0)
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        crops.crop_image(np.zeros((5, 5)), np.eye(3), 8)
