"""Tests of test-time fusion (flip, multi-scale) and back-projection (codec/fusion.py)."""

from __future__ import annotations

import numpy as np
import pytest

from associative_embedding.codec import (
    default_flip_index,
    fuse_flip,
    fuse_outputs,
    fuse_scales,
    group_poses,
    image_region_mask,
    map_from_image,
    poses_to_image,
    resize_maps,
    unflip_maps,
    warp_maps,
)
from associative_embedding.core import keypoint_info, transforms
from tests.codec.test_decode import (
    COCO_K,
    assert_decodes_exactly,
    random_people,
    render_maps,
)

COCO_FLIP = np.asarray(keypoint_info.COCO.flip_index)


def flip_people(joints: np.ndarray, width: int) -> np.ndarray:
    """Ground truth of the horizontally flipped image: x -> w - 1 - x and left/right swapped."""
    flipped = joints[:, COCO_FLIP].copy()
    flipped[:, :, 0] = width - 1 - flipped[:, :, 0]
    return flipped


def bilinear_reference(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    """Half-pixel-centre bilinear resize with clamped borders, written out in NumPy."""
    in_h, in_w = maps.shape[:2]
    src_y = np.clip((np.arange(height) + 0.5) * in_h / height - 0.5, 0, in_h - 1)
    src_x = np.clip((np.arange(width) + 0.5) * in_w / width - 0.5, 0, in_w - 1)
    y0 = np.floor(src_y).astype(int)
    x0 = np.floor(src_x).astype(int)
    y1, x1 = np.minimum(y0 + 1, in_h - 1), np.minimum(x0 + 1, in_w - 1)
    wy = (src_y - y0).reshape((-1, 1) + (1,) * (maps.ndim - 2))
    wx = (src_x - x0).reshape((1, -1) + (1,) * (maps.ndim - 2))
    top = maps[y0][:, x0] * (1 - wx) + maps[y0][:, x1] * wx
    bottom = maps[y1][:, x0] * (1 - wx) + maps[y1][:, x1] * wx
    return top * (1 - wy) + bottom * wy


# ----------------------------------------------------------------------------- flip


def test_flip_fusion_of_a_flipped_pair_equals_the_unflipped_decode():
    rng = np.random.default_rng(1)
    height, width = 64, 72
    joints = random_people(rng, 5, height, width)
    joints[:, :, 2] = np.where(rng.random((5, COCO_K)) > 0.2, 1.0, 0.06)  # some for refine
    heatmaps, tags = render_maps(joints, 2.0 * np.arange(5.0)[:, None], height, width)
    # What a perfect network predicts for the flipped image.
    flipped_heatmaps = heatmaps[:, ::-1][:, :, COCO_FLIP]
    flipped_tags = tags[:, ::-1][:, :, COCO_FLIP]

    fused_heatmaps, fused_tags = fuse_flip(heatmaps, tags, flipped_heatmaps, flipped_tags)
    np.testing.assert_array_equal(fused_heatmaps, heatmaps)
    assert fused_tags.shape == (height, width, COCO_K, 2)
    np.testing.assert_array_equal(fused_tags, np.concatenate([tags, tags], axis=3))

    expected_poses, expected_scores = group_poses(heatmaps, tags)
    poses, scores = group_poses(fused_heatmaps, fused_tags)
    np.testing.assert_array_equal(poses, expected_poses)
    np.testing.assert_array_equal(scores, expected_scores)


def test_flip_fusion_of_separately_rendered_flipped_maps():
    """The flipped image's maps rendered from flipped ground truth (not by array flipping)."""
    rng = np.random.default_rng(2)
    height, width = 64, 64
    joints = random_people(rng, 4, height, width)
    person_tags = 2.0 * np.arange(4.0)[:, None]
    heatmaps, tags = render_maps(joints, person_tags, height, width)
    flipped_heatmaps, flipped_tags = render_maps(
        flip_people(joints, width), person_tags, height, width
    )
    fused_heatmaps, fused_tags = fuse_flip(heatmaps, tags, flipped_heatmaps, flipped_tags)
    np.testing.assert_allclose(fused_heatmaps, heatmaps, atol=1e-6)
    poses, _ = group_poses(fused_heatmaps, fused_tags)
    assert_decodes_exactly(poses, joints)
    np.testing.assert_allclose(poses, group_poses(heatmaps, tags)[0], atol=1e-5)


def test_unflip_maps_reindexes_joints_and_mirrors_columns():
    heatmaps = np.random.default_rng(3).random((4, 6, COCO_K)).astype(np.float32)
    tags = np.random.default_rng(4).random((4, 6, COCO_K, 2)).astype(np.float32)
    back_heatmaps, back_tags = unflip_maps(heatmaps, tags)
    # Left eye (1) of the original image = right eye (2) of the flipped one, mirrored.
    np.testing.assert_array_equal(back_heatmaps[:, 0, 1], heatmaps[:, 5, 2])
    np.testing.assert_array_equal(back_tags[2, 1, 15, :], tags[2, 4, 16, :])
    np.testing.assert_array_equal(back_heatmaps[:, :, 0], heatmaps[:, ::-1, 0])
    # Unflipping twice is the identity.
    twice = unflip_maps(back_heatmaps, back_tags)
    np.testing.assert_array_equal(twice[0], heatmaps)
    np.testing.assert_array_equal(twice[1], tags)


def test_flip_index_defaults_and_validation():
    assert default_flip_index(17) == keypoint_info.COCO.flip_index
    assert default_flip_index(14) == keypoint_info.CROWDPOSE.flip_index
    assert default_flip_index(16) == keypoint_info.MPII.flip_index
    heatmaps = np.zeros((4, 4, 3), np.float32)
    _, back_tags = unflip_maps(heatmaps, np.zeros((4, 4, 3)), flip_index=[1, 0, 2])
    assert back_tags.shape == (4, 4, 3, 1)
    with pytest.raises(ValueError, match="permutation"):
        unflip_maps(heatmaps, np.zeros((4, 4, 3)), flip_index=[0, 0, 1])
    with pytest.raises(ValueError, match="No unique keypoint dataset"):
        unflip_maps(heatmaps, np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="do not match"):
        fuse_flip(heatmaps, np.zeros((4, 4, 3)), np.zeros((4, 5, 3)), np.zeros((4, 5, 3)),
                  flip_index=[0, 1, 2])


# ----------------------------------------------------------------------------- resampling


@pytest.mark.parametrize("size", [(24, 40), (6, 10), (17, 23), (12, 20)])
def test_resize_maps_uses_half_pixel_centres(size):
    maps = np.random.default_rng(5).random((12, 20, 3, 2)).astype(np.float32)
    resized = resize_maps(maps, size)
    assert resized.shape == size + (3, 2)
    np.testing.assert_allclose(resized, bilinear_reference(maps, *size), atol=1e-5)
    # Any channel count, including a single one (OpenCV drops it) and more than 128.
    assert resize_maps(maps[..., :1, 0], size).shape == size + (1,)
    wide = np.random.default_rng(6).random((5, 7, 600)).astype(np.float32)
    np.testing.assert_allclose(
        resize_maps(wide, (10, 14)), bilinear_reference(wide, 10, 14), atol=1e-5
    )


def test_warp_maps_with_a_scale_matrix_equals_resize():
    maps = np.random.default_rng(7).random((16, 24, 4)).astype(np.float32)
    target_from_source = transforms.scale_matrix(2.0)
    warped = warp_maps(maps, np.linalg.inv(target_from_source), (32, 48), border="replicate")
    # cv2.warpAffine interpolates with 1/32-pixel fixed-point weights.
    np.testing.assert_allclose(warped, resize_maps(maps, (32, 48)), atol=2e-2)
    constant = warp_maps(maps, np.linalg.inv(transforms.translation_matrix(5, 0)), (16, 24))
    np.testing.assert_array_equal(constant[:, :5], 0.0)
    np.testing.assert_allclose(constant[:, 5:], maps[:, :-5], atol=1e-6)
    with pytest.raises(ValueError, match="border"):
        warp_maps(maps, np.eye(3), (4, 4), border="wrap")


# ----------------------------------------------------------------------------- multi-scale


def _render_scale(joints_image, person_tags, input_from_image, padded_hw, stride=4):
    """Perfect maps at one test scale: ground truth moved into that scale's output grid."""
    affine = map_from_image(input_from_image, stride)
    joints_map = transforms.transform_points(joints_image, affine)
    height, width = padded_hw[0] // stride, padded_hw[1] // stride
    return render_maps(joints_map, person_tags, height, width), affine


@pytest.mark.parametrize("mode, expected_dim", [("official", 1), ("paper", 3)])
def test_multi_scale_fusion_decodes_the_people_in_image_pixels(mode, expected_dim):
    rng = np.random.default_rng(8)
    image_h, image_w = 150, 230
    num_people = 3
    # People spread out enough to stay separate at the smallest scale.
    joints = random_people(rng, num_people, image_h, image_w, min_separation=30, margin=10)
    person_tags = 3.0 * np.arange(num_people)[:, None]
    scales = [0.5, 2.0, 1.0]
    heatmaps, tags, affines, inputs = [], [], [], []
    for scale in scales:
        input_from_image, _, padded = transforms.eval_resize_affine(
            image_h, image_w, int(256 * scale)
        )
        (scale_heatmaps, scale_tags), affine = _render_scale(
            joints, person_tags + scale, input_from_image, padded
        )
        heatmaps.append(scale_heatmaps)
        tags.append(scale_tags)
        affines.append(affine)
        inputs.append(input_from_image)
    fused_heatmaps, fused_tags = fuse_scales(
        heatmaps, tags, scales, mode=mode, maps_from_image=affines
    )
    assert fused_heatmaps.shape == heatmaps[1].shape  # the largest map is the reference
    assert fused_tags.shape == heatmaps[1].shape + (expected_dim,)
    if mode == "official":
        # Tags of scale 1 only (constant person tag + 1 at every joint).
        joint_pixel = np.round(
            transforms.transform_points(joints[0, 0, :2], affines[1])
        ).astype(int)  # person 0's nose on the reference (scale 2) grid
        assert fused_tags[joint_pixel[1], joint_pixel[0], 0, 0] == pytest.approx(1.0, abs=1e-5)

    poses, _ = group_poses(fused_heatmaps, fused_tags)
    image_poses = poses_to_image(poses, inputs[1], stride=4)
    # Half an output pixel of the reference scale, in image pixels.
    tolerance = 0.5 * 4 / inputs[1][0, 0]
    assert_decodes_exactly(image_poses + [0.5, 0.5, 0.0], joints, tolerance=tolerance)


def test_fuse_scales_tag_modes_and_heatmap_average():
    sizes = [(16, 16), (8, 8), (4, 4)]
    scales = [2.0, 1.0, 0.5]
    heat_values, tag_dims, tag_values = (0.6, 0.3, 0.9), (1, 2, 1), (2.0, 1.0, 5.0)
    heatmaps = [
        np.full(size + (2,), value, np.float32)
        for size, value in zip(sizes, heat_values, strict=True)
    ]
    tags = [
        np.full(size + (2, dim), value, np.float32)
        for size, dim, value in zip(sizes, tag_dims, tag_values, strict=True)
    ]
    fused, official = fuse_scales(heatmaps, tags, scales, mode="official")
    assert fused.shape == (16, 16, 2)
    np.testing.assert_allclose(fused, 0.6, atol=1e-6)
    np.testing.assert_allclose(official, 1.0)
    assert official.shape == (16, 16, 2, 2)
    _, paper = fuse_scales(heatmaps, tags, scales, mode="paper")
    assert paper.shape == (16, 16, 2, 4)
    np.testing.assert_allclose(paper[0, 0, 0], [2.0, 1.0, 1.0, 5.0])
    _, on_base = fuse_scales(heatmaps, tags, scales, reference_index=1)
    assert on_base.shape == (8, 8, 2, 2)
    with pytest.raises(ValueError, match="mode"):
        fuse_scales(heatmaps, tags, scales, mode="mean")
    with pytest.raises(ValueError, match="one heatmap"):
        fuse_scales(heatmaps, tags[:2], scales)


def test_fuse_outputs_flip_and_scales_together():
    rng = np.random.default_rng(9)
    joints_base = random_people(rng, 3, 32, 32, min_separation=6)
    person_tags = 2.0 * np.arange(3.0)[:, None]
    heatmaps, tags, flipped_heatmaps, flipped_tags = [], [], [], []
    for scale in (1.0, 2.0):
        joints = joints_base.copy()
        joints[:, :, :2] = scale * (joints[:, :, :2] + 0.5) - 0.5
        size = int(32 * scale)
        scale_heatmaps, scale_tags = render_maps(joints, person_tags, size, size)
        heatmaps.append(scale_heatmaps)
        tags.append(scale_tags)
        flipped_heatmaps.append(scale_heatmaps[:, ::-1][:, :, COCO_FLIP])
        flipped_tags.append(scale_tags[:, ::-1][:, :, COCO_FLIP])
    for mode, dim in (("official", 2), ("paper", 4)):
        fused_heatmaps, fused_tags = fuse_outputs(
            heatmaps, tags, (1.0, 2.0), flipped_heatmaps=flipped_heatmaps,
            flipped_tags=flipped_tags, mode=mode,
        )
        assert fused_tags.shape == (64, 64, COCO_K, dim)
        poses, _ = group_poses(fused_heatmaps, fused_tags)
        expected = joints_base.copy()
        expected[:, :, :2] = 2.0 * (expected[:, :, :2] + 0.5) - 0.5
        assert_decodes_exactly(poses, expected)
    with pytest.raises(ValueError, match="both"):
        fuse_outputs(heatmaps, tags, (1.0, 2.0), flipped_heatmaps=flipped_heatmaps)


# ----------------------------------------------------------------------------- back-projection


@pytest.mark.parametrize(
    "image_hw, input_size, stride",
    [((480, 640), 512, 4), ((333, 250), 512, 4), ((200, 300), 0, 4), ((97, 131), 0, 1),
     ((427, 640), 768, 2)],
)
def test_poses_to_image_inverts_the_preprocessing_affine(image_hw, input_size, stride):
    rng = np.random.default_rng(10)
    input_from_image, _, _ = transforms.eval_resize_affine(*image_hw, input_size)
    points = np.concatenate(
        [rng.uniform(0, image_hw[1] - 1, (4, 5, 1)), rng.uniform(0, image_hw[0] - 1, (4, 5, 1)),
         rng.random((4, 5, 1))], axis=2,
    )
    # Forward: image -> input pixel centres -> output pixel centres -> corner coordinates.
    corners = transforms.transform_points(points, map_from_image(input_from_image, stride))
    corners[..., :2] += 0.5
    back = poses_to_image(corners.astype(np.float32), input_from_image, stride)
    assert back.dtype == np.float32 and back.shape == points.shape
    np.testing.assert_allclose(back, points, atol=2e-3)


@pytest.mark.parametrize("image_hw, input_size, stride", [((120, 180), 512, 4), ((90, 70), 0, 1)])
def test_decode_then_back_project_recovers_image_joints(image_hw, input_size, stride):
    """End to end: ground truth in image pixels -> perfect maps -> decode -> image pixels,
    within half an original pixel (stride-4 maps need an upscaled input for that)."""
    rng = np.random.default_rng(11)
    image_h, image_w = image_hw
    joints = random_people(rng, 3, image_h, image_w, min_separation=12, margin=3)
    input_from_image, _, padded = transforms.eval_resize_affine(image_h, image_w, input_size)
    (heatmaps, tags), _ = _render_scale(
        joints, 2.0 * np.arange(3.0)[:, None], input_from_image, padded, stride
    )
    poses, _ = group_poses(heatmaps, tags)
    image_poses = poses_to_image(poses, input_from_image, stride)
    assert_decodes_exactly(image_poses + [0.5, 0.5, 0.0], joints, tolerance=0.5)


def test_poses_to_image_rejects_bad_shapes():
    with pytest.raises(ValueError, match="poses"):
        poses_to_image(np.zeros((3, 2)), np.eye(3))
    assert poses_to_image(np.zeros((0, COCO_K, 3)), np.eye(3)).shape == (0, COCO_K, 3)


# ----------------------------------------------------------------------------- padding


@pytest.mark.parametrize(
    "image_hw, input_size, stride",
    [((427, 640), 256, 4), ((640, 480), 256, 4), ((480, 640), 512, 4), ((333, 250), 192, 4),
     ((97, 131), 0, 1), ((200, 300), 0, 4)],
)
def test_image_region_mask_keeps_the_map_pixels_that_cover_the_resized_image(
    image_hw, input_size, stride
):
    input_from_image, resized_hw, padded_hw = transforms.eval_resize_affine(
        *image_hw, input_size
    )
    map_hw = (padded_hw[0] // stride, padded_hw[1] // stride)
    inside = image_region_mask(map_from_image(input_from_image, stride), image_hw, map_hw)
    assert inside.shape == map_hw and inside.dtype == bool
    # Map pixel j covers input pixels [stride j, stride j + stride): it shows the image iff
    # stride j < resized size.
    rows, columns = (-(-size // stride) for size in resized_hw)
    expected = np.zeros(map_hw, bool)
    expected[:rows, :columns] = True
    np.testing.assert_array_equal(inside, expected)
    # Every image pixel's map pixel is inside (the corners included).
    height, width = image_hw
    corners = np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]], float)
    mapped = transforms.transform_points(corners, map_from_image(input_from_image, stride))
    pixels = np.floor(mapped + 0.5).astype(int)
    assert inside[pixels[:, 1], pixels[:, 0]].all()


def test_image_region_mask_rejects_rotations():
    rotation = transforms.rotation_matrix(10.0, 5.0, 5.0)
    with pytest.raises(ValueError, match="axis-aligned"):
        image_region_mask(rotation, (10, 10), (3, 3))
