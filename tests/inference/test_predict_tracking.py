"""tools/predict.py --task=tracking end to end (subprocess) on a short video."""

from __future__ import annotations

import json
import re

import cv2
import pytest

from tests.inference.test_predict_tool import run_tool

POSETRACK_FRAMES = "mmpose_samples/posetrack18/videos/000001_mpiinew_test"


@pytest.fixture()
def short_video(shared_data, tmp_path):
    """The PoseTrack sample's first 4 frames, shrunk to 128 x 72, as an MJPG .avi."""
    folder = shared_data / POSETRACK_FRAMES
    frames = [cv2.imread(str(folder / f"{index:06d}.jpg")) for index in range(4)]
    if any(frame is None for frame in frames):
        pytest.skip(f"{folder} lacks the sample frames")
    path = tmp_path / "walk.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (128, 72))
    for frame in frames:
        writer.write(cv2.resize(frame, (128, 72), interpolation=cv2.INTER_AREA))
    writer.release()
    return path


def test_tool_tracks_a_video_into_an_mp4_and_json_with_track_ids(
    short_video, tiny_model_path, tmp_path
):
    out = tmp_path / "out"
    result = run_tool(
        f"--input={short_video}", f"--checkpoint={tiny_model_path}", f"--output_dir={out}",
        # The random network's people score ~0.03 (a few weak joints): let them start tracks.
        "--task=tracking", "--input_size=64", "--max_people=4", "--min_birth_score=0.01",
        "--max_missed_frames=1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    reported = re.search(r"(\d+) frames, (\d+) people in (\d+) tracks", result.stdout)
    assert reported, result.stdout
    num_frames, num_people, num_tracks = (int(value) for value in reported.groups())
    assert num_frames == 4

    predictions = json.loads((out / "predictions.json").read_text())
    assert [entry["frame_id"] for entry in predictions] == [0, 1, 2, 3]
    people = [person for entry in predictions for person in entry["people"]]
    assert len(people) == num_people > 0
    assert all(type(person["track_id"]) is int for person in people)
    assert all(len(person["keypoints"]) == 3 * 17 for person in people)
    # The reported tracks are the distinct ids of the JSON, and tracks.json lists them.
    ids = {person["track_id"] for person in people if person["track_id"] >= 0}
    assert len(ids) == num_tracks > 0
    tracks = json.loads((out / "tracks.json").read_text())
    assert tracks["num_tracks"] == num_tracks
    assert {track["track_id"] for track in tracks["tracks"]} == ids
    assert tracks["tracker"]["min_birth_score"] == 0.01
    assert tracks["tracker"]["max_missed_frames"] == 1
    results = json.loads((out / "results.json").read_text())
    assert sorted(entry["track_id"] for entry in results) == sorted(
        person["track_id"] for person in people
    )

    video = cv2.VideoCapture(str(out / "drawings" / "walk.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    assert int(video.get(cv2.CAP_PROP_FRAME_WIDTH)) == 128
    video.release()


def test_tag_plots_are_refused_for_tracking(short_video, tiny_model_path, tmp_path):
    result = run_tool(
        f"--input={short_video}", f"--checkpoint={tiny_model_path}",
        f"--output_dir={tmp_path / 'out'}", "--task=tracking", "--tag_plot",
    )
    assert result.returncode != 0
    assert "--tag_plot" in result.stderr


def test_auto_task_tracks_with_a_tracking_runs_tracker_options(short_video, tmp_path):
    import keras
    import tensorflow as tf

    from associative_embedding.core.run_dir import CONFIG_NAME
    from associative_embedding.modeling.loading import build_model_from_config
    from associative_embedding.tasks.tracking.config import shrink_for_smoke, tracking_base_config

    config = shrink_for_smoke(tracking_base_config())
    config.eval.update(min_birth_score=0.01, max_missed_frames=2, max_tag_distance=0.7)
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / CONFIG_NAME).write_text(config.to_json_best_effort(indent=2))
    keras.utils.set_random_seed(2)
    tf.train.Checkpoint(model=build_model_from_config(config)).write(
        str(workdir / "best" / "model")
    )
    out = tmp_path / "out"
    result = run_tool(
        f"--input={short_video}", f"--checkpoint={workdir}", f"--output_dir={out}",
        "--max_frames=2", "--max_missed_frames=4",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 frames" in result.stdout and "tracks" in result.stdout
    tracker = json.loads((out / "tracks.json").read_text())["tracker"]
    # The run's eval section, except where a flag was given.
    assert tracker["min_birth_score"] == 0.01 and tracker["max_tag_distance"] == 0.7
    assert tracker["max_missed_frames"] == 4
    assert (out / "drawings" / "walk.mp4").is_file()
