"""The batched path of the pose estimator and of the training evaluation: the same poses,
scores and metrics as one image at a time."""

from __future__ import annotations

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from associative_embedding.core.keypoint_info import COCO
from associative_embedding.core.record import PoseRecord
from associative_embedding.data import augment
from associative_embedding.modeling.hourglass import StackedHourglass
from associative_embedding.modeling.loading import model_predictor
from associative_embedding.tasks.pose import estimator as estimator_lib
from associative_embedding.tasks.pose import evaluation_hook
from associative_embedding.tasks.pose.estimator import InferenceConfig, PoseEstimator
from associative_embedding.tasks.pose.oracle import GT_HEATMAPS
from associative_embedding.tasks.pose.trainer import PoseTrainer
from tests.training.scripts.tiny_config import tiny_config

#: (height, width) of the test images: three of one size (one batch), two others.
IMAGE_SIZES = ((96, 96), (96, 96), (80, 120), (96, 96), (120, 64))


@pytest.fixture(scope="module")
def predictor():
    """A tiny random 2-stack hourglass (its ~0.25 peaks decode to meaningless people)."""
    keras.utils.set_random_seed(0)
    model = StackedHourglass(
        num_joints=17, num_stacks=2, widths=(16, 16, 16), stem_widths=(8, 16)
    )
    return model_predictor(model)


def _image(height: int, width: int, seed: int) -> np.ndarray:
    """(H, W, 3) uint8 smooth noise, so that the network sees structure."""
    noise = np.random.default_rng(seed).uniform(0, 255, (height, width, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 3) * 2 - 128, 0, 255).astype(np.uint8)


def _people(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(2, 17, 3) people in image pixels, three joints of each unlabelled."""
    people = np.zeros((2, 17, 3), np.float32)
    for index in range(2):
        people[index, :, 0] = (index + 0.5) * width / 2 + rng.uniform(-0.2, 0.2, 17) * width
        people[index, :, 1] = rng.uniform(0.1, 0.9, 17) * height
        people[index, :, 2] = 2
        people[index, rng.choice(17, 3, replace=False)] = 0
    return people


@pytest.fixture(scope="module")
def records() -> list[PoseRecord]:
    rng = np.random.default_rng(0)
    records = []
    for index, (height, width) in enumerate(IMAGE_SIZES):
        png = cv2.imencode(".png", _image(height, width, index)[..., ::-1])[1].tobytes()
        records.append(PoseRecord(
            image_id=index + 1, file_name="", height=height, width=width,
            keypoints=_people(rng, height, width), boxes=np.zeros((2, 4)), areas=np.ones(2),
            annotation_ids=np.arange(2) + 10 * index, image_bytes=png,
        ))
    return records


def _assert_same_predictions(actual, expected) -> None:
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        np.testing.assert_array_equal(got["poses"], want["poses"])
        np.testing.assert_array_equal(got["scores"], want["scores"])


@pytest.mark.parametrize(
    ("scales", "flip", "fusion", "max_batch_pixels"),
    [
        ((1.0,), False, "official", estimator_lib.DEFAULT_BATCH_PIXELS),
        ((1.0,), False, "official", 2 * 64 * 64),  # several calls per input size
        ((1.0, 0.5), True, "paper", estimator_lib.DEFAULT_BATCH_PIXELS),
    ],
)
def test_estimate_batch_returns_the_per_image_poses(
    predictor, records, scales, flip, fusion, max_batch_pixels
):
    config = InferenceConfig(input_size=64, scales=scales, flip=flip, fusion=fusion)
    estimator = PoseEstimator(predictor, COCO, config)
    expected = [estimator.estimate(record) for record in records]
    assert sum(len(prediction["scores"]) for prediction in expected) > 0
    _assert_same_predictions(
        estimator.estimate_batch(records, max_batch_pixels=max_batch_pixels), expected
    )


def test_oracle_estimator_decodes_the_shared_network_maps(predictor, records):
    """The diagnostic decodes another estimator's maps and gets its own per-image poses."""
    config = InferenceConfig(input_size=64, decoder={"tag_threshold": 0.3})
    estimator = PoseEstimator(predictor, COCO, config)
    diagnostic = PoseEstimator(predictor, COCO, evaluation_hook.diagnostic_config(config))
    assert diagnostic.config.oracles == {GT_HEATMAPS}
    maps = estimator.network_maps(records)
    _assert_same_predictions(
        [diagnostic.decode_maps(record, m) for record, m in zip(records, maps, strict=True)],
        [diagnostic.estimate(record) for record in records],
    )
    _assert_same_predictions(
        [estimator.decode_maps(record, m) for record, m in zip(records, maps, strict=True)],
        [estimator.estimate(record) for record in records],
    )


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_traced_preprocessing_is_the_eager_one(dtype):
    for height, width in ((96, 96), (80, 120), (37, 200)):
        image = _image(height, width, 3)
        image = image if dtype == np.uint8 else image.astype(np.float32) / 255.0
        traced = estimator_lib._traced_eval_preprocess(64, 64, tf.as_dtype(dtype))(image)
        eager = augment.eval_preprocess(image, 64, 64)
        assert set(traced) == set(eager)
        for key, value in eager.items():
            np.testing.assert_array_equal(traced[key].numpy(), value.numpy())


class _Recorder:
    """An evaluator that keeps what it is given."""

    def __init__(self) -> None:
        self.image_ids: list[int] = []

    def reset(self) -> None:
        self.image_ids = []

    def process(self, images, predictions) -> None:
        assert len(images) == len(predictions)
        self.image_ids += [image.image_id for image in images]

    def evaluate(self) -> dict[str, float]:
        return {"num_images": len(self.image_ids)}


def test_evaluate_records_feeds_batches_in_order(records):
    calls = []

    class BatchEstimator:
        def estimate_batch(self, chunk):
            calls.append([record.image_id for record in chunk])
            return [{"poses": np.zeros((0, 17, 3)), "scores": np.zeros(0)} for _ in chunk]

    evaluator = _Recorder()
    metrics = estimator_lib.evaluate_records(
        records, BatchEstimator(), evaluator, batch_size=2, progress=False
    )
    assert calls == [[1, 2], [3, 4], [5]]
    assert evaluator.image_ids == [1, 2, 3, 4, 5] and metrics == {"num_images": 5}


def test_training_evaluation_equals_separate_prediction_and_diagnostic_passes(tmp_path):
    """One batched network pass gives the metrics of the two per-image evaluations."""
    config = tiny_config(
        dataset__synthetic_num_val=6, eval__max_images=0, eval__gt_detection_diagnostic=True
    )
    config.dataset.synthetic_dir = str(tmp_path / "synthetic")
    trainer = PoseTrainer(config, str(tmp_path / "run"))
    metrics = evaluation_hook.evaluate_model(trainer, step=0)

    predictor = model_predictor(trainer.model)
    inference = evaluation_hook.inference_config(trainer)
    records = trainer.evaluation_records()
    expected = {}
    for suffix, settings in (
        ("", inference),
        (evaluation_hook.DIAGNOSTIC_SUFFIX, evaluation_hook.diagnostic_config(inference)),
    ):
        single = estimator_lib.evaluate_records(
            records, PoseEstimator(predictor, trainer.keypoint_info, settings).estimate,
            estimator_lib.build_evaluator(trainer.data.val_split), progress=False,
        )
        names = evaluation_hook.headline_metric_names(single) if suffix else list(single)
        expected.update({name + suffix: single[name] for name in names})
    # The evaluation also says its test-time setting (single scale for this config).
    assert metrics.pop(evaluation_hook.TEST_TIME_KEY) == "single scale"
    assert metrics == expected
    assert metrics["num_detections"] > 0 and metrics["AP_gt_detections"] > 0
