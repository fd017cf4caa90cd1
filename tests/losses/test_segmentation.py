"""Instance-segmentation losses against slow, obviously-correct NumPy loops of the formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from associative_embedding import losses


def _loop_grouping(tags, pixels, categories, valid, push_type, normalization):
    """pull, push per image by explicit loops (tags (B, h, w, C, D))."""
    batch, height, width, _, tag_dim = tags.shape
    pulls, pushes = [], []
    for b in range(batch):
        def tag(n, k, b=b):
            pixel = pixels[b, n, k]
            return tags[b, pixel // width, pixel % width, categories[b, n]]

        instances = [n for n in range(pixels.shape[1]) if valid[b, n]]
        num_samples = pixels.shape[2]
        pull = 0.0
        for n in instances:
            for k in range(num_samples):
                for k2 in range(num_samples):
                    pull += float(np.sum((tag(n, k) - tag(n, k2)) ** 2))
        push, pairs = 0.0, 0
        for n in instances:
            for n2 in instances:
                if n == n2 or categories[b, n] != categories[b, n2]:
                    continue
                pairs += 1
                for k in range(num_samples):
                    for k2 in range(num_samples):
                        squared = float(np.sum((tag(n, k) - tag(n2, k2)) ** 2))
                        if push_type == "exp":
                            push += math.exp(-squared)
                        else:
                            push += max(0.0, 1.0 - math.sqrt(squared))
        if normalization == "mean":
            pull = pull / (len(instances) * num_samples**2 * tag_dim) if instances else 0.0
            push = push / (pairs * num_samples**2) if pairs else 0.0
        pulls.append(pull)
        pushes.append(push)
    return np.array(pushes), np.array(pulls)


def _random_case(seed, batch=3, height=6, width=5, categories=2, tag_dim=1, instances=4,
                 samples=3):
    rng = np.random.default_rng(seed)
    tags = rng.normal(size=(batch, height, width, categories, tag_dim))
    pixels = rng.integers(0, height * width, size=(batch, instances, samples)).astype(np.int32)
    category = rng.integers(0, categories, size=(batch, instances)).astype(np.int32)
    valid = (rng.random((batch, instances)) < 0.8).astype(np.float32)
    valid[0, :2] = 1  # at least one same-or-different pair somewhere
    return tags, pixels, category, valid


@pytest.mark.parametrize("push_type", ["exp", "hinge"])
@pytest.mark.parametrize("normalization", ["mean", "sum"])
@pytest.mark.parametrize("tag_dim", [1, 2])
def test_grouping_loss_matches_numpy_loop(push_type, normalization, tag_dim):
    tags, pixels, category, valid = _random_case(seed=tag_dim, tag_dim=tag_dim)
    push, pull = losses.sampled_pixel_grouping_loss(
        tf.constant(tags), pixels, category, valid,
        push_type=push_type, normalization=normalization,
    )
    expected_push, expected_pull = _loop_grouping(
        tags, pixels, category, valid.astype(bool), push_type, normalization
    )
    np.testing.assert_allclose(pull.numpy(), expected_pull, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(push.numpy(), expected_push, rtol=1e-9, atol=1e-12)


def test_grouping_loss_stacked_and_in_dataset_map():
    tags, pixels, category, valid = _random_case(seed=5)
    stacked = np.stack([tags, 2 * tags], axis=1).astype(np.float32)
    push, pull = losses.sampled_pixel_grouping_loss(stacked, pixels, category, valid)
    assert push.shape == (3, 2) and pull.shape == (3, 2)
    first_push, first_pull = losses.sampled_pixel_grouping_loss(
        stacked[:, 0], pixels, category, valid
    )
    np.testing.assert_allclose(push[:, 0], first_push, rtol=1e-6)
    np.testing.assert_allclose(pull[:, 1], 4 * first_pull.numpy(), rtol=1e-5)

    dataset = tf.data.Dataset.from_tensors((stacked[:, 0], pixels, category, valid)).map(
        lambda t, p, c, v: losses.sampled_pixel_grouping_loss(t, p, c, v)
    )
    mapped_push, mapped_pull = next(iter(dataset))
    np.testing.assert_allclose(mapped_push, first_push, rtol=1e-6)
    np.testing.assert_allclose(mapped_pull, first_pull, rtol=1e-6)


def test_perfect_tags_give_zero_pull_and_separated_push():
    # Two instances of one category with constant tags 0 and 5: pull 0, exp push ~ e^-25.
    tags = np.zeros((1, 4, 4, 1, 1), np.float32)
    tags[0, :, 2:] = 5.0
    pixels = np.array([[[0, 1, 4, 5], [2, 3, 6, 7]]], np.int32)
    push, pull = losses.sampled_pixel_grouping_loss(
        tags, pixels, np.zeros((1, 2), np.int32), np.ones((1, 2), np.float32)
    )
    assert float(pull[0]) == 0.0
    assert float(push[0]) == pytest.approx(math.exp(-25.0), rel=1e-5)


def test_push_only_within_a_category_and_padding_ignored():
    tags = np.zeros((1, 2, 2, 2, 1), np.float32)  # identical tags everywhere
    pixels = np.array([[[0, 1], [2, 3], [0, 0]]], np.int32)
    valid = np.array([[1, 1, 0]], np.float32)
    different = np.array([[0, 1, -1]], np.int32)
    push, pull = losses.sampled_pixel_grouping_loss(tags, pixels, different, valid)
    assert float(push[0]) == 0.0 and float(pull[0]) == 0.0
    same = np.array([[1, 1, -1]], np.int32)
    push, _ = losses.sampled_pixel_grouping_loss(tags, pixels, same, valid)
    assert float(push[0]) == pytest.approx(1.0)


def test_gradients_finite_and_zero_off_samples():
    tags, pixels, category, valid = _random_case(seed=7)
    tags = tf.Variable(tags.astype(np.float32))
    for push_type in ("exp", "hinge"):
        with tf.GradientTape() as tape:
            push, pull = losses.sampled_pixel_grouping_loss(
                tags, pixels, category, valid, push_type=push_type
            )
            total = tf.reduce_sum(push + pull)
        gradient = tape.gradient(total, tags).numpy()
        assert np.all(np.isfinite(gradient))
        used = np.zeros(tags.shape[:4], bool)
        for b in range(pixels.shape[0]):
            for n in range(pixels.shape[1]):
                if valid[b, n]:
                    for pixel in pixels[b, n]:
                        row, column = divmod(int(pixel), tags.shape[2])
                        used[b, row, column, category[b, n]] = True
        assert np.all(gradient[~used] == 0)


def test_segmentation_total_loss_parts_and_weighting():
    rng = np.random.default_rng(0)
    batch, stacks, height, width, categories = 2, 2, 4, 4, 3
    outputs = rng.normal(size=(batch, stacks, height, width, categories * 2)).astype(np.float32)
    target = (rng.random((batch, height, width, categories)) < 0.3).astype(np.float32)
    weight = (rng.random((batch, height, width, categories)) < 0.9).astype(np.float32)
    batch_targets = {
        "detection_target": target,
        "detection_weight": weight,
        "instance_pixels": rng.integers(0, 16, size=(batch, 2, 3)).astype(np.int32),
        "instance_category": np.array([[0, 0], [1, 2]], np.int32),
        "instance_valid": np.ones((batch, 2), np.float32),
    }
    loss, parts = losses.per_example_segmentation_loss(
        outputs, batch_targets, num_categories=categories, tag_dim=1,
        detection_weight=2.0, pull_weight=0.5, push_weight=0.25,
    )
    expected_detection = np.mean(
        weight[:, None] * (outputs[..., :categories] - target[:, None]) ** 2, axis=(1, 2, 3, 4)
    )
    np.testing.assert_allclose(parts["detection"], expected_detection, rtol=1e-5)
    np.testing.assert_allclose(
        loss, 2.0 * parts["detection"] + 0.5 * parts["pull"] + 0.25 * parts["push"], rtol=1e-6
    )
    with pytest.raises(KeyError, match="instance_pixels"):
        losses.per_example_segmentation_loss(
            outputs, {"detection_target": target, "detection_weight": weight},
            num_categories=categories,
        )
