"""Reading and checking encoded images, with errors that name the offending file.

Decoding goes through `tf.io.decode_image`, which raises on a truncated JPEG (OpenCV's
`cv2.imread` silently returns such a file with its missing lower part grey, which would train
on garbage). Every error raised here is an `ImageDecodeError` (a `ValueError`) or a
`FileNotFoundError` whose message starts with the image's source (its path, or whatever label the
caller passes), so a bad file among 100k is found at once.

Functions:
    decode_image(data, source=...)  -> (H, W, 3) uint8 RGB; greyscale and RGBA become RGB.
    read_image(path)                -> the same, from a file.
    verify_image(path)              -> (height, width) after a full decode (raises if broken).
    read_image_size(path)           -> (height, width) from the JPEG/PNG header only (fast).
"""

from __future__ import annotations

import os
import re
import struct

import numpy as np

__all__ = [
    "ImageDecodeError",
    "decode_image",
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
