"""Tests of the predict tool's input sources (files, folders, globs, videos, webcams)."""

from __future__ import annotations

import pathlib

import cv2
import numpy as np
import pytest

from associative_embedding.data.image_io import ImageDecodeError
from associative_embedding.inference import sources


def write_image(path: pathlib.Path, rgb: tuple[int, int, int], size=(24, 32)) -> np.ndarray:
    image = np.zeros((*size, 3), np.uint8)
    image[:] = rgb
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image[..., ::-1])
    return image


def write_video(path: pathlib.Path, num_frames: int, size=(48, 64)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, size[::-1])
    assert writer.isOpened()
    for index in range(num_frames):
        frame = np.zeros((*size, 3), np.uint8)
        frame[..., 2] = 200  # BGR: red
        frame[: (index + 1) * 6, :, 1] = 200  # a growing green band tells frames apart
        writer.write(frame)
    writer.release()


@pytest.fixture
def mixed_folder(tmp_path) -> pathlib.Path:
    folder = tmp_path / "mixed"
    write_image(folder / "b.png", (255, 0, 0))
    write_image(folder / "a.jpg", (0, 0, 255))
    (folder / "notes.txt").write_text("not an image")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (folder / "sub").mkdir()
    write_image(folder / "sub" / "nested.png", (0, 255, 0))  # not recursive
    return folder


def test_image_file(tmp_path):
    expected = write_image(tmp_path / "one.png", (10, 20, 30))
    source = sources.open_source(str(tmp_path / "one.png"))
    assert isinstance(source, sources.ImageFileSource) and not source.is_video
    frames = list(source)
    assert len(frames) == len(source) == 1
    np.testing.assert_array_equal(frames[0].image, expected)  # RGB order
    assert (frames[0].name, frames[0].frame_id) == ("one.png", None)


def test_unreadable_image_file_names_it(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(ImageDecodeError, match=str(bad)):
        sources.open_source(str(bad))
    text = tmp_path / "readme.txt"
    text.write_text("hello")
    with pytest.raises(ImageDecodeError, match=str(text)):
        sources.open_source(str(text))


def test_folder_skips_and_counts_non_images_and_unreadable_images(mixed_folder):
    source = sources.open_source(str(mixed_folder))
    assert isinstance(source, sources.ImageFolderSource)
    assert source.num_skipped_non_images == 1
    assert source.non_image_files == [str(mixed_folder / "notes.txt")]
    assert len(source) == 3  # a.jpg, b.png, corrupt.png (not known to be bad yet)
    frames = list(source)
    assert [frame.name for frame in frames] == ["a.jpg", "b.png"]
    assert [frame.index for frame in frames] == [0, 1]
    assert frames[1].image[0, 0].tolist() == [255, 0, 0]
    assert source.num_skipped_unreadable == 1
    assert source.unreadable_files == [str(mixed_folder / "corrupt.png")]


def test_folder_max_frames_and_no_images(mixed_folder, tmp_path):
    source = sources.open_source(str(mixed_folder), max_frames=1)
    assert len(source) == 1
    assert [frame.name for frame in source] == ["a.jpg"]
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("x")
    with pytest.raises(ValueError, match=f"folder {texts}: no image files"):
        sources.open_source(str(texts))


def test_glob_keeps_sub_folders_in_names(tmp_path):
    write_image(tmp_path / "run1" / "000000.jpg", (255, 0, 0))
    write_image(tmp_path / "run2" / "000000.jpg", (0, 255, 0))
    (tmp_path / "run2" / "000001.txt").write_text("x")
    source = sources.open_source(str(tmp_path / "run*" / "*"))
    assert isinstance(source, sources.GlobSource)
    assert [frame.name for frame in source] == ["run1/000000.jpg", "run2/000000.jpg"]
    assert source.num_skipped_non_images == 1
    recursive = sources.open_source(str(tmp_path / "**" / "*.jpg"))
    assert len(recursive) == 2
    with pytest.raises(FileNotFoundError, match="no file matches"):
        sources.open_source(str(tmp_path / "nothing*" / "*.png"))


def test_video_file_frames_in_order(tmp_path):
    path = tmp_path / "clip.mp4"
    write_video(path, 6)
    source = sources.open_source(str(path))
    assert isinstance(source, sources.VideoSource) and source.is_video
    assert len(source) == 6
    assert source.fps == pytest.approx(10.0)
    frames = list(source)
    source.close()
    assert [frame.frame_id for frame in frames] == list(range(6))
    assert all(frame.name == "clip.mp4" and frame.path == str(path) for frame in frames)
    first = frames[0].image
    assert first.shape == (48, 64, 3) and first.dtype == np.uint8
    assert first[40, 5, 0] > 150 and first[40, 5, 2] < 60  # RGB: red, not blue
    # The green band grows by 6 rows per frame (lossy codec: look at mean greens).
    band_rows = [int((frame.image[:, :, 1].mean(axis=1) > 100).sum()) for frame in frames]
    assert band_rows == sorted(band_rows) and band_rows[0] < band_rows[-1]
    limited = sources.open_source(str(path), max_frames=2)
    assert len(limited) == 2 and len(list(limited)) == 2


def test_broken_video_and_missing_paths(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    with pytest.raises(ValueError, match=str(broken)):
        sources.open_source(str(broken))
    missing = tmp_path / "missing.jpg"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        sources.open_source(str(missing))
    with pytest.raises(FileNotFoundError, match="missing_folder"):
        sources.open_source(str(tmp_path / "missing_folder"))
    with pytest.raises(ValueError, match="empty input"):
        sources.open_source("")


def test_webcam_index_and_a_file_named_like_one(tmp_path, monkeypatch):
    # No camera here: device 97 cannot be opened, and the error says which.
    with pytest.raises(ValueError, match="webcam 97"):
        sources.open_source("97")
    # An existing path wins over the webcam reading of a number.
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "5.png", (1, 2, 3))
    (tmp_path / "5").mkdir()
    write_image(tmp_path / "5" / "x.png", (1, 2, 3))
    assert isinstance(sources.open_source("5"), sources.ImageFolderSource)


def test_video_without_decodable_frames(tmp_path):
    path = tmp_path / "zeroed.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for value in (0, 100, 200):
        writer.write(np.full((48, 64, 3), value, np.uint8))
    writer.release()
    data = bytearray(path.read_bytes())
    frames_start = data.find(b"movi") + 4  # keep the AVI header, wipe the frame data
    data[frames_start:] = bytes(len(data) - frames_start)
    path.write_bytes(bytes(data))
    source = sources.open_source(str(path))  # the header still opens
    with pytest.raises(sources.SourceError, match=f"video {path}: no frame could be read"):
        list(source)
