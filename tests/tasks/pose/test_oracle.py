"""Tests for the paper's oracles: ground-truth heatmaps and perfectly separated tags."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from associative_embedding.codec import group_poses, poses_to_image
from associative_embedding.codec.encode import KeypointEncoder
from associative_embedding.core import transforms
from associative_embedding.tasks.pose.oracle import (
    GT_HEATMAPS,
    GT_TAGS,
    apply_oracles,
    ground_truth_heatmaps,
    ground_truth_tags,
    parse_oracles,
)


def synthetic_people(rng: np.random.Generator, num_people: int, width: int, height: int):
    """(P, 17, 3) people in image pixels; a few joints unlabelled."""
    people = np.zeros((num_people, 17, 3), np.float32)
    for index in range(num_people):
        centre_x = (index + 0.5) * width / num_people
        people[index, :, 0] = centre_x + rng.uniform(-0.4, 0.4, 17) * width / num_people
        people[index, :, 1] = rng.uniform(0.1, 0.9, 17) * height
        people[index, :, 2] = 2
        people[index, rng.choice(17, 3, replace=False), :] = 0
    return people


def test_parse_oracles():
    assert parse_oracles("gt_heatmaps,gt_tags") == {GT_HEATMAPS, GT_TAGS}
    assert parse_oracles(["gt_tags"]) == {GT_TAGS}
    assert parse_oracles("") == frozenset() == parse_oracles(None)
    with pytest.raises(ValueError, match="gt_detections"):
        parse_oracles("gt_detections")


def test_ground_truth_heatmaps_are_the_encoder_targets():
    rng = np.random.default_rng(0)
    keypoints = synthetic_people(rng, 3, 256, 192)
    heatmaps = ground_truth_heatmaps(keypoints, (48, 64), stride=4)
    expected = KeypointEncoder((48, 64), 17, stride=4).encode(keypoints)["heatmaps"].numpy()
    np.testing.assert_array_equal(heatmaps, expected)
    assert heatmaps.shape == (48, 64, 17)
    # Peak 1 at the integer output pixel floor((x + 0.5) / 4) of a labelled joint.
    person, joint = np.argwhere(keypoints[..., 2] > 0)[0]
    column, row = np.floor((keypoints[person, joint, :2] + 0.5) / 4).astype(int)
    assert heatmaps[row, column, joint] == 1.0


def test_subpixel_ground_truth_heatmaps_are_the_subpixel_targets():
    rng = np.random.default_rng(1)
    keypoints = synthetic_people(rng, 3, 256, 192)
    heatmaps = ground_truth_heatmaps(keypoints, (48, 64), stride=4, sigma=2.0, subpixel=True)
    encoder = KeypointEncoder((48, 64), 17, sigma=2.0, stride=4, subpixel=True)
    # Bit-identical to the targets as training renders them, inside tf.data ...
    dataset = tf.data.Dataset.from_tensors(keypoints).map(encoder.encode)
    np.testing.assert_array_equal(heatmaps, next(iter(dataset))["heatmaps"].numpy())
    # ... and within float32 rounding of the eager encoder (whose squares go through Pow).
    np.testing.assert_allclose(
        heatmaps, encoder.encode(keypoints)["heatmaps"].numpy(), rtol=0, atol=1e-6
    )


def test_ground_truth_tags_nearest_person_by_hand():
    keypoints = np.zeros((2, 2, 3), np.float32)
    keypoints[0, 0] = [4, 4, 2]  # output pixel (1, 1)
    keypoints[1, 0] = [28, 4, 2]  # output pixel (7, 1)
    keypoints[0, 1] = [4, 20, 1]  # joint 1: only person 0 has it
    tags = ground_truth_tags(keypoints, (6, 10), stride=4)
    assert tags.shape == (6, 10, 2, 1)
    # Joint 0: columns <= 3 are nearer person 0 (tag 0), columns >= 5 nearer person 1 (tag 3).
    np.testing.assert_array_equal(tags[:, :4, 0, 0], 0.0)
    np.testing.assert_array_equal(tags[:, 5:, 0, 0], 3.0)
    # Joint 1: everything belongs to person 0.
    np.testing.assert_array_equal(tags[..., 1, 0], 0.0)
    # Spacing is configurable; a channel nobody has falls back to the nearest joint of any type.
    keypoints[0, 1, 2] = 0
    tags = ground_truth_tags(keypoints, (6, 10), stride=4, tag_spacing=5.0)
    np.testing.assert_array_equal(tags[:, 5:, 1, 0], 5.0)
    np.testing.assert_array_equal(tags[:, :4, 1, 0], 0.0)
    # No valid joint at all (here: outside the map): zeros.
    outside = np.array([[[500.0, 500.0, 2.0], [0.0, 0.0, 0.0]]], np.float32)
    assert not ground_truth_tags(outside, (6, 10), stride=4).any()


# Quantisation to the nearest output pixel (0.5 px) plus the decoder's quarter-pixel adjust,
# which moves away from a symmetric peak (0.25 px), in output pixels times the stride.
@pytest.mark.parametrize("stride, tolerance", [(1, 0.751), (4, 3.001)])
def test_oracle_maps_decode_to_ground_truth(stride, tolerance):
    rng = np.random.default_rng(1)
    height, width = 150, 220
    people = synthetic_people(rng, 4, width, height)
    # Two people whose right wrists touch (adjacent output pixels) must still separate.
    people[0, 10] = [50.0, 60.0, 2.0]
    people[1, 10] = [50.0 + stride, 60.0, 2.0]
    input_from_image, _, padded = transforms.eval_resize_affine(height, width, 0, 64)
    output_hw = (padded[0] // stride, padded[1] // stride)
    keypoints = transforms.transform_points(people, input_from_image)
    heatmaps, tags = apply_oracles(
        None, None, keypoints, oracles={GT_HEATMAPS, GT_TAGS}, output_hw=output_hw,
        stride=stride,
    )
    poses, scores = group_poses(heatmaps, tags)
    poses = poses_to_image(poses, input_from_image, stride)
    assert poses.shape[0] == 4
    labelled = people[..., 2] > 0
    for person in people:
        mask = person[:, 2] > 0
        errors = np.abs(poses[:, mask, :2] - person[None, mask, :2]).max(axis=(1, 2))
        assert errors.min() <= tolerance
    # Each person's score is the fraction of its labelled joints (peaks are exactly 1).
    np.testing.assert_allclose(np.sort(scores), np.sort(labelled.mean(axis=1)), atol=1e-6)


def test_apply_oracles_keeps_predictions_and_checks_inputs():
    rng = np.random.default_rng(2)
    keypoints = synthetic_people(rng, 2, 128, 128)
    predicted_heatmaps = rng.uniform(size=(32, 32, 17)).astype(np.float32)
    predicted_tags = rng.normal(size=(32, 32, 17, 2)).astype(np.float32)
    heatmaps, tags = apply_oracles(
        predicted_heatmaps, predicted_tags, keypoints, oracles={GT_TAGS}, output_hw=(32, 32),
        stride=4,
    )
    np.testing.assert_array_equal(heatmaps, predicted_heatmaps)
    assert tags.shape == (32, 32, 17, 1)
    heatmaps, tags = apply_oracles(
        predicted_heatmaps, predicted_tags, keypoints, oracles=["gt_heatmaps"],
        output_hw=(32, 32), stride=4,
    )
    np.testing.assert_array_equal(tags, predicted_tags)
    assert heatmaps.max() == 1.0
    with pytest.raises(ValueError, match="tags"):
        apply_oracles(None, None, keypoints, oracles={GT_HEATMAPS}, output_hw=(32, 32), stride=4)
    with pytest.raises(ValueError, match="shapes"):
        apply_oracles(
            predicted_heatmaps, predicted_tags, keypoints, oracles=(), output_hw=(16, 16),
            stride=4,
        )
