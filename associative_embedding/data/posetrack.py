"""PoseTrack 2018 reader: per-video JSON files -> per-video sequences of frames with track ids.

PoseTrack 2018 annotation files are COCO-format keypoint files (one per video in the release,
several videos in some conversions) with video fields: ``images`` entries carry ``vid_id``,
``frame_id``, ``file_name`` (relative to the dataset root, e.g.
``images/val/012834_mpii_test/000000.jpg``), ``is_labeled``, ``nframes`` and the image-level
ignore polygons ``ignore_regions_x``/``ignore_regions_y``; ``annotations`` carry ``track_id``
(the person's identity within the video), 17 keypoints and ``bbox_head`` (x, y, w, h).

Everything COCO-format is read by `coco.read_coco_keypoints` (the shared annotation checks of
`annotation_checks`, keypoints, boxes, and the ignore mask, which already includes the
PoseTrack ignore polygons); this module adds what is PoseTrack's own. Issues, counted in the
report (`coco.ReadReport.issues`) with example ids:

Skipped (with ``strict=True`` they raise `annotation_checks.AnnotationError` naming the file
and the annotation or image ids):
    * 'track_id_missing': a usable person without an integer ``track_id``; the person is
      removed from its frame (a person without identity cannot supervise the temporal loss or
      be scored by tracking metrics).
    * 'track_id_duplicate': a second person of the same frame with an already used
      ``track_id``; the later one is removed.
    * 'frame_duplicate': a second image of the same video at the same frame index; it is
      removed with its people.

Fixed (counted only):
    * 'video_id_missing': an image without ``vid_id`` gets the name of its file's folder.
    * 'frame_index_from_frame_id': the file name has no frame number, so ``frame_id`` orders
      the frames.
    * 'head_box_missing': a person without a valid ``bbox_head`` gets a NaN head box (the
      per-joint tracking metrics need it; such a person cannot be matched there).

Informational: 'frame_not_labeled', frames with ``is_labeled`` false (PoseTrack annotates a
subset of frames; those frames have no ground truth, so the flat reader drops them and the
video reader keeps them, flagged, as the frames between annotated ones).

Frame index: the number in the file name's stem (``000123.jpg`` -> 123), else ``frame_id``.
Videos are returned sorted by id and their frames by index.

Joints: PoseTrack's 17 (``core.keypoint_info.POSETRACK``: COCO's layout with head_bottom and
head_top in place of the eyes, which a flip must not swap), told by the joint names the file
lists (``keypoint_info_of``); each video carries its set, and ``data.readers.read_split``
reports it for the flat records.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from absl import logging
from tqdm import tqdm

from associative_embedding.core.keypoint_info import (
    POSETRACK,
    KeypointInfo,
    keypoint_info_for_names,
    keypoint_info_for_num_joints,
)
from associative_embedding.core.record import PoseRecord
from associative_embedding.data import coco
from associative_embedding.data.annotation_checks import raise_for_skipped
from associative_embedding.data.annotation_fields import as_int

FORMAT_POSETRACK = "posetrack18"

SKIPPED_ISSUES = frozenset({"track_id_missing", "track_id_duplicate", "frame_duplicate"})

# PoseTrack files name video fields early (the categories with "head_bottom" come first in the
# release, then images with "vid_id"); plain COCO files have none of these.
_DETECTION_MARKERS = (b'"vid_id"', b'"track_id"', b'"head_bottom"')


@dataclasses.dataclass
class PoseTrackFrame:
    """One frame of a video.

    Attributes:
        record: the frame's `PoseRecord` (people with a track id only; ``head_boxes`` set,
            (P, 4) x1, y1, x2, y2, NaN where the file has none).
        track_ids: (P,) int64 track id of each person (row of ``record.keypoints``).
        video_id: the video's id.
        frame_index: position of the frame in the video.
        is_labeled: whether the frame is annotated (unannotated frames have no people, and
            their absence of people means nothing).
    """

    record: PoseRecord
    track_ids: np.ndarray
    video_id: str
    frame_index: int
    is_labeled: bool


@dataclasses.dataclass
class PoseTrackVideo:
    """The frames of one video, sorted by frame index.

    Attributes:
        video_id: the video's id.
        frames: its frames.
        keypoint_info: the joint set of its keypoints (``POSETRACK`` for PoseTrack 2018
            files; ``keypoint_info_of``).
    """

    video_id: str
    frames: list[PoseTrackFrame]
    keypoint_info: KeypointInfo = POSETRACK

    @property
    def labeled_frames(self) -> list[PoseTrackFrame]:
        return [frame for frame in self.frames if frame.is_labeled]


def is_posetrack_file(path: str, head: bytes) -> bool:
    """Format detector: a JSON object whose first bytes name PoseTrack's video fields."""
    return head.startswith(b"{") and any(marker in head for marker in _DETECTION_MARKERS)


def keypoint_info_of(report: coco.ReadReport) -> KeypointInfo:
    """The joint set of a PoseTrack file from the joint names it lists.

    A registered set with exactly those names (PoseTrack 2018's own: ``POSETRACK``), else, for
    17 unnamed or renamed joints, ``POSETRACK`` all the same (the format's joints are
    PoseTrack's whatever a conversion called them), else the set the count stands for.

    Args:
        report: the read report (its ``keypoint_names``: the category's K joint names).

    Raises:
        ValueError: when no registered set has that many joints.
    """
    names = tuple(report.keypoint_names)
    by_names = keypoint_info_for_names(names)
    if by_names is not None:
        return by_names
    if len(names) == POSETRACK.num_joints:
        return POSETRACK
    return keypoint_info_for_num_joints(len(names))


def _frame_index(image: dict, file_name: str) -> int | None:
    digits = re.fullmatch(r"\D*(\d+)", pathlib.PurePath(file_name).stem)
    if digits:
        return int(digits.group(1))
    return as_int(image.get("frame_id"))


def _head_box(annotation: dict) -> np.ndarray | None:
    """(x1, y1, x2, y2) from ``bbox_head`` (x, y, w, h), None when it is not 4 finite numbers
    with a non-negative size."""
    value = annotation.get("bbox_head")
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        return None
    try:
        x, y, width, height = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if not np.all(np.isfinite([x, y, width, height])) or width < 0 or height < 0:
        return None
    return np.array([x, y, x + width, y + height], np.float32)


def read_posetrack(
    annotation_file: str | os.PathLike,
    image_dir: str | os.PathLike,
    *,
    split_role: coco.SplitRole = "eval",
    ignore: coco.IgnoreMode = "crowd_and_unlabelled",
    skip_bad_images: bool = False,
    strict: bool = False,
    log_report: bool = True,
) -> tuple[list[PoseTrackVideo], coco.ReadReport]:
    """Reads a PoseTrack 2018 file into videos of frames (see the module docstring).

    Args:
        annotation_file: a PoseTrack 2018 JSON file (one or several videos).
        image_dir: the dataset root the images' ``file_name`` entries are relative to.
        split_role: 'eval' keeps every frame; 'train' keeps only frames with people.
        ignore: as `coco.read_coco_keypoints`.
        skip_bad_images: skip (and count) frames whose image is missing instead of raising.
        strict: raise `annotation_checks.AnnotationError` (naming the file and the ids) instead
            of skipping an invalid entry.
        log_report: log the report, PoseTrack issues included, once the file is read.

    Returns:
        (videos sorted by id, the read report with the PoseTrack issues added).

    Raises:
        FileNotFoundError, ValueError: as `coco.read_coco_keypoints`.
        annotation_checks.AnnotationError: with `strict`, on any skipped issue.
    """
    annotation_file = os.fspath(annotation_file)
    records, report = coco.read_coco_keypoints(
        annotation_file, image_dir, split_role=split_role, ignore=ignore,
        skip_bad_images=skip_bad_images, strict=strict, log_report=False,
    )
    dataset = report.checked.dataset
    images = {as_int(image.get("id")): image for image in dataset["images"]}
    annotations = {as_int(a.get("id")): a for a in dataset["annotations"] if isinstance(a, dict)}
    details: dict[str, list[str]] = {}

    def problem(issue: str, example: Any, detail: str) -> None:
        report.count(issue, example)
        if issue in SKIPPED_ISSUES and len(details.setdefault(issue, [])) < 5:
            details[issue].append(detail)

    videos: dict[str, dict[int, PoseTrackFrame]] = {}
    for order, record in enumerate(records):
        image = images[record.image_id]
        file_name = str(image.get("file_name", ""))
        video_id = image.get("vid_id")
        if video_id is None or str(video_id) == "":
            report.count("video_id_missing", record.image_id)
            video_id = pathlib.PurePath(file_name).parent.name
        video_id = str(video_id)
        frame_index = _frame_index(image, file_name)
        if not re.fullmatch(r"\D*\d+", pathlib.PurePath(file_name).stem):
            report.count("frame_index_from_frame_id", record.image_id)
        if frame_index is None:
            frame_index = order
        frames = videos.setdefault(video_id, {})
        if frame_index in frames:
            problem(
                "frame_duplicate", record.image_id,
                f"image {record.image_id} is frame {frame_index} of video {video_id} again",
            )
            continue
        is_labeled = bool(image.get("is_labeled", True))
        if not is_labeled:
            report.count("frame_not_labeled", record.image_id)
        keep, track_ids, head_boxes = [], [], []
        for row, annotation_id in enumerate(record.annotation_ids.tolist()):
            annotation = annotations[annotation_id]
            track_id = as_int(annotation.get("track_id"))
            if track_id is None:
                problem(
                    "track_id_missing", annotation_id,
                    f"annotation {annotation_id} (image {record.image_id}) has no integer "
                    f"track_id: {annotation.get('track_id')!r}",
                )
                continue
            if track_id in track_ids:
                problem(
                    "track_id_duplicate", annotation_id,
                    f"annotation {annotation_id} repeats track_id {track_id} in image "
                    f"{record.image_id}",
                )
                continue
            head_box = _head_box(annotation)
            if head_box is None:
                report.count("head_box_missing", annotation_id)
                head_box = np.full((4,), np.nan, np.float32)
            keep.append(row)
            track_ids.append(track_id)
            head_boxes.append(head_box)
        record = dataclasses.replace(
            record,
            keypoints=record.keypoints[keep],
            boxes=record.boxes[keep],
            areas=record.areas[keep],
            annotation_ids=record.annotation_ids[keep],
            head_boxes=np.reshape(np.array(head_boxes, np.float32), (len(keep), 4)),
        )
        frames[frame_index] = PoseTrackFrame(
            record, np.array(track_ids, np.int64), video_id, frame_index, is_labeled
        )
    if strict:
        raise_for_skipped(annotation_file, report.issues, report.examples, SKIPPED_ISSUES,
                          details)
    report.informational_issues = report.informational_issues | {"frame_not_labeled"}
    report.num_people_kept = sum(
        frame.record.num_people for frames in videos.values() for frame in frames.values()
    )
    keypoint_info = keypoint_info_of(report)
    result = [
        PoseTrackVideo(video_id, [frames[index] for index in sorted(frames)], keypoint_info)
        for video_id, frames in sorted(videos.items())
    ]
    if log_report:
        report.log()
    return result, report


def read_posetrack_videos(
    annotation_files: str | os.PathLike | Sequence[str | os.PathLike],
    image_dir: str | os.PathLike,
    **options: Any,
) -> list[PoseTrackVideo]:
    """Reads several PoseTrack 2018 files (a folder means all its ``*.json`` files).

    A release folder holds hundreds of per-video files, so the files' reports are not logged
    one by one: a file with anything repaired or skipped is logged (WARNING, naming it), and
    one INFO line sums up the rest. A progress bar shows while 50 or more files are read.

    Args:
        annotation_files: a file, a folder, or a list of files.
        image_dir: the dataset root.
        **options: passed to `read_posetrack`.

    Returns:
        All videos, sorted by id.

    Raises:
        ValueError: when a video appears in two files (its frames would be split).
    """
    if isinstance(annotation_files, (str, os.PathLike)):
        path = pathlib.Path(annotation_files)
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        source = os.fspath(path)
    else:
        files = [pathlib.Path(f) for f in annotation_files]
        source = f"{len(files)} PoseTrack files"
    if len(files) == 1:
        return read_posetrack(files[0], image_dir, **options)[0]
    videos: dict[str, PoseTrackVideo] = {}
    sources: dict[str, pathlib.Path] = {}
    num_people = num_frames_labeled = num_with_problems = 0
    for file in tqdm(files, desc="PoseTrack files", unit="file", disable=len(files) < 50,
                     leave=False):
        file_videos, report = read_posetrack(file, image_dir, **{**options, "log_report": False})
        if report.has_problems:
            report.log()
            num_with_problems += 1
        num_people += report.num_people_kept
        for video in file_videos:
            if video.video_id in videos:
                raise ValueError(
                    f"video {video.video_id} is in both {sources[video.video_id]} and {file}."
                )
            videos[video.video_id] = video
            sources[video.video_id] = file
            num_frames_labeled += sum(frame.is_labeled for frame in video.frames)
    logging.info(
        "%s: %d files, %d videos, %d frames (%d labelled), %d people%s.",
        source, len(files), len(videos), sum(len(v.frames) for v in videos.values()),
        num_frames_labeled, num_people,
        f"; {num_with_problems} file(s) with repaired or skipped entries (logged above)"
        if num_with_problems else "",
    )
    return [videos[video_id] for video_id in sorted(videos)]


def read_posetrack_records(
    annotation_file: str | os.PathLike,
    image_dir: str | os.PathLike,
    *,
    split_role: coco.SplitRole = "train",
    ignore: coco.IgnoreMode = "crowd_and_unlabelled",
    skip_bad_images: bool = False,
    strict: bool = False,
) -> tuple[list[PoseRecord], coco.ReadReport]:
    """The reader-registry interface: the annotated frames as flat `PoseRecord`s.

    Frames with ``is_labeled`` false are left out (they have no ground truth: an evaluator
    would count every prediction there as a false positive).

    Args and raises: as `read_posetrack`.

    Returns:
        (records of the annotated frames, videos and frames in order; the report).
    """
    videos, report = read_posetrack(
        annotation_file, image_dir, split_role=split_role, ignore=ignore,
        skip_bad_images=skip_bad_images, strict=strict,
    )
    records = [frame.record for video in videos for frame in video.labeled_frames]
    report.num_images_kept = len(records)
    return records, report
