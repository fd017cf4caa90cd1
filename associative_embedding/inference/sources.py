"""Input sources of the predict tool: an image file, a folder, a glob, a video file, a webcam.

``open_source(spec)`` picks the kind from the spec and returns an iterable of ``Frame``s
(RGB uint8 pixels plus a name); every source shares the ``Source`` interface:

* image file: decoded with ``data.image_io`` (an unreadable file raises an error naming it);
* folder: its image files (by extension) in sorted order, not recursive; other files are
  skipped and counted (``num_skipped_non_images``), and so are images that fail to decode
  (``num_skipped_unreadable``, with a warning naming each);
* glob (a spec with ``*``, ``?`` or ``[``; ``**`` recurses): the matching image files, counted
  like a folder's; names keep their path below the matches' common folder, so equal file
  names in different folders stay apart;
* video file (by extension: mp4, avi, mov, mkv, ...): frames decoded by OpenCV (FFmpeg);
* webcam: an integer spec that is not an existing path (OpenCV device index).

Images are decoded by ``data.image_io``, the package's one decoding path (evaluation and the
training checks use it too), whose errors name the file. An image more elongated than
``image_bounds.MAX_ASPECT_RATIO`` (e.g. 10000 x 20 pixels) is still processed, padded like any
other, with a warning naming it: its poses are unreliable, and the results writer clips their
joints into the image.

Errors: a path that does not exist raises ``FileNotFoundError`` naming it; a video or webcam
that cannot be opened, an empty folder or glob, and an undecodable image file raise
``ValueError`` (``image_io.ImageDecodeError`` for images) naming it, when the source is opened;
a video from which no frame can be decoded raises ``SourceError`` (a ``ValueError``) when
iterated.
"""

from __future__ import annotations

import dataclasses
import glob
import os
from collections.abc import Iterator

import cv2
import numpy as np
from absl import logging

from associative_embedding.data import image_bounds, image_io

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "Frame",
    "GlobSource",
    "ImageFileSource",
    "ImageFolderSource",
    "Source",
    "SourceError",
    "VideoSource",
    "WebcamSource",
    "open_source",
]

# What tf.io.decode_image reads (JPEG, PNG, GIF, BMP, WebP).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".gif", ".bmp", ".webp"})
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"}
)
_GLOB_CHARACTERS = frozenset("*?[")


class SourceError(ValueError):
    """An input that opened but yields nothing usable (e.g. a video with no decodable frame)."""


@dataclasses.dataclass
class Frame:
    """One image to estimate poses on.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        name: relative name of the image (its file name, or its path below the common folder
            of a glob's matches); for video and webcam frames, the video's file name (or
            'webcam_<index>').
        index: position in the source (0-based, counting only frames yielded).
        frame_id: the frame number in a video or webcam stream (0-based), None for images.
        path: the file the frame comes from ('' for a webcam).
    """

    image: np.ndarray
    name: str
    index: int
    frame_id: int | None = None
    path: str = ""


def _is_image_file(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def _warn_if_elongated(path: str, image: np.ndarray) -> None:
    problem = image_bounds.elongation_problem(path, image.shape[0], image.shape[1])
    if problem is not None:
        logging.warning("%s", problem)


class Source:
    """Base of all sources: iterate to get ``Frame``s.

    Attributes:
        description: what the source is (for messages), e.g. 'folder photos/'.
        is_video: True for video files and webcams (results per frame, drawings as mp4).
        non_image_files: files skipped because they are not images (folder, glob).
        unreadable_files: image files skipped because they could not be decoded (known once
            iterated).
        max_frames: stop after this many frames (None: all).
    """

    is_video = False

    def __init__(self, description: str, max_frames: int | None = None) -> None:
        self.description = description
        self.max_frames = max_frames if max_frames and max_frames > 0 else None
        self.non_image_files: list[str] = []
        self.unreadable_files: list[str] = []

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def __len__(self) -> int:
        """Upper bound of the number of frames yielded (for a progress bar)."""
        raise NotImplementedError

    def close(self) -> None:
        """Releases the underlying device or file (no-op for images)."""

    @property
    def length(self) -> int | None:
        """``len(self)`` when known (None for a webcam without ``max_frames``)."""
        try:
            return len(self)
        except TypeError:
            return None

    @property
    def num_skipped_non_images(self) -> int:
        return len(self.non_image_files)

    @property
    def num_skipped_unreadable(self) -> int:
        return len(self.unreadable_files)

    def _limited(self, count: int) -> int:
        return count if self.max_frames is None else min(count, self.max_frames)


class ImageFileSource(Source):
    """A single image file; an unreadable file raises ``ImageDecodeError`` naming it."""

    def __init__(self, path: str, max_frames: int | None = None) -> None:
        super().__init__(f"image {path}", max_frames)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"input image not found: {path}")
        self.path = path
        # Decoded now, so that an unreadable file fails before the model is loaded.
        self.image = image_io.read_image(path)
        _warn_if_elongated(path, self.image)

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(image=self.image, name=os.path.basename(self.path), index=0, path=self.path)


class _ImageListSource(Source):
    """Images from a list of files; non-images and unreadable images are skipped and counted."""

    def __init__(
        self,
        description: str,
        paths: list[str],
        names: list[str],
        max_frames: int | None = None,
    ) -> None:
        super().__init__(description, max_frames)
        self._paths: list[str] = []
        self._names: list[str] = []
        for path, name in zip(paths, names, strict=True):
            if _is_image_file(path):
                self._paths.append(path)
                self._names.append(name)
            else:
                self.non_image_files.append(path)
        if self.num_skipped_non_images:
            logging.info("%s: skipping %d non-image files (images: %s)", description,
                         self.num_skipped_non_images, ", ".join(sorted(IMAGE_EXTENSIONS)))
        if not self._paths:
            raise ValueError(
                f"{description}: no image files ({len(paths)} files, none with an image "
                f"extension {', '.join(sorted(IMAGE_EXTENSIONS))})."
            )

    @property
    def paths(self) -> list[str]:
        """The image files that will be read, in order."""
        return list(self._paths)

    def __len__(self) -> int:
        return self._limited(len(self._paths))

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        for path, name in zip(self._paths, self._names, strict=True):
            if self.max_frames is not None and index >= self.max_frames:
                return
            try:
                image = image_io.read_image(path)
            except (image_io.ImageDecodeError, OSError) as error:
                # One bad file among many should not stop the run: skip it, say which.
                logging.warning("skipping unreadable image: %s", error)
                self.unreadable_files.append(path)
                continue
            _warn_if_elongated(path, image)
            yield Frame(image=image, name=name, index=index, path=path)
            index += 1


class ImageFolderSource(_ImageListSource):
    """The image files of a folder (not recursive), sorted by name."""

    def __init__(self, folder: str, max_frames: int | None = None) -> None:
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"input folder not found: {folder}")
        entries = sorted(os.listdir(folder))
        paths = [os.path.join(folder, entry) for entry in entries]
        files = [path for path in paths if os.path.isfile(path)]
        super().__init__(
            f"folder {folder}", files, [os.path.basename(path) for path in files], max_frames
        )
        self.folder = folder


class GlobSource(_ImageListSource):
    """The image files matching a glob pattern (``**`` recurses), sorted by path."""

    def __init__(self, pattern: str, max_frames: int | None = None) -> None:
        files = sorted(path for path in glob.glob(pattern, recursive=True) if os.path.isfile(path))
        if not files:
            raise FileNotFoundError(f"no file matches the input pattern: {pattern}")
        if len(files) == 1:
            names = [os.path.basename(files[0])]
        else:
            root = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in files])
            names = [os.path.relpath(os.path.abspath(path), root) for path in files]
        super().__init__(f"pattern {pattern}", files, names, max_frames)
        self.pattern = pattern


class _CaptureSource(Source):
    """Frames of an OpenCV VideoCapture (BGR converted to RGB)."""

    is_video = True

    def __init__(self, description: str, name: str, path: str, max_frames: int | None) -> None:
        super().__init__(description, max_frames)
        self.name = name
        self.path = path
        self._capture: cv2.VideoCapture | None = None

    def _open(self) -> cv2.VideoCapture:
        raise NotImplementedError

    @property
    def capture(self) -> cv2.VideoCapture:
        if self._capture is None:
            self._capture = self._open()
        return self._capture

    @property
    def fps(self) -> float:
        """Frames per second reported by the stream (30 when it reports none)."""
        fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0)
        return fps if 0.0 < fps < 1000.0 else 30.0

    def __iter__(self) -> Iterator[Frame]:
        capture = self.capture
        frame_id = 0
        while self.max_frames is None or frame_id < self.max_frames:
            ok, bgr = capture.read()
            if not ok or bgr is None:
                break
            if bgr.ndim == 2:
                bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
            image = np.ascontiguousarray(bgr[..., 2::-1])
            yield Frame(image=image, name=self.name, index=frame_id, frame_id=frame_id,
                        path=self.path)
            frame_id += 1
        if frame_id == 0:
            raise SourceError(f"{self.description}: no frame could be read.")

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class VideoSource(_CaptureSource):
    """The frames of a video file."""

    def __init__(self, path: str, max_frames: int | None = None) -> None:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"input video not found: {path}")
        super().__init__(f"video {path}", os.path.basename(path), path, max_frames)
        self.capture  # noqa: B018 - opens now, so that a broken file fails before any work.

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(self.path)
        if not capture.isOpened():
            capture.release()
            raise ValueError(f"{self.path}: cannot open the video (unsupported or corrupt).")
        return capture

    def __len__(self) -> int:
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        return self._limited(max(count, 0))


class WebcamSource(_CaptureSource):
    """Frames from a camera (OpenCV device index) until it stops or ``max_frames``."""

    def __init__(self, device: int, max_frames: int | None = None) -> None:
        super().__init__(f"webcam {device}", f"webcam_{device}", "", max_frames)
        self.device = int(device)
        self.capture  # noqa: B018 - opens now, so that a missing camera fails before any work.

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(self.device)
        if not capture.isOpened():
            capture.release()
            raise ValueError(f"webcam {self.device}: cannot open the camera (is it connected?).")
        return capture

    def __len__(self) -> int:
        if self.max_frames is None:
            raise TypeError("a webcam stream has no length")
        return self.max_frames


def _is_integer(text: str) -> bool:
    return text.strip().isdigit()


def open_source(spec: str, *, max_frames: int | None = None) -> Source:
    """Opens the input named by ``spec`` (see the module docstring for the rules).

    Args:
        spec: an image file, a folder, a glob pattern, a video file or a webcam index.
        max_frames: stop after this many images or frames (None or <= 0: all).

    Returns:
        A ``Source``.

    Raises:
        FileNotFoundError: naming the path (or pattern) when nothing exists there.
        ValueError: naming the input when it exists but cannot be used.
    """
    spec = os.fspath(spec)
    if not spec:
        raise ValueError("empty input path.")
    expanded = os.path.expanduser(spec)
    if os.path.isdir(expanded):
        return ImageFolderSource(expanded, max_frames)
    if os.path.isfile(expanded):
        if os.path.splitext(expanded)[1].lower() in VIDEO_EXTENSIONS:
            return VideoSource(expanded, max_frames)
        # Any other file is read as an image: a wrong file gives the decoder's error naming it.
        return ImageFileSource(expanded, max_frames)
    if _is_integer(spec):
        return WebcamSource(int(spec), max_frames)
    if _GLOB_CHARACTERS & set(spec):
        return GlobSource(expanded, max_frames)
    raise FileNotFoundError(f"input not found: {spec}")
