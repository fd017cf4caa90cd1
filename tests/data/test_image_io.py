"""Tests for associative_embedding.data.image_io: decoding, bad files, header sizes."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import tensorflow as tf

from associative_embedding.data import image_io


def _jpeg(height: int, width: int, *, progressive: bool = False, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return tf.io.encode_jpeg(pixels, quality=90, progressive=progressive).numpy()


def _png(pixels: np.ndarray) -> bytes:
    return tf.io.encode_png(pixels).numpy()


def test_decode_rgb_jpeg_shape_and_dtype():
    image = image_io.decode_image(_jpeg(37, 53), source="test.jpg")
    assert image.shape == (37, 53, 3)
    assert image.dtype == np.uint8


def test_decode_keeps_rgb_channel_order():
    pixels = np.zeros((4, 5, 3), np.uint8)
    pixels[..., 0] = 200  # pure red
    image = image_io.decode_image(_png(pixels), source="red.png")
    np.testing.assert_array_equal(image, pixels)


def test_grayscale_becomes_three_equal_channels():
    grey = np.arange(20, dtype=np.uint8).reshape(4, 5, 1) * 10
    image = image_io.decode_image(_png(grey), source="grey.png")
    assert image.shape == (4, 5, 3)
    for channel in range(3):
        np.testing.assert_array_equal(image[..., channel], grey[..., 0])


def test_rgba_drops_alpha():
    rgba = np.random.default_rng(1).integers(0, 256, (6, 7, 4), dtype=np.uint8)
    image = image_io.decode_image(_png(rgba), source="rgba.png")
    np.testing.assert_array_equal(image, rgba[..., :3])


def test_sixteen_bit_png_scaled_to_eight_bits():
    pixels16 = np.full((3, 3, 3), 65535, np.uint16)
    image = image_io.decode_image(tf.io.encode_png(pixels16).numpy(), source="deep.png")
    assert image.dtype == np.uint8
    assert np.all(image == 255)


def test_truncated_jpeg_raises_naming_source():
    data = _jpeg(64, 64)
    with pytest.raises(image_io.ImageDecodeError, match="broken/cut.jpg"):
        image_io.decode_image(data[: len(data) // 2], source="broken/cut.jpg")


def test_random_bytes_raise_naming_source():
    data = np.random.default_rng(2).bytes(4096)
    with pytest.raises(image_io.ImageDecodeError, match=r"noise\.jpg.*4096 bytes"):
        image_io.decode_image(data, source="noise.jpg")


def test_empty_bytes_raise():
    with pytest.raises(image_io.ImageDecodeError, match="empty.png: empty"):
        image_io.decode_image(b"", source="empty.png")


def test_error_is_a_value_error_without_tf_noise():
    with pytest.raises(ValueError) as info:
        image_io.decode_image(b"not an image at all", source="x")
    assert "function_node" not in str(info.value)
    assert "[Op:" not in str(info.value)


def test_read_and_verify_missing_file_name_the_path(tmp_path):
    missing = tmp_path / "nope.jpg"
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        image_io.read_image(missing)
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        image_io.verify_image(missing)
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        image_io.read_image_size(missing)


def test_verify_truncated_file_names_the_path(tmp_path):
    data = _jpeg(40, 30)
    path = tmp_path / "truncated.jpg"
    path.write_bytes(data[: len(data) - 200])
    with pytest.raises(image_io.ImageDecodeError, match="truncated.jpg"):
        image_io.verify_image(path)
    good = tmp_path / "good.jpg"
    good.write_bytes(data)
    assert image_io.verify_image(good) == (40, 30)


@pytest.mark.parametrize("progressive", [False, True])
def test_read_image_size_from_jpeg_header(tmp_path, progressive):
    path = tmp_path / "a.jpg"
    path.write_bytes(_jpeg(123, 45, progressive=progressive))
    assert image_io.read_image_size(path) == (123, 45)


def test_read_image_size_skips_large_app_segments(tmp_path):
    # An EXIF-like APP1 segment of 60 kB before the frame header, as cameras write.
    data = _jpeg(31, 77)
    payload = b"Exif\x00\x00" + bytes(60000)
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    path = tmp_path / "exif.jpg"
    path.write_bytes(data[:2] + app1 + data[2:])
    assert image_io.read_image_size(path) == (31, 77)
    assert image_io.verify_image(path) == (31, 77)


def test_read_image_size_png_and_fallback(tmp_path):
    png = tmp_path / "b.png"
    png.write_bytes(_png(np.zeros((9, 14, 3), np.uint8)))
    assert image_io.read_image_size(png) == (9, 14)
    # A GIF has no header parser here: the size comes from a full decode.
    gif = tmp_path / "c.gif"
    gif.write_bytes(
        b"GIF89a\x02\x00\x03\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x00\x00\x00\x00"
        b"\x00,\x00\x00\x00\x00\x02\x00\x03\x00\x00\x02\x03\x84\x8f\x05\x00;"
    )
    assert image_io.read_image_size(gif) == (3, 2)


def test_read_image_size_of_garbage_with_jpeg_magic_raises(tmp_path):
    path = tmp_path / "fake.jpg"
    path.write_bytes(b"\xff\xd8" + np.random.default_rng(3).bytes(100))
    with pytest.raises(image_io.ImageDecodeError, match="fake.jpg"):
        image_io.read_image_size(path)


def test_shared_photos_decode(shared_data):
    for name, channels_expected in (("astronaut.png", 3), ("camera.png", 3)):
        path = shared_data / "photos" / name
        image = image_io.read_image(path)
        assert image.ndim == 3 and image.shape[-1] == channels_expected
        assert image_io.read_image_size(path) == image.shape[:2]


@pytest.mark.parametrize("decode", [False, True])
def test_image_file_problem_names_each_bad_file(tmp_path, decode):
    good_jpeg = _jpeg(30, 40)
    good_png = _png(np.zeros((6, 7, 3), np.uint8))
    files = {
        "good.jpg": good_jpeg,
        # Data after the end marker: the quick check is unsure, the full decode accepts it.
        "trailing.jpg": good_jpeg + b"camera maker notes" * 10,
        "good.png": good_png,
        "truncated.jpg": good_jpeg[: len(good_jpeg) // 2],
        "truncated.png": good_png[:-12],
        "empty.jpg": b"",
        "random.jpg": np.random.default_rng(0).integers(0, 256, 500, np.uint8).tobytes(),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    paths = [tmp_path / name for name in files] + [tmp_path / "missing.jpg"]
    problems = image_io.check_image_files(paths, decode=decode, num_workers=2)
    bad = {"truncated.jpg", "truncated.png", "empty.jpg", "random.jpg", "missing.jpg"}
    assert set(problems) == {str(tmp_path / name) for name in bad}
    for path, problem in problems.items():
        assert path in problem
    assert "empty image file" in problems[str(tmp_path / "empty.jpg")]
    assert "not found" in problems[str(tmp_path / "missing.jpg")]
    # The annotated size is checked too.
    problem = image_io.image_file_problem(tmp_path / "good.jpg", expected_size=(31, 40))
    assert problem == f"{tmp_path / 'good.jpg'} is 30x40 (height x width), annotated as 31x40."
