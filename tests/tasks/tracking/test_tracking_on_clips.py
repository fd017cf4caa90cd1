"""Trackers end to end on synthetic clips: ground-truth poses as detections, tags as the
network would give them if it had learnt the space-time grouping (one tag per person), scored
with PoseTrack's per-joint metrics."""

from __future__ import annotations

import numpy as np
import pytest

from associative_embedding.data import posetrack
from associative_embedding.data.synthetic import clips
from associative_embedding.evaluation.tracking import FrameTracks, posetrack_joint_metrics
from associative_embedding.tasks.tracking.tracker import Detection, OverlapTracker, TagTracker

FRAME_STEP = 2  # every second frame: people move twice as far between frames


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("tracking_clips")
    folder = clips.generate_synthetic_clips(root, split="t", num_clips=6, seed=3, image_size=128)
    return posetrack.read_posetrack_videos(folder, root)


def track_and_score(videos, make_tracker, tag_noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    scored = []
    for video in videos:
        frames = video.frames[::FRAME_STEP]
        detections = []
        for frame in frames:
            people = []
            for row, track in enumerate(frame.track_ids):
                pose = frame.record.keypoints[row].astype(np.float64)
                pose[:, 2] = pose[:, 2] > 0
                tag = np.array([2.0 * track + rng.normal(0.0, tag_noise)])
                people.append(Detection(pose=pose, score=1.0, tag=tag))
            detections.append(people)
        ids = make_tracker().run(detections)
        pairs = []
        for frame, frame_ids, people in zip(frames, ids, detections, strict=True):
            poses = np.array([person.pose for person in people]).reshape(-1, 17, 3)
            ground_truth = FrameTracks(
                ids=frame.track_ids, poses=frame.record.keypoints,
                head_boxes=frame.record.head_boxes,
            )
            pairs.append((ground_truth, FrameTracks(ids=frame_ids, poses=poses)))
        scored.append(pairs)
    return posetrack_joint_metrics(scored)


def test_tag_tracker_keeps_identities_where_the_overlap_baseline_loses_them(videos):
    tags = track_and_score(videos, lambda: TagTracker(max_tag_distance=1.0))
    assert tags["mota"] == pytest.approx(1.0)
    assert tags["num_switches"] == 0
    for overlap in ("oks", "iou"):
        baseline = track_and_score(
            videos, lambda overlap=overlap: OverlapTracker(overlap=overlap, min_overlap=0.3)
        )
        assert baseline["num_switches"] > 0
        assert baseline["mota"] < tags["mota"]


def test_noisy_tags_within_the_threshold_still_track(videos):
    metrics = track_and_score(videos, lambda: TagTracker(max_tag_distance=1.0), tag_noise=0.2)
    assert metrics["mota"] > 0.95
