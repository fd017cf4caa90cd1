"""The periodic evaluation: TensorBoard heatmap and tag pictures, the printed summary, and
the drawings' threshold."""

from __future__ import annotations

import types

import cv2
import ml_collections
import numpy as np
import pytest

from associative_embedding.core.keypoint_info import COCO
from associative_embedding.core.visualization import DEFAULT_DRAW_THRESHOLD
from associative_embedding.tasks.pose import evaluation_hook
from associative_embedding.tasks.pose.config import base_config
from associative_embedding.tasks.pose.estimator import InferenceConfig
from associative_embedding.tasks.pose.evaluation_hook import map_pictures
from associative_embedding.tasks.pose.trainer import PoseTrainer

STRIDE, SIZE, JOINTS = 4, 16, 3


def _two_people() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Person A (tag -2) at map pixels (3, 3) and (3, 5), person B (tag 5) at (12, 10)."""
    heatmaps = np.zeros((SIZE, SIZE, JOINTS), np.float32)
    tags = np.zeros((SIZE, SIZE, JOINTS, 2), np.float32)
    for (row, col), joint, tag in (((3, 3), 0, -2.0), ((3, 5), 1, -2.0), ((12, 10), 2, 5.0)):
        heatmaps[row, col, joint] = 1.0
        tags[..., joint, 0] = np.where(heatmaps[..., joint] > 0, tag, 0.0)
    tags[..., 1] = 100.0  # the second tag dimension is not shown
    image = np.full((SIZE * STRIDE, SIZE * STRIDE, 3), 0.5, np.float32)
    return image, heatmaps, tags


def _block(picture: np.ndarray, row: int, col: int) -> np.ndarray:
    """The input pixels of map pixel (row, col): one colour, by nearest upsampling."""
    block = picture[row * STRIDE:(row + 1) * STRIDE, col * STRIDE:(col + 1) * STRIDE]
    assert np.all(block == block[0, 0])
    return block[0, 0].astype(np.int32)


def test_heatmap_picture_shows_the_strongest_joint():
    image, heatmaps, tags = _two_people()
    heatmap_picture, tag_picture = map_pictures(image, heatmaps, tags)
    assert heatmap_picture.shape == tag_picture.shape == image.shape
    assert heatmap_picture.dtype == tag_picture.dtype == np.uint8
    peak, background = _block(heatmap_picture, 3, 3), _block(heatmap_picture, 0, 0)
    # "jet": dark red (128, 0, 0) at 1, dark blue at 0, blended with the grey image.
    assert peak[0] > peak[2] + 50 and background[2] > background[0] + 50
    np.testing.assert_array_equal(_block(heatmap_picture, 12, 10), peak)


def test_tag_picture_colours_people_apart_and_dims_the_background():
    image, heatmaps, tags = _two_people()
    _, tag_picture = map_pictures(image, heatmaps, tags)
    first_a, second_a, b = (_block(tag_picture, *pixel) for pixel in ((3, 3), (3, 5), (12, 10)))
    background = _block(tag_picture, 0, 0)
    np.testing.assert_array_equal(first_a, second_a)  # one person, one colour
    assert np.abs(first_a - b).max() > 100  # two people, far apart tags: different colours
    assert background.max() < min(first_a.max(), b.max())
    # The normalisation is relative: shifting every tag changes nothing.
    _, shifted = map_pictures(image, heatmaps, tags + 50.0)
    np.testing.assert_array_equal(shifted, tag_picture)


def test_pictures_without_detections_are_defined():
    image, heatmaps, tags = _two_people()
    heatmap_picture, tag_picture = map_pictures(image, heatmaps * 0, tags)
    assert np.all(np.isfinite(heatmap_picture)) and tag_picture.shape == image.shape


# ---------------------------------------------------------------- the evaluation summary

COCO_METRICS = {
    "AP": 0.0723892511868934, "AP50": 0.2470726068476426, "AP75": 0.022714972481676605,
    "APM": 0.09422713908531452, "APL": -1.0, "AR": 0.14388361045130643, "AR50": 0.4002375,
    "AR75": 0.0766033, "ARM": 0.1401747, "ARL": -1.0, "num_images": 500,
    "AP_gt_detections": 0.3864191525199694, "AP50_gt_detections": 0.71234,
    "AP75_gt_detections": 0.35, "APM_gt_detections": 0.4, "APL_gt_detections": -1.0,
    "AR_gt_detections": 0.45, "AR50_gt_detections": 0.8, "AR75_gt_detections": 0.4,
    "ARM_gt_detections": 0.42, "ARL_gt_detections": -1.0,
}


def test_table_puts_predictions_and_the_labelled_diagnostic_side_by_side_rounded():
    lines = evaluation_hook.evaluation_table(COCO_METRICS)
    assert lines[0].split() == ["predicted", "diagnostic"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:11]}
    assert list(rows) == ["AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL"]
    assert rows["AP"] == ["0.072", "0.386"]  # 3 decimals, not 0.3864191525199694
    assert rows["AP50"] == ["0.247", "0.712"]
    assert rows["APL"] == ["n/a", "n/a"]  # pycocotools' -1: no ground truth of that size
    text = "\n".join(lines)
    assert "diagnostic: ground-truth heatmaps + predicted tags (grouping alone)" in text
    assert "n/a: no ground truth in that area range" in text


def test_table_without_the_diagnostic_has_one_column():
    plain = {k: v for k, v in COCO_METRICS.items() if not k.endswith("_gt_detections")}
    lines = evaluation_hook.evaluation_table(plain)
    assert lines[0].split() == ["predicted"]
    assert "diagnostic" not in "\n".join(lines)


def test_mpii_headline_metrics():
    metrics = {"AP": 0.5, "AP/head": 0.9, "AP_Head": 0.9, "AP_Wrist": 0.3, "num_images": 4,
               "AP_gt_detections": 0.7, "AP_Head_gt_detections": 0.95}
    assert evaluation_hook.headline_metric_names(metrics) == ["AP", "AP_Head", "AP_Wrist"]


def test_report_says_where_the_best_checkpoint_drawings_and_metrics_are(tmp_path):
    step_dir = tmp_path / "eval" / "step_1300"
    (step_dir / "drawings").mkdir(parents=True)
    for index in range(3):
        (step_dir / "drawings" / f"{index}.jpg").write_bytes(b"")
    (step_dir / "metrics.json").write_text("{}")
    metrics = dict(COCO_METRICS, step=1300, best_AP=0.0723892511868934,
                   history=[{"AP": 0.01, "step": 650}, {"AP": 0.0723892511868934, "step": 1300}])
    trainer = PoseTrainer.__new__(PoseTrainer)  # the report needs no model
    trainer.workdir = str(tmp_path)
    report = trainer.evaluation_report(metrics)
    lines = report.splitlines()
    assert lines[0] == (
        "Evaluation at step 1300 on 500 validation images (COCO keypoint AP/AR over OKS):"
    )
    # One table (no second, unlabelled one), rounded.
    assert sum(line.split() == ["predicted", "diagnostic"] for line in lines) == 1
    assert "0.386" in report and "0.3864" not in report
    assert f"best AP: 0.072 at step 1300 (checkpoint {tmp_path}/best/model)" in report
    assert f"drawings: {step_dir}/drawings/ (3 images)" in report
    assert f"metrics.json: {tmp_path}/metrics.json (every evaluation)" in report
    assert f"{step_dir}/metrics.json (this one)" in report


def test_test_time_is_described_in_words():
    describe = evaluation_hook.describe_test_time
    assert describe(InferenceConfig(input_size=128)) == "single scale"
    assert describe(InferenceConfig(input_size=128, flip=True)) == "single scale, flip"
    assert describe(InferenceConfig(input_size=128, scales=(1.5, 1.25, 1.0))) == (
        "scales 1.5, 1.25, 1 (official tag fusion)"
    )
    assert describe(InferenceConfig(input_size=128, scales=(2, 1, 0.5), fusion="paper",
                                    flip=True)) == "scales 2, 1, 0.5 (paper tag fusion), flip"


def test_report_title_says_the_test_time_setting(tmp_path):
    metrics = dict(COCO_METRICS, step=24000, test_time="scales 1.5, 1.25, 1 (official tag fusion)")
    trainer = PoseTrainer.__new__(PoseTrainer)  # the report needs no model
    trainer.workdir = str(tmp_path)
    assert trainer.evaluation_report(metrics).splitlines()[0] == (
        "Evaluation at step 24000 on 500 validation images (COCO keypoint AP/AR over OKS, "
        "scales 1.5, 1.25, 1 (official tag fusion)):"
    )


# ---------------------------------------------------------------- drawings


class _Record:
    """A validation record reading a PNG from memory."""

    def __init__(self, image: np.ndarray) -> None:
        self.image_id, self.file_name = 7, "7.png"
        self._bytes = cv2.imencode(".png", image[..., ::-1])[1].tobytes()

    def read_image_bytes(self) -> bytes:
        return self._bytes


def _person(x0: float, score: float) -> np.ndarray:
    """17 joints in a column at x = x0, every joint at `score` (refine's 1.0 for phantoms)."""
    pose = np.zeros((17, 3), np.float32)
    pose[:, 0], pose[:, 1], pose[:, 2] = x0, np.linspace(10, 110, 17), score
    return pose


@pytest.mark.parametrize("draw_threshold, phantom_drawn", [(0.3, False), (0.0, True)])
def test_drawings_leave_out_people_below_the_draw_threshold(
    tmp_path, draw_threshold, phantom_drawn
):
    image = np.full((120, 160, 3), 90, np.uint8)
    # A confident person on the left, a phantom (score 0.05, joints filled at 1.0) on the right.
    prediction = {"poses": np.stack([_person(30, 0.9), _person(130, 1.0)]),
                  "scores": np.array([0.9, 0.05], np.float32)}
    eval_config = ml_collections.ConfigDict({"draw_threshold": draw_threshold})
    codec_config = ml_collections.ConfigDict({"detection_threshold": 0.1})
    trainer = types.SimpleNamespace(
        config=ml_collections.ConfigDict({"eval": eval_config, "codec": codec_config}),
        keypoint_info=COCO,
        is_chief=False,
    )
    evaluation_hook._write_drawings(trainer, [(_Record(image), prediction)], [], str(tmp_path), 1)
    drawing = cv2.imread(str(tmp_path / "drawings" / "7.jpg"))
    changed = np.abs(drawing.astype(int) - 90).max(axis=-1) > 40  # JPEG noise stays below
    assert changed[:, :60].any()  # the confident person is drawn
    assert changed[:, 100:].any() == phantom_drawn


def test_base_config_draw_threshold_is_the_shared_default():
    assert base_config().eval.draw_threshold == DEFAULT_DRAW_THRESHOLD
