"""The tracking predict loop (associative_embedding/tasks/tracking/predict.py) on fake frames."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from associative_embedding.core.keypoint_info import COCO
from associative_embedding.inference.sources import Frame, Source
from associative_embedding.tasks.tracking import predict as tracking_predict
from associative_embedding.tasks.tracking.tracker import TagTracker

NUM_JOINTS = COCO.num_joints
SIZE = 64  # frame side; the fake maps have the frame's grid (stride 1)


@dataclasses.dataclass
class FakePrediction:
    poses: np.ndarray
    scores: np.ndarray
    map_poses: np.ndarray
    tags: np.ndarray
    image_size: tuple[int, int]


def fake_prediction(people: list[tuple[float, float, float, float]]) -> FakePrediction:
    """A frame whose people are (x, y, tag, score): every joint of a person at its (x, y)
    pixel, where each joint's tag map holds the person's tag."""
    tags = np.zeros((SIZE, SIZE, NUM_JOINTS, 1), np.float32)
    map_poses = np.zeros((len(people), NUM_JOINTS, 3), np.float32)
    for row, (x, y, tag, score) in enumerate(people):
        # Decoder (corner) coordinates: pixel (x, y) spans [x, x + 1).
        map_poses[row] = (x + 0.5, y + 0.5, score)
        tags[int(y), int(x), :, 0] = tag
    poses = map_poses - np.array([0.5, 0.5, 0.0], np.float32)
    scores = np.array([score for *_, score in people], np.float32)
    return FakePrediction(poses, scores, map_poses, tags, (SIZE, SIZE))


class FakeVideo(Source):
    """`count` grey frames of a video named clip.mp4."""

    is_video = True
    fps = 5.0

    def __init__(self, count: int) -> None:
        super().__init__("fake video clip.mp4")
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Frame]:
        for index in range(self.count):
            yield Frame(np.full((SIZE, SIZE, 3), 40, np.uint8), "clip.mp4", index, index)


class FakeEstimator:
    """Returns the given predictions, one per call (the image is ignored)."""

    keypoint_info = COCO

    def __init__(self, predictions: list[FakePrediction]) -> None:
        self.predictions = iter(predictions)

    def __call__(self, image: np.ndarray) -> FakePrediction:
        return next(self.predictions)


def crossing_frames(count: int = 5) -> list[FakePrediction]:
    """Person A (tag 0) walks right, B (tag 2) walks left; they swap places. The decoder
    lists people by score, and the higher score alternates, so the order alternates too."""
    frames = []
    for t in range(count):
        a = (10 + 10 * t, 20, 0.0, 0.9 if t % 2 == 0 else 0.6)
        b = (50 - 10 * t, 40, 2.0, 0.6 if t % 2 == 0 else 0.9)
        frames.append(fake_prediction(sorted([a, b], key=lambda person: -person[3])))
    return frames


def test_two_people_who_cross_keep_their_ids(tmp_path):
    frames = crossing_frames()
    tracker = TagTracker(**tracking_predict.tracker_options())
    summary = tracking_predict.run_tracking(
        FakeVideo(len(frames)), FakeEstimator(frames), tracker, str(tmp_path),
        tracking_predict.TrackingOptions(progress=False),
    )
    assert summary.num_frames == 5 and summary.num_people == 10
    assert summary.num_tracks == 2 and summary.num_untracked == 0
    predictions = json.loads((tmp_path / "predictions.json").read_text())
    # A (tag 0, starting on the left) is track 0 in every frame, B is track 1, whatever the
    # order the people come in and although they swap sides.
    for t, entry in enumerate(predictions):
        assert entry["frame_id"] == t
        by_x = {person["track_id"]: person["keypoints"][0] for person in entry["people"]}
        assert by_x == {0: 10 + 10 * t, 1: 50 - 10 * t}
    tracks = json.loads((tmp_path / "tracks.json").read_text())
    assert tracks["num_tracks"] == 2 and tracks["num_frames"] == 5
    assert tracks["tracks"] == [
        {"track_id": 0, "first_frame": 0, "last_frame": 4, "num_frames": 5},
        {"track_id": 1, "first_frame": 0, "last_frame": 4, "num_frames": 5},
    ]
    results = json.loads((tmp_path / "results.json").read_text())
    assert sorted(entry["track_id"] for entry in results) == [0] * 5 + [1] * 5
    # The mp4 has every frame, each person drawn in its track's colour.
    video = cv2.VideoCapture(summary.drawing_paths[0])
    assert summary.drawing_paths[0].endswith("clip.mp4")
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    video.release()


def test_link_frame_keeps_ids_and_a_weak_newcomer_stays_untracked():
    tracker = TagTracker(min_birth_score=0.5)
    first, second = crossing_frames(2)
    ids = [tracking_predict.link_frame(tracker, prediction).tolist()
           for prediction in (first, second)]
    assert ids == [[0, 1], [1, 0]]  # frame 1 lists B first (higher score)
    weak = fake_prediction([(30, 10, 5.0, 0.2)])  # a new tag, below min_birth_score
    assert tracking_predict.link_frame(tracker, weak).tolist() == [-1]
    empty = fake_prediction([])
    assert tracking_predict.link_frame(tracker, empty).tolist() == []


def test_tracker_options_come_from_the_tracker_then_the_run_then_the_flags():
    defaults = tracking_predict.tracker_options()
    assert set(defaults) == set(tracking_predict.TRACKER_OPTIONS)
    tracker = TagTracker()
    assert defaults == {name: getattr(tracker, name) for name in defaults}
    run = {"eval": {"max_tag_distance": 0.5, "max_missed_frames": 3, "every_steps": 10}}
    options = tracking_predict.tracker_options(run, max_missed_frames=None, min_birth_score=0.4)
    assert options["max_tag_distance"] == 0.5 and options["max_missed_frames"] == 3
    assert options["min_birth_score"] == 0.4
    assert isinstance(options["max_missed_frames"], int)
    with pytest.raises(KeyError, match="tag_threshold"):
        tracking_predict.tracker_options(tag_threshold=1.0)


def test_track_colours_are_stable_per_id():
    palette = tracking_predict.track_colours(range(6))
    assert len(set(palette)) == 6
    assert tracking_predict.track_colours([5, 2]) == [palette[5], palette[2]]
    picture = tracking_predict.draw_tracks(
        np.zeros((SIZE, SIZE, 3), np.uint8), fake_prediction([(20, 30, 0.0, 0.9)]).poses,
        np.array([4]), COCO,
    )
    colour = np.array(palette[4])
    assert np.any(np.all(picture == colour, axis=-1))  # the joint, in track 4's colour
