"""Linking per-frame people into tracks: by associative-embedding tag, or by overlap (baseline).

Both trackers share one interface: feed each frame's people (`Detection`: pose (K, 3), score,
and for `TagTracker` a mean tag (D,)) to `update`, which returns each person's track id (or -1
when the person neither matched a live track nor was confident enough to start one). Each frame:

1. A cost matrix between live tracks and detections is built, together with a mask of
   acceptable pairs.
2. `scipy.optimize.linear_sum_assignment` finds the minimum-cost assignment, with every
   unacceptable pair given one prohibitive cost so the solver maximises the number of
   acceptable pairs first; assigned pairs that are not acceptable are dropped.
3. Matched tracks take the detection's pose (and, for tags, an exponential moving average of
   the tag); unmatched detections with score >= `min_birth_score` start new tracks, with ids
   0, 1, 2, ... in the order detections are given (so ids are deterministic); tracks missed
   for more than `max_missed_frames` consecutive frames die.

`TagTracker`: cost = tag distance + `overlap_weight` * (1 - overlap), acceptable iff the tag
distance is below `max_tag_distance` (overlap only re-ranks acceptable pairs: two people that
cross swap positions, and only the tag says who is who).
`OverlapTracker`: cost = 1 - overlap, acceptable iff overlap >= `min_overlap`; overlap is OKS
(with the track's last pose as reference) or the IoU of keypoint boxes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from associative_embedding.core import keypoint_info
from associative_embedding.core.overlap import box_iou_matrix, keypoint_boxes, oks_matrix

OVERLAP_TYPES = ("oks", "iou")
TAG_DISTANCES = ("rms", "l2")

# Above any acceptable cost (tag distances and 1 - overlap are small), so the solver prefers
# any set of acceptable pairs over one more unacceptable pair.
_BLOCKED_COST = 1e6


@dataclasses.dataclass(frozen=True)
class Detection:
    """One person found in one frame by the pose decoder.

    Attributes:
        pose: (K, 3) (x, y, score) per joint; missing joints have score 0.
        score: the person's score (the decoder's mean joint score).
        tag: (D,) the person's mean tag over its joints; None for `OverlapTracker` inputs.
    """

    pose: np.ndarray
    score: float
    tag: np.ndarray | None = None


@dataclasses.dataclass
class Track:
    """A live track.

    Attributes:
        track_id: its id (>= 0, never reused).
        pose: (K, 3) the pose of its last matched detection.
        tag: (D,) the moving average of its matched tags (None without tags).
        missed: consecutive frames it has gone unmatched.
        length: number of frames it was matched in.
    """

    track_id: int
    pose: np.ndarray
    tag: np.ndarray | None
    missed: int = 0
    length: int = 1


def tag_distance_matrix(
    tags_a: np.ndarray, tags_b: np.ndarray, kind: str = "rms"
) -> np.ndarray:
    """Distances between tags, in the decoder's units.

    Args:
        tags_a: (A, D) tags.
        tags_b: (B, D) tags.
        kind: 'rms' (root mean square over the D dims, the decoder's default grouping distance,
            so a threshold means the same for 1-D and 2-D tags) or 'l2' (Euclidean).

    Returns:
        (A, B) float64 distances.
    """
    if kind not in TAG_DISTANCES:
        raise ValueError(f"tag distance must be one of {TAG_DISTANCES}, got {kind!r}.")
    tags_a = np.asarray(tags_a, np.float64)
    tags_b = np.asarray(tags_b, np.float64)
    squared = np.sum(np.square(tags_a[:, None, :] - tags_b[None, :, :]), axis=-1)
    if kind == "rms":
        squared = squared / tags_a.shape[-1]
    return np.sqrt(squared)


def overlap_matrix(
    poses_a: np.ndarray, poses_b: np.ndarray, kind: str, sigmas: np.ndarray | None = None
) -> np.ndarray:
    """Overlap of every pair of people.

    Args:
        poses_a: (A, K, 3) (x, y, score) poses.
        poses_b: (B, K, 3) reference poses (OKS scale).
        kind: 'oks' or 'iou' (of the keypoint boxes).
        sigmas: (K,) OKS sigmas; None uses COCO's (K must then be 17).

    Returns:
        (A, B) float64 overlap in [0, 1].
    """
    if kind == "oks":
        if sigmas is None:
            sigmas = keypoint_info.COCO.sigmas_array
        return oks_matrix(poses_a, poses_b, sigmas)
    if kind == "iou":
        return box_iou_matrix(keypoint_boxes(poses_a), keypoint_boxes(poses_b))
    raise ValueError(f"overlap must be one of {OVERLAP_TYPES}, got {kind!r}.")


def detections_from_decoder(
    poses: np.ndarray, scores: np.ndarray, tags: np.ndarray
) -> list[Detection]:
    """The pose decoder's people of one frame as tracker inputs, each with its mean tag.

    The tag of a person is the mean over its present joints (score > 0) of the tag map read at
    the joint's pixel, as the decoder's grouping uses it. Decoder coordinates are heatmap
    corner coordinates (pixel j spans [j, j + 1)), so a joint's pixel is its floored
    coordinate, clamped to the map.

    Args:
        poses: (P, K, 3) (x, y, score) from `codec.decode.group_poses`, heatmap coordinates.
        scores: (P,) person scores.
        tags: (h, w, K, D) tag maps of the frame, or (h, w, K) for D = 1.

    Returns:
        P detections; a person without a present joint gets a NaN tag (it matches no track
        and, with a score below `min_birth_score`, starts none).
    """
    poses = np.asarray(poses, np.float64)
    tags = np.asarray(tags, np.float64)
    if tags.ndim == 3:
        tags = tags[..., None]
    height, width, num_joints, tag_dim = tags.shape
    if poses.size and poses.shape[1:] != (num_joints, 3):
        raise ValueError(f"poses must be (P, {num_joints}, 3), got {poses.shape}.")
    detections = []
    for pose, score in zip(poses.reshape(-1, num_joints, 3), np.ravel(scores), strict=True):
        present = np.flatnonzero(pose[:, 2] > 0)
        if present.size == 0:
            tag = np.full((tag_dim,), np.nan)
        else:
            columns = np.clip(np.floor(pose[present, 0]).astype(int), 0, width - 1)
            rows = np.clip(np.floor(pose[present, 1]).astype(int), 0, height - 1)
            tag = tags[rows, columns, present].mean(axis=0)
        detections.append(Detection(pose=pose, score=float(score), tag=tag))
    return detections


class _Tracker:
    """Track bookkeeping and assignment shared by both trackers (see the module docstring)."""

    def __init__(self, *, min_birth_score: float, max_missed_frames: int) -> None:
        if max_missed_frames < 0:
            raise ValueError(f"max_missed_frames must be >= 0, got {max_missed_frames}.")
        self.min_birth_score = float(min_birth_score)
        self.max_missed_frames = int(max_missed_frames)
        self.tracks: list[Track] = []
        self._next_id = 0

    def reset(self) -> None:
        """Forgets all tracks; ids start again at 0 (call between videos)."""
        self.tracks = []
        self._next_id = 0

    def _costs(self, detections: Sequence[Detection]) -> tuple[np.ndarray, np.ndarray]:
        """(T, N) cost and acceptable-pair mask between live tracks and detections."""
        raise NotImplementedError

    def _absorb(self, track: Track, detection: Detection) -> None:
        """Updates a matched track with its detection."""
        track.pose = np.asarray(detection.pose, np.float64)
        track.missed = 0
        track.length += 1

    def update(self, detections: Sequence[Detection]) -> np.ndarray:
        """Links one frame's people to the tracks.

        Args:
            detections: the frame's N people (any order; ids of new tracks follow it).

        Returns:
            (N,) int64 track id per detection, -1 for one that neither matched nor started a
            track.
        """
        ids = np.full((len(detections),), -1, np.int64)
        matched_tracks: set[int] = set()
        if self.tracks and detections:
            cost, acceptable = self._costs(detections)
            rows, cols = linear_sum_assignment(np.where(acceptable, cost, _BLOCKED_COST))
            for row, col in zip(rows, cols, strict=True):
                if acceptable[row, col]:
                    self._absorb(self.tracks[row], detections[col])
                    ids[col] = self.tracks[row].track_id
                    matched_tracks.add(row)
        survivors = []
        for index, track in enumerate(self.tracks):
            if index not in matched_tracks:
                track.missed += 1
            if track.missed <= self.max_missed_frames:
                survivors.append(track)
        self.tracks = survivors
        for col, detection in enumerate(detections):
            if ids[col] < 0 and detection.score >= self.min_birth_score:
                self.tracks.append(self._new_track(detection))
                ids[col] = self.tracks[-1].track_id
        return ids

    def _new_track(self, detection: Detection) -> Track:
        track = Track(
            track_id=self._next_id,
            pose=np.asarray(detection.pose, np.float64),
            tag=None if detection.tag is None else np.asarray(detection.tag, np.float64),
        )
        self._next_id += 1
        return track

    def run(self, frames: Sequence[Sequence[Detection]]) -> list[np.ndarray]:
        """Tracks a whole video from a fresh state.

        Args:
            frames: per frame, its detections.

        Returns:
            Per frame, the (N_t,) track ids from `update`.
        """
        self.reset()
        return [self.update(detections) for detections in frames]


class TagTracker(_Tracker):
    """Links people by their associative-embedding tags (see the module docstring).

    Args:
        max_tag_distance: a detection may continue a track only if their tag distance is below
            this (in `tag_distance` units, like the decoder's `tag_threshold`).
        tag_momentum: the track tag after a match is momentum * old + (1 - momentum) * new;
            0 keeps only the newest tag, values near 1 average over many frames.
        overlap_weight: weight of (1 - overlap) added to the tag distance in the matching cost;
            0 matches on tags alone.
        overlap: 'oks' or 'iou', the overlap used when `overlap_weight` > 0.
        tag_distance: 'rms' (decoder default) or 'l2'.
        min_birth_score: an unmatched detection starts a track only with a score >= this.
        max_missed_frames: a track unmatched for more consecutive frames than this dies.
        sigmas: (K,) OKS sigmas; None uses COCO's.
    """

    def __init__(
        self,
        *,
        max_tag_distance: float = 1.0,
        tag_momentum: float = 0.5,
        overlap_weight: float = 0.0,
        overlap: str = "oks",
        tag_distance: str = "rms",
        min_birth_score: float = 0.1,
        max_missed_frames: int = 5,
        sigmas: np.ndarray | None = None,
    ) -> None:
        super().__init__(min_birth_score=min_birth_score, max_missed_frames=max_missed_frames)
        if not 0.0 <= tag_momentum < 1.0:
            raise ValueError(f"tag_momentum must be in [0, 1), got {tag_momentum}.")
        if overlap_weight < 0:
            raise ValueError(f"overlap_weight must be >= 0, got {overlap_weight}.")
        if overlap not in OVERLAP_TYPES:
            raise ValueError(f"overlap must be one of {OVERLAP_TYPES}, got {overlap!r}.")
        if tag_distance not in TAG_DISTANCES:
            raise ValueError(f"tag_distance must be one of {TAG_DISTANCES}, got {tag_distance!r}.")
        self.max_tag_distance = float(max_tag_distance)
        self.tag_momentum = float(tag_momentum)
        self.overlap_weight = float(overlap_weight)
        self.overlap = overlap
        self.tag_distance = tag_distance
        self.sigmas = sigmas

    def _costs(self, detections: Sequence[Detection]) -> tuple[np.ndarray, np.ndarray]:
        if any(detection.tag is None for detection in detections):
            raise ValueError("TagTracker needs a tag on every detection.")
        track_tags = np.stack([track.tag for track in self.tracks])
        detection_tags = np.stack([np.ravel(detection.tag) for detection in detections])
        distance = tag_distance_matrix(track_tags, detection_tags, self.tag_distance)
        cost = distance.copy()
        if self.overlap_weight > 0:
            track_poses = np.stack([track.pose for track in self.tracks])
            detection_poses = np.stack([detection.pose for detection in detections])
            # The track's last pose is the reference (OKS scale): it is what the detection
            # should resemble.
            overlap = overlap_matrix(detection_poses, track_poses, self.overlap, self.sigmas).T
            cost = cost + self.overlap_weight * (1.0 - overlap)
        return cost, distance < self.max_tag_distance

    def _absorb(self, track: Track, detection: Detection) -> None:
        super()._absorb(track, detection)
        new_tag = np.ravel(np.asarray(detection.tag, np.float64))
        track.tag = self.tag_momentum * track.tag + (1.0 - self.tag_momentum) * new_tag


class OverlapTracker(_Tracker):
    """Baseline that links people by pose overlap with the track's last pose (no tags).

    Args:
        overlap: 'oks' or 'iou' (of the keypoint boxes).
        min_overlap: a detection may continue a track only with an overlap >= this.
        min_birth_score: an unmatched detection starts a track only with a score >= this.
        max_missed_frames: a track unmatched for more consecutive frames than this dies.
        sigmas: (K,) OKS sigmas; None uses COCO's.
    """

    def __init__(
        self,
        *,
        overlap: str = "oks",
        min_overlap: float = 0.3,
        min_birth_score: float = 0.1,
        max_missed_frames: int = 5,
        sigmas: np.ndarray | None = None,
    ) -> None:
        super().__init__(min_birth_score=min_birth_score, max_missed_frames=max_missed_frames)
        if overlap not in OVERLAP_TYPES:
            raise ValueError(f"overlap must be one of {OVERLAP_TYPES}, got {overlap!r}.")
        self.overlap = overlap
        self.min_overlap = float(min_overlap)
        self.sigmas = sigmas

    def _costs(self, detections: Sequence[Detection]) -> tuple[np.ndarray, np.ndarray]:
        track_poses = np.stack([track.pose for track in self.tracks])
        detection_poses = np.stack([detection.pose for detection in detections])
        overlap = overlap_matrix(detection_poses, track_poses, self.overlap, self.sigmas).T
        return 1.0 - overlap, overlap >= self.min_overlap
