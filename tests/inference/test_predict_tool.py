"""End-to-end tests of tools/predict.py (subprocess) and of the loop behind it (in process)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest

from associative_embedding.core.keypoint_info import COCO
from associative_embedding.core.visualization import DEFAULT_DRAW_THRESHOLD
from associative_embedding.inference import sources, writers
from associative_embedding.modeling import loading
from associative_embedding.tasks.pose import estimator as predictor_lib
from associative_embedding.tasks.pose import predict as runner
from associative_embedding.tasks.pose.image_estimator import ImagePoseEstimator, ImagePrediction

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[2]
TOOL = PROJECT_ROOT / "tools" / "predict.py"
POSETRACK_CLIP = (
    "mmpose_samples/posetrack18/videos/000001_mpiinew_test/000001_mpiinew_test.mp4"
)


def run_tool(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(
        [sys.executable, str(TOOL), *args, "--noprogress"],
        capture_output=True, text=True, timeout=timeout, env=environment, cwd=PROJECT_ROOT,
    )


def read_json(path: pathlib.Path):
    return json.loads(path.read_text())


def check_results(results: list, names: set[str], num_joints: int = 17) -> None:
    for entry in results:
        assert entry["file_name"] in names
        assert entry["category_id"] == 1
        assert len(entry["keypoints"]) == 3 * num_joints
        assert isinstance(entry["score"], float)


def noise_image(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_tool_on_photos_with_tag_plots(shared_data, tiny_model_path, tmp_path):
    photos = shared_data / "photos"
    out = tmp_path / "out"
    result = run_tool(
        f"--input={photos}", f"--checkpoint={tiny_model_path}", f"--output_dir={out}",
        "--input_size=128", "--tag_plot",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    names = {"astronaut.png", "camera.png", "chelsea.png"}  # chelsea: a cat, no person
    assert "3 images" in result.stdout
    assert "Skipped 1 non-image files" in result.stdout
    predictions = read_json(out / "predictions.json")
    assert {p["file_name"] for p in predictions} == names
    assert all(isinstance(p["people"], list) for p in predictions)
    results = read_json(out / "results.json")
    check_results(results, names)
    assert len(results) == sum(len(p["people"]) for p in predictions) > 0
    # The random model's people are phantoms (heatmap peaks ~0.25, so every person scores
    # below the default --draw_threshold): all in the JSON files, none drawn on the photos.
    assert max(entry["score"] for entry in results) < DEFAULT_DRAW_THRESHOLD
    for name in names:
        original = cv2.imread(str(photos / name))
        drawing = cv2.imread(str(out / "drawings" / name))
        assert drawing.shape == original.shape
        np.testing.assert_array_equal(drawing, original)
        stem = name[:-4]
        assert cv2.imread(str(out / "tag_plots" / f"{stem}_tags.png")).shape == (480, 720, 3)
        assert cv2.imread(str(out / "tag_plots" / f"{stem}_tag_maps.png")) is not None


def test_tool_on_a_folder_mixing_images_text_and_a_corrupt_image(tiny_workdir, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for index, name in enumerate(("photo1.jpg", "photo2.png")):
        cv2.imwrite(str(folder / name), noise_image(90, 120 + 40 * index, index))
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    out = tmp_path / "out"
    result = run_tool(
        f"--input={folder}", f"--checkpoint={tiny_workdir}", f"--output_dir={out}",
        "--input_size=64", "--max_people=3",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Skipped 1 non-image files and 1 unreadable images" in result.stdout
    assert "broken.jpg" in result.stderr  # the warning names the bad file
    assert sorted(os.listdir(out / "drawings")) == ["photo1.jpg", "photo2.png"]
    predictions = read_json(out / "predictions.json")
    assert [p["file_name"] for p in predictions] == ["photo1.jpg", "photo2.png"]
    assert [(p["height"], p["width"]) for p in predictions] == [(90, 120), (90, 160)]
    assert all(len(p["people"]) <= 3 for p in predictions)
    check_results(read_json(out / "results.json"), {"photo1.jpg", "photo2.png"})


def test_tool_on_the_posetrack_clip(shared_data, tiny_saved_model, tmp_path):
    out = tmp_path / "out"
    result = run_tool(
        f"--input={shared_data / POSETRACK_CLIP}", f"--saved_model={tiny_saved_model}",
        f"--output_dir={out}", "--input_size=128", "--max_frames=2", "--flip",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 frames" in result.stdout
    clip = "000001_mpiinew_test.mp4"
    results = read_json(out / "results.json")
    check_results(results, {clip})
    assert {entry["frame_id"] for entry in results} <= {0, 1} and results
    predictions = read_json(out / "predictions.json")
    assert [p["frame_id"] for p in predictions] == [0, 1]
    capture = cv2.VideoCapture(str(out / "drawings" / clip))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 2
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (
        1280, 720
    )
    capture.release()


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda tmp, model: [f"--input={tmp / 'nope.jpg'}", f"--checkpoint={model}"],
         "input not found: {tmp}/nope.jpg"),
        (lambda tmp, model: [f"--input={tmp}", f"--checkpoint={tmp / 'missing.keras'}"],
         "--checkpoint not found: {tmp}/missing.keras"),
        (lambda tmp, model: [f"--input={tmp}", f"--saved_model={tmp}"],
         "--saved_model {tmp}: not a SavedModel"),
        (lambda tmp, model: [f"--input={tmp}"], "exactly one of --checkpoint and --saved_model"),
    ],
)
def test_tool_usage_errors_name_the_path(tmp_path, tiny_model_path, make_args, message):
    result = run_tool(*make_args(tmp_path, tiny_model_path), f"--output_dir={tmp_path / 'o'}")
    assert result.returncode == 1
    assert message.format(tmp=tmp_path) in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------- in process


def silent_predictor() -> loading.Predictor:
    """A network that never detects anything (all heatmaps 0)."""

    def call(images):
        return np.zeros((images.shape[0], images.shape[1] // 4, images.shape[2] // 4, 34))

    return loading.Predictor(call, input_multiple=64, source="silent")


def test_an_image_without_people_gives_empty_lists(tmp_path):
    image_path = tmp_path / "cat.png"
    cv2.imwrite(str(image_path), noise_image(60, 80, 3))
    source = sources.open_source(str(image_path))
    estimator = ImagePoseEstimator(silent_predictor(), COCO)
    out = tmp_path / "out"
    summary = runner.run_prediction(
        source, estimator, str(out), runner.PredictOptions(tag_plot=True, progress=False)
    )
    assert (summary.num_frames, summary.num_people) == (1, 0)
    assert read_json(out / writers.RESULTS_FILE) == []
    assert read_json(out / writers.PREDICTIONS_FILE) == [
        {"file_name": "cat.png", "height": 60, "width": 80, "people": []}
    ]
    drawing = cv2.imread(str(out / "drawings" / "cat.png"))
    np.testing.assert_array_equal(drawing, cv2.imread(str(image_path)))  # nothing drawn
    assert len(summary.tag_plot_paths) == 2
    assert all(os.path.isfile(path) for path in summary.tag_plot_paths)


def test_run_prediction_thresholds_and_video_frames(tmp_path, tiny_model_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (96, 64))
    for index in range(3):
        writer.write(np.full((64, 96, 3), 100 + 20 * index, np.uint8))  # flat: no codec noise
    writer.release()
    predictor = loading.load_predictor(tiny_model_path)
    config = predictor_lib.InferenceConfig(input_size=64)
    estimator = ImagePoseEstimator(predictor, COCO, config)
    out = tmp_path / "out"
    # Nobody scores 2: every person stays in the JSON, none is drawn.
    summary = runner.run_prediction(
        sources.open_source(str(video)), estimator, str(out),
        runner.PredictOptions(person_threshold=2.0, progress=False, tag_plot=True),
    )
    assert summary.num_frames == 3 and summary.num_people > 0
    assert summary.drawing_paths == [str(out / "drawings" / "clip.mp4")]
    assert len(summary.tag_plot_paths) == 6
    capture = cv2.VideoCapture(summary.drawing_paths[0])
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    ok, first = capture.read()
    capture.release()
    # Undrawn: the flat first frame (grey 100) up to the codec's rounding; a skeleton's colours
    # would differ by far more.
    assert ok and np.abs(first.astype(int) - 100).max() <= 8
    results = read_json(out / writers.RESULTS_FILE)
    assert sorted({entry["frame_id"] for entry in results}) == [0, 1, 2]
    assert len(results) == summary.num_people


class _FixedEstimator:
    """Stands in for ImagePoseEstimator: the same two people on every image."""

    keypoint_info = COCO
    config = predictor_lib.InferenceConfig(input_size=64)

    def __init__(self, people: list[tuple[float, float]]) -> None:
        self.people = people  # (column x, person score); every joint scores 1.0 (refine's)

    def __call__(self, image: np.ndarray) -> ImagePrediction:
        poses = np.zeros((len(self.people), 17, 3), np.float32)
        for index, (x, _) in enumerate(self.people):
            poses[index, :, 0] = x
            poses[index, :, 1] = np.linspace(10, image.shape[0] - 10, 17)
            poses[index, :, 2] = 1.0
        return ImagePrediction(
            poses=poses, scores=np.array([score for _, score in self.people], np.float32),
            map_poses=poses / 4, heatmaps=np.zeros((16, 20, 17), np.float32),
            tags=np.zeros((16, 20, 17, 1), np.float32), map_from_image=np.eye(3),
            image_size=image.shape[:2],
        )


@pytest.mark.parametrize(("draw_threshold", "phantom_drawn"), [(None, False), (0.0, True)])
def test_low_score_people_are_not_drawn_but_stay_in_the_results(
    tmp_path, draw_threshold, phantom_drawn
):
    image_path = tmp_path / "cat.png"
    cv2.imwrite(str(image_path), np.full((120, 160, 3), 90, np.uint8))
    # A confident person on the left; on the right a phantom of score 0.05 whose joints the
    # decoder's refine step filled with 1.0 (drawn, it would be a whole skeleton).
    estimator = _FixedEstimator([(30.0, 0.9), (130.0, 0.05)])
    options = runner.PredictOptions(progress=False)
    if draw_threshold is not None:
        options.person_threshold = draw_threshold
    out = tmp_path / "out"
    summary = runner.run_prediction(
        sources.open_source(str(image_path)), estimator, str(out), options
    )
    assert summary.num_people == 2
    assert sorted(entry["score"] for entry in read_json(out / writers.RESULTS_FILE)) == [
        pytest.approx(0.05), pytest.approx(0.9)
    ]
    drawing = cv2.imread(str(out / "drawings" / "cat.png"))
    changed = np.abs(drawing.astype(int) - 90).max(axis=-1) > 0
    assert changed[:, :60].any()
    assert changed[:, 100:].any() == phantom_drawn
