"""Tests of the TF augmentation and eval preprocessing (associative_embedding/data/augment.py)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from associative_embedding.codec.encode import KeypointEncoder, keypoint_output_pixels
from associative_embedding.core import transforms
from associative_embedding.core.keypoint_info import COCO
from associative_embedding.data import augment
from associative_embedding.data.augment import AugmentConfig, Augmenter

# Three joints whose flip index swaps 1 and 2, like a nose and two eyes.
FLIP_INDEX = (0, 2, 1)


def fixed_params(
    rotation=0.0, crop_scale=1.0, translate=(0.0, 0.0), flip=False, **colour
) -> dict[str, tf.Tensor]:
    params = {
        "rotation": tf.constant(rotation, tf.float64),
        "crop_scale": tf.constant(crop_scale, tf.float64),
        "translate_x": tf.constant(translate[0], tf.float64),
        "translate_y": tf.constant(translate[1], tf.float64),
        "flip": tf.constant(flip),
        "hue": tf.constant(colour.get("hue", 0.0), tf.float32),
        "saturation": tf.constant(colour.get("saturation", 1.0), tf.float32),
        "brightness": tf.constant(colour.get("brightness", 0.0), tf.float32),
        "contrast": tf.constant(colour.get("contrast", 1.0), tf.float32),
    }
    return params


def dotted_image(height, width, points, radius=1):
    """Black image with a white (2 radius + 1)² square dot centred on each integer point."""
    image = np.zeros((height, width, 3), np.uint8)
    for x, y in points:
        x, y = int(x), int(y)
        image[y - radius : y + radius + 1, x - radius : x + radius + 1] = 255
    return image


def well_inside(x, y, size, margin=3.0):
    """Whether a whole dot around (x, y) stays inside the input (edge dots are cut off)."""
    return margin <= x <= size - 1 - margin and margin <= y <= size - 1 - margin


def centroid_near(image, x, y, radius=7):
    """Intensity-weighted centroid of channel 0 within `radius` of (x, y)."""
    height, width = image.shape[:2]
    rows, cols = np.mgrid[:height, :width]
    window = ((cols - x) ** 2 + (rows - y) ** 2) <= radius**2
    weights = image[..., 0] * window
    total = weights.sum()
    assert total > 0.5, f"no dot found near ({x:.1f}, {y:.1f})"
    return (weights * cols).sum() / total, (weights * rows).sum() / total


# ---------------------------------------------------------------------------------- matrices


def test_tf_matrices_mirror_the_numpy_reference():
    np.testing.assert_allclose(
        augment.scale_matrix(0.3, 0.7).numpy(), transforms.scale_matrix(0.3, 0.7), atol=1e-15
    )
    np.testing.assert_allclose(
        augment.translation_matrix(2.5, -4.0).numpy(), transforms.translation_matrix(2.5, -4.0)
    )
    np.testing.assert_allclose(
        augment.rotation_matrix(17.0, 3.0, 5.0).numpy(),
        transforms.rotation_matrix(17.0, 3.0, 5.0),
        atol=1e-12,
    )
    np.testing.assert_array_equal(augment.flip_matrix(100).numpy(), transforms.flip_matrix(100))
    matrix = transforms.rotation_matrix(33.0, 10.0, 20.0) @ transforms.scale_matrix(0.6, 1.3)
    np.testing.assert_allclose(
        augment.invert_affine(matrix).numpy(), transforms.invert(matrix), atol=1e-12
    )
    points = np.array([[[1.0, 2.0, 2.0], [30.5, -4.0, 0.0]]], np.float32)
    np.testing.assert_allclose(
        augment.transform_points(points, matrix).numpy(),
        transforms.transform_points(points, matrix),
        rtol=1e-6,
    )


def test_augmentation_affine_is_the_documented_composition():
    params = fixed_params(rotation=21.0, crop_scale=1.1, translate=(0.05, -0.1), flip=True)
    height, width, size = 300, 400, 256
    crop = 400 * 1.1
    center = np.array([(width - 1) / 2 + 0.05 * crop, (height - 1) / 2 - 0.1 * crop])
    zoom = size / crop
    expected = (
        transforms.flip_matrix(size)
        @ transforms.rotation_matrix(21.0, (size - 1) / 2, (size - 1) / 2)
        @ transforms.translation_matrix((size - 1) / 2, (size - 1) / 2)
        @ np.diag([zoom, zoom, 1.0])
        @ transforms.translation_matrix(-center[0], -center[1])
    )
    actual = augment.augmentation_affine(height, width, params, size).numpy()
    np.testing.assert_allclose(actual, expected, atol=1e-10)


def test_identity_parameters_fit_the_long_side_centred():
    params = fixed_params()
    matrix = augment.augmentation_affine(200, 400, params, 256).numpy()
    # Long side: pixel footprint [-0.5, 399.5] → [-0.5, 255.5] (half-pixel-centre resize).
    # The short side is centred: (H - 1) / 2 = 99.5 → 127.5, i.e. 64 pixels below the top.
    expected = transforms.translation_matrix(0, 64) @ transforms.scale_matrix(256 / 400)
    np.testing.assert_allclose(matrix, expected, atol=1e-12)


@pytest.mark.parametrize(
    "height, width, size", [(200, 400, 256), (640, 427, 192), (480, 640, 128), (300, 300, 64)]
)
def test_top_left_placement_is_the_eval_geometry(height, width, size):
    """With placement='top_left' the identity parameters put the image where test-time
    preprocessing does (long side resized, padding right/bottom), and augmentations move it
    from there."""
    # The image's corners; test time rounds the resized short side to whole pixels, which
    # moves them by less than half an input pixel.
    corners = np.array([[-0.5, -0.5], [width - 0.5, -0.5], [-0.5, height - 0.5],
                        [width - 0.5, height - 0.5]])
    expected, _, _ = transforms.eval_resize_affine(height, width, size)

    def assert_maps_corners(params, expected_matrix):
        matrix = augment.augmentation_affine(height, width, params, size, "top_left").numpy()
        np.testing.assert_allclose(
            transforms.transform_points(corners, matrix),
            transforms.transform_points(corners, expected_matrix),
            atol=0.5,
        )

    assert_maps_corners(fixed_params(), expected)
    assert_maps_corners(fixed_params(flip=True), transforms.flip_matrix(size) @ expected)
    # A translation of the crop side shifts the input by that fraction of S.
    assert_maps_corners(
        fixed_params(translate=(0.1, -0.05)),
        transforms.translation_matrix(-0.1 * size, 0.05 * size) @ expected,
    )
    # The official placement centres the short side: a shift for non-square images only.
    centred = augment.augmentation_affine(height, width, fixed_params(), size).numpy()
    shift = np.abs(
        transforms.transform_points(corners, centred)
        - transforms.transform_points(corners, expected)
    ).max()
    assert (shift > 1.0) == (height != width)
    with pytest.raises(ValueError, match="placement"):
        AugmentConfig(placement="middle")


# ------------------------------------------------------------------------- geometric accuracy


GEOMETRY_CASES = {
    "rotation": fixed_params(rotation=27.0),
    "rotation_negative": fixed_params(rotation=-30.0),
    "scale_up": fixed_params(crop_scale=0.75),
    "scale_down": fixed_params(crop_scale=1.25),
    "flip": fixed_params(flip=True),
    "everything": fixed_params(rotation=-18.0, crop_scale=0.8, translate=(0.1, -0.07), flip=True),
}


@pytest.mark.parametrize("case", sorted(GEOMETRY_CASES))
def test_painted_dot_moves_with_its_keypoint(case):
    points = [(40, 30), (200, 60), (120, 150), (260, 170), (60, 165)]
    image = dotted_image(200, 300, points)
    keypoints = np.array([[[x, y, 2.0] for x, y in points[:3]],
                          [[x, y, 2.0] for x, y in [*points[3:], (150, 100)]]], np.float32)
    image[100, 150] = 0  # the last joint has no dot: only check joints with a dot
    config = AugmentConfig.identity(input_size=256)
    out = Augmenter(config, FLIP_INDEX)(image, keypoints, None, None, GEOMETRY_CASES[case])
    warped = out["image"].numpy()
    moved = out["keypoints"].numpy()
    checked = 0
    for person in range(2):
        for joint in range(3):
            x, y, visible = moved[person, joint]
            source_joint = FLIP_INDEX[joint] if bool(out["flip"]) else joint
            if visible == 0 or (person == 1 and source_joint == 2) or not well_inside(x, y, 256):
                continue
            cx, cy = centroid_near(warped, x, y)
            assert abs(cx - x) <= 1.0 and abs(cy - y) <= 1.0, (case, person, joint, cx - x, cy - y)
            checked += 1
    assert checked >= 3


@pytest.mark.parametrize("seed", range(4))
def test_painted_dot_moves_with_its_keypoint_under_random_augmentation(seed):
    points = [(40, 30), (200, 60), (120, 150), (260, 170)]
    image = dotted_image(200, 300, points)
    keypoints = np.array([[[x, y, 2.0] for x, y in points[:2]] + [[0, 0, 0]],
                          [[x, y, 1.0] for x, y in points[2:]] + [[0, 0, 0]]], np.float32)
    config = AugmentConfig(
        input_size=256, max_hue_delta=0.0, saturation_range=(1, 1), max_brightness_delta=0.0,
        contrast_range=(1, 1), flip_probability=0.5,
    )
    out = Augmenter(config, FLIP_INDEX)(image, keypoints, None, tf.constant([7, seed]))
    warped = out["image"].numpy()
    for x, y, visible in out["keypoints"].numpy().reshape(-1, 3):
        if visible > 0 and well_inside(x, y, 256):
            cx, cy = centroid_near(warped, x, y)
            assert abs(cx - x) <= 1.0 and abs(cy - y) <= 1.0


def test_flipped_targets_equal_targets_of_the_flipped_image_with_swapped_joints():
    rng = np.random.default_rng(0)
    size = 128
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    keypoints = np.concatenate(
        [rng.integers(0, size, (4, 17, 2)), rng.integers(0, 3, (4, 17, 1))], axis=-1
    ).astype(np.float32)
    ignore = np.zeros((size, size), np.uint8)
    ignore[10:50, 5:30] = 1
    config = AugmentConfig.identity(input_size=size, ignore_outside_image=False)
    augmenter = Augmenter(config, COCO.flip_index)
    encoder = KeypointEncoder(config.output_size, 17)
    plain = augmenter(image, keypoints, ignore, None, fixed_params())
    flipped = augmenter(image, keypoints, ignore, None, fixed_params(flip=True))

    # The image really is the mirror image, and the unflipped path is the identity.
    np.testing.assert_allclose(plain["image"].numpy(), image / 255, rtol=0, atol=1e-6)
    np.testing.assert_allclose(flipped["image"].numpy(), image[:, ::-1] / 255, rtol=0, atol=1e-6)

    # Targets of the flip-augmented example == targets of the flipped image with swapped joints.
    mirrored = keypoints[:, list(COCO.flip_index)].copy()
    mirrored[..., 0] = size - 1 - mirrored[..., 0]
    of_mirror = augmenter(image[:, ::-1], mirrored, ignore[:, ::-1], None, fixed_params())
    by_hand = encoder.encode(of_mirror["keypoints"], of_mirror["ignore_mask"])
    np.testing.assert_array_equal(of_mirror["keypoints"].numpy(), mirrored)
    augmented = encoder.encode(flipped["keypoints"], flipped["ignore_mask"])
    for key in ("heatmaps", "keypoints", "mask"):
        np.testing.assert_array_equal(augmented[key].numpy(), by_hand[key].numpy(), err_msg=key)

    # ...and the mirrored, re-indexed targets of the unflipped example.
    unflipped = encoder.encode(plain["keypoints"], plain["ignore_mask"])
    np.testing.assert_array_equal(
        augmented["heatmaps"].numpy(),
        unflipped["heatmaps"].numpy()[:, ::-1][..., list(COCO.flip_index)],
    )
    np.testing.assert_array_equal(
        augmented["mask"].numpy(), unflipped["mask"].numpy()[:, ::-1]
    )


def test_keypoints_leaving_the_input_become_invalid_exactly_like_the_encoder_says():
    rng = np.random.default_rng(1)
    keypoints = np.concatenate(
        [rng.uniform(-0.5, 399.5, (6, 17, 2)), np.full((6, 17, 1), 2.0)], axis=-1
    ).astype(np.float32)
    image = np.zeros((300, 400, 3), np.uint8)
    config = AugmentConfig(input_size=128, max_translation=0.4)
    augmenter = Augmenter(config, COCO.flip_index)
    encoder = KeypointEncoder(config.output_size, 17)
    total_invalid = 0
    for seed in range(6):
        out = augmenter(image, keypoints, None, tf.constant([seed, 1]))
        moved = out["keypoints"].numpy()
        inside = np.all((moved[..., :2] >= -0.5) & (moved[..., :2] < 127.5), axis=-1)
        np.testing.assert_array_equal(moved[..., 2] > 0, inside)
        _, _, valid = (t.numpy() for t in keypoint_output_pixels(moved, 32, 4))
        np.testing.assert_array_equal(valid, inside)
        total_invalid += int((~inside).sum())
        assert encoder.encode(moved)["keypoints"].shape == (30, 17, 3)
    assert total_invalid > 0  # the translation range really pushed joints out


# ------------------------------------------------------------------------------- ignore mask


@pytest.mark.parametrize("ignore_outside_image", [True, False])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_ignore_mask_is_warped_consistently(ignore_outside_image, interpolation):
    height, width = 120, 200
    ignore = np.zeros((height, width), np.uint8)
    ignore[30:70, 50:120] = 1
    config = AugmentConfig.identity(
        input_size=128, ignore_outside_image=ignore_outside_image,
        mask_interpolation=interpolation,
    )
    params = fixed_params(rotation=20.0, crop_scale=1.15, translate=(0.08, 0.05), flip=True)
    out = Augmenter(config, FLIP_INDEX)(
        np.zeros((height, width, 3), np.uint8), np.zeros((0, 3, 3), np.float32), ignore, None,
        params,
    )
    warped = out["ignore_mask"].numpy()
    assert warped.shape == (32, 32)

    # Where every output-pixel centre comes from in the image.
    output_from_image = transforms.output_from_input(4) @ out["input_from_image"].numpy()
    image_from_output = transforms.invert(output_from_image)
    rows, cols = np.mgrid[:32, :32]
    source = transforms.transform_points(
        np.stack([cols, rows], axis=-1).astype(np.float64), image_from_output
    )
    sx, sy = source[..., 0], source[..., 1]
    in_rect = (sx >= 49.5) & (sx < 119.5) & (sy >= 29.5) & (sy < 69.5)
    in_image = (sx >= -0.5) & (sx < width - 0.5) & (sy >= -0.5) & (sy < height - 0.5)
    expected = in_rect | (~in_image if ignore_outside_image else False)
    # Only pixels whose source lies within one image pixel of an edge may differ.
    def near(lo, hi, value):
        return (np.abs(value - lo) < 1.0) | (np.abs(value - hi) < 1.0)

    boundary = (near(49.5, 119.5, sx) & (sy > 28.5) & (sy < 70.5)) | (
        near(29.5, 69.5, sy) & (sx > 48.5) & (sx < 120.5)
    ) | near(-0.5, width - 0.5, sx) | near(-0.5, height - 0.5, sy)
    disagree = (warped > 0.5) != expected
    assert not (disagree & ~boundary).any()
    assert in_rect.sum() > 20 and warped.sum() >= in_rect.sum() * 0.8
    assert set(np.unique(warped)) <= {0.0, 1.0}
    if ignore_outside_image:
        assert (~in_image).sum() > 0 and (warped[~in_image & ~boundary] == 1).all()


# ------------------------------------------------------------------------------ colour jitter


def test_color_jitter_identity_and_ranges():
    rng = np.random.default_rng(2)
    image = tf.constant(rng.random((16, 16, 3)), tf.float32)
    for color_space in ("hsv", "yiq"):
        for contrast_mode in ("image", "pixel"):
            same = augment.color_jitter(image, fixed_params(), contrast_mode, color_space)
            np.testing.assert_allclose(same.numpy(), image.numpy(), atol=2e-6)
            strong = augment.color_jitter(
                image, fixed_params(hue=0.2, saturation=1.5, brightness=0.3, contrast=1.5),
                contrast_mode, color_space,
            ).numpy()
            assert strong.min() >= 0.0 and strong.max() <= 1.0


def test_yiq_jitter_equals_the_stepwise_computation():
    rng = np.random.default_rng(3)
    image = rng.random((8, 8, 3)).astype(np.float32)
    params = fixed_params(hue=0.13, saturation=0.7, brightness=-0.12, contrast=1.3)
    matrix = augment.yiq_color_matrix(0.13, 0.7).numpy().astype(np.float64)
    step = image.astype(np.float64) @ matrix.T - 0.12
    image_contrast = (step - step.mean(axis=(0, 1))) * 1.3 + step.mean(axis=(0, 1))
    pixel_mean = step.mean(axis=-1, keepdims=True)
    pixel_contrast = (step - pixel_mean) * 1.3 + pixel_mean
    for mode, expected in (("image", image_contrast), ("pixel", pixel_contrast)):
        actual = augment.color_jitter(image, params, mode, "yiq").numpy()
        np.testing.assert_allclose(actual, np.clip(expected, 0, 1), atol=1e-5)


def test_hsv_jitter_follows_the_official_steps():
    rng = np.random.default_rng(4)
    image = rng.random((8, 8, 3)).astype(np.float32)
    params = fixed_params(hue=-0.1, saturation=1.2, brightness=0.05, contrast=0.8)
    step = tf.image.adjust_saturation(tf.image.adjust_hue(image, -0.1), 1.2).numpy() + 0.05
    pixel_mean = step.mean(axis=-1, keepdims=True)
    expected = np.clip((step - pixel_mean) * 0.8 + pixel_mean, 0, 1)
    actual = augment.color_jitter(image, params, "pixel", "hsv").numpy()
    np.testing.assert_allclose(actual, expected, atol=1e-5)


def test_yiq_hue_turns_the_same_way_as_hsv():
    red = tf.constant([[[0.9, 0.1, 0.1]]], tf.float32)
    params = fixed_params(hue=0.3)
    for color_space in ("hsv", "yiq"):
        turned = augment.color_jitter(red, params, "image", color_space).numpy()[0, 0]
        assert turned.argmax() == 1, (color_space, turned)  # red → green for positive hue


# ------------------------------------------------------------------------ seeds and tf.data


def test_sampled_parameters_cover_the_official_ranges():
    seeds = tf.stack([tf.fill([400], 3), tf.range(400)], axis=1)
    samples = tf.vectorized_map(lambda s: augment.sample_augmentation(s, AugmentConfig()), seeds)
    rotation = samples["rotation"].numpy()
    crop_scale = samples["crop_scale"].numpy()
    translate = samples["translate_x"].numpy()
    assert -30 <= rotation.min() < -25 and 25 < rotation.max() <= 30
    assert 0.75 <= crop_scale.min() < 0.8 and 1.2 < crop_scale.max() <= 1.25
    assert -0.2 <= translate.min() < -0.17 and 0.17 < translate.max() <= 0.2
    assert 0.4 < samples["flip"].numpy().mean() < 0.6
    assert np.abs(samples["hue"].numpy()).max() <= 0.2
    saturation = samples["saturation"].numpy()
    assert saturation.min() >= 0.5 and saturation.max() <= 1.5
    assert np.abs(samples["brightness"].numpy()).max() <= 0.3
    # Different seeds give different parameters; the same seed gives the same.
    assert len(np.unique(rotation)) == 400
    again = augment.sample_augmentation(tf.constant([3, 5]), AugmentConfig())
    assert again["rotation"].numpy() == rotation[5]


@pytest.mark.parametrize("color_space", ["hsv", "yiq"])
def test_same_result_eagerly_and_inside_dataset_map(color_space):
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (90, 130, 3), dtype=np.uint8)
    keypoints = np.concatenate(
        [rng.uniform(0, 89, (3, 17, 2)), np.full((3, 17, 1), 2.0)], axis=-1
    ).astype(np.float32)
    ignore = (rng.random((90, 130)) < 0.1).astype(np.uint8)
    config = AugmentConfig(input_size=64, color_space=color_space, contrast_mode="image")
    augmenter = Augmenter(config, COCO.flip_index)
    encoder = KeypointEncoder(config.output_size, 17)

    def run(seed):
        out = augmenter(image, keypoints, ignore, seed)
        targets = encoder.encode(out["keypoints"], out["ignore_mask"])
        return {**out, **{f"target_{key}": value for key, value in targets.items()}}

    seeds = [tf.constant([11, index], tf.int64) for index in range(3)]
    eager = [run(seed) for seed in seeds]
    mapped = list(tf.data.Dataset.from_tensor_slices(tf.stack(seeds)).map(run))
    graph = [tf.function(run)(seed) for seed in seeds]
    for expected, from_map, from_function in zip(eager, mapped, graph, strict=True):
        for key in expected:
            np.testing.assert_allclose(from_map[key].numpy(), expected[key].numpy(),
                                       rtol=0, atol=1e-6, err_msg=key)
            np.testing.assert_allclose(from_function[key].numpy(), expected[key].numpy(),
                                       rtol=0, atol=1e-6, err_msg=key)
    assert not np.array_equal(eager[0]["image"].numpy(), eager[1]["image"].numpy())


# ------------------------------------------------------------------------ eval preprocessing


@pytest.mark.parametrize(
    "height, width, input_size",
    [(480, 640, 512), (640, 427, 512), (333, 500, 512), (100, 37, 256), (513, 511, 512),
     (75, 300, 0), (200, 200, 128)],
)
def test_eval_preprocess_matches_eval_resize_affine(height, width, input_size):
    rng = np.random.default_rng(height * width)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = augment.eval_preprocess(image, input_size)
    matrix, resized_hw, padded_hw = transforms.eval_resize_affine(height, width, input_size)
    np.testing.assert_allclose(out["input_from_image"].numpy(), matrix, rtol=0, atol=1e-15)
    assert tuple(out["resized_size"].numpy()) == resized_hw
    assert tuple(out["padded_size"].numpy()) == padded_hw
    assert tuple(out["image_size"].numpy()) == (height, width)
    pixels = out["image"].numpy()
    assert pixels.shape == (*padded_hw, 3) and pixels.dtype == np.float32
    expected = tf.image.resize(image.astype(np.float32) / 255, resized_hw).numpy()
    if input_size == 0:
        expected = image / np.float32(255)
    np.testing.assert_allclose(pixels[: resized_hw[0], : resized_hw[1]], expected, atol=1e-5)
    assert not pixels[resized_hw[0] :].any() and not pixels[:, resized_hw[1] :].any()


def test_eval_preprocess_in_dataset_map():
    images = [np.full((50, 80, 3), 100, np.uint8), np.full((90, 40, 3), 200, np.uint8)]
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(images), output_signature=tf.TensorSpec([None, None, 3], tf.uint8)
    ).map(lambda image: augment.eval_preprocess(image, 128))
    for image, out in zip(images, dataset, strict=True):
        matrix, _, padded = transforms.eval_resize_affine(*image.shape[:2], 128)
        np.testing.assert_allclose(out["input_from_image"].numpy(), matrix, atol=1e-15)
        assert out["image"].shape[:2] == padded


def test_config_validation():
    with pytest.raises(ValueError, match="multiple"):
        AugmentConfig(input_size=510)
    with pytest.raises(ValueError):
        AugmentConfig(scale_range=(1.2, 0.8))
    with pytest.raises(ValueError):
        AugmentConfig(flip_probability=1.5)
    with pytest.raises(ValueError):
        AugmentConfig(contrast_mode="global")
    with pytest.raises(ValueError):
        AugmentConfig(color_space="lab")
    with pytest.raises(ValueError):
        Augmenter(AugmentConfig(), (0, 0, 1))
    with pytest.raises(ValueError):
        augment.eval_preprocess(np.zeros((4, 4, 3), np.uint8), -1)
