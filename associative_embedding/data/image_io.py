"""Reading and checking encoded images, with errors that name the offending file.

Decoding goes through `tf.io.decode_image`, which raises on a truncated JPEG (OpenCV's
`cv2.imread` silently returns such a file with its missing lower part grey, which would train
on garbage). Every error raised here is an `ImageDecodeError` (a `ValueError`) or a
`FileNotFoundError` whose message starts with the image's source (its path, or whatever label the
caller passes), so a bad file among 100k is found at once.

This module is the one decoding path of the package: evaluation (``predictor.PoseEstimator``),
the training evaluation's drawings and the predict tool's sources (``inference.sources``) decode
with `decode_image`; the training input pipeline decodes inside a tf.data graph with the same
``tf.io.decode_image``, after `check_image_files` has checked every training and validation
file up front (``tasks.pose.inputs``), so a bad file stops training before its first step with
its path, or is skipped and listed (``config.dataset.skip_bad_images``).

Functions:
    decode_image(data, source=...)  -> (H, W, 3) uint8 RGB; greyscale and RGBA become RGB.
    read_image(path)                -> the same, from a file.
    verify_image(path)              -> (height, width) after a full decode (raises if broken).
    read_image_size(path)           -> (height, width) from the JPEG/PNG header only (fast).
    image_file_problem(path, ...)   -> None, or a sentence naming the file and what is wrong.
    check_image_files(paths, ...)   -> {path: problem} of the files that cannot be used.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import struct
from collections.abc import Sequence

import numpy as np

__all__ = [
    "ImageDecodeError",
    "check_image_files",
    "decode_image",
    "image_file_problem",
    "read_image",
    "read_image_size",
    "verify_image",
]


class ImageDecodeError(ValueError):
    """An encoded image could not be decoded; the message names its source."""


def _short_tf_message(error) -> str:
    """Strips TensorFlow's '{{function_node ...}}' prefix and '[Op:...]' suffix."""
    message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", error.message)
    return re.sub(r"\s*\[Op:\w+\]\s*$", "", message).strip()


def decode_image(data: bytes, *, source: str) -> np.ndarray:
    """Decodes a JPEG/PNG/GIF/BMP/WebP image into RGB pixels.

    Args:
        data: the encoded file content.
        source: what the bytes are (a path, or 'image 123'), used in error messages.

    Returns:
        (H, W, 3) uint8 RGB. Greyscale is repeated over the three channels, an alpha channel
        is dropped (not composited), 16-bit PNGs are scaled to 8 bits, and an animated GIF gives
        its first frame.

    Raises:
        ImageDecodeError: naming `source` when the bytes are empty, truncated or not an image.
    """
    # Imported here so that annotation readers (coco.py, mpii.py) load without TensorFlow.
    import tensorflow as tf

    if not data:
        raise ImageDecodeError(f"{source}: empty image file (0 bytes).")
    try:
        image = tf.io.decode_image(data, channels=0, dtype=tf.uint8, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as error:
        raise ImageDecodeError(
            f"{source}: cannot decode image ({len(data)} bytes): {_short_tf_message(error)}"
        ) from None
    pixels = image.numpy()
    channels = pixels.shape[-1]
    if channels == 3:
        return pixels
    if channels in (1, 2):  # grey or grey + alpha
        return np.repeat(pixels[..., :1], 3, axis=-1)
    if channels == 4:  # RGBA
        return np.ascontiguousarray(pixels[..., :3])
    raise ImageDecodeError(f"{source}: unsupported number of channels {channels}.")


def _read_file(path: str | os.PathLike) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {os.fspath(path)}") from None
    except IsADirectoryError:
        raise ImageDecodeError(f"{os.fspath(path)}: is a directory, not an image file.") from None


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Reads and decodes an image file into (H, W, 3) uint8 RGB (see `decode_image`).

    Raises:
        FileNotFoundError: naming the path when the file does not exist.
        ImageDecodeError: naming the path when it cannot be decoded.
    """
    return decode_image(_read_file(path), source=os.fspath(path))


def verify_image(path: str | os.PathLike) -> tuple[int, int]:
    """Fully decodes an image file to prove it is readable and complete.

    Returns:
        (height, width) of the decoded image.

    Raises:
        FileNotFoundError: naming the path when the file does not exist.
        ImageDecodeError: naming the path when the file is truncated, corrupt or not an image.
    """
    pixels = read_image(path)
    return int(pixels.shape[0]), int(pixels.shape[1])


# JPEG start-of-frame markers (baseline, progressive, lossless...): they carry the image size.
# 0xC4 (DHT), 0xC8 (JPG extension) and 0xCC (DAC) share the range but are not frames.
_JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _jpeg_size(handle) -> tuple[int, int] | None:
    """Walks the JPEG marker segments up to the first SOF; None if the header is malformed."""
    handle.seek(2)  # after the SOI marker
    while True:
        if handle.read(1) != b"\xff":
            return None
        byte = handle.read(1)
        while byte == b"\xff":  # fill bytes before a marker
            byte = handle.read(1)
        if not byte:
            return None
        marker = byte[0]
        if 0xD0 <= marker <= 0xD8 or marker == 0x01:  # standalone markers: no length field
            continue
        length_bytes = handle.read(2)
        if len(length_bytes) != 2:
            return None
        (length,) = struct.unpack(">H", length_bytes)
        if marker in _JPEG_SOF_MARKERS:
            frame = handle.read(5)
            if len(frame) != 5:
                return None
            _, height, width = struct.unpack(">BHH", frame)
            return (height, width) if height > 0 and width > 0 else None
        if length < 2:
            return None
        handle.seek(length - 2, os.SEEK_CUR)


def read_image_size(path: str | os.PathLike) -> tuple[int, int]:
    """Returns (height, width) of an image file, reading only the header for JPEG and PNG.

    Used where an annotation file lacks image sizes (MPII, some COCO-format exports); other
    formats, or a header that cannot be parsed, fall back to a full decode.

    Raises:
        FileNotFoundError: naming the path when the file does not exist.
        ImageDecodeError: naming the path when the size cannot be determined.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(24)
            size = None
            if head.startswith(b"\xff\xd8"):
                size = _jpeg_size(handle)
            elif head.startswith(_PNG_SIGNATURE) and head[12:16] == b"IHDR":
                width, height = struct.unpack(">II", head[16:24])
                size = (height, width) if height > 0 and width > 0 else None
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {os.fspath(path)}") from None
    except IsADirectoryError:
        raise ImageDecodeError(f"{os.fspath(path)}: is a directory, not an image file.") from None
    if size is not None:
        return int(size[0]), int(size[1])
    return verify_image(path)


_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
# Bytes some writers leave after a JPEG's end-of-image marker (padding).
_TRAILING_PADDING = b"\x00 \r\n\t"


def _ends_complete(path: str, head: bytes) -> bool:
    """Whether a JPEG ends with its end-of-image marker or a PNG with its IEND chunk.

    A truncated file fails this; so can a complete file with data appended after its end, which
    is why a failure here only triggers a full decode, never a verdict.
    """
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 64))
        tail = handle.read()
    if head.startswith(b"\xff\xd8"):
        # Entropy-coded data escapes 0xFF, so FF D9 at the end is the real end marker.
        return tail.rstrip(_TRAILING_PADDING).endswith(b"\xff\xd9")
    if head.startswith(_PNG_SIGNATURE):
        return tail.endswith(_PNG_END)
    return False


def image_file_problem(
    path: str | os.PathLike,
    *,
    decode: bool = False,
    expected_size: tuple[int, int] | None = None,
) -> str | None:
    """What makes an image file unusable, as a sentence naming it; None when it is usable.

    Args:
        path: the image file.
        decode: fully decode it (exact, ~5 ms per photo). Without it, a quick check: the file
            exists and is not empty, its JPEG/PNG header gives its size, and it ends with the
            format's end marker; a file failing the quick check (or of another format) is then
            fully decoded, so only a file damaged inside its compressed data while its header
            and end are intact can pass the quick check and fail later.
        expected_size: (height, width) the annotations give it; another size is a problem.
    """
    path = os.fspath(path)
    try:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"image file not found: {path}")
        if os.path.getsize(path) == 0:
            raise ImageDecodeError(f"{path}: empty image file (0 bytes).")
        size = None
        if not decode:
            with open(path, "rb") as handle:
                head = handle.read(24)
            if _ends_complete(path, head):
                size = read_image_size(path)
        if size is None:
            size = verify_image(path)
    except (FileNotFoundError, ImageDecodeError) as error:
        return str(error)
    except OSError as error:
        return f"{path}: cannot be read: {error}"
    if expected_size is not None and tuple(size) != tuple(expected_size):
        return (f"{path} is {size[0]}x{size[1]} (height x width), annotated as "
                f"{expected_size[0]}x{expected_size[1]}.")
    return None


def check_image_files(
    paths: Sequence[str | os.PathLike],
    *,
    decode: bool = False,
    expected_sizes: Sequence[tuple[int, int] | None] | None = None,
    num_workers: int | None = None,
    progress: bool = False,
) -> dict[str, str]:
    """Checks many image files (`image_file_problem`) on a thread pool.

    Args:
        paths: the image files.
        decode: fully decode every file instead of the quick check.
        expected_sizes: per path, the annotated (height, width), or None.
        num_workers: threads (None: the CPU count, at most 16; decoding releases the GIL).
        progress: show a tqdm bar.

    Returns:
        {path: problem} of the unusable files, in the order of `paths`.
    """
    paths = [os.fspath(path) for path in paths]
    sizes = list(expected_sizes) if expected_sizes is not None else [None] * len(paths)
    if len(sizes) != len(paths):
        raise ValueError(f"{len(paths)} paths but {len(sizes)} expected sizes.")
    workers = num_workers or min(16, os.cpu_count() or 1)
    from tqdm import tqdm

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        problems = list(tqdm(
            pool.map(lambda item: image_file_problem(item[0], decode=decode,
                                                     expected_size=item[1]),
                     zip(paths, sizes, strict=True)),
            total=len(paths), desc="checking images", unit="img",
            disable=not progress, leave=False,
        ))
    return {path: problem for path, problem in zip(paths, problems, strict=True) if problem}
