"""Tests of associative_embedding.losses against slow NumPy loops and hand-computed values."""

from __future__ import annotations

import json
import math
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from associative_embedding import losses

TESTS_DIR = pathlib.Path(__file__).resolve().parent
PROJECT_ROOT = TESTS_DIR.parent.parent
PUSH_TYPES = ("exp", "hinge")


# ---------------------------------------------------------------------------------------------
# Slow, obviously-correct NumPy references (float64, explicit loops).
# ---------------------------------------------------------------------------------------------


def numpy_grouping_loss(tags, people_per_image, push_type="exp"):
    """Reference grouping loss.

    Args:
        tags: (B, h, w, K, D) array.
        people_per_image: list (length B) of (P_b, K, 3) arrays of (x, y, valid).
        push_type: 'exp' or 'hinge'.

    Returns:
        push, pull: (B,) float64 arrays.
    """
    tags = np.asarray(tags, np.float64)
    batch, height, width, num_joints, tag_dim = tags.shape
    push = np.zeros(batch)
    pull = np.zeros(batch)
    for b in range(batch):
        means = []
        person_pulls = []
        for person in np.asarray(people_per_image[b], np.float64).reshape(-1, num_joints, 3):
            person_tags = []
            for k in range(num_joints):
                x, y, valid = person[k]
                col, row = math.floor(x), math.floor(y)
                if valid > 0 and 0 <= col < width and 0 <= row < height:
                    person_tags.append(tags[b, row, col, k])
            if not person_tags:
                continue
            person_tags = np.stack(person_tags)  # (|n|, D)
            mean = person_tags.mean(axis=0)
            squared = sum(float(np.sum((t - mean) ** 2)) for t in person_tags)
            person_pulls.append(squared / len(person_tags) / tag_dim)
            means.append(mean)
        num_people = len(means)
        if num_people > 0:
            pull[b] = sum(person_pulls) / num_people
        if num_people > 1:
            total = 0.0
            for i in range(num_people):
                for j in range(i + 1, num_people):
                    distance_squared = float(np.sum((means[i] - means[j]) ** 2))
                    if push_type == "exp":
                        total += math.exp(-distance_squared)
                    else:
                        total += max(0.0, 1.0 - math.sqrt(distance_squared))
            push[b] = 0.5 * total / (num_people * (num_people - 1) / 2)
    return push, pull


def numpy_heatmap_loss(pred, target, mask, foreground_weight=0.0):
    pred, target, mask = (np.asarray(a, np.float64) for a in (pred, target, mask))
    batch, height, width, num_joints = pred.shape
    result = np.zeros(batch)
    for b in range(batch):
        total = 0.0
        for i in range(height):
            for j in range(width):
                for k in range(num_joints):
                    weight = 1.0 + foreground_weight * target[b, i, j, k]
                    total += weight * mask[b, i, j] * (pred[b, i, j, k] - target[b, i, j, k]) ** 2
        result[b] = total / (height * width * num_joints)
    return result


def random_people(rng, batch, height, width, num_joints, max_people=6):
    """Per-image (P_b, K, 3) arrays with partly valid joints, fractional offsets (floored by the
    loss), some people without any valid joint and some images without people."""
    people = []
    for _ in range(batch):
        count = int(rng.integers(0, max_people + 1))
        person = np.zeros((count, num_joints, 3), np.float32)
        person[..., 0] = rng.integers(0, width, size=(count, num_joints))
        person[..., 1] = rng.integers(0, height, size=(count, num_joints))
        fractional = rng.random((count, num_joints)) < 0.2
        person[..., 0] += np.where(fractional, 0.7, 0.0)
        person[..., 1] += np.where(fractional, 0.4, 0.0)
        person[..., 2] = rng.random((count, num_joints)) < 0.6
        if count >= 2:
            person[int(rng.integers(0, count)), :, 2] = 0.0  # a person with no valid joint
        people.append(person)
    return people


def pad_people(people, num_people, rng=None):
    """Dense (B, P, K, 3) padding; with rng, padding rows and invalid joints get garbage
    (out-of-bounds or NaN) coordinates that must never be read."""
    num_joints = people[0].shape[1]
    dense = np.zeros((len(people), num_people, num_joints, 3), np.float32)
    if rng is not None:
        dense[..., 0] = rng.choice([-7.0, 1e6, np.nan, 3.0], size=dense.shape[:-1])
        dense[..., 1] = rng.choice([-1.0, 5e5, np.nan, 2.0], size=dense.shape[:-1])
    for b, person in enumerate(people):
        dense[b, : len(person)] = person
        if rng is not None and len(person):
            invalid = person[..., 2] == 0
            dense[b, : len(person), :, 0][invalid] = np.nan
            dense[b, : len(person), :, 1][invalid] = -3.0
    return dense


def random_case(seed, tag_dim, batch=3, height=7, width=9, num_joints=5, max_people=6):
    rng = np.random.default_rng(seed)
    tags = (0.8 * rng.normal(size=(batch, height, width, num_joints, tag_dim))).astype(np.float32)
    people = random_people(rng, batch, height, width, num_joints, max_people)
    max_count = max(len(p) for p in people)
    dense = pad_people(people, max_count + int(rng.integers(0, 3)), rng)
    return tags, people, dense


def to_ragged(people, num_joints):
    flat = np.concatenate([p.reshape(-1, num_joints, 3) for p in people], axis=0)
    lengths = [len(p) for p in people]
    return tf.RaggedTensor.from_row_lengths(tf.constant(flat, tf.float32), lengths)


def assert_close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=1e-5, atol=1e-8)


# ---------------------------------------------------------------------------------------------
# Grouping loss vs the NumPy loop.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("push_type", PUSH_TYPES)
@pytest.mark.parametrize("tag_dim", [1, 2])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_grouping_loss_matches_numpy_eagerly(seed, tag_dim, push_type):
    tags, people, dense = random_case(seed, tag_dim)
    expected_push, expected_pull = numpy_grouping_loss(tags, people, push_type)
    push, pull = losses.grouping_loss(tags, dense, push_type=push_type)
    assert push.shape == (tags.shape[0],) and pull.shape == (tags.shape[0],)
    assert_close(push, expected_push)
    assert_close(pull, expected_pull)
    # The random cases must exercise N >= 2 (where the pair normalisation matters).
    assert np.any(expected_push > 0.01)


@pytest.mark.parametrize("push_type", PUSH_TYPES)
def test_grouping_loss_matches_numpy_in_tf_function_without_retracing(push_type):
    tag_dim = 2
    signature = [
        tf.TensorSpec([None, None, None, 5, tag_dim], tf.float32),
        tf.TensorSpec([None, None, 5, 3], tf.float32),
    ]

    @tf.function(input_signature=signature)
    def compute(tags, keypoints):
        return losses.grouping_loss(tags, keypoints, push_type=push_type)

    people_counts = set()
    for seed in range(10, 15):
        tags, people, dense = random_case(seed, tag_dim, batch=2 + seed % 2)
        people_counts.add(dense.shape[1])
        push, pull = compute(tf.constant(tags), tf.constant(dense))
        expected_push, expected_pull = numpy_grouping_loss(tags, people, push_type)
        assert_close(push, expected_push)
        assert_close(pull, expected_pull)
    assert len(people_counts) >= 3, people_counts
    assert compute.experimental_get_tracing_count() == 1


def test_grouping_loss_ragged_in_tf_function_without_retracing():
    signature = [
        tf.TensorSpec([None, None, None, 5, 1], tf.float32),
        tf.RaggedTensorSpec([None, None, 5, 3], tf.float32, ragged_rank=1),
    ]

    @tf.function(input_signature=signature)
    def compute(tags, keypoints):
        return losses.grouping_loss(tags, keypoints)

    for seed in range(20, 24):
        tags, people, _ = random_case(seed, 1)
        push, pull = compute(tf.constant(tags), to_ragged(people, 5))
        expected_push, expected_pull = numpy_grouping_loss(tags, people)
        assert_close(push, expected_push)
        assert_close(pull, expected_pull)
    assert compute.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("push_type", PUSH_TYPES)
@pytest.mark.parametrize("tag_dim", [1, 2])
def test_grouping_loss_matches_numpy_with_xla(tag_dim, push_type):
    @tf.function(jit_compile=True)
    def compute(tags, keypoints):
        return losses.grouping_loss(tags, keypoints, push_type=push_type)

    for seed in (30, 31):
        tags, people, dense = random_case(seed, tag_dim)
        push, pull = compute(tf.constant(tags), tf.constant(dense))
        expected_push, expected_pull = numpy_grouping_loss(tags, people, push_type)
        assert_close(push, expected_push)
        assert_close(pull, expected_pull)
    # Proves the function was compiled by XLA (raises if an op has no XLA kernel).
    hlo = compute.experimental_get_compiler_ir(tf.constant(tags), tf.constant(dense))(stage="hlo")
    assert "HloModule" in hlo


@pytest.mark.parametrize("push_type", PUSH_TYPES)
def test_ragged_and_dense_keypoints_give_identical_results(push_type):
    for seed in (40, 41, 42):
        tags, people, dense = random_case(seed, 2)
        dense_push, dense_pull = losses.grouping_loss(tags, dense, push_type=push_type)
        ragged_push, ragged_pull = losses.grouping_loss(
            tags, to_ragged(people, 5), push_type=push_type
        )
        np.testing.assert_array_equal(ragged_push.numpy(), dense_push.numpy())
        np.testing.assert_array_equal(ragged_pull.numpy(), dense_pull.numpy())


def test_ragged_constant_with_ragged_inner_dims_and_empty_batch():
    # tf.ragged.constant gives ragged inner dims; the joint count comes from the tags.
    tags = np.zeros((2, 4, 4, 3, 1), np.float32)
    tags[0, 1, 1, 0, 0] = 1.0
    keypoints = tf.ragged.constant([[[[1, 1, 1], [0, 0, 0], [0, 0, 0]]], []], dtype=tf.float32)
    push, pull = losses.grouping_loss(tags, keypoints)
    np.testing.assert_array_equal(push.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(pull.numpy(), [0.0, 0.0])
    empty = tf.ragged.constant([[], []], dtype=tf.float32, ragged_rank=1, inner_shape=(3, 3))
    push, pull = losses.grouping_loss(tags, empty)
    np.testing.assert_array_equal(push.numpy(), [0.0, 0.0])


# ---------------------------------------------------------------------------------------------
# Hand-computed cases.
# ---------------------------------------------------------------------------------------------


def _person(joints, num_joints):
    """(K, 3) keypoints from {joint: (x, y)}; other joints invalid."""
    person = np.zeros((num_joints, 3), np.float32)
    for k, (x, y) in joints.items():
        person[k] = (x, y, 1.0)
    return person


def test_two_people_by_hand():
    tags = np.zeros((1, 4, 5, 3, 1), np.float32)
    # Person A: joint 0 at (x=1, y=0) tag 1.0, joint 2 at (x=4, y=3) tag 3.0 → mean 2, pull 1.
    tags[0, 0, 1, 0, 0] = 1.0
    tags[0, 3, 4, 2, 0] = 3.0
    # Person B: joint 1 at (x=2, y=2) tag 0.5 → mean 0.5, pull 0.
    tags[0, 2, 2, 1, 0] = 0.5
    keypoints = np.stack([_person({0: (1, 0), 2: (4, 3)}, 3), _person({1: (2, 2)}, 3)])[None]
    push, pull = losses.grouping_loss(tags, keypoints)
    # pull = (1/N) Σ_n (1/|n|) Σ_k (t - m_n)² = ((1² + 1²)/2 + 0) / 2 = 0.5
    np.testing.assert_allclose(pull.numpy(), [0.5], rtol=1e-6)
    # one pair: push = 0.5 * exp(-(2 - 0.5)²) / 1
    np.testing.assert_allclose(push.numpy(), [0.5 * math.exp(-2.25)], rtol=1e-6)
    hinge_push, hinge_pull = losses.grouping_loss(tags, keypoints, push_type="hinge")
    np.testing.assert_array_equal(hinge_push.numpy(), [0.0])  # means 1.5 apart ≥ 1
    np.testing.assert_allclose(hinge_pull.numpy(), [0.5], rtol=1e-6)


def test_three_people_two_dim_tags_by_hand_uses_pair_normalisation():
    # Means (0, 0), (0.6, 0), (0, 0.8): squared distances 0.36, 0.64, 1.0; distances .6, .8, 1.
    tags = np.zeros((1, 3, 3, 2, 2), np.float32)
    tags[0, 0, 0, 0] = (0.0, 0.0)
    tags[0, 1, 1, 0] = (0.6, 0.0)
    tags[0, 2, 2, 1] = (0.0, 0.8)
    keypoints = np.stack(
        [_person({0: (0, 0)}, 2), _person({0: (1, 1)}, 2), _person({1: (2, 2)}, 2)]
    )[None]
    push, pull = losses.grouping_loss(tags, keypoints)
    exp_sum = math.exp(-0.36) + math.exp(-0.64) + math.exp(-1.0)
    # 3 people → 3 pairs: 0.5 * sum / 3 (an N² = 9 normalisation would give a third of it).
    np.testing.assert_allclose(push.numpy(), [0.5 * exp_sum / 3], rtol=1e-6)
    np.testing.assert_array_equal(pull.numpy(), [0.0])
    hinge_push, _ = losses.grouping_loss(tags, keypoints, push_type="hinge")
    np.testing.assert_allclose(hinge_push.numpy(), [0.5 * (0.4 + 0.2 + 0.0) / 3], rtol=1e-5)


def test_pull_divides_by_tag_dim_by_hand():
    # One person, D = 2, two joints with tags (1, 0) and (3, 4): mean (2, 2),
    # Σ_k ||t - m||² = (1 + 4) + (1 + 4) = 10 → pull = 10 / |n| / D = 10 / 2 / 2 = 2.5.
    tags = np.zeros((1, 2, 2, 2, 2), np.float32)
    tags[0, 0, 0, 0] = (1.0, 0.0)
    tags[0, 1, 1, 1] = (3.0, 4.0)
    keypoints = _person({0: (0, 0), 1: (1, 1)}, 2)[None, None]
    push, pull = losses.grouping_loss(tags, keypoints)
    np.testing.assert_allclose(pull.numpy(), [2.5], rtol=1e-6)
    np.testing.assert_array_equal(push.numpy(), [0.0])  # N = 1


def test_one_person_zero_people_and_all_invalid():
    rng = np.random.default_rng(5)
    tags = rng.normal(size=(3, 4, 4, 3, 1)).astype(np.float32)
    keypoints = np.zeros((3, 2, 3, 3), np.float32)
    keypoints[0, 0] = _person({0: (0, 1), 1: (2, 3), 2: (3, 3)}, 3)  # one person
    keypoints[2, :, :, :2] = 1.0  # image 2: two people with coordinates but all invalid
    # image 1: zero people (all padding)
    push, pull = losses.grouping_loss(tags, keypoints)
    person_tags = np.array([tags[0, 1, 0, 0, 0], tags[0, 3, 2, 1, 0], tags[0, 3, 3, 2, 0]])
    expected_pull = np.mean((person_tags - person_tags.mean()) ** 2)
    np.testing.assert_allclose(pull.numpy(), [expected_pull, 0.0, 0.0], rtol=1e-5)
    np.testing.assert_array_equal(push.numpy(), [0.0, 0.0, 0.0])
    # No people axis at all.
    push, pull = losses.grouping_loss(tags, np.zeros((3, 0, 3, 3), np.float32))
    np.testing.assert_array_equal(push.numpy(), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(pull.numpy(), [0.0, 0.0, 0.0])


@pytest.mark.parametrize("push_type", PUSH_TYPES)
def test_identical_tags_give_push_one_half(push_type):
    tags = np.full((1, 4, 4, 2, 2), 0.3, np.float32)
    keypoints = np.stack([_person({0: (0, 0), 1: (1, 2)}, 2), _person({0: (3, 3), 1: (2, 1)}, 2)])[
        None
    ]
    push, pull = losses.grouping_loss(tags, keypoints, push_type=push_type)
    np.testing.assert_allclose(push.numpy(), [0.5], rtol=1e-7)  # 0.5 * exp(0) / 1 pair
    np.testing.assert_array_equal(pull.numpy(), [0.0])


def test_valid_joint_outside_the_map_is_ignored():
    tags = np.zeros((1, 3, 3, 2, 1), np.float32)
    tags[0, 2, 2, 0, 0] = 5.0  # border pixel a clamped index would read
    tags[0, 1, 1, 1, 0] = 1.0
    keypoints = np.array([[[[3.0, 2.0, 1.0], [1.0, 1.0, 1.0]]]], np.float32)  # x = 3 = width
    push, pull = losses.grouping_loss(tags, keypoints)
    np.testing.assert_array_equal(pull.numpy(), [0.0])  # only joint 1 counts
    np.testing.assert_array_equal(push.numpy(), [0.0])


# ---------------------------------------------------------------------------------------------
# Gradients.
# ---------------------------------------------------------------------------------------------


def _gradients(tags, keypoints, push_type):
    tags = tf.constant(tags)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(tags)
        push, pull = losses.grouping_loss(tags, keypoints, push_type=push_type)
        push_sum, pull_sum = tf.reduce_sum(push), tf.reduce_sum(pull)
    push_gradient = tf.convert_to_tensor(tape.gradient(push_sum, tags)).numpy()
    pull_gradient = tf.convert_to_tensor(tape.gradient(pull_sum, tags)).numpy()
    return push_gradient, pull_gradient


def _edge_cases():
    rng = np.random.default_rng(9)
    tags = rng.normal(size=(1, 4, 4, 3, 2)).astype(np.float32)
    one = np.zeros((1, 3, 3, 3), np.float32)
    one[0, 0] = _person({0: (1, 1), 2: (3, 2)}, 3)
    all_invalid = np.zeros((1, 3, 3, 3), np.float32)
    all_invalid[..., :2] = 2.0
    identical_tags = np.full((1, 4, 4, 3, 2), -0.2, np.float32)
    two = np.zeros((1, 3, 3, 3), np.float32)
    two[0, 0] = _person({0: (1, 1), 2: (3, 2)}, 3)
    two[0, 1] = _person({1: (0, 0)}, 3)
    return {
        "zero_people": (tags, np.zeros((1, 0, 3, 3), np.float32)),
        "padding_only": (tags, np.zeros((1, 3, 3, 3), np.float32)),
        "one_person": (tags, one),
        "all_invalid": (tags, all_invalid),
        "identical_tags": (identical_tags, two),
    }


@pytest.mark.parametrize("push_type", PUSH_TYPES)
@pytest.mark.parametrize(
    "case", ["zero_people", "padding_only", "one_person", "all_invalid", "identical_tags"]
)
def test_edge_case_gradients_are_finite_and_zero_where_due(case, push_type):
    tags, keypoints = _edge_cases()[case]
    push_gradient, pull_gradient = _gradients(tags, keypoints, push_type)
    assert np.all(np.isfinite(push_gradient)) and np.all(np.isfinite(pull_gradient))
    if case in ("zero_people", "padding_only", "all_invalid"):
        np.testing.assert_array_equal(pull_gradient, 0.0)
    if case != "identical_tags" or push_type == "exp":
        # N < 2 has no pairs; exp(-Δ²) is stationary at Δ = 0; the hinge norm's gradient at
        # Δ = 0 is defined as 0 (like torch.abs in HigherHRNet).
        np.testing.assert_array_equal(push_gradient, 0.0)
    if case == "identical_tags":
        np.testing.assert_array_equal(pull_gradient, 0.0)
        push, _ = losses.grouping_loss(tags, keypoints, push_type=push_type)
        np.testing.assert_allclose(push.numpy(), [0.5])


@pytest.mark.parametrize("push_type", PUSH_TYPES)
def test_gradient_is_exactly_zero_at_unreferenced_tags(push_type):
    tags, people, dense = random_case(50, 2, max_people=4)
    tags = tags.copy()
    # Non-finite values at pixels only padding / invalid joints point to must not leak in.
    referenced = np.zeros(tags.shape[:-1], bool)
    for b, person in enumerate(people):
        for p in range(len(person)):
            for k in range(tags.shape[3]):
                x, y, valid = person[p, k]
                if valid > 0:
                    referenced[b, int(np.floor(y)), int(np.floor(x)), k] = True
    tags[0, 0, 0][~referenced[0, 0, 0]] = np.nan
    push_gradient, pull_gradient = _gradients(tags, dense, push_type)
    for gradient in (push_gradient, pull_gradient):
        assert np.all(np.isfinite(gradient))
        np.testing.assert_array_equal(gradient[~referenced], 0.0)
    push, pull = losses.grouping_loss(tags, dense, push_type=push_type)
    assert np.all(np.isfinite(push.numpy())) and np.all(np.isfinite(pull.numpy()))
    # Pull moves every referenced tag of a person with >= 2 distinct joint tags.
    assert np.count_nonzero(pull_gradient[referenced]) > referenced.sum() // 2


def test_exp_push_gradient_is_nonzero_for_distinct_tags():
    tags, people, dense = random_case(60, 1)
    push_gradient, _ = _gradients(tags, dense, "exp")
    for b, person in enumerate(people):
        for p in range(len(person)):
            if person[p, :, 2].sum() > 0 and sum(q[:, 2].sum() > 0 for q in person) >= 2:
                k = int(np.argmax(person[p, :, 2]))
                x, y = np.floor(person[p, k, :2]).astype(int)
                assert push_gradient[b, y, x, k, 0] != 0.0


def test_exp_push_gradient_matches_finite_differences():
    rng = np.random.default_rng(61)
    tags = rng.normal(size=(1, 3, 3, 2, 2))
    keypoints = np.stack(
        [_person({0: (0, 0), 1: (2, 1)}, 2), _person({0: (1, 2)}, 2), _person({1: (0, 1)}, 2)]
    )[None]

    def loss(t):
        push, pull = losses.grouping_loss(t, keypoints)
        return tf.reduce_sum(push + pull)

    theoretical, numerical = tf.test.compute_gradient(loss, [tf.constant(tags)], delta=1e-6)
    np.testing.assert_allclose(theoretical[0], numerical[0], atol=1e-7)
    assert np.count_nonzero(theoretical[0]) > 0


def test_hinge_push_gradient_is_zero_when_means_are_at_least_one_apart():
    tags = np.zeros((1, 3, 3, 2, 1), np.float32)
    keypoints = np.stack([_person({0: (0, 0)}, 2), _person({1: (1, 1)}, 2)])[None]
    for gap, expect_zero in ((1.5, True), (1.0, True), (0.5, False)):
        tags[0, 1, 1, 1, 0] = gap
        push_gradient, _ = _gradients(tags, keypoints, "hinge")
        push, _ = losses.grouping_loss(tags, keypoints, push_type="hinge")
        np.testing.assert_allclose(push.numpy(), [0.5 * max(0.0, 1.0 - gap)], atol=1e-7)
        if expect_zero:
            np.testing.assert_array_equal(push_gradient, 0.0)
        else:
            # d/dm_B 0.5 * (1 - |m_B - m_A|) = -0.5 for m_B > m_A.
            np.testing.assert_allclose(push_gradient[0, 1, 1, 1, 0], -0.5, rtol=1e-6)
            np.testing.assert_allclose(push_gradient[0, 0, 0, 0, 0], 0.5, rtol=1e-6)


def test_unknown_push_type_and_bad_shapes_raise():
    tags = np.zeros((1, 2, 2, 2, 1), np.float32)
    keypoints = np.zeros((1, 1, 2, 3), np.float32)
    with pytest.raises(ValueError, match="push_type"):
        losses.grouping_loss(tags, keypoints, push_type="square")
    with pytest.raises(ValueError, match="joints"):
        losses.grouping_loss(tags, np.zeros((1, 1, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(B, h, w, K, D\)"):
        losses.grouping_loss(tags[..., 0], keypoints)


# ---------------------------------------------------------------------------------------------
# Heatmap loss.
# ---------------------------------------------------------------------------------------------


def test_heatmap_loss_with_mask_matches_numpy():
    rng = np.random.default_rng(70)
    pred = rng.random((3, 5, 6, 4)).astype(np.float32)
    target = rng.random((3, 5, 6, 4)).astype(np.float32)
    mask = (rng.random((3, 5, 6)) < 0.7).astype(np.float32)
    loss = losses.heatmap_loss(pred, target, mask)
    assert loss.shape == (3,)
    assert_close(loss, numpy_heatmap_loss(pred, target, mask))

    # Masked pixels contribute nothing, whatever the prediction there.
    changed = pred.copy()
    changed[mask == 0] += 100.0
    np.testing.assert_allclose(losses.heatmap_loss(changed, target, mask).numpy(), loss.numpy())
    # ... but stay in the denominator: one supervised pixel of error e gives e² / (h w K).
    single_mask = np.zeros_like(mask)
    single_mask[:, 2, 3] = 1.0
    error = np.zeros_like(pred)
    error[:, 2, 3, 1] = 2.0
    np.testing.assert_allclose(
        losses.heatmap_loss(error, np.zeros_like(pred), single_mask).numpy(),
        np.full(3, 4.0 / (5 * 6 * 4)),
        rtol=1e-6,
    )


def test_foreground_weighted_heatmap_loss_matches_numpy():
    rng = np.random.default_rng(71)
    pred = rng.random((2, 5, 6, 3)).astype(np.float32)
    target = rng.random((2, 5, 6, 3)).astype(np.float32)
    mask = (rng.random((2, 5, 6)) < 0.7).astype(np.float32)
    weighted = losses.heatmap_loss(pred, target, mask, foreground_weight=9.0)
    assert_close(weighted, numpy_heatmap_loss(pred, target, mask, foreground_weight=9.0))
    # A pixel on a peak (target 1) counts 1 + w times a background pixel with the same error.
    one_pixel = np.zeros((1, 2, 1, 1), np.float32)
    peak = one_pixel.copy()
    peak[0, 0, 0, 0] = 1.0
    error = np.full_like(one_pixel, 0.5)
    on_peak = losses.heatmap_loss(peak + 0.5, peak, np.ones((1, 2, 1)), foreground_weight=9.0)
    off_peak = losses.heatmap_loss(error, one_pixel, np.ones((1, 2, 1)), foreground_weight=9.0)
    np.testing.assert_allclose(off_peak.numpy(), [0.25], rtol=1e-6)
    np.testing.assert_allclose(on_peak.numpy(), [(10.0 * 0.25 + 0.25) / 2], rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# total_loss.
# ---------------------------------------------------------------------------------------------


def _total_case(seed, stacks=3, tag_dim=2, num_joints=4, height=6, width=7, batch=3):
    rng = np.random.default_rng(seed)
    outputs = rng.normal(size=(batch, stacks, height, width, num_joints * (1 + tag_dim)))
    people = random_people(rng, batch, height, width, num_joints, max_people=5)
    dense = pad_people(people, max(len(p) for p in people) + 1)
    targets = {
        "heatmaps": rng.random((batch, height, width, num_joints)).astype(np.float32),
        "mask": (rng.random((batch, height, width)) < 0.8).astype(np.float32),
        "keypoints": dense,
        "image_id": np.arange(batch, dtype=np.int64),
    }
    return outputs.astype(np.float32), targets, people


def _numpy_total(outputs, targets, people, num_joints, tag_dim, weights, push_type,
                 foreground_weight=0.0):
    batch, stacks = outputs.shape[:2]
    parts = {name: np.zeros((batch, stacks)) for name in ("heatmap", "pull", "push")}
    for s in range(stacks):
        stack = outputs[:, s]
        heatmaps = stack[..., :num_joints]
        tags = np.zeros(stack.shape[:-1] + (num_joints, tag_dim))
        for k in range(num_joints):
            for d in range(tag_dim):
                tags[..., k, d] = stack[..., num_joints + k * tag_dim + d]  # joint-major layout
        parts["heatmap"][:, s] = numpy_heatmap_loss(
            heatmaps, targets["heatmaps"], targets["mask"], foreground_weight
        )
        parts["push"][:, s], parts["pull"][:, s] = numpy_grouping_loss(tags, people, push_type)
    per_example_parts = {name: value.mean(axis=1) for name, value in parts.items()}
    per_example = sum(weights[name] * per_example_parts[name] for name in per_example_parts)
    return per_example, per_example_parts


@pytest.mark.parametrize("push_type,foreground_weight", [("exp", 0.0), ("hinge", 0.0),
                                                          ("hinge", 5.0)])
def test_total_loss_matches_numpy(push_type, foreground_weight):
    outputs, targets, people = _total_case(80)
    weights = {"heatmap": 0.7, "pull": 0.2, "push": 0.9}
    expected_per_example, expected_parts = _numpy_total(
        outputs, targets, people, 4, 2, weights, push_type, foreground_weight
    )
    kwargs = dict(
        num_joints=4,
        tag_dim=2,
        heatmap_weight=weights["heatmap"],
        pull_weight=weights["pull"],
        push_weight=weights["push"],
        push_type=push_type,
        heatmap_foreground_weight=foreground_weight,
    )
    loss, parts = losses.total_loss(outputs, targets, **kwargs)
    assert loss.shape == () and set(parts) == {"heatmap", "pull", "push"}
    assert_close(loss, expected_per_example.mean())
    for name in parts:
        assert parts[name].shape == ()
        assert_close(parts[name], expected_parts[name].mean())

    per_example, per_example_parts = losses.per_example_total_loss(outputs, targets, **kwargs)
    assert per_example.shape == (3,)
    assert_close(per_example, expected_per_example)
    for name in per_example_parts:
        assert_close(per_example_parts[name], expected_parts[name])

    ragged_targets = dict(targets, keypoints=to_ragged(people, 4))
    ragged_loss, _ = losses.total_loss(outputs, ragged_targets, **kwargs)
    np.testing.assert_array_equal(ragged_loss.numpy(), loss.numpy())


def test_total_loss_default_weights_and_single_stack_stays_consistent():
    outputs, targets, people = _total_case(81, stacks=1, tag_dim=1)
    loss, parts = losses.total_loss(outputs, targets, num_joints=4)
    expected = parts["heatmap"] + 1e-3 * parts["pull"] + 1e-3 * parts["push"]
    np.testing.assert_allclose(loss.numpy(), expected.numpy(), rtol=1e-6)
    # One stack equals the per-image functions applied directly.
    heatmaps = outputs[:, 0, ..., :4]
    tags = outputs[:, 0, ..., 4:, None]
    push, pull = losses.grouping_loss(tags, targets["keypoints"])
    heat = losses.heatmap_loss(heatmaps, targets["heatmaps"], targets["mask"])
    np.testing.assert_allclose(parts["heatmap"].numpy(), heat.numpy().mean(), rtol=1e-6)
    np.testing.assert_allclose(parts["push"].numpy(), push.numpy().mean(), rtol=1e-6)
    np.testing.assert_allclose(parts["pull"].numpy(), pull.numpy().mean(), rtol=1e-6)


def test_total_loss_under_xla_and_tf_function():
    outputs, targets, _ = _total_case(82, stacks=2)
    kwargs = dict(num_joints=4, tag_dim=2, push_type="hinge")
    eager_loss, eager_parts = losses.total_loss(outputs, targets, **kwargs)
    keys = ("heatmaps", "mask", "keypoints")
    dense_targets = {key: tf.constant(targets[key]) for key in keys}
    jitted = tf.function(lambda o, t: losses.total_loss(o, t, **kwargs), jit_compile=True)
    xla_loss, xla_parts = jitted(tf.constant(outputs), dense_targets)
    np.testing.assert_allclose(xla_loss.numpy(), eager_loss.numpy(), rtol=1e-5)
    for name in eager_parts:
        np.testing.assert_allclose(xla_parts[name].numpy(), eager_parts[name].numpy(), rtol=1e-5)


def test_total_loss_missing_target_raises():
    outputs, targets, _ = _total_case(83, stacks=1)
    del targets["mask"]
    with pytest.raises(KeyError, match="mask"):
        losses.total_loss(outputs, targets, num_joints=4, tag_dim=2)


# ---------------------------------------------------------------------------------------------
# MirroredStrategy (subprocess: logical devices must be set before TensorFlow initialises).
# ---------------------------------------------------------------------------------------------


def test_losses_inside_mirrored_strategy_replicas():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH", "")])
    )
    completed = subprocess.run(
        [sys.executable, str(TESTS_DIR / "mirrored_check.py")],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=PROJECT_ROOT,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    assert completed.returncode == 0 and lines, completed.stdout + completed.stderr[-3000:]
    result = json.loads(lines[-1])
    assert result["ok"], result
    for push_type in PUSH_TYPES:
        assert result["results"][push_type]["replicas"] == 2
        assert result["results"][push_type]["push_mean"] > 0.0


def test_low_precision_inputs_are_computed_in_float32_and_float64_is_kept():
    tags, people, dense = random_case(90, 2)
    expected_push, expected_pull = numpy_grouping_loss(tags.astype(np.float16), people)
    push, pull = losses.grouping_loss(tf.constant(tags, tf.float16), dense)
    assert push.dtype == tf.float32 and pull.dtype == tf.float32
    assert_close(push, expected_push)
    assert_close(pull, expected_pull)
    push64, pull64 = losses.grouping_loss(tf.constant(tags, tf.float64), dense)
    assert push64.dtype == tf.float64
    np.testing.assert_allclose(push64.numpy(), numpy_grouping_loss(tags, people)[0], rtol=1e-12)
    heat = losses.heatmap_loss(
        tf.zeros((1, 2, 2, 1), tf.bfloat16), np.ones((1, 2, 2, 1)), np.ones((1, 2, 2))
    )
    assert heat.dtype == tf.float32
    np.testing.assert_allclose(heat.numpy(), [1.0])
