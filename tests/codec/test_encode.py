"""Tests of the training-target encoder (associative_embedding/codec/encode.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from associative_embedding.codec.encode import (
    KeypointEncoder,
    default_sigma,
    encode_targets,
    gaussian_patch,
    gaussian_window_radius,
    keypoint_output_pixels,
)


def official_heatmaps(output_pixels: np.ndarray, output_res: int, num_joints: int) -> np.ndarray:
    """NumPy port of the official GenerateHeatmap (pose-ae-train data/coco_pose/dp.py), fed with
    integer output pixels; returns (h, w, K)."""
    sigma = output_res / 64
    size = 6 * sigma + 3
    x = np.arange(0, size, 1, float)
    y = x[:, np.newaxis]
    x0 = y0 = 3 * sigma + 1
    g = np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma**2))
    hms = np.zeros((num_joints, output_res, output_res), dtype=np.float32)
    for person in output_pixels:
        for idx, (px, py, visible) in enumerate(person):
            if visible <= 0:
                continue
            px, py = int(px), int(py)
            if px < 0 or py < 0 or px >= output_res or py >= output_res:
                continue
            ul = int(px - 3 * sigma - 1), int(py - 3 * sigma - 1)
            br = int(px + 3 * sigma + 2), int(py + 3 * sigma + 2)
            c, d = max(0, -ul[0]), min(br[0], output_res) - ul[0]
            a, b = max(0, -ul[1]), min(br[1], output_res) - ul[1]
            cc, dd = max(0, ul[0]), min(br[0], output_res)
            aa, bb = max(0, ul[1]), min(br[1], output_res)
            hms[idx, aa:bb, cc:dd] = np.maximum(hms[idx, aa:bb, cc:dd], g[a:b, c:d])
    return hms.transpose(1, 2, 0)


def random_keypoints(rng, num_people, num_joints, input_size, integer=False, margin=0):
    xy = rng.uniform(-0.5 + margin, input_size - 0.5 - margin, size=(num_people, num_joints, 2))
    if integer:
        xy = np.round(xy)
    visibility = rng.integers(1, 3, size=(num_people, num_joints, 1))
    return np.concatenate([xy, visibility], axis=-1).astype(np.float32)


def test_sigma_and_window_follow_the_official_code():
    assert default_sigma(128) == 2.0
    assert default_sigma(64) == 1.0
    assert default_sigma((96, 128)) == 2.0
    assert gaussian_window_radius(2.0) == 7  # 6σ+3 = 15 pixels wide
    assert gaussian_window_radius(1.0) == 4  # 9 pixels wide
    patch = gaussian_patch(2.0)
    assert patch.shape == (15, 15)
    assert patch[7, 7] == 1.0
    assert patch[7, 8] == pytest.approx(math.exp(-1 / 8))


def test_argmax_recovers_every_joint_exactly():
    rng = np.random.default_rng(0)
    input_size, output_size, num_joints = 512, 128, 17
    encoder = KeypointEncoder(output_size, num_joints)
    for _ in range(5):
        keypoints = random_keypoints(rng, 1, num_joints, input_size)
        heatmaps = encoder.encode(keypoints)["heatmaps"].numpy()
        flat = heatmaps.reshape(-1, num_joints).argmax(axis=0)
        rows, cols = np.unravel_index(flat, (output_size, output_size))
        # Contract 5: integer pixel = floor(x_out + 0.5), x_out = (x_in + 0.5) / 4 - 0.5.
        x_out = (keypoints[0, :, 0].astype(np.float64) + 0.5) / 4 - 0.5
        y_out = (keypoints[0, :, 1].astype(np.float64) + 0.5) / 4 - 0.5
        np.testing.assert_array_equal(cols, np.floor(x_out + 0.5))
        np.testing.assert_array_equal(rows, np.floor(y_out + 0.5))
        np.testing.assert_array_equal(heatmaps[rows, cols, np.arange(num_joints)], 1.0)


def test_every_joint_of_many_people_is_an_exact_peak():
    rng = np.random.default_rng(1)
    encoder = KeypointEncoder(64, 5)
    keypoints = random_keypoints(rng, 8, 5, 256)
    keypoints[2, 3, 2] = 0  # not labelled: must not be drawn
    heatmaps = encoder.encode(keypoints)["heatmaps"].numpy()
    ix, iy, valid = (t.numpy() for t in keypoint_output_pixels(keypoints, 64, 4))
    for joint in range(5):
        expected = {(iy[p, joint], ix[p, joint]) for p in range(8) if valid[p, joint]}
        peaks = set(map(tuple, np.argwhere(heatmaps[..., joint] == 1.0)))
        assert peaks == expected


@pytest.mark.parametrize("output_size", [64, 128])
def test_heatmaps_equal_the_official_generator(output_size):
    rng = np.random.default_rng(2)
    input_size = 4 * output_size
    keypoints = random_keypoints(rng, 6, 17, input_size, integer=True)
    keypoints[0, :4, :2] = [[-3, 10], [input_size + 2, 5], [0, 0], [input_size - 1, input_size - 1]]
    keypoints[1, 5:9, 2] = 0
    # For integer input coordinates the official floor(x / 4) equals contract 5's pixel.
    output_pixels = keypoints.copy()
    output_pixels[..., :2] = np.floor(keypoints[..., :2] / 4)
    expected = official_heatmaps(output_pixels, output_size, 17)
    actual = KeypointEncoder(output_size, 17).encode(keypoints)["heatmaps"].numpy()
    np.testing.assert_array_equal(actual, expected)


def test_invalid_joints_are_neither_drawn_nor_indexed():
    keypoints = np.array(
        [
            [
                [10.0, 10.0, 0.0],  # not labelled
                [-0.6, 10.0, 2.0],  # left of the input footprint → output pixel -1
                [511.5, 10.0, 2.0],  # right edge: floor(512 / 4) = 128 is outside
                [np.nan, 5.0, 2.0],  # not finite
                [-0.5, -0.5, 1.0],  # the very corner of the footprint: pixel (0, 0), valid
            ]
        ],
        np.float32,
    )
    targets = KeypointEncoder(128, 5).encode(keypoints)
    heatmaps = targets["heatmaps"].numpy()
    assert heatmaps[..., :4].max() == 0.0
    assert heatmaps[0, 0, 4] == 1.0
    rows = targets["keypoints"].numpy()
    np.testing.assert_array_equal(rows[0, :4], 0.0)
    assert not np.signbit(rows).any()  # no -0.0 from negative indices
    np.testing.assert_array_equal(rows[0, 4], [0.0, 0.0, 1.0])


def test_keypoint_targets_layout():
    keypoints = np.zeros((3, 2, 3), np.float32)
    keypoints[0] = [[17.0, 40.0, 2.0], [0.0, 0.0, 0.0]]
    keypoints[1] = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]  # no valid joint: takes no row
    keypoints[2] = [[100.0, 3.0, 1.0], [255.0, 255.0, 2.0]]
    targets = KeypointEncoder(64, 2, max_people=4).encode(keypoints)
    expected = np.zeros((4, 2, 3), np.float32)
    expected[0, 0] = [4, 10, 1]
    expected[1] = [[25, 0, 1], [63, 63, 1]]
    np.testing.assert_array_equal(targets["keypoints"].numpy(), expected)
    assert int(targets["num_dropped_people"]) == 0


def test_people_beyond_max_people_are_dropped_and_counted():
    rng = np.random.default_rng(3)
    keypoints = random_keypoints(rng, 37, 4, 512, margin=2)
    keypoints[[3, 20], :, 2] = 0  # two people without valid joints do not count
    targets = KeypointEncoder(128, 4).encode(keypoints)
    assert targets["keypoints"].shape == (30, 4, 3)
    assert int(targets["num_dropped_people"]) == 5  # 35 people with joints, 30 kept
    kept = np.delete(keypoints, [3, 20], axis=0)[:30]
    np.testing.assert_array_equal(
        targets["keypoints"].numpy()[..., :2], np.floor((kept[..., :2] + 0.5) / 4)
    )
    # Heatmaps still show every person (official behaviour): the last person's joints peak.
    last = np.floor((keypoints[36, :, :2] + 0.5) / 4).astype(int)
    heatmaps = targets["heatmaps"].numpy()
    np.testing.assert_array_equal(heatmaps[last[:, 1], last[:, 0], np.arange(4)], 1.0)


def test_no_people():
    targets = KeypointEncoder(32, 3).encode(np.zeros((0, 3, 3), np.float32))
    assert targets["heatmaps"].shape == (32, 32, 3)
    assert float(tf.reduce_max(targets["heatmaps"])) == 0.0
    assert float(tf.reduce_sum(targets["keypoints"])) == 0.0
    assert int(targets["num_dropped_people"]) == 0


def test_mask_is_one_minus_ignore_mask():
    encoder = KeypointEncoder(16, 2)
    keypoints = np.zeros((1, 2, 3), np.float32)
    np.testing.assert_array_equal(encoder.encode(keypoints)["mask"].numpy(), np.ones((16, 16)))
    ignore = np.zeros((16, 16), np.uint8)
    ignore[3:7, 2:9] = 1
    mask = encoder.encode(keypoints, ignore)["mask"].numpy()
    np.testing.assert_array_equal(mask, 1.0 - ignore)
    assert mask.dtype == np.float32
    with pytest.raises(ValueError, match="output size"):
        encoder.encode(keypoints, np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match="joints"):
        encoder.encode(np.zeros((1, 3, 3), np.float32))


def test_non_square_output_and_functional_form():
    keypoints = np.array([[[100.0, 30.0, 2.0]]], np.float32)
    targets = encode_targets(keypoints, output_size=(16, 32), num_joints=1)
    heatmaps = targets["heatmaps"].numpy()
    assert heatmaps.shape == (16, 32, 1)
    assert np.unravel_index(heatmaps[..., 0].argmax(), (16, 32)) == (7, 25)


def test_eager_and_dataset_map_give_identical_targets():
    rng = np.random.default_rng(4)
    encoder = KeypointEncoder(32, 17, max_people=3)
    examples = [random_keypoints(rng, count, 17, 128) for count in (0, 1, 5, 2)]
    ignores = [(rng.random((32, 32)) < 0.2).astype(np.float32) for _ in examples]
    eager = [encoder.encode(k, m) for k, m in zip(examples, ignores, strict=True)]

    def generator():
        yield from zip(examples, ignores, strict=True)

    dataset = tf.data.Dataset.from_generator(
        generator,
        output_signature=(
            tf.TensorSpec([None, 17, 3], tf.float32),
            tf.TensorSpec([32, 32], tf.float32),
        ),
    ).map(encoder.encode)
    for expected, actual in zip(eager, dataset, strict=True):
        assert set(actual) == set(expected)
        for key in expected:
            np.testing.assert_array_equal(actual[key].numpy(), expected[key].numpy())
    assert int(eager[2]["num_dropped_people"]) == 2


def test_bad_arguments():
    with pytest.raises(ValueError):
        KeypointEncoder(0, 17)
    with pytest.raises(ValueError):
        KeypointEncoder(64, 0)
    with pytest.raises(ValueError):
        KeypointEncoder(64, 17, sigma=-1.0)
    with pytest.raises(ValueError):
        KeypointEncoder(64, 17, max_people=0)


def test_subpixel_targets_centre_each_gaussian_on_the_exact_position():
    rng = np.random.default_rng(11)
    keypoints = random_keypoints(rng, 3, 17, 128, margin=12)
    sigma = 1.5
    encoder = KeypointEncoder(32, 17, sigma=sigma, stride=4, subpixel=True)
    heatmaps = encoder.encode(keypoints)["heatmaps"].numpy()
    official = KeypointEncoder(32, 17, sigma=sigma, stride=4).encode(keypoints)
    radius = gaussian_window_radius(sigma)
    centres = (keypoints[..., :2] + 0.5) / 4 - 0.5
    rows, cols = np.mgrid[0:32, 0:32]
    expected = np.zeros_like(heatmaps)
    for person in range(3):
        for joint in range(17):
            x, y = centres[person, joint]
            ix, iy = math.floor(x + 0.5), math.floor(y + 0.5)
            window = (np.abs(cols - ix) <= radius) & (np.abs(rows - iy) <= radius)
            peak = np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * sigma**2)) * window
            expected[..., joint] = np.maximum(expected[..., joint], peak)
    np.testing.assert_allclose(heatmaps, expected, atol=1e-6)
    # Same indices and mask as the official targets; only the heatmaps move.
    np.testing.assert_array_equal(
        encoder.encode(keypoints)["keypoints"].numpy(), official["keypoints"].numpy()
    )
    assert heatmaps.max() <= 1.0 and not np.array_equal(heatmaps, official["heatmaps"].numpy())
    assert encoder.get_config()["subpixel"] is True


def test_subpixel_targets_agree_eagerly_and_in_dataset_map():
    rng = np.random.default_rng(12)
    encoder = KeypointEncoder(32, 17, subpixel=True)
    examples = [random_keypoints(rng, count, 17, 128) for count in (0, 2, 4)]
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(examples), output_signature=tf.TensorSpec([None, 17, 3], tf.float32)
    ).map(lambda keypoints: encoder.encode(keypoints)["heatmaps"])
    for keypoints, mapped in zip(examples, dataset, strict=True):
        # exp() in a graph may be fused differently: equal to float32 rounding, not bitwise.
        np.testing.assert_allclose(
            mapped.numpy(), encoder.encode(keypoints)["heatmaps"], rtol=1e-5, atol=1e-7
        )
