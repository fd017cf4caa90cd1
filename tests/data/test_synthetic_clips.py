"""Synthetic walking-people clips: crossings, format (read back by the PoseTrack reader),
determinism and motion."""

from __future__ import annotations

import json

import numpy as np
import pytest

from associative_embedding.data import posetrack, readers
from associative_embedding.data.synthetic import clips
from associative_embedding.losses.temporal import temporal_grouping_loss, tracks_to_dense

IMAGE_SIZE = 128  # the clip logic is size-independent; small frames keep the test fast
NUM_CLIPS = 16


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """(dataset root, annotation folder) of a small split with the default clip settings."""
    root = tmp_path_factory.mktemp("clips")
    folder = clips.generate_synthetic_clips(
        root, split="val", num_clips=NUM_CLIPS, seed=1, image_size=IMAGE_SIZE
    )
    return root, folder


def test_defaults_give_crossings_in_at_least_40_percent_of_clips(split):
    _, folder = split
    statistics = clips.clip_statistics(folder)
    assert statistics.num_clips == NUM_CLIPS
    assert statistics.num_frames == NUM_CLIPS * clips.ClipConfig().num_frames
    assert statistics.crossing_share >= 0.4
    # People occlude each other and enter or leave the frame.
    assert statistics.occluded_joint_share > 0.0
    assert statistics.tracks_entering_or_leaving > 0
    assert statistics.annotated_people_per_frame >= 1.0


def test_without_crossings_or_company_there_is_none(tmp_path):
    config = clips.ClipConfig(people_count_weights=(0.0, 1.0), num_frames=4)
    folder = clips.generate_synthetic_clips(
        tmp_path, split="solo", num_clips=3, seed=0, image_size=IMAGE_SIZE, config=config
    )
    statistics = clips.clip_statistics(folder)
    assert statistics.clips_with_crossing == 0
    assert statistics.num_tracks <= 3


def _clip(boxes_per_frame):
    """A clip dict with given track -> (x, y, w, h) boxes per frame."""
    images, annotations = [], []
    for frame, boxes in enumerate(boxes_per_frame):
        images.append({"id": 100 + frame, "frame_id": 100 + frame})
        for track, box in boxes.items():
            annotations.append({"image_id": 100 + frame, "track_id": track, "bbox": box,
                                "num_keypoints": 5})
    return {"images": images, "annotations": annotations}


def test_crossing_definition():
    # Track 0 goes from left of 1 to right of it with overlapping vertical extents: a crossing.
    swap = [{0: [0, 0, 10, 50], 1: [30, 10, 10, 50]}, {0: [30, 0, 10, 50], 1: [0, 10, 10, 50]}]
    assert clips.crossing_pairs(_clip(swap)) == [(0, 1)]
    # The same swap with one person far above the other (no vertical overlap): none.
    apart = [{0: [0, 0, 10, 50], 1: [30, 60, 10, 50]}, {0: [30, 0, 10, 50], 1: [0, 60, 10, 50]}]
    assert clips.crossing_pairs(_clip(apart)) == []
    # Order kept: none. A person without keypoints in a frame does not count there.
    kept = [{0: [0, 0, 10, 50], 1: [30, 10, 10, 50]}, {0: [5, 0, 10, 50], 1: [40, 10, 10, 50]}]
    assert clips.crossing_pairs(_clip(kept)) == []
    unannotated = _clip(swap)
    unannotated["annotations"][-1]["num_keypoints"] = 0
    assert clips.crossing_pairs(unannotated) == []


def test_written_as_posetrack_and_read_back(split):
    root, folder = split
    first = folder / "000000.json"
    assert readers.detect_annotation_format(first) == posetrack.FORMAT_POSETRACK
    videos = posetrack.read_posetrack_videos(folder, root)
    assert [video.video_id for video in videos] == [f"{i:06d}" for i in range(NUM_CLIPS)]
    data = json.loads(first.read_text())
    video = videos[0]
    assert [frame.frame_index for frame in video.frames] == list(range(16))
    annotated = {
        (a["image_id"], a["track_id"]): np.reshape(a["keypoints"], (17, 3))
        for a in data["annotations"] if a["num_keypoints"] > 0
    }
    read = 0
    for frame in video.frames:
        assert frame.record.height == frame.record.width == IMAGE_SIZE
        for row, track in enumerate(frame.track_ids):
            np.testing.assert_allclose(
                frame.record.keypoints[row], annotated[(frame.record.image_id, int(track))]
            )
            read += 1
        assert np.all(np.isfinite(frame.record.head_boxes))
    assert read == len(annotated)


def test_tracks_have_constant_ids_and_smooth_one_way_motion(split):
    root, folder = split
    for video in posetrack.read_posetrack_videos(folder, root):
        pelvis: dict[int, list[tuple[int, float]]] = {}
        for frame in video.frames:
            for row, track in enumerate(frame.track_ids):
                hips = frame.record.keypoints[row, 11:13]
                if np.all(hips[:, 2] > 0):
                    pelvis.setdefault(int(track), []).append(
                        (frame.frame_index, float(hips[:, 0].mean()))
                    )
        for track, samples in pelvis.items():
            frames, xs = np.array(samples).T
            steps = np.diff(xs) / np.diff(frames)
            if len(steps) < 3:
                continue
            # One walking direction per person, and no jumps: the default top speed is 4.5 %
            # of the width per frame, and the speed changes by a few % per frame.
            assert np.all(steps > 0) or np.all(steps < 0), (video.video_id, track, steps)
            assert np.max(np.abs(steps)) <= 0.1 * IMAGE_SIZE, (video.video_id, track, steps)


def test_clips_feed_the_temporal_grouping_loss(split):
    root, folder = split
    # A clip in which some frame misses a track that is not the last slot, so the people's
    # order within a frame differs from their track order there.
    for video in posetrack.read_posetrack_videos(folder, root):
        keypoints, tracks = tracks_to_dense(
            [frame.record.keypoints for frame in video.frames],
            [frame.track_ids for frame in video.frames],
        )
        present = [
            [s for s in range(len(tracks)) if np.any(keypoints[f, s, :, 2] > 0)]
            for f in range(len(video.frames))
        ]
        if any(slots != list(range(len(slots))) for slots in present):
            break
    else:
        pytest.fail("no clip with a track missing from a frame")
    assert keypoints.shape[:2] == (16, len(tracks))
    # Tags equal to the track's slot wherever it is give no pull; tags that follow the
    # people's order within each frame (what a per-frame loss is happy with) are pulled.
    # Maps at input resolution, so that two people's joints of one type rarely share a pixel.
    size = IMAGE_SIZE
    consistent = np.zeros((1, 16, size, size, 17, 1), np.float32)
    per_frame = np.zeros_like(consistent)
    for frame, slots in enumerate(present):
        for rank, slot in enumerate(slots):
            for joint in np.flatnonzero(keypoints[frame, slot, :, 2] > 0):
                x, y = np.floor(keypoints[frame, slot, joint, :2]).astype(int)
                consistent[0, frame, y, x, joint, 0] = 3.0 * slot
                per_frame[0, frame, y, x, joint, 0] = 3.0 * rank
    push, pull = temporal_grouping_loss(consistent, keypoints[None])
    assert pull.numpy()[0] == pytest.approx(0.0, abs=1e-6)
    assert push.numpy()[0] < 0.5 * np.exp(-9.0) + 1e-6  # every pair is >= 3 apart
    _, shuffled_pull = temporal_grouping_loss(per_frame, keypoints[None])
    assert shuffled_pull.numpy()[0] > 0.1


def test_deterministic(tmp_path):
    config = clips.ClipConfig(num_frames=3)
    first = clips.generate_synthetic_clips(
        tmp_path / "a", split="x", num_clips=2, seed=5, image_size=64, config=config
    )
    second = clips.generate_synthetic_clips(
        tmp_path / "b", split="x", num_clips=2, seed=5, image_size=64, config=config
    )
    for name in ("000000.json", "000001.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    image = "images/x/000001/000002.jpg"
    assert (tmp_path / "a" / image).read_bytes() == (tmp_path / "b" / image).read_bytes()
    other = clips.generate_synthetic_clips(
        tmp_path / "c", split="x", num_clips=1, seed=6, image_size=64, config=config
    )
    assert (other / "000000.json").read_bytes() != (first / "000000.json").read_bytes()


def test_bad_options():
    with pytest.raises(ValueError):
        clips.ClipConfig(num_frames=1)
    with pytest.raises(ValueError):
        clips.ClipConfig(crossing_probability=1.5)
    with pytest.raises(ValueError):
        clips.generate_synthetic_clips("/tmp/unused", split="a/b", num_clips=1, seed=0)


def test_worker_processes_write_identical_files(tmp_path):
    roots = {}
    for workers in (1, 2):
        roots[workers] = tmp_path / f"workers_{workers}"
        clips.generate_synthetic_clips(
            roots[workers], split="val", num_clips=3, seed=2, image_size=64,
            config=clips.ClipConfig(num_frames=4), workers=workers,
        )
    files = {
        workers: {path.relative_to(root).as_posix(): path.read_bytes()
                  for path in sorted(root.rglob("*")) if path.is_file()}
        for workers, root in roots.items()
    }
    assert len(files[1]) == 3 * (4 + 1)  # 4 frames and a JSON per clip
    assert files[1] == files[2]
