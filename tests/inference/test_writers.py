"""Tests of the predict tool's outputs: COCO results JSON, drawings, mp4, tag plot files."""

from __future__ import annotations

import contextlib
import io
import json

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from associative_embedding.inference import writers


def two_poses() -> tuple[np.ndarray, np.ndarray]:
    poses = np.zeros((2, 17, 3), np.float32)
    poses[0, :, 0] = np.arange(17) * 2.0 + 0.25
    poses[0, :, 1] = 10.0
    poses[0, :, 2] = 0.5
    poses[1, 0] = (5.0, 6.0, 0.9)
    poses[1, 1] = (-8.0, 7.0, 0.0)  # missing joint: position is meaningless
    return poses, np.array([0.8, 0.3], np.float32)


def test_coco_results_format():
    poses, scores = two_poses()
    entries = writers.coco_results(poses, scores, file_name="000000397133.jpg")
    assert len(entries) == 2
    assert entries[0]["image_id"] == 397133 and entries[0]["category_id"] == 1
    assert entries[0]["file_name"] == "000000397133.jpg" and "frame_id" not in entries[0]
    assert len(entries[0]["keypoints"]) == 51
    assert entries[0]["keypoints"][:3] == [0.25, 10.0, 0.5]
    assert entries[1]["keypoints"][3:6] == [0.0, 0.0, 0.0]
    assert entries[1]["score"] == pytest.approx(0.3)
    named = writers.coco_results(poses, scores, file_name="dir/astronaut.png")
    assert "image_id" not in named[0] and named[0]["file_name"] == "dir/astronaut.png"
    frames = writers.coco_results(poses, scores, file_name="7.mp4", frame_id=12)
    assert frames[0]["frame_id"] == 12 and "image_id" not in frames[0]
    assert writers.coco_results(np.zeros((0, 17, 3)), np.zeros(0), file_name="cat.png") == []
    json.dumps(entries)  # plain Python types only


def test_results_load_in_pycocotools(tmp_path):
    poses, scores = two_poses()
    results = writers.ResultsWriter(str(tmp_path))
    results.add(poses, scores, file_name="000000397133.jpg", image_size=(40, 50))
    results.write()
    ground_truth = COCO()
    ground_truth.dataset = {
        "images": [{"id": 397133, "height": 40, "width": 50, "file_name": "000000397133.jpg"}],
        "annotations": [],
        "categories": [{"id": 1, "name": "person", "keypoints": [], "skeleton": []}],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth.createIndex()
        loaded = ground_truth.loadRes(results.results_path)
    assert len(loaded.getAnnIds()) == 2


def test_results_writer_lists_every_image(tmp_path):
    poses, scores = two_poses()
    results = writers.ResultsWriter(str(tmp_path / "out"))
    results.add(poses, scores, file_name="a.png", image_size=(40, 50))
    results.add(np.zeros((0, 17, 3)), np.zeros(0), file_name="cat.png", image_size=(30, 20))
    results.write()
    assert results.num_people == 2
    assert len(json.loads((tmp_path / "out" / writers.RESULTS_FILE).read_text())) == 2
    predictions = json.loads((tmp_path / "out" / writers.PREDICTIONS_FILE).read_text())
    assert [p["file_name"] for p in predictions] == ["a.png", "cat.png"]
    assert predictions[1] == {"file_name": "cat.png", "height": 30, "width": 20, "people": []}
    assert len(predictions[0]["people"]) == 2
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_image_writer_names_formats_and_input_protection(tmp_path):
    picture = np.zeros((10, 12, 3), np.uint8)
    picture[..., 0] = 255  # red in RGB
    image_writer = writers.ImageWriter(str(tmp_path))
    path = image_writer.write("sub/x.jpg", picture)
    assert path == str(tmp_path / "drawings" / "sub" / "x.jpg")
    assert cv2.imread(path)[5, 5, 2] > 200  # written as BGR: red stays red
    assert image_writer.path_for("anim.gif").endswith("anim.gif.png") or cv2.haveImageWriter(
        "anim.gif"
    )
    input_path = tmp_path / "drawings" / "in.png"
    cv2.imwrite(str(input_path), picture)
    with pytest.raises(ValueError, match="overwrite its input"):
        image_writer.write("in.png", picture, input_path=str(input_path))
    with pytest.raises(ValueError, match="leaves the drawings folder"):
        image_writer.write("../escape.png", picture)


def test_video_writer(tmp_path):
    video = writers.VideoWriter(str(tmp_path), "clip.avi", fps=12.0)
    assert video.path == str(tmp_path / "drawings" / "clip.mp4")
    for index in range(4):
        size = (48, 64) if index < 3 else (30, 40)  # a stray size is resized
        video.write(np.full((*size, 3), index * 60, np.uint8))
    video.close()
    capture = cv2.VideoCapture(video.path)
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 4 == video.num_frames
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (
        64, 48
    )
    capture.release()


def test_tag_plot_writer_names(tmp_path):
    tag_writer = writers.TagPlotWriter(str(tmp_path))
    picture = np.zeros((20, 30, 3), np.uint8)
    paths = tag_writer.write("run/000001.jpg", [("tags", picture), ("tag_maps", picture)])
    assert paths == [
        str(tmp_path / "tag_plots" / "run" / "000001_tags.png"),
        str(tmp_path / "tag_plots" / "run" / "000001_tag_maps.png"),
    ]
    frame_paths = tag_writer.write("clip.mp4", [("tags", picture)], frame_id=7)
    assert frame_paths == [str(tmp_path / "tag_plots" / "clip_000007_tags.png")]
    assert cv2.imread(frame_paths[0]).shape == (20, 30, 3)
