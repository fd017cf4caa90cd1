"""Space-time grouping loss: a person's joints in every frame of a clip share one tag.

The paper's tracking application extends the grouping loss over time: the network sees F frames
of a clip and a person is the union of its joints over all F frames. With t_nfk the D-dim tag of
person (track) n at joint k of frame f, and |n| its number of valid joints over all frames:

    m_n  = (1 / |n|) sum_{f,k} t_nfk                              (reference over time)
    pull = (1 / N) sum_n (1 / |n|) sum_{f,k} ||t_nfk - m_n||^2 / D
    push = 0.5 * [sum_{i<j} f(m_i, m_j)] / (N (N - 1) / 2)

with N the people that have at least one valid joint in some frame and f the spatial loss's push
kernel ('exp' or 'hinge'). This is exactly the spatial grouping loss (losses/grouping.py) of a
person whose joints are the F * K (frame, joint) pairs, so it reuses that module's gather and
pull/push kernels: tags are read frame by frame, then each person's frames are laid side by
side along the joint axis. Consequently F = 1 gives the per-frame loss exactly, and a person
whose tags are constant within each frame but differ between frames gets a pull the per-frame
loss does not see; different people are pushed apart whether they appear in the same frame or
not (within one clip).

People are identified by their slot on the P axis: keypoints[b, f, p] is track p in frame f,
and a track absent from a frame has only invalid joints there (`tracks_to_dense` builds this
layout from per-frame track ids). Like the spatial loss, it is vectorised and runs eagerly, in
`tf.function` (None clip, people and frame axes), under XLA (`jit_compile=True`) and from a
tf.data pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from associative_embedding.losses.grouping import (
    _gather_joint_tags,
    _grouping_terms,
    check_push_type,
)
from associative_embedding.losses.heatmap import compute_dtype


def tracks_to_dense(
    keypoints: Sequence[np.ndarray], track_ids: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Lays one clip's per-frame people out on a shared track axis.

    Args:
        keypoints: per frame f, (P_f, K, 3) (x, y, valid) of its people.
        track_ids: per frame f, (P_f,) int track ids (unique within the frame).

    Returns:
        keypoints: (F, T, K, 3) float32, track t's joints in frame f (all zero, i.e. invalid,
            where track t is absent); T = number of distinct track ids.
        tracks: (T,) the track ids, ascending (slot t holds tracks[t]).

    Raises:
        ValueError: on mismatched lengths or a track id repeated within a frame.
    """
    if len(keypoints) != len(track_ids):
        raise ValueError(f"{len(keypoints)} keypoint frames but {len(track_ids)} id frames.")
    ids = [np.asarray(frame_ids, np.int64).reshape(-1) for frame_ids in track_ids]
    num_joints = next((np.shape(k)[-2] for k in keypoints if np.size(k)), 0)
    for frame, frame_ids in enumerate(ids):
        if len(np.unique(frame_ids)) != len(frame_ids):
            raise ValueError(f"frame {frame}: track ids repeat: {frame_ids.tolist()}.")
        if len(frame_ids) != len(np.reshape(keypoints[frame], (-1, max(num_joints, 1), 3))):
            raise ValueError(f"frame {frame}: {len(frame_ids)} ids for a different people count.")
    tracks = np.unique(np.concatenate(ids)) if ids else np.zeros((0,), np.int64)
    dense = np.zeros((len(ids), len(tracks), num_joints, 3), np.float32)
    for frame, frame_ids in enumerate(ids):
        if len(frame_ids):
            slots = np.searchsorted(tracks, frame_ids)
            dense[frame, slots] = np.reshape(keypoints[frame], (-1, num_joints, 3))
    return dense, tracks


def stacked_temporal_grouping_loss(
    tags: tf.Tensor, keypoints: tf.Tensor, push_type: str
) -> tuple[tf.Tensor, tf.Tensor]:
    """The space-time grouping loss of every stack at once.

    Args:
        tags: (B, S, F, h, w, K, D) stacked tag maps of B clips of F frames.
        keypoints: (B, F, P, K, 3) dense (x, y, valid) in output-map pixels, P on a track axis
            shared by the frames.
        push_type: 'exp' or 'hinge'.

    Returns:
        push, pull: (B, S) each.
    """
    check_push_type(push_type)
    tags = tf.convert_to_tensor(tags)
    keypoints = tf.convert_to_tensor(keypoints)
    if tags.shape.rank is not None and tags.shape.rank != 7:
        raise ValueError(f"tags must be (B, S, F, h, w, K, D), got shape {tags.shape}.")
    if keypoints.shape.rank is not None and keypoints.shape.rank != 5:
        raise ValueError(f"keypoints must be (B, F, P, K, 3), got shape {keypoints.shape}.")
    tags_shape = tf.shape(tags)
    batch, stacks, frames = tags_shape[0], tags_shape[1], tags_shape[2]
    num_joints, tag_dim = tags_shape[5], tags_shape[6]
    num_people = tf.shape(keypoints)[2]
    dtype = compute_dtype(tags.dtype)

    # Frames become images of one batch, so the spatial gather reads each frame's own maps.
    frame_tags = tf.reshape(
        tf.transpose(tf.cast(tags, dtype), [0, 2, 1, 3, 4, 5, 6]),
        tf.concat([[batch * frames, stacks], tags_shape[3:]], axis=0),
    )  # (B * F, S, h, w, K, D)
    frame_keypoints = tf.reshape(
        keypoints, tf.concat([[batch * frames], tf.shape(keypoints)[2:]], axis=0)
    )  # (B * F, P, K, 3)
    joint_tags, valid = _gather_joint_tags(frame_tags, frame_keypoints)

    # A person's joints over time: the (frame, joint) pairs side by side on the joint axis.
    joint_tags = tf.reshape(joint_tags, [batch, frames, stacks, num_people, num_joints, tag_dim])
    joint_tags = tf.reshape(
        tf.transpose(joint_tags, [0, 2, 3, 1, 4, 5]),
        [batch, stacks, num_people, frames * num_joints, tag_dim],
    )  # (B, S, P, F * K, D)
    valid = tf.reshape(valid, [batch, frames, num_people, num_joints])
    valid = tf.reshape(
        tf.transpose(valid, [0, 2, 1, 3]), [batch, num_people, frames * num_joints]
    )  # (B, P, F * K)
    return _grouping_terms(joint_tags, valid, push_type)


def temporal_grouping_loss(
    tags: tf.Tensor, keypoints: tf.Tensor, *, push_type: str = "exp"
) -> tuple[tf.Tensor, tf.Tensor]:
    """Space-time associative-embedding grouping loss, one value per clip.

    See the module docstring for the formulas.

    Args:
        tags: (B, F, h, w, K, D) tag maps of B clips of F frames.
        keypoints: (B, F, P, K, 3) dense (x, y, valid) in output-map pixels; keypoints[b, :, p]
            is one track over the clip (zero rows where it is absent). A joint counts iff
            valid > 0 and its floored pixel lies inside the map, as in `grouping_loss`.
        push_type: 'exp' (official, default) or 'hinge'.

    Returns:
        push: (B,) 0.5 * mean over pairs of tracks of the push kernel of their mean tags over
            the clip (0 when fewer than two tracks).
        pull: (B,) mean over tracks of the mean squared deviation of all their joint tags, over
            all frames, from their mean (0 without tracks).
        float32 (float64 if `tags` is float64).

    Raises:
        ValueError: on an unknown push_type or statically wrong ranks.
    """
    tags = tf.convert_to_tensor(tags)
    if tags.shape.rank is not None and tags.shape.rank != 6:
        raise ValueError(f"tags must be (B, F, h, w, K, D), got shape {tags.shape}.")
    push, pull = stacked_temporal_grouping_loss(tags[:, None], keypoints, push_type)
    return push[:, 0], pull[:, 0]
