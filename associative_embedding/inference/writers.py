"""What the predict tool writes: results JSON, drawn images, an mp4 with skeletons, tag plots.

Layout under the output folder (``OUTPUT_DIR``):

``results.json``
    COCO keypoint results, a flat list over all images (or video frames) of
    ``{"file_name", "image_id", "frame_id" (video), "category_id": 1,
    "keypoints": [x, y, score] * K, "score"}``: what ``COCO.loadRes`` reads. Undetected joints
    are written as (0, 0, 0); detected ones are clipped into the image
    (``data.image_bounds.clip_poses_to_image``), so none is ever reported outside it. With
    nobody found in any image the file is ``[]`` and ``results_note.txt`` says why (and that
    ``COCO.loadRes`` cannot load an empty list).
``image_ids.json``
    Every processed image (or frame) with its numeric ``image_id``, as a COCO dataset without
    annotations (``images`` with id, file_name, height, width, frame_id; the person
    ``categories``), so that ``COCO("image_ids.json").loadRes("results.json")`` works. Ids
    (``ResultsWriter.image_id_for``): a file name that is a number keeps it (COCO's
    000000397133.jpg is 397133); any other name gets a stable hash of the name (the first 12
    hex digits of its SHA-1, so the same name has the same id in every run, whatever else is
    in the folder); a video frame gets its frame number. Should two names meet on one id, the
    later one takes the next free id; this file is the authority.
``predictions.json``
    One entry per processed image or frame, in order: ``{"file_name", "frame_id" (video),
    "height", "width", "people": [{"keypoints", "score"}, ...]}``; ``people`` is ``[]`` for an
    image without people. With pose tracking (``tools/predict.py --task=tracking``) every
    person in both files also has its integer ``track_id``.
``drawings/<name>``
    Each image with its skeletons, under its own (relative) file name; a format OpenCV cannot
    write (e.g. GIF) gets ``.png`` appended. For a video, ``drawings/<video stem>.mp4``.
``tag_plots/<stem>_tags.png`` and ``tag_plots/<stem>_tag_maps.png``
    The paper's Figure 4 and Figure 7 pictures (``visualization.draw_tag_plot`` and
    ``draw_tag_heatmaps``); for video frames the stem ends with ``_<frame_id:06d>``.

All pictures are RGB uint8 arrays here, converted to BGR only when OpenCV writes them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from associative_embedding.data.image_bounds import clip_poses_to_image

__all__ = [
    "DRAWINGS_DIR",
    "IMAGE_IDS_FILE",
    "PREDICTIONS_FILE",
    "RESULTS_FILE",
    "RESULTS_NOTE_FILE",
    "TAG_PLOTS_DIR",
    "ImageWriter",
    "ResultsWriter",
    "TagPlotWriter",
    "VideoWriter",
    "coco_results",
    "image_id_from_name",
    "stable_image_id",
    "write_json_atomically",
]

RESULTS_FILE = "results.json"
RESULTS_NOTE_FILE = "results_note.txt"
IMAGE_IDS_FILE = "image_ids.json"
PREDICTIONS_FILE = "predictions.json"
DRAWINGS_DIR = "drawings"
TAG_PLOTS_DIR = "tag_plots"
PERSON_CATEGORY_ID = 1


def image_id_from_name(name: str) -> int | None:
    """COCO-style image id from a file name ('000000397133.jpg' -> 397133), else None."""
    stem = os.path.splitext(os.path.basename(name))[0]
    return int(stem) if stem.isdigit() else None


def stable_image_id(name: str) -> int:
    """A numeric id for any name: the first 12 hex digits of its SHA-1 (< 2**48, exact in
    JSON and JavaScript numbers), the same in every run."""
    return int(hashlib.sha1(name.encode("utf-8")).hexdigest()[:12], 16)


def _round(value: float, digits: int = 3) -> float:
    return round(float(value), digits) if math.isfinite(value) else 0.0


def _person_entries(
    poses: np.ndarray, scores: np.ndarray, track_ids: np.ndarray | None = None
) -> list[dict[str, Any]]:
    """(P, K, 3) poses, (P,) scores and optional (P,) track ids -> [{'keypoints': [x, y, s] * K,
    'score'(, 'track_id')}]."""
    poses = np.array(poses, dtype=np.float64)  # a copy: missing joints are zeroed below
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(poses) != len(scores) or (len(poses) and (poses.ndim != 3 or poses.shape[2] != 3)):
        raise ValueError(f"poses must be (P, K, 3) with P = {len(scores)}, got {poses.shape}.")
    if track_ids is not None:
        track_ids = np.asarray(track_ids).reshape(-1)
        if len(track_ids) != len(scores):
            raise ValueError(f"{len(track_ids)} track ids for {len(scores)} people.")
    if not len(scores):
        return []
    # A missing joint's position is meaningless (the decoder leaves (0, 0) before mapping).
    poses[poses[..., 2] <= 0] = 0.0
    entries = [
        {
            "keypoints": [_round(value) for value in pose.reshape(-1)],
            "score": _round(score, 5),
        }
        for pose, score in zip(poses, scores, strict=True)
    ]
    if track_ids is not None:
        for entry, track_id in zip(entries, track_ids, strict=True):
            entry["track_id"] = int(track_id)
    return entries


def coco_results(
    poses: np.ndarray,
    scores: np.ndarray,
    *,
    file_name: str,
    frame_id: int | None = None,
    image_id: int | None = None,
    category_id: int = PERSON_CATEGORY_ID,
    track_ids: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """COCO keypoint results of one image (see the module docstring).

    Args:
        poses: (P, K, 3) (x, y, score) in image pixels.
        scores: (P,) person scores.
        file_name: the image's (relative) file name, or the video's.
        frame_id: the video frame number (None for images).
        image_id: the COCO image id (None: ``image_id_from_name(file_name)`` for images, none
            for video frames).
        category_id: the COCO category (1, person).
        track_ids: (P,) integer track ids (pose tracking), written as each entry's
            'track_id'; None writes none.

    Returns:
        A list of P dicts (empty for an image without people).
    """
    if image_id is None and frame_id is None:
        image_id = image_id_from_name(file_name)
    header: dict[str, Any] = {"file_name": file_name}
    if image_id is not None:
        header["image_id"] = int(image_id)
    if frame_id is not None:
        header["frame_id"] = int(frame_id)
    return [
        {**header, "category_id": int(category_id), **entry}
        for entry in _person_entries(poses, scores, track_ids)
    ]


def write_json_atomically(path: str, payload: Any) -> None:
    """Writes JSON to a temporary file renamed over `path` (never a half-written file)."""
    temporary = path + ".tmp"
    with open(temporary, "w") as handle:
        json.dump(payload, handle)
    os.replace(temporary, path)


class ResultsWriter:
    """Collects per-image results and writes ``results.json`` and ``predictions.json``."""

    def __init__(self, output_dir: str) -> None:
        self.output_dir = output_dir
        self.results: list[dict[str, Any]] = []
        self.predictions: list[dict[str, Any]] = []
        self.images: list[dict[str, Any]] = []  # image_ids.json's entries
        self._id_of: dict[tuple[str, int | None], int] = {}
        self._used_ids: set[int] = set()

    def image_id_for(self, file_name: str, frame_id: int | None = None) -> int:
        """The numeric image id of an image or frame (rules in the module docstring)."""
        key = (file_name, frame_id)
        if key in self._id_of:
            return self._id_of[key]
        if frame_id is not None:
            image_id = int(frame_id)
        else:
            numeric = image_id_from_name(file_name)
            image_id = numeric if numeric is not None else stable_image_id(file_name)
        while image_id in self._used_ids:
            image_id += 1
        self._id_of[key] = image_id
        self._used_ids.add(image_id)
        return image_id

    @property
    def image_ids_path(self) -> str:
        return os.path.join(self.output_dir, IMAGE_IDS_FILE)

    @property
    def note_path(self) -> str:
        return os.path.join(self.output_dir, RESULTS_NOTE_FILE)

    @property
    def results_path(self) -> str:
        return os.path.join(self.output_dir, RESULTS_FILE)

    @property
    def predictions_path(self) -> str:
        return os.path.join(self.output_dir, PREDICTIONS_FILE)

    @property
    def num_people(self) -> int:
        return len(self.results)

    def add(
        self,
        poses: np.ndarray,
        scores: np.ndarray,
        *,
        file_name: str,
        image_size: tuple[int, int],
        frame_id: int | None = None,
        track_ids: np.ndarray | None = None,
    ) -> list[dict[str, Any]]:
        """Adds one image's people.

        Args:
            poses: (P, K, 3) (x, y, score) in image pixels.
            scores: (P,) person scores.
            file_name: the image's relative name (or the video's).
            image_size: (height, width).
            frame_id: the video frame number (None for images).
            track_ids: (P,) integer track ids (pose tracking), added to every person's entry
                in both files; None adds none.

        Returns:
            The image's COCO result entries (joints clipped into the image, numeric image id).
        """
        height, width = int(image_size[0]), int(image_size[1])
        poses = clip_poses_to_image(poses, height, width)
        image_id = self.image_id_for(file_name, frame_id)
        entries = coco_results(
            poses, scores, file_name=file_name, frame_id=frame_id, image_id=image_id,
            track_ids=track_ids,
        )
        self.results.extend(entries)
        image: dict[str, Any] = {"id": image_id, "file_name": file_name, "height": height,
                                 "width": width}
        if frame_id is not None:
            image["frame_id"] = int(frame_id)
        self.images.append(image)
        prediction: dict[str, Any] = {"file_name": file_name}
        if frame_id is not None:
            prediction["frame_id"] = int(frame_id)
        prediction.update(
            height=int(image_size[0]),
            width=int(image_size[1]),
            people=_person_entries(poses, scores, track_ids),
        )
        self.predictions.append(prediction)
        return entries

    def write(self) -> None:
        """Writes the files (callable repeatedly; each call rewrites them)."""
        os.makedirs(self.output_dir, exist_ok=True)
        write_json_atomically(self.results_path, self.results)
        write_json_atomically(self.predictions_path, self.predictions)
        write_json_atomically(self.image_ids_path, {
            "images": self.images,
            "annotations": [],
            "categories": [{"id": PERSON_CATEGORY_ID, "name": "person"}],
        })
        if self.results:
            if os.path.exists(self.note_path):
                os.remove(self.note_path)  # from an earlier write without results
            return
        with open(self.note_path, "w") as handle:
            handle.write(
                f"Nothing was detected in the {len(self.predictions)} images or frames, so "
                f"{RESULTS_FILE} is an empty list ([]).\npycocotools' COCO.loadRes cannot load "
                "an empty list (it reads the first result): there is nothing to evaluate.\n"
                f"{IMAGE_IDS_FILE} lists the images with their ids.\n"
            )


def _check_not_input(output_path: str, input_path: str) -> None:
    if input_path and os.path.exists(output_path) and os.path.samefile(output_path, input_path):
        raise ValueError(
            f"{output_path}: the drawing would overwrite its input image; choose another "
            "--output_dir."
        )


def _write_image(path: str, picture: np.ndarray) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if not cv2.imwrite(path, np.ascontiguousarray(picture[..., ::-1])):
        raise OSError(f"{path}: OpenCV could not write the image.")


class ImageWriter:
    """Writes drawn images under ``OUTPUT_DIR/drawings`` with their input's relative name."""

    def __init__(self, output_dir: str) -> None:
        self.directory = os.path.join(output_dir, DRAWINGS_DIR)
        self.paths: list[str] = []

    def path_for(self, name: str) -> str:
        """The drawing's path for an input's relative name ('.png' added if cv2 cannot
        write the format)."""
        path = os.path.join(self.directory, os.path.normpath(name))
        if not os.path.abspath(path).startswith(os.path.abspath(self.directory) + os.sep):
            raise ValueError(f"{name}: the name leaves the drawings folder.")
        if not cv2.haveImageWriter(path):
            path += ".png"
        return path

    def write(self, name: str, picture: np.ndarray, *, input_path: str = "") -> str:
        """Writes one (H, W, 3) uint8 RGB picture; returns its path.

        Raises:
            ValueError: when the path is the input file itself.
            OSError: when OpenCV cannot write it.
        """
        path = self.path_for(name)
        _check_not_input(path, input_path)
        _write_image(path, picture)
        self.paths.append(path)
        return path


class VideoWriter:
    """Writes drawn frames into ``OUTPUT_DIR/drawings/<stem>.mp4`` (MPEG-4 part 2, 'mp4v').

    The file is opened at the first frame (its size fixes the video's); frames of another size
    are resized to it.
    """

    def __init__(self, output_dir: str, name: str, fps: float) -> None:
        stem = os.path.splitext(os.path.basename(name))[0]
        self.path = os.path.join(output_dir, DRAWINGS_DIR, stem + ".mp4")
        self.fps = float(fps)
        self.num_frames = 0
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None

    def write(self, picture: np.ndarray, *, input_path: str = "") -> None:
        """Appends one (H, W, 3) uint8 RGB frame.

        Raises:
            ValueError: when the output file is the input video itself.
            OSError: when OpenCV cannot open the output file.
        """
        height, width = picture.shape[:2]
        if self._writer is None:
            _check_not_input(self.path, input_path)
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self._writer = cv2.VideoWriter(
                self.path, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height)
            )
            if not self._writer.isOpened():
                raise OSError(f"{self.path}: OpenCV cannot write an mp4 video here.")
            self._size = (width, height)
        bgr = np.ascontiguousarray(picture[..., ::-1])
        if (width, height) != self._size:
            bgr = cv2.resize(bgr, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(bgr)
        self.num_frames += 1

    def close(self) -> None:
        """Finishes the file (its index is written here)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None


class TagPlotWriter:
    """Writes the Figure 4 / Figure 7 pictures under ``OUTPUT_DIR/tag_plots``."""

    def __init__(self, output_dir: str) -> None:
        self.directory = os.path.join(output_dir, TAG_PLOTS_DIR)
        self.paths: list[str] = []

    def write(
        self, name: str, pictures: Sequence[tuple[str, np.ndarray]], *,
        frame_id: int | None = None,
    ) -> list[str]:
        """Writes `<stem>[_<frame_id>]_<suffix>.png` for each (suffix, RGB picture).

        Args:
            name: the image's relative name (or the video's).
            pictures: (suffix, (H, W, 3) uint8 RGB picture) pairs, e.g. ('tags', plot).
            frame_id: the video frame number (None for images).

        Returns:
            The written paths.
        """
        stem = os.path.splitext(os.path.normpath(name))[0]
        if frame_id is not None:
            stem = f"{stem}_{int(frame_id):06d}"
        written = []
        for suffix, picture in pictures:
            path = os.path.join(self.directory, f"{stem}_{suffix}.png")
            _write_image(path, picture)
            written.append(path)
        self.paths.extend(written)
        return written
