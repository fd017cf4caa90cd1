"""Space-time grouping loss against a slow NumPy loop and the per-frame loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from associative_embedding.losses.grouping import grouping_loss
from associative_embedding.losses.temporal import (
    temporal_grouping_loss,
    tracks_to_dense,
)


def numpy_temporal_loss(tags, keypoints, push_type):
    """Reference: explicit loops over clips, tracks, frames and joints, float64.

    Args:
        tags: (B, F, h, w, K, D).
        keypoints: (B, F, P, K, 3).

    Returns:
        push, pull: (B,) each.
    """
    tags = np.asarray(tags, np.float64)
    batch, frames, height, width, num_joints, tag_dim = tags.shape
    push, pull = np.zeros(batch), np.zeros(batch)
    for b in range(batch):
        means, pulls = [], []
        for p in range(keypoints.shape[2]):
            person_tags = []
            for f in range(frames):
                for k in range(num_joints):
                    x, y, valid = keypoints[b, f, p, k]
                    col, row = math.floor(x), math.floor(y)
                    if valid > 0 and 0 <= col < width and 0 <= row < height:
                        person_tags.append(tags[b, f, row, col, k])
            if not person_tags:
                continue
            person_tags = np.stack(person_tags)
            mean = person_tags.mean(axis=0)
            pulls.append(np.sum((person_tags - mean) ** 2) / len(person_tags) / tag_dim)
            means.append(mean)
        n = len(means)
        pull[b] = np.mean(pulls) if pulls else 0.0
        if n >= 2:
            total = 0.0
            for i in range(n):
                for j in range(i + 1, n):
                    d2 = float(np.sum((means[i] - means[j]) ** 2))
                    if push_type == "exp":
                        total += math.exp(-d2)
                    else:
                        total += max(0.0, 1.0 - math.sqrt(d2))
            push[b] = 0.5 * total / (n * (n - 1) / 2)
    return push, pull


def random_clip(seed, batch=2, frames=3, people=4, joints=5, size=8, tag_dim=2):
    rng = np.random.default_rng(seed)
    tags = rng.normal(size=(batch, frames, size, size, joints, tag_dim)).astype(np.float32)
    keypoints = np.zeros((batch, frames, people, joints, 3), np.float32)
    keypoints[..., :2] = rng.uniform(-1.0, size + 1.0, size=(batch, frames, people, joints, 2))
    keypoints[..., 2] = rng.uniform(size=(batch, frames, people, joints)) < 0.6
    keypoints[0, :, -1] = 0.0  # a track absent from the whole clip
    keypoints[-1, 1:, 0] = 0.0  # a track seen in the first frame only
    return tags, keypoints


@pytest.mark.parametrize("push_type", ["exp", "hinge"])
def test_matches_numpy_loop_eagerly_and_in_tf_function(push_type):
    tags, keypoints = random_clip(0)
    want_push, want_pull = numpy_temporal_loss(tags, keypoints, push_type)
    push, pull = temporal_grouping_loss(tags, keypoints, push_type=push_type)
    np.testing.assert_allclose(push.numpy(), want_push, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pull.numpy(), want_pull, rtol=1e-5, atol=1e-6)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, None, None, 5, 2], tf.float32),
            tf.TensorSpec([None, None, None, 5, 3], tf.float32),
        ]
    )
    def compiled(tags, keypoints):
        return temporal_grouping_loss(tags, keypoints, push_type=push_type)

    push, pull = compiled(tags, keypoints)
    np.testing.assert_allclose(push.numpy(), want_push, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pull.numpy(), want_pull, rtol=1e-5, atol=1e-6)
    # Another clip length and people count through the same trace.
    tags2, keypoints2 = random_clip(1, frames=2, people=3)
    want_push2, want_pull2 = numpy_temporal_loss(tags2, keypoints2, push_type)
    push, pull = compiled(tags2, keypoints2)
    np.testing.assert_allclose(push.numpy(), want_push2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pull.numpy(), want_pull2, rtol=1e-5, atol=1e-6)


def test_fed_from_a_tf_data_pipeline():
    clips = [random_clip(seed, batch=1) for seed in range(3)]
    dataset = tf.data.Dataset.from_tensor_slices(
        (np.concatenate([c[0] for c in clips]), np.concatenate([c[1] for c in clips]))
    ).batch(2)
    got_push, got_pull = [], []
    for tags, keypoints in dataset:
        push, pull = temporal_grouping_loss(tags, keypoints)
        got_push.append(push.numpy())
        got_pull.append(pull.numpy())
    want_push, want_pull = zip(*(numpy_temporal_loss(t, k, "exp") for t, k in clips), strict=True)
    np.testing.assert_allclose(np.concatenate(got_push), np.concatenate(want_push), rtol=1e-5)
    np.testing.assert_allclose(np.concatenate(got_pull), np.concatenate(want_pull), rtol=1e-5)


@pytest.mark.parametrize("push_type", ["exp", "hinge"])
def test_one_frame_is_the_per_frame_loss(push_type):
    tags, keypoints = random_clip(2, frames=1)
    push, pull = temporal_grouping_loss(tags, keypoints, push_type=push_type)
    frame_push, frame_pull = grouping_loss(tags[:, 0], keypoints[:, 0], push_type=push_type)
    np.testing.assert_allclose(push.numpy(), frame_push.numpy(), rtol=1e-6)
    np.testing.assert_allclose(pull.numpy(), frame_pull.numpy(), rtol=1e-6)


def test_a_tag_drifting_between_frames_is_pulled_only_over_time():
    # One clip, two frames, two people; each person's tag is constant within a frame, but
    # person 0 has tag 0 in frame 0 and tag 2 in frame 1. Person 1 keeps tag 5.
    size, joints = 6, 3
    tags = np.zeros((1, 2, size, size, joints, 1), np.float32)
    tags[0, 0, 1, :] = 0.0
    tags[0, 1, 1, :] = 2.0
    tags[0, :, 4, :] = 5.0
    keypoints = np.zeros((1, 2, 2, joints, 3), np.float32)
    keypoints[0, :, 0] = [[0, 1, 1], [2, 1, 1], [4, 1, 1]]  # row 1: person 0
    keypoints[0, :, 1] = [[0, 4, 1], [2, 4, 1], [4, 4, 1]]  # row 4: person 1
    for frame in range(2):
        _, frame_pull = grouping_loss(tags[:, frame], keypoints[:, frame])
        assert frame_pull.numpy()[0] == 0.0
    push, pull = temporal_grouping_loss(tags, keypoints)
    # Person 0: six tags, three at 0 and three at 2, mean 1: mean squared deviation 1. Person
    # 1: 0. Pull = (1 + 0) / 2.
    assert pull.numpy()[0] == pytest.approx(0.5)
    assert push.numpy()[0] == pytest.approx(0.5 * math.exp(-16.0))


def test_gradients_are_finite_and_zero_off_the_joints():
    tags, keypoints = random_clip(3)
    tags = tf.constant(tags)
    with tf.GradientTape() as tape:
        tape.watch(tags)
        push, pull = temporal_grouping_loss(tags, keypoints, push_type="hinge")
        loss = tf.reduce_sum(push + pull)
    gradient = tape.gradient(loss, tags).numpy()
    assert np.all(np.isfinite(gradient))
    used = np.zeros(gradient.shape[:-1], bool)
    for b, f, p, k in zip(*np.nonzero(keypoints[..., 2] > 0), strict=True):
        x, y = np.floor(keypoints[b, f, p, k, :2]).astype(int)
        if 0 <= x < tags.shape[3] and 0 <= y < tags.shape[2]:
            used[b, f, y, x, k] = True
    assert np.all(gradient[~used] == 0.0)
    assert np.any(gradient[used] != 0.0)


def test_tracks_to_dense():
    frame0 = np.ones((2, 3, 3), np.float32)
    frame1 = 2 * np.ones((1, 3, 3), np.float32)
    dense, tracks = tracks_to_dense([frame0, frame1], [np.array([7, 3]), np.array([9])])
    assert tracks.tolist() == [3, 7, 9]
    assert dense.shape == (2, 3, 3, 3)
    assert np.all(dense[0, 0] == 1) and np.all(dense[0, 1] == 1) and np.all(dense[0, 2] == 0)
    assert np.all(dense[1, :2] == 0) and np.all(dense[1, 2] == 2)
    with pytest.raises(ValueError, match="repeat"):
        tracks_to_dense([frame0], [np.array([1, 1])])


def test_rejects_bad_ranks_and_push_types():
    tags, keypoints = random_clip(4)
    with pytest.raises(ValueError):
        temporal_grouping_loss(tags[:, 0], keypoints)
    with pytest.raises(ValueError):
        temporal_grouping_loss(tags, keypoints, push_type="l1")


def test_stacks_are_independent_clips_of_the_same_people():
    from associative_embedding.losses.temporal import stacked_temporal_grouping_loss

    tags, keypoints = random_clip(5)
    other = np.random.default_rng(6).normal(size=tags.shape).astype(np.float32)
    stacked = np.stack([tags, other], axis=1)  # (B, S=2, F, h, w, K, D)
    push, pull = stacked_temporal_grouping_loss(stacked, keypoints, "exp")
    assert push.shape == pull.shape == (2, 2)
    for stack, stack_tags in enumerate((tags, other)):
        want_push, want_pull = numpy_temporal_loss(stack_tags, keypoints, "exp")
        np.testing.assert_allclose(push.numpy()[:, stack], want_push, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(pull.numpy()[:, stack], want_pull, rtol=1e-5, atol=1e-6)


def test_compiles_with_xla():
    tags, keypoints = random_clip(7)
    want_push, want_pull = numpy_temporal_loss(tags, keypoints, "hinge")
    compiled = tf.function(
        lambda t, k: temporal_grouping_loss(t, k, push_type="hinge"), jit_compile=True
    )
    push, pull = compiled(tf.constant(tags), tf.constant(keypoints))
    np.testing.assert_allclose(push.numpy(), want_push, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pull.numpy(), want_pull, rtol=1e-5, atol=1e-6)
