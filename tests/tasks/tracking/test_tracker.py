"""Tag tracker and overlap baseline on hand-made sequences."""

from __future__ import annotations

import numpy as np
import pytest

from associative_embedding.tasks.tracking.tracker import (
    Detection,
    OverlapTracker,
    TagTracker,
    tag_distance_matrix,
)

NUM_JOINTS = 17
# A person's joints: a 60 x 120 px grid of points around its centre.
_OFFSETS = np.stack(
    [
        np.tile([-30.0, 0.0, 30.0], 6)[:NUM_JOINTS],
        np.repeat(np.linspace(-60.0, 60.0, 6), 3)[:NUM_JOINTS],
    ],
    axis=-1,
)


def person(center_x: float, tag: float | None, score: float = 0.9, center_y: float = 100.0):
    pose = np.concatenate([_OFFSETS + [center_x, center_y], np.ones((NUM_JOINTS, 1))], axis=-1)
    return Detection(pose=pose, score=score, tag=None if tag is None else np.array([tag]))


def crossing_sequence(with_tags: bool) -> list[list[Detection]]:
    """A walks right, B walks left; between frames 1 and 2 they pass each other, each landing
    exactly where the other was (a low frame rate or fast motion)."""
    tag_a, tag_b = (0.0, 3.0) if with_tags else (None, None)
    a_positions = [40.0, 50.0, 60.0, 70.0]
    b_positions = [70.0, 60.0, 50.0, 40.0]
    return [
        [person(a, tag_a), person(b, tag_b)] for a, b in zip(a_positions, b_positions, strict=True)
    ]


def ids_of_person(frames_ids: list[np.ndarray], index: int) -> list[int]:
    return [int(ids[index]) for ids in frames_ids]


@pytest.mark.parametrize("overlap", ["oks", "iou"])
def test_overlap_baseline_swaps_identities_at_a_crossing(overlap):
    ids = OverlapTracker(overlap=overlap, min_overlap=0.3).run(crossing_sequence(False))
    # Frames 0-1: A = 0, B = 1. Frame 2: the detection at A's old place is B, so it gets A's
    # id (and A gets B's), and the swapped ids then follow the wrong people.
    assert ids_of_person(ids, 0) == [0, 0, 1, 1]
    assert ids_of_person(ids, 1) == [1, 1, 0, 0]


@pytest.mark.parametrize("overlap_weight", [0.0, 0.5])
def test_tag_tracker_keeps_identities_at_the_same_crossing(overlap_weight):
    tracker = TagTracker(max_tag_distance=1.0, overlap_weight=overlap_weight)
    ids = tracker.run(crossing_sequence(True))
    assert ids_of_person(ids, 0) == [0, 0, 0, 0]
    assert ids_of_person(ids, 1) == [1, 1, 1, 1]


def test_overlap_term_breaks_ties_between_acceptable_tags():
    # Two people with near-identical tags: the tag alone cannot tell them apart, overlap can.
    frames = [[person(20, 0.0), person(80, 0.1)], [person(80, 0.05), person(21, 0.05)]]
    tags_only = TagTracker(max_tag_distance=1.0, overlap_weight=0.0).run(frames)
    with_overlap = TagTracker(max_tag_distance=1.0, overlap_weight=1.0).run(frames)
    assert with_overlap[1].tolist() == [1, 0]
    # Without overlap the cheaper tag assignment (|0 - 0.05| + |0.1 - 0.05| either way) ties;
    # the point is only that overlap decides, so both ids exist.
    assert sorted(tags_only[1].tolist()) == [0, 1]


def test_tag_above_max_distance_starts_a_new_track():
    frames = [[person(20, 0.0)], [person(20, 1.5)]]
    ids = TagTracker(max_tag_distance=1.0).run(frames)
    assert [i.tolist() for i in ids] == [[0], [1]]


def test_birth_needs_min_score_and_death_after_max_missed_frames():
    tracker = TagTracker(max_tag_distance=1.0, min_birth_score=0.5, max_missed_frames=1)
    assert tracker.update([person(20, 0.0, score=0.3)]).tolist() == [-1]
    assert tracker.tracks == []
    assert tracker.update([person(20, 0.0, score=0.6)]).tolist() == [0]
    # Missed once: still alive, and a weak detection can continue it (only birth needs score).
    assert tracker.update([]).tolist() == []
    assert [t.track_id for t in tracker.tracks] == [0]
    assert tracker.update([person(20, 0.1, score=0.2)]).tolist() == [0]
    # Missed twice in a row: dead, so the same person now starts track 1.
    tracker.update([])
    tracker.update([])
    assert tracker.tracks == []
    assert tracker.update([person(20, 0.0, score=0.6)]).tolist() == [1]


def test_no_detections_at_all():
    for tracker in (TagTracker(), OverlapTracker()):
        ids = tracker.run([[], [], []])
        assert [i.shape for i in ids] == [(0,)] * 3
        assert tracker.tracks == []


def test_ids_are_deterministic_and_follow_detection_order():
    frames = [[person(20, 0.0), person(80, 5.0), person(140, 10.0)], [person(80, 5.0)]]
    first = TagTracker().run(frames)
    second = TagTracker().run(frames)
    assert [i.tolist() for i in first] == [i.tolist() for i in second] == [[0, 1, 2], [1]]


def test_tag_moving_average():
    tracker = TagTracker(max_tag_distance=2.0, tag_momentum=0.75)
    tracker.update([person(20, 0.0)])
    tracker.update([person(20, 1.0)])
    np.testing.assert_allclose(tracker.tracks[0].tag, [0.25])
    tracker = TagTracker(max_tag_distance=2.0, tag_momentum=0.0)
    tracker.update([person(20, 0.0)])
    tracker.update([person(20, 1.0)])
    np.testing.assert_allclose(tracker.tracks[0].tag, [1.0])


def test_tag_distances():
    a = np.array([[0.0, 0.0]])
    b = np.array([[3.0, 4.0]])
    np.testing.assert_allclose(tag_distance_matrix(a, b, "l2"), [[5.0]])
    np.testing.assert_allclose(tag_distance_matrix(a, b, "rms"), [[np.sqrt(12.5)]])
    with pytest.raises(ValueError):
        tag_distance_matrix(a, b, "cosine")


def test_tag_tracker_rejects_missing_tags_and_bad_options():
    tracker = TagTracker()
    tracker.update([person(20, 0.0)])
    with pytest.raises(ValueError, match="tag"):
        tracker.update([person(20, None)])
    with pytest.raises(ValueError):
        TagTracker(tag_momentum=1.0)
    with pytest.raises(ValueError):
        OverlapTracker(overlap="mask")
    with pytest.raises(ValueError):
        TagTracker(max_missed_frames=-1)


def test_detections_from_decoder_read_mean_tags_at_joint_pixels():
    from associative_embedding.tasks.tracking.tracker import detections_from_decoder

    tags = np.zeros((8, 8, 2, 1))
    tags[2, 3, 0, 0] = 1.0  # joint 0 of person 0 at pixel (x=3, y=2)
    tags[5, 6, 1, 0] = 3.0  # joint 1 of person 0 at pixel (x=6, y=5)
    tags[1, 1, 0, 0] = -4.0  # joint 0 of person 1; its joint 1 is missing
    poses = np.array(
        [
            [[3.75, 2.5, 0.9], [6.25, 5.5, 0.8]],  # corner coordinates: floor -> the pixel
            [[1.5, 1.5, 0.7], [0.0, 0.0, 0.0]],
            [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
        ]
    )
    detections = detections_from_decoder(poses, np.array([0.85, 0.35, 0.0]), tags)
    np.testing.assert_allclose(detections[0].tag, [2.0])
    np.testing.assert_allclose(detections[1].tag, [-4.0])
    assert np.isnan(detections[2].tag).all()
    assert [d.score for d in detections] == [0.85, 0.35, 0.0]
    # A person without joints neither matches nor (with a low score) starts a track.
    tracker = TagTracker(min_birth_score=0.1)
    assert tracker.update(detections).tolist() == [0, 1, -1]
    assert tracker.update(detections).tolist() == [0, 1, -1]


def test_tag_tracker_recovers_an_identity_after_an_occlusion():
    # A is hidden for two frames and reappears far from where it was last seen; B stays.
    frames = [
        [person(40, 0.0), person(200, 3.0)],
        [person(200, 3.0)],
        [person(200, 3.0)],
        [person(120, 0.1), person(200, 3.0)],
    ]
    ids = TagTracker(max_missed_frames=2).run(frames)
    assert [i.tolist() for i in ids] == [[0, 1], [1], [1], [0, 1]]
    # The overlap baseline cannot tell it is A: a new track.
    ids = OverlapTracker(max_missed_frames=2).run(frames)
    assert ids[3].tolist() == [2, 1]
    # Hidden for longer than max_missed_frames: A's track has died, a new one starts.
    assert TagTracker(max_missed_frames=1).run(frames)[3].tolist() == [2, 1]
