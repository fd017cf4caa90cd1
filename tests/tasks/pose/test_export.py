"""Tests of the SavedModel / TFLite export (associative_embedding/tasks/pose/export.py) and
tools/export.py."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from associative_embedding.core.keypoint_info import COCO
from associative_embedding.export import serving
from associative_embedding.modeling import StackedHourglass, loading
from associative_embedding.tasks.pose import estimator as predictor_lib
from associative_embedding.tasks.pose import export as saved_model
from associative_embedding.tasks.pose.image_estimator import ImagePoseEstimator

# TF 2.21 announces the move of tf.lite.Interpreter to ai_edge_litert (not a dependency here).
pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[3]
DECODER = {"detection_threshold": 0.0, "max_people": 10, "adjust": "taylor"}


def tiny_model(seed: int = 0) -> StackedHourglass:
    keras.utils.set_random_seed(seed)
    model = StackedHourglass(
        num_stacks=2, widths=(16, 16, 16, 16, 16), stem_widths=(8, 16), feature_width=16,
        num_joints=17, batch_norm=True,
    )
    # Non-trivial BatchNorm statistics, so inference mode matters.
    for layer in model.layers:
        for weight in layer.weights:
            if "moving_variance" in weight.path:
                weight.assign(np.full(weight.shape, 1.7, np.float32))
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = tiny_model()
    export_dir = tmp_path_factory.mktemp("export")
    config = saved_model.ExportConfig(input_size=128, flip=False, decoder=DECODER)
    version_dir = saved_model.export_saved_model(model, COCO, export_dir, config=config)
    return model, export_dir, version_dir, tf.saved_model.load(version_dir)


def random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = cv2.resize(rng.integers(0, 256, (height // 4 + 1, width // 4 + 1, 3), np.uint8),
                       (width, height), interpolation=cv2.INTER_LINEAR)
    return image


def keras_maps(model, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keras reference: uint8 -> [0, 1], right/bottom zero padding to 64, last stack split."""
    height, width = image.shape[:2]
    padded = np.zeros((-(-height // 64) * 64, -(-width // 64) * 64, 3), np.float32)
    padded[:height, :width] = image / 255.0
    outputs = model(padded[None], training=False).numpy()[0, -1]
    return outputs[..., :17], outputs[..., 17:].reshape(*outputs.shape[:2], 17, 1)


def test_layout_and_saved_model_cli_lists_the_three_signatures(exported):
    _, export_dir, version_dir, loaded = exported
    assert version_dir == os.path.join(export_dir, "1")
    assert set(loaded.signatures) == set(saved_model.SIGNATURES)
    description = saved_model.read_export_config(version_dir)
    assert description["num_joints"] == 17 and description["export"]["input_size"] == 128
    result = subprocess.run(
        ["saved_model_cli", "show", "--dir", version_dir, "--all"],
        capture_output=True, text=True, timeout=120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert result.returncode == 0, result.stderr
    for name in saved_model.SIGNATURES:
        assert f"signature_def['{name}']" in result.stdout, result.stdout


def test_serving_default_equals_the_keras_model(exported):
    model, _, _, loaded = exported
    image = random_image(70, 100)
    outputs = loaded.signatures["serving_default"](images=tf.constant(image[None]))
    heatmaps, tags = keras_maps(model, image)
    assert outputs["heatmaps"].shape == (1, 32, 32, 17)
    assert outputs["tags"].shape == (1, 32, 32, 17, 1)
    np.testing.assert_allclose(outputs["heatmaps"].numpy()[0], heatmaps, atol=1e-5)
    np.testing.assert_allclose(outputs["tags"].numpy()[0], tags, atol=1e-5)


def test_serve_bytes_equals_serving_default_on_the_decoded_images(exported):
    _, _, _, loaded = exported
    images = [random_image(70, 100, seed=1), random_image(128, 64, seed=2)]
    encoded = [cv2.imencode(".png", image[..., ::-1])[1].tobytes() for image in images]
    outputs = loaded.signatures["serve_bytes"](encoded=tf.constant(encoded))
    assert outputs["heatmaps"].shape == (2, 32, 32, 17)  # 32 x 32 and 32 x 16 maps, padded
    np.testing.assert_array_equal(outputs["map_sizes"].numpy(), [[32, 32], [32, 16]])
    assert np.all(outputs["heatmaps"].numpy()[1, :, 16:] == 0)
    for index, image in enumerate(images):
        alone = loaded.signatures["serving_default"](images=tf.constant(image[None]))
        h, w = alone["heatmaps"].shape[1:3]
        np.testing.assert_allclose(
            outputs["heatmaps"].numpy()[index, :h, :w], alone["heatmaps"].numpy()[0], atol=1e-5
        )
        np.testing.assert_allclose(
            outputs["tags"].numpy()[index, :h, :w], alone["tags"].numpy()[0], atol=1e-5
        )


def test_predict_poses_agrees_with_the_numpy_estimator(exported):
    """The in-graph preprocessing, decoding and back-projection against ImagePoseEstimator
    with the NumPy decoder on the same network (loaded from the export)."""
    _, _, version_dir, loaded = exported
    network = loading.load_predictor(version_dir)
    estimator = ImagePoseEstimator(
        network, COCO, predictor_lib.InferenceConfig(input_size=128, decoder=DECODER)
    )
    compared = 0
    for seed, (height, width) in enumerate([(96, 160), (200, 150), (128, 128)]):
        image = random_image(height, width, seed=10 + seed)
        graph = loaded.signatures["predict_poses"](image=tf.constant(image))
        expected = estimator(image)
        poses, scores = graph["poses"].numpy(), graph["scores"].numpy()
        assert poses.shape == expected.poses.shape and poses.shape[1:] == (17, 3)
        np.testing.assert_allclose(scores, expected.scores, atol=1e-5)
        present = expected.poses[..., 2] > 0
        np.testing.assert_array_equal(poses[..., 2] > 0, present)
        np.testing.assert_allclose(poses[present], expected.poses[present], atol=1e-3)
        assert np.all(poses[~present] == 0)
        compared += int(present.sum())
    assert compared > 0  # the random network does produce detections at threshold 0


def test_predict_poses_on_an_image_without_people_returns_empty_arrays(tmp_path):
    model = tiny_model(seed=3)
    config = saved_model.ExportConfig(input_size=64, decoder={"detection_threshold": 1e6})
    loaded = tf.saved_model.load(
        saved_model.export_saved_model(model, COCO, tmp_path, config=config)
    )
    result = loaded.signatures["predict_poses"](image=tf.zeros([50, 60, 3], tf.uint8))
    assert result["poses"].shape == (0, 17, 3) and result["scores"].shape == (0,)


def test_flip_export_fuses_the_mirrored_image(tmp_path):
    model = tiny_model(seed=4)
    config = saved_model.ExportConfig(input_size=64, flip=True)
    loaded = tf.saved_model.load(
        saved_model.export_saved_model(model, COCO, tmp_path, config=config)
    )
    image = random_image(64, 64, seed=5)
    outputs = loaded.signatures["serving_default"](images=tf.constant(image[None]))
    heatmaps, tags = keras_maps(model, image)
    flipped_heatmaps, flipped_tags = keras_maps(model, image[:, ::-1])
    index = list(COCO.flip_index)
    expected_heatmaps = (heatmaps + flipped_heatmaps[:, ::-1][:, :, index]) / 2
    expected_tags = np.concatenate([tags, flipped_tags[:, ::-1][:, :, index]], axis=-1)
    np.testing.assert_allclose(outputs["heatmaps"].numpy()[0], expected_heatmaps, atol=1e-5)
    np.testing.assert_allclose(outputs["tags"].numpy()[0], expected_tags, atol=1e-5)


def test_existing_version_is_not_overwritten_by_accident(tmp_path):
    model = tiny_model()
    saved_model.export_saved_model(model, COCO, tmp_path, config=saved_model.ExportConfig(64))
    with pytest.raises(FileExistsError, match="version"):
        saved_model.export_saved_model(model, COCO, tmp_path)
    with pytest.raises(ValueError, match="version"):
        saved_model.export_saved_model(model, COCO, tmp_path, version=0)
    with pytest.raises(ValueError, match="decoder"):
        saved_model.ExportConfig(decoder={"treshold": 1})


def test_tflite_matches_keras(tmp_path):
    model = tiny_model(seed=6)
    path = serving.export_tflite(model, tmp_path / "model.tflite", input_size=64)
    interpreter = tf.lite.Interpreter(model_path=path)
    interpreter.allocate_tensors()
    image = (random_image(64, 64, seed=7) / 255.0).astype(np.float32)[None]
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
    interpreter.invoke()
    result = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    expected = model(image, training=False).numpy()[:, -1]
    assert result.shape == expected.shape == (1, 16, 16, 34)
    np.testing.assert_allclose(result, expected, atol=1e-4)
    with pytest.raises(ValueError, match="multiple of 64"):
        serving.export_tflite(model, tmp_path / "bad.tflite", input_size=100)


def test_export_tool_from_a_keras_file(tmp_path):
    model_path = tmp_path / "tiny.keras"
    tiny_model(seed=8).save(model_path)
    export_dir = tmp_path / "exports"
    command = [
        sys.executable, str(PROJECT_ROOT / "tools" / "export.py"), f"--checkpoint={model_path}",
        "--dataset=coco", f"--export_dir={export_dir}", "--input_size=64", "--tflite",
        "--adjust=taylor",
    ]
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env=environment, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (export_dir / "1" / "saved_model.pb").is_file()
    assert (export_dir / "model_64.tflite").is_file()
    description = json.loads((export_dir / "1" / "assets.extra" / "export_config.json").read_text())
    assert description["export"]["decoder"]["adjust"] == "taylor"
    # A second export to the same version is refused with a clear message.
    again = subprocess.run(command, capture_output=True, text=True, timeout=300,
                           env=environment, cwd=PROJECT_ROOT)
    assert again.returncode != 0 and "exists" in again.stderr
