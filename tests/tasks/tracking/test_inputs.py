"""The tracking input pipeline: clip samples share one augmentation and carry track slots."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import tensorflow as tf

from associative_embedding.core.keypoint_info import get_keypoint_info
from associative_embedding.data import posetrack
from associative_embedding.data.synthetic import clips
from associative_embedding.tasks.tracking import inputs

COCO = get_keypoint_info("coco")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    folder = clips.generate_synthetic_clips(
        root, split="t", num_clips=2, seed=5, image_size=64,
        config=clips.ClipConfig(num_frames=5),
    )
    return posetrack.read_posetrack_videos(folder, root)


def _config(**input_overrides):
    config = importlib.import_module("experiments.synthetic_tracking").get_config("smoke")
    config.input.update(**input_overrides)
    config.train.global_batch_size = 4
    return config


def test_frame_table_lays_each_video_on_its_own_track_axis(videos):
    table = inputs.frame_table(videos, 17, frames_per_clip=2, max_frame_gap=2, max_tracks=8)
    assert len(table.paths) == sum(len(video.labeled_frames) for video in videos)
    row = 0
    for video in videos:
        for position, frame in enumerate(video.labeled_frames):
            for person, track in enumerate(frame.track_ids):
                slot = int(np.flatnonzero(table.track_ids[row] == track)[0])
                np.testing.assert_allclose(table.keypoints[row, slot],
                                           frame.record.keypoints[person])
            assert table.positions[row] == position
            row += 1
    # A sample starting at the last frame of a video cannot have a second frame.
    assert np.all(table.max_gaps >= 1) and np.all(table.max_gaps <= 2)
    assert len(table.starts) == len(table.paths) - len(videos)


def test_clip_frames_share_one_affine_and_keep_track_slots(videos):
    config = _config(frames_per_clip=2, max_frame_gap=2)
    config.input.update(max_rotation_degrees=30.0, scale_range=(0.7, 1.3), max_translation=0.2)
    table = inputs.frame_table(videos, 17, frames_per_clip=2, max_frame_gap=2, max_tracks=8)
    dataset = inputs.train_dataset(config, table, COCO, seed=3)
    batch = next(iter(dataset))
    size = config.codec.input_size
    output = size // config.codec.output_stride
    tracks = table.track_ids.shape[1]
    assert batch["image"].shape == (8, size, size, 3)
    assert batch["heatmaps"].shape == (4, 2, output, output, 17)
    assert batch["keypoints"].shape == (4, 2, tracks, 17, 3)
    assert batch["track_ids"].shape == (4, tracks)
    frame_index = batch["frame_index"].numpy()
    gaps = frame_index[:, 1] - frame_index[:, 0]
    assert np.all((gaps >= 1) & (gaps <= 2))
    # Every frame's targets follow the clip's one affine: map the annotated joints of each
    # frame with it and compare with the target slots of their tracks.
    frames = {f.record.image_id: f for video in videos for f in video.labeled_frames}
    for clip in range(4):
        affine = batch["input_from_image"][clip].numpy()
        ids = batch["track_ids"][clip].numpy()
        for f in range(2):
            frame = frames[int(batch["image_id"][clip, f])]
            for person, track in enumerate(frame.track_ids):
                slot = int(np.flatnonzero(ids == track)[0])
                joints = frame.record.keypoints[person]
                moved = joints[:, :2] @ affine[:2, :2].T + affine[:2, 2]
                pixels = np.floor((moved + 0.5) / config.codec.output_stride)
                target = batch["keypoints"][clip, f, slot].numpy()
                inside = (joints[:, 2] > 0) & np.all((pixels >= 0) & (pixels < output), axis=1)
                np.testing.assert_array_equal(target[:, 2], inside.astype(np.float32))
                np.testing.assert_array_equal(target[inside, :2], pixels[inside])


def test_single_frame_clips():
    frames = tf.constant([0])
    rows = inputs.clip_frame_rows(frames[0], tf.constant(1), tf.constant([1, 2], tf.int64), 1)
    assert rows.numpy().tolist() == [0]
    rows = inputs.clip_frame_rows(
        tf.constant(10), tf.constant(3), tf.constant([1, 2], tf.int64), 3
    ).numpy()
    assert rows[0] == 10 and np.all(np.diff(rows) >= 1) and np.all(np.diff(rows) <= 3)
