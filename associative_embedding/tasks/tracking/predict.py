"""Pose tracking on a video, a webcam or a folder of frames (``tools/predict.py --task=tracking``).

Per frame, in order:

1. a ``FramePoseEstimator`` decodes the frame's people together with the fused maps they come
   from. ``tools/predict.py`` passes the pose task's ``ImagePoseEstimator`` (this task does
   not import the pose task: the estimator comes in through the protocol). Any pose network
   with tags works; a tracking run trains the same network with a space-time grouping loss;
2. ``tracker.detections_from_decoder`` gives each person the mean of its joints' tags, read
   on the decoder's grid (``map_poses``);
3. ``TagTracker.update`` links them to the live tracks: an id >= 0, or -1 for a person that
   matched no track and scored below the tracker's ``min_birth_score``.

``run_tracking`` does this for a whole source and writes, under the output folder (the common
files through ``inference.writers``):

``predictions.json``
    One entry per frame: ``{"file_name", "frame_id" (video), "height", "width", "people":
    [{"keypoints": [x, y, score] * K, "score", "track_id"}]}``, every person with an integer
    ``track_id`` (-1: untracked, see above).
``results.json``, ``image_ids.json``
    COCO keypoint results (each with its ``track_id``) and their image list, as for poses.
``tracks.json``
    ``{"num_tracks", "num_frames", "tracker": {TagTracker options}, "tracks": [{"track_id",
    "first_frame", "last_frame", "num_frames"}]}``; a frame is its video frame number
    (its position for images). ``num_tracks`` is the number of distinct ids >= 0 in
    ``predictions.json``.
``drawings/<video stem>.mp4`` (images: ``drawings/<name>``)
    Each tracked person in its track's colour (``track_colours``: an id has one colour in
    every frame) with its id beside its highest joint; untracked people and people scoring
    below the draw threshold are left out, as in the pose drawings.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import cv2
import numpy as np
from absl import logging
from tqdm import tqdm

from associative_embedding.core import visualization
from associative_embedding.core.keypoint_info import KeypointInfo
from associative_embedding.inference.sources import Source
from associative_embedding.inference.writers import (
    ImageWriter,
    ResultsWriter,
    VideoWriter,
    write_json_atomically,
)
from associative_embedding.tasks.tracking.tracker import TagTracker, detections_from_decoder

__all__ = [
    "TRACKER_OPTIONS",
    "TRACKS_FILE",
    "FramePoseEstimator",
    "FramePrediction",
    "TrackingOptions",
    "TrackingSummary",
    "describe",
    "draw_tracks",
    "link_frame",
    "run_tracking",
    "track_colours",
    "tracker_options",
]

TRACKS_FILE = "tracks.json"
#: The ``TagTracker`` options a predict run sets (tools/predict.py flags of the same names; a
#: tracking run's config.eval has fields of the same names).
TRACKER_OPTIONS = (
    "max_tag_distance", "tag_momentum", "overlap_weight", "min_birth_score", "max_missed_frames",
)
_INTEGER_OPTIONS = frozenset({"max_missed_frames"})


class FramePrediction(Protocol):
    """What the tracker needs of one frame's poses (``tasks.pose.image_estimator.ImagePrediction``).

    Attributes:
        poses: (P, K, 3) (x, y, score) in image pixels.
        scores: (P,) person scores.
        map_poses: (P, K, 3) the same people in the decoder's coordinates on the grid of
            ``tags`` (corner convention: map pixel j spans [j, j + 1)).
        tags: (h, w, K, D) the fused tag maps the people were grouped with.
        image_size: (height, width) of the frame.
    """

    poses: np.ndarray
    scores: np.ndarray
    map_poses: np.ndarray
    tags: np.ndarray
    image_size: tuple[int, int]


class FramePoseEstimator(Protocol):
    """Image -> people with their maps (``tasks.pose.image_estimator.ImagePoseEstimator``)."""

    keypoint_info: KeypointInfo

    def __call__(self, image: np.ndarray) -> FramePrediction:
        """Decodes the people of one (H, W, 3) uint8 RGB image."""
        ...


def tracker_options(
    run_config: Mapping[str, Any] | None = None, **overrides: Any
) -> dict[str, Any]:
    """``TagTracker`` keyword arguments for a predict run.

    The tracker's own defaults, replaced by a training run's ``eval`` fields of the same names
    (a tracking run tunes them on its validation videos), replaced by every override that is
    not None (the tool's flags that were given).

    Args:
        run_config: a training run's config (``core.run_dir.read_training_config``) or None.
        **overrides: ``TRACKER_OPTIONS`` fields, e.g. max_tag_distance=None (keeps the run's).

    Returns:
        {option: value} for every name in ``TRACKER_OPTIONS``.

    Raises:
        KeyError: naming an override that is not one of ``TRACKER_OPTIONS``.
    """
    parameters = inspect.signature(TagTracker.__init__).parameters
    options = {name: parameters[name].default for name in TRACKER_OPTIONS}
    unknown = sorted(set(overrides) - set(options))
    if unknown:
        raise KeyError(f"not tracker options: {unknown}; the options are {list(options)}")
    section = run_config.get("eval") if run_config is not None else None
    if section is not None:
        options.update({name: section[name] for name in TRACKER_OPTIONS if name in section})
    options.update({name: value for name, value in overrides.items() if value is not None})
    return {
        name: int(value) if name in _INTEGER_OPTIONS else float(value)
        for name, value in options.items()
    }


def link_frame(tracker: TagTracker, prediction: FramePrediction) -> np.ndarray:
    """Links one frame's people to the tracker's tracks.

    Args:
        tracker: the tracker, holding the tracks of the frames before.
        prediction: the frame's people and tag maps.

    Returns:
        (P,) int64 track id per person (-1: untracked).
    """
    detections = detections_from_decoder(prediction.map_poses, prediction.scores, prediction.tags)
    return tracker.update(detections)


def track_colours(track_ids: Iterable[int]) -> list[visualization.RGBColour]:
    """One RGB colour per track id, the same for an id in every frame and every run.

    The id indexes ``visualization.person_colours``'s golden-ratio hues, so consecutive ids
    (people who appear together) get well-separated colours; -1 gets grey.
    """
    track_ids = [int(track_id) for track_id in track_ids]
    palette = visualization.person_colours(max(track_ids, default=-1) + 1)
    return [palette[track_id] if track_id >= 0 else (128, 128, 128) for track_id in track_ids]


def draw_tracks(
    image: np.ndarray,
    poses: np.ndarray,
    track_ids: np.ndarray,
    keypoint_info: KeypointInfo,
    *,
    score_threshold: float = 0.1,
) -> np.ndarray:
    """Draws each person in its track's colour with its id beside its highest joint.

    Args:
        image: (H, W, 3) uint8 RGB; not modified.
        poses: (P, K, 3) (x, y, score) in image pixels.
        track_ids: (P,) track ids.
        keypoint_info: the skeleton.
        score_threshold: joints with a lower score are not drawn.

    Returns:
        A new (H, W, 3) uint8 RGB image.
    """
    colours = track_colours(np.asarray(track_ids).reshape(-1))
    picture = visualization.draw_poses(
        image, poses, keypoint_info, score_threshold=score_threshold, colours=colours
    )
    scale = max(0.4, max(picture.shape[:2]) / 1000)
    thickness = max(1, int(round(scale * 2)))
    for pose, track_id, colour in zip(np.asarray(poses, np.float32), track_ids, colours,
                                      strict=True):
        visible = np.flatnonzero((pose[:, 2] >= score_threshold) & np.isfinite(pose[:, 1]))
        if visible.size == 0:
            continue
        top = visible[np.argmin(pose[visible, 1])]
        text = str(int(track_id))
        (text_width, text_height), _ = cv2.getTextSize(
            text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness
        )
        # Above and right of the joint, kept inside the picture (a head at the top edge).
        height, width = picture.shape[:2]
        x = int(np.clip(float(pose[top, 0]) + 4, 0, max(0, width - text_width)))
        y = int(np.clip(float(pose[top, 1]) - 4, text_height, max(text_height, height - 1)))
        cv2.putText(picture, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    tuple(int(c) for c in colour), thickness, cv2.LINE_AA)
    return picture


@dataclasses.dataclass
class TrackingOptions:
    """What to draw (the JSON files keep everyone).

    Attributes:
        score_threshold: joints with a lower score are not drawn.
        person_threshold: people with a lower score are not drawn
            (``visualization.DEFAULT_DRAW_THRESHOLD``).
        draw: write the mp4 (or drawn images).
        progress: show a tqdm progress bar.
    """

    score_threshold: float = 0.1
    person_threshold: float = visualization.DEFAULT_DRAW_THRESHOLD
    draw: bool = True
    progress: bool = True


@dataclasses.dataclass
class TrackingSummary:
    """What a run did.

    Attributes:
        num_frames: frames processed.
        num_people: people written (all frames, tracked or not).
        num_untracked: people written with track id -1.
        num_tracks: distinct track ids (>= 0) written.
        results_path: the COCO results JSON.
        predictions_path: the per-frame JSON.
        tracks_path: the per-track JSON.
        drawing_paths: the mp4, or the drawn images.
        interrupted: True when stopped with Ctrl-C (the files hold the frames done).
    """

    num_frames: int
    num_people: int
    num_untracked: int
    num_tracks: int
    results_path: str
    predictions_path: str
    tracks_path: str
    drawing_paths: list[str]
    interrupted: bool = False


def _track_entries(spans: Mapping[int, list[int]]) -> list[dict[str, int]]:
    return [
        {"track_id": track_id, "first_frame": first, "last_frame": last, "num_frames": count}
        for track_id, (first, last, count) in sorted(spans.items())
    ]


def run_tracking(
    source: Source,
    estimator: FramePoseEstimator,
    tracker: TagTracker,
    output_dir: str,
    options: TrackingOptions | None = None,
) -> TrackingSummary:
    """Estimates and tracks the poses of every frame of `source`; writes the module's files.

    The files are finished even when the loop stops early (an error, or Ctrl-C, which ends a
    webcam run cleanly). The tracker is reset first (ids start at 0).

    Args:
        source: the frames, in order (``sources.open_source``).
        estimator: image -> people with their tag maps.
        tracker: the tag tracker (``tracker_options`` gives its arguments).
        output_dir: created if needed.
        options: drawing options.

    Returns:
        A ``TrackingSummary``.
    """
    options = options or TrackingOptions()
    os.makedirs(output_dir, exist_ok=True)
    keypoint_info = estimator.keypoint_info
    tracker.reset()
    results = ResultsWriter(output_dir)
    image_writer = ImageWriter(output_dir)
    video_writer: VideoWriter | None = None
    tracks_path = os.path.join(output_dir, TRACKS_FILE)
    spans: dict[int, list[int]] = {}  # track id -> [first frame, last frame, frames]
    num_frames = num_untracked = 0
    interrupted = False
    progress = tqdm(total=source.length, desc="track", unit="frame", disable=not options.progress)
    try:
        for frame in source:
            prediction = estimator(frame.image)
            track_ids = link_frame(tracker, prediction)
            results.add(
                prediction.poses, prediction.scores, file_name=frame.name,
                image_size=prediction.image_size, frame_id=frame.frame_id, track_ids=track_ids,
            )
            number = frame.index if frame.frame_id is None else int(frame.frame_id)
            for track_id in track_ids[track_ids >= 0].tolist():
                span = spans.setdefault(track_id, [number, number, 0])
                span[1], span[2] = number, span[2] + 1
            num_untracked += int(np.sum(track_ids < 0))
            if options.draw:
                drawn = visualization.people_to_draw(prediction.scores, options.person_threshold)
                drawn = drawn[track_ids[drawn] >= 0]
                picture = draw_tracks(
                    frame.image, prediction.poses[drawn], track_ids[drawn], keypoint_info,
                    score_threshold=options.score_threshold,
                )
                if source.is_video:
                    if video_writer is None:
                        fps = float(getattr(source, "fps", 30.0))
                        video_writer = VideoWriter(output_dir, frame.name, fps)
                    video_writer.write(picture, input_path=frame.path)
                else:
                    image_writer.write(frame.name, picture, input_path=frame.path)
            num_frames += 1
            progress.set_postfix(tracks=len(spans), refresh=False)
            progress.update(1)
    except KeyboardInterrupt:
        interrupted = True
        logging.warning("interrupted after %d frames; writing what was done.", num_frames)
    finally:
        progress.close()
        if video_writer is not None:
            video_writer.close()
        source.close()
        results.write()
        write_json_atomically(tracks_path, {
            "num_tracks": len(spans),
            "num_frames": num_frames,
            "tracker": _tracker_settings(tracker),
            "tracks": _track_entries(spans),
        })
    drawing_paths = [video_writer.path] if video_writer is not None else image_writer.paths
    return TrackingSummary(
        num_frames=num_frames,
        num_people=results.num_people,
        num_untracked=num_untracked,
        num_tracks=len(spans),
        results_path=results.results_path,
        predictions_path=results.predictions_path,
        tracks_path=tracks_path,
        drawing_paths=list(drawing_paths),
        interrupted=interrupted,
    )


def _tracker_settings(tracker: TagTracker) -> dict[str, Any]:
    return {name: getattr(tracker, name) for name in TRACKER_OPTIONS if hasattr(tracker, name)}


def describe(summary: TrackingSummary, source: Source) -> str:
    """A short human summary of a run (printed by the tool)."""
    lines = [
        f"{source.description}: {summary.num_frames} frames, {summary.num_people} people in "
        f"{summary.num_tracks} tracks ({summary.num_untracked} people untracked, track_id -1)."
    ]
    lines.append(
        f"Tracks: {summary.tracks_path}; per frame: {summary.predictions_path} "
        f"(COCO results: {summary.results_path})."
    )
    if summary.drawing_paths:
        where = (summary.drawing_paths[0] if len(summary.drawing_paths) == 1
                 else os.path.dirname(summary.drawing_paths[0]) + os.sep)
        lines.append(f"Drawings: {where}")
    if summary.interrupted:
        lines.append("Interrupted: the files hold the frames processed before Ctrl-C.")
    return "\n".join(lines)

