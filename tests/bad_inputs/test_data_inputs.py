"""Bad annotations, images and results: a clear error naming the culprit, or a counted skip.

Each case is what a hostile user tries, crafted in tmp_path from the real samples in
../shared/data: a keypoint list of the wrong length, duplicate annotation and image ids, a
person whose visibility flags contradict ``num_keypoints``, a truncated / empty / random-bytes
image in the training set, a 10000 x 20 image, a run that detects nobody, photos with
non-numeric names. Every test checks that the message names the file or the annotation id, or
that the skip is counted, and that evaluation scores exactly what the reader kept.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import io
import json
import logging
import os
import pathlib
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from associative_embedding.data import annotation_checks, image_bounds, image_io, mpii, readers
from associative_embedding.data.annotation_checks import AnnotationError
from associative_embedding.data.coco import read_coco_keypoints
from associative_embedding.data.coco_instances import read_coco_instances_with_report
from associative_embedding.evaluation import coco_keypoints
from associative_embedding.evaluation.coco_keypoints import CocoKeypointEvaluator, load_results
from associative_embedding.inference import writers
from associative_embedding.modeling import loading
from associative_embedding.tasks.pose import estimator as predictor_lib
from tests.conftest import PROJECT_ROOT

COCO_MINI = "coco_mini_train2017"
KEYPOINTS_FILE = "person_keypoints_train2017.json"
# Images of coco_mini with several labelled people (the first has 11).
CROWDED_IMAGES = (370162, 227000, 129648)
TINY_MODEL = {"num_stacks": 2, "widths": (16, 16, 16), "stem_widths": (8, 16)}


# --------------------------------------------------------------------------------------------
# Helpers.


def _mini(shared_data: pathlib.Path) -> tuple[dict, pathlib.Path]:
    folder = shared_data / COCO_MINI
    return json.loads((folder / KEYPOINTS_FILE).read_text()), folder / "images"


def _subset(data: dict, image_ids) -> dict:
    """The file restricted to `image_ids`, in that order."""
    subset = copy.deepcopy(data)
    position = {image_id: index for index, image_id in enumerate(image_ids)}
    subset["images"] = sorted((i for i in subset["images"] if i["id"] in position),
                              key=lambda image: position[image["id"]])
    subset["annotations"] = [a for a in subset["annotations"] if a["image_id"] in position]
    return subset


def _labelled_people(data: dict, image_id: int) -> list[dict]:
    return [a for a in data["annotations"]
            if a["image_id"] == image_id and not a["iscrowd"] and a["num_keypoints"] > 0]


def _write(path: pathlib.Path, data) -> pathlib.Path:
    path.write_text(json.dumps(data))
    return path


def _oracle_ap(annotation_file: pathlib.Path, image_dir: pathlib.Path) -> float:
    """AP of the ground-truth heatmaps and tags at full resolution (no network, no image)."""
    split = readers.read_split(annotation_file, image_dir)
    config = predictor_lib.InferenceConfig(
        input_size=0, output_stride=1, oracles={"gt_heatmaps", "gt_tags"}
    )
    estimator = predictor_lib.PoseEstimator(None, split.keypoint_info, config)
    evaluator = predictor_lib.build_evaluator(split)
    evaluator.log_summary = False
    return predictor_lib.evaluate_records(split.records, estimator, evaluator,
                                          progress=False)["AP"]


def _warnings(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


def _run_tool(tool: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "tools" / f"{tool}.py"), *args, "--noprogress"],
        capture_output=True, text=True, timeout=timeout, env=environment, cwd=PROJECT_ROOT,
    )


@pytest.fixture(scope="module")
def clean_subset(shared_data, tmp_path_factory) -> tuple[dict, pathlib.Path, float]:
    """(the crowded coco_mini images' annotations, their image folder, their oracle AP)."""
    data, image_dir = _mini(shared_data)
    subset = _subset(data, CROWDED_IMAGES)
    path = _write(tmp_path_factory.mktemp("clean") / "clean.json", subset)
    return subset, image_dir, _oracle_ap(path, image_dir)


# --------------------------------------------------------------------------------------------
# A keypoint list of the wrong length (pycocotools: 'boolean index did not match').


def test_wrong_keypoint_length_is_skipped_by_reader_and_evaluator_alike(clean_subset,
                                                                        tmp_path, caplog):
    data, image_dir, clean_ap = clean_subset
    broken = copy.deepcopy(data)
    person = _labelled_people(broken, CROWDED_IMAGES[0])[0]
    person["keypoints"] = person["keypoints"][:-1]  # 50 values for 17 joints
    path = _write(tmp_path / "short.json", broken)

    caplog.set_level(logging.WARNING)
    records, report = read_coco_keypoints(path, image_dir)
    assert report.issues["keypoints_malformed"] == 1
    assert report.examples["keypoints_malformed"] == [person["id"]]
    assert f"keypoints_malformed=1 (e.g. [{person['id']}])" in _warnings(caplog)
    # Training masks the person; the evaluator's ground truth ignores it (num_keypoints 0).
    assert person["id"] not in {int(i) for r in records for i in r.annotation_ids}
    cleaned = {a["id"]: a for a in report.checked.dataset["annotations"]}[person["id"]]
    assert cleaned["num_keypoints"] == 0 and len(cleaned["keypoints"]) == 51
    # Before: pycocotools crashed in COCOeval.computeOks; now the person simply does not count,
    # as for every other person without joints.
    without_person = copy.deepcopy(data)
    for annotation in without_person["annotations"]:
        if annotation["id"] == person["id"]:
            annotation.update(keypoints=[0] * 51, num_keypoints=0)
    expected = _oracle_ap(_write(tmp_path / "unlabelled.json", without_person), image_dir)
    assert _oracle_ap(path, image_dir) == pytest.approx(expected)
    assert expected == pytest.approx(clean_ap, abs=0.02)


def test_wrong_keypoint_length_with_strict_names_file_and_id(clean_subset, tmp_path):
    data, image_dir, _ = clean_subset
    broken = copy.deepcopy(data)
    person = _labelled_people(broken, CROWDED_IMAGES[1])[0]
    person["keypoints"] = person["keypoints"] + [0]
    path = _write(tmp_path / "long.json", broken)
    with pytest.raises(AnnotationError) as raised:
        read_coco_keypoints(path, image_dir, strict=True)
    message = str(raised.value)
    assert str(path) in message and f"annotation {person['id']}" in message
    assert "'keypoints' has 52 values, expected 51" in message
    with pytest.raises(AnnotationError, match=str(person["id"])):
        readers.read_split(path, image_dir, strict=True)
    with pytest.raises(AnnotationError, match=str(person["id"])):
        coco_keypoints.load_coco(path, strict=True)


def test_evaluate_tool_strict_names_the_annotation_and_stops(clean_subset, tmp_path):
    data, image_dir, _ = clean_subset
    broken = copy.deepcopy(data)
    person = _labelled_people(broken, CROWDED_IMAGES[0])[0]
    person["keypoints"] = person["keypoints"][:-1]
    path = _write(tmp_path / "short.json", broken)
    result = _run_tool(
        "evaluate", f"--annotations={path}", f"--images={image_dir}",
        "--oracle=gt_heatmaps,gt_tags", "--input_size=0", "--output_stride=1",
        f"--output_dir={tmp_path / 'out'}", "--strict",
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"{path}: 1 annotation entries would be skipped" in result.stderr
    assert f"annotation {person['id']} (image {CROWDED_IMAGES[0]})" in result.stderr
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------------------------
# Duplicate annotation and image ids (pycocotools kept the last one twice: AP fell silently).


def test_duplicate_annotation_id_is_renumbered_with_a_warning(clean_subset, tmp_path, caplog):
    data, image_dir, clean_ap = clean_subset
    broken = copy.deepcopy(data)
    first, second = _labelled_people(broken, CROWDED_IMAGES[0])[:2]
    second["id"] = first["id"]
    path = _write(tmp_path / "duplicate.json", broken)

    caplog.set_level(logging.WARNING)
    records, report = read_coco_keypoints(path, image_dir, split_role="eval")
    assert report.issues["annotation_id_duplicate_renumbered"] == 1
    assert f"annotation_id_duplicate_renumbered=1 (e.g. [{first['id']}])" in _warnings(caplog)
    ids = [a["id"] for a in report.checked.dataset["annotations"]]
    assert len(ids) == len(set(ids)) == len(data["annotations"])
    # Both people are training targets and both count in evaluation: AP as before.
    assert sum(r.num_people for r in records) == report.num_people
    assert _oracle_ap(path, image_dir) == pytest.approx(clean_ap)


def test_exact_duplicate_annotation_is_skipped_and_strict_names_it(clean_subset, tmp_path):
    data, image_dir, clean_ap = clean_subset
    broken = copy.deepcopy(data)
    person = _labelled_people(broken, CROWDED_IMAGES[2])[0]
    broken["annotations"].append(copy.deepcopy(person))
    path = _write(tmp_path / "copy.json", broken)
    _, report = read_coco_keypoints(path, image_dir)
    assert report.issues["annotation_duplicate"] == 1
    assert report.examples["annotation_duplicate"] == [person["id"]]
    assert _oracle_ap(path, image_dir) == pytest.approx(clean_ap)
    with pytest.raises(AnnotationError, match=rf"annotation {person['id']} .*exact copy"):
        read_coco_keypoints(path, image_dir, strict=True)


def test_duplicate_image_id_drops_the_ambiguous_image(clean_subset, tmp_path):
    data, image_dir, _ = clean_subset
    broken = copy.deepcopy(data)
    other = dict(broken["images"][1], file_name=broken["images"][2]["file_name"])
    broken["images"].append(other)  # image id of the second image, file of the third
    path = _write(tmp_path / "images.json", broken)
    records, report = read_coco_keypoints(path, image_dir, split_role="eval")
    assert report.examples["image_id_duplicate"] == [CROWDED_IMAGES[1]]
    assert report.issues["annotation_of_dropped_image"] == sum(
        a["image_id"] == CROWDED_IMAGES[1] for a in data["annotations"])
    assert [r.image_id for r in records] == [CROWDED_IMAGES[0], CROWDED_IMAGES[2]]
    with pytest.raises(AnnotationError, match=rf"image id {CROWDED_IMAGES[1]} is listed 2 times"):
        read_coco_keypoints(path, image_dir, strict=True)


def test_dangling_references_and_bad_boxes(clean_subset, tmp_path):
    data, image_dir, _ = clean_subset
    broken = copy.deepcopy(data)
    people = _labelled_people(broken, CROWDED_IMAGES[0])
    people[0]["image_id"] = 999
    people[1]["category_id"] = 77
    people[2]["bbox"] = [1.0, 2.0, float("nan"), 4.0]
    people[3]["bbox"] = [1.0, 2.0, -3.0]
    unlabelled = copy.deepcopy(people[4])
    unlabelled.update(id=10**9, keypoints=[0] * 51, num_keypoints=0, segmentation=[],
                      bbox=[0, 0, -5, 5])
    broken["annotations"].append(unlabelled)
    path = _write(tmp_path / "references.json", broken)
    _, report = read_coco_keypoints(path, image_dir)
    assert report.examples["annotation_unknown_image"] == [people[0]["id"]]
    assert report.examples["category_unknown"] == [people[1]["id"]]
    assert report.examples["box_repaired_from_keypoints"] == [people[2]["id"], people[3]["id"]]
    assert report.examples["region_dropped_invalid_box"] == [10**9]
    cleaned = {a["id"]: a for a in report.checked.dataset["annotations"]}
    box = cleaned[people[2]["id"]]["bbox"]
    assert len(box) == 4 and np.all(np.isfinite(box)) and min(box[2:]) >= 0
    with pytest.raises(AnnotationError) as raised:
        read_coco_keypoints(path, image_dir, strict=True)
    for text in (f"annotation {people[0]['id']} (image 999): image_id 999 is not listed",
                 f"annotation {people[1]['id']} (image {CROWDED_IMAGES[0]}): category_id 77",
                 "annotation 1000000000"):
        assert text in str(raised.value)


# --------------------------------------------------------------------------------------------
# Visibility against num_keypoints (masked in training, counted by the evaluator).


def test_all_invisible_person_with_num_keypoints_counts_nowhere(clean_subset, tmp_path,
                                                                caplog):
    data, image_dir, _ = clean_subset
    broken = copy.deepcopy(data)
    person = _labelled_people(broken, CROWDED_IMAGES[0])[2]
    person.update(keypoints=[0] * 51, num_keypoints=10)
    path = _write(tmp_path / "invisible.json", broken)

    caplog.set_level(logging.WARNING)
    records, report = read_coco_keypoints(path, image_dir)
    assert f"num_keypoints_zero_mismatch=1 (e.g. [{person['id']}])" in _warnings(caplog)
    # Training: an unlabelled person, masked. Evaluation: num_keypoints 0, ignored.
    (record,) = [r for r in records if r.image_id == CROWDED_IMAGES[0]]
    assert person["id"] not in record.annotation_ids
    assert record.num_unlabelled == sum(
        1 for a in data["annotations"] if a["image_id"] == CROWDED_IMAGES[0]
        and not a["iscrowd"] and a["num_keypoints"] == 0) + 1
    cleaned = {a["id"]: a for a in report.checked.dataset["annotations"]}
    assert cleaned[person["id"]]["num_keypoints"] == 0
    # The evaluator agrees with training: the same AP as with num_keypoints written as 0.
    honest = copy.deepcopy(broken)
    for annotation in honest["annotations"]:
        if annotation["id"] == person["id"]:
            annotation["num_keypoints"] = 0
    expected = _oracle_ap(_write(tmp_path / "honest.json", honest), image_dir)
    assert _oracle_ap(path, image_dir) == pytest.approx(expected)


# --------------------------------------------------------------------------------------------
# The other readers: COCO instances (same shared check) and MPII.


def test_instances_file_goes_through_the_same_check(shared_data, tmp_path):
    folder = shared_data / COCO_MINI
    data = json.loads((folder / "instances_train2017.json").read_text())
    present = {p.name for p in (folder / "images").iterdir()}
    image_ids = [i["id"] for i in data["images"] if i["file_name"] in present][:3]
    subset = _subset(data, image_ids)
    first, second = [a for a in subset["annotations"] if not a["iscrowd"]][:2]
    second["id"] = first["id"]
    subset["annotations"].append({**first, "id": 10**9, "category_id": 4242})
    path = _write(tmp_path / "instances.json", subset)
    records, _, report = read_coco_instances_with_report(path, folder / "images")
    assert report.examples["annotation_id_duplicate_renumbered"] == [first["id"]]
    assert report.examples["category_unknown"] == [10**9]
    ids = [s.annotation_id for r in records for s in r.segments]
    assert len(ids) == len(set(ids))
    with pytest.raises(AnnotationError, match=r"annotation 1000000000 .*category_id 4242"):
        read_coco_instances_with_report(path, folder / "images", skip_invalid=False)
    # The segmentation evaluator's COCO ground truth is the same cleaned copy.
    from associative_embedding.data.coco_instances import read_coco_instances
    from associative_embedding.evaluation.instance_segmentation import (
        InstanceSegmentationEvaluator,
    )

    _, categories = read_coco_instances(path, folder / "images")
    evaluator = InstanceSegmentationEvaluator(categories, coco_annotations=path)
    assert len(evaluator._external_coco_gt.anns) == len(subset["annotations"]) - 1


def test_mpii_json_entries_are_checked_before_images(shared_data, tmp_path):
    folder = shared_data / "mmpose_samples" / "mpii"
    entries = json.loads((folder / "test_mpii.json").read_text())
    entries[1]["joints"] = entries[1]["joints"][:15]  # 15 joints for MPII's 16
    entries.append(copy.deepcopy(entries[2]))
    path = _write(tmp_path / "mpii.json", entries)
    _, report = mpii.read_mpii_json(path, folder, split_role="eval")
    assert report.examples["keypoints_malformed"] == [1]
    assert report.examples["annotation_duplicate"] == [len(entries) - 1]
    # Strict stops before any image is read: an empty image folder does not matter.
    (tmp_path / "no_images").mkdir()
    with pytest.raises(AnnotationError) as raised:
        mpii.read_mpii_json(path, tmp_path / "no_images", strict=True)
    assert str(path) in str(raised.value)
    assert "keypoints_malformed (1): entry 1" in str(raised.value)
    assert f"annotation_duplicate (1): entry {len(entries) - 1}" in str(raised.value)


# --------------------------------------------------------------------------------------------
# Truncated, empty and random-bytes images.


def _damage(path: pathlib.Path, kind: str) -> None:
    data = path.read_bytes()
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())


def _training_set(shared_data, tmp_path, damaged: str | None, kind: str = "truncated"):
    """Four coco_mini images with people (one damaged), copied to tmp_path; the annotations of
    the second carry a keypoint list of the wrong length as well."""
    data, image_dir = _mini(shared_data)
    with_people = [i["id"] for i in data["images"] if _labelled_people(data, i["id"])
                   and (image_dir / i["file_name"]).is_file()][:4]
    subset = _subset(data, with_people)
    _labelled_people(subset, with_people[1])[0]["keypoints"] = [1, 2]
    images = tmp_path / "images"
    images.mkdir()
    for image in subset["images"]:
        shutil.copy(image_dir / image["file_name"], images / image["file_name"])
    bad = None
    if damaged is not None:
        bad = images / subset["images"][2]["file_name"]
        _damage(bad, kind)
    return _write(tmp_path / "train.json", subset), images, bad


@pytest.mark.parametrize("kind", ["truncated", "empty", "random"])
def test_bad_image_is_named_by_every_decoding_path(shared_data, tmp_path, kind):
    annotation_file, images, bad = _training_set(shared_data, tmp_path, "bad", kind)
    problem = image_io.image_file_problem(bad)
    assert problem is not None and problem.startswith(str(bad))
    # Evaluation decodes through image_io: the error names the file.
    split = readers.read_split(annotation_file, images)
    record = next(r for r in split.records if r.file_name == str(bad))
    with pytest.raises(image_io.ImageDecodeError, match=str(bad)):
        image_io.decode_image(record.read_image_bytes(), source=record.file_name)
    # The predict tool's folder source skips it and counts it by name.
    from associative_embedding.inference import sources

    source = sources.open_source(str(images))
    assert len(list(source)) == 3 and source.unreadable_files == [str(bad)]


def test_training_stops_before_the_first_step_naming_the_bad_image(shared_data, tmp_path):
    from associative_embedding.tasks.pose.trainer import PoseTrainer
    from tests.training.scripts.tiny_config import tiny_config

    annotation_file, images, bad = _training_set(shared_data, tmp_path, "bad")
    config = tiny_config(dataset__kind="coco", dataset__train_annotations=str(annotation_file),
                         dataset__train_images=str(images))
    workdir = tmp_path / "work"
    with pytest.raises(image_io.ImageDecodeError) as raised:
        PoseTrainer(config, workdir).train()
    assert str(bad) in str(raised.value)
    assert "--config.dataset.skip_bad_images=True" in str(raised.value)
    assert not (workdir / "checkpoints").exists()  # not a single step


def test_training_with_skip_bad_images_completes_and_lists_them(shared_data, tmp_path, caplog):
    """Also: the wrong keypoint list in the data no longer crashes the final evaluation."""
    from associative_embedding.tasks.pose import inputs
    from associative_embedding.tasks.pose.trainer import PoseTrainer
    from tests.training.scripts.tiny_config import tiny_config

    annotation_file, images, bad = _training_set(shared_data, tmp_path, "bad")
    config = tiny_config(dataset__kind="coco", dataset__train_annotations=str(annotation_file),
                         dataset__train_images=str(images), dataset__skip_bad_images=True,
                         eval__max_images=0)
    workdir = tmp_path / "work"
    caplog.set_level(logging.WARNING)
    PoseTrainer(config, workdir).train()
    listed = (workdir / inputs.SKIPPED_IMAGES_NAME).read_text().splitlines()
    assert [line.split("\t")[0] for line in listed] == [str(bad)]
    assert "skipping 1 of the 4 images" in _warnings(caplog)
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["num_images"] == 3  # the final evaluation ran on the good images
    # ... with detections in the image whose ground truth has the wrong keypoint list, which
    # made pycocotools crash there (and again at every resume).
    results = json.loads((workdir / "eval" / "step_2" / "keypoint_results.json").read_text())
    data = json.loads(annotation_file.read_text())
    malformed_image = next(a["image_id"] for a in data["annotations"] if a["keypoints"] == [1, 2])
    assert malformed_image in {entry["image_id"] for entry in results}
    PoseTrainer(config, workdir).train()  # a resume: evaluates again, no crash


# --------------------------------------------------------------------------------------------
# A 10000 x 20 image: joints are clipped into the image, and the image is named.


def _tiny_predictor():
    import keras

    from associative_embedding.modeling.hourglass import StackedHourglass

    keras.utils.set_random_seed(0)
    model = StackedHourglass(num_joints=17, **TINY_MODEL)
    return model, loading.model_predictor(model)


def test_elongated_image_never_gets_joints_outside(tmp_path, caplog):
    from associative_embedding.core.keypoint_info import COCO as COCO_INFO
    from associative_embedding.inference import sources
    from associative_embedding.tasks.pose import predict as runner
    from associative_embedding.tasks.pose.image_estimator import ImagePoseEstimator

    folder = tmp_path / "photos"
    folder.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (20, 10000, 3), np.uint8)
    cv2.imwrite(str(folder / "wide.png"), pixels)
    cv2.imwrite(str(folder / "tall.png"), np.ascontiguousarray(pixels.transpose(1, 0, 2)))
    _, predictor = _tiny_predictor()
    config = predictor_lib.InferenceConfig(input_size=256)
    estimator = ImagePoseEstimator(predictor, COCO_INFO, config)
    caplog.set_level(logging.WARNING)
    summary = runner.run_prediction(
        sources.open_source(str(folder)), estimator, str(tmp_path / "out"),
        runner.PredictOptions(draw=False, progress=False),
    )
    assert summary.num_people > 0  # the random network finds (meaningless) people
    for name in ("wide.png", "tall.png"):
        assert f"{folder / name}: " in _warnings(caplog)
        assert "aspect ratio 500:1" in _warnings(caplog)
    sizes = {"wide.png": (20, 10000), "tall.png": (10000, 20)}
    for entry in json.loads((tmp_path / "out" / writers.RESULTS_FILE).read_text()):
        height, width = sizes[entry["file_name"]]
        joints = np.reshape(entry["keypoints"], (-1, 3))
        present = joints[joints[:, 2] > 0]
        assert np.all((present[:, 0] >= 0) & (present[:, 0] <= width - 1))
        assert np.all((present[:, 1] >= 0) & (present[:, 1] <= height - 1))


def test_evaluator_clips_joints_and_names_elongated_images(tmp_path, caplog):
    images = [{"id": 1, "file_name": "wide.jpg", "height": 20, "width": 10000}]
    person = {"id": 5, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 150.0,
              "bbox": [100, 2, 30, 15], "keypoints": [110, 10, 2] * 17, "num_keypoints": 17}
    dataset = {"images": images, "annotations": [person],
               "categories": [{"id": 1, "name": "person",
                               "keypoints": [f"j{k}" for k in range(17)]}]}
    path = _write(tmp_path / "gt.json", dataset)
    evaluator = CocoKeypointEvaluator(path, output_dir=tmp_path / "eval")
    poses = np.tile(np.array([[110.0, 39.0, 0.5]]), (1, 17, 1))  # y beyond the 20 rows
    evaluator.process([1], [(poses, np.ones(1))])
    evaluator.evaluate()
    (result,) = json.loads((tmp_path / "eval" / coco_keypoints.RESULTS_FILE_NAME).read_text())
    assert max(result["keypoints"][1::3]) == 19.0
    # The evaluation names the image (the oracles need no network nor image file).
    from associative_embedding.core.keypoint_info import COCO as COCO_INFO
    from associative_embedding.core.record import PoseRecord

    record = PoseRecord(image_id=1, file_name=str(tmp_path / "wide.jpg"), height=20,
                        width=10000, keypoints=np.zeros((0, 17, 3), np.float32),
                        boxes=np.zeros((0, 4)), areas=np.zeros(0), annotation_ids=np.zeros(0))
    estimator = predictor_lib.PoseEstimator(
        None, COCO_INFO, predictor_lib.InferenceConfig(oracles={"gt_heatmaps", "gt_tags"})
    )
    caplog.set_level(logging.WARNING)
    estimator(record)
    assert f"{tmp_path / 'wide.jpg'}: 10000x20 image (aspect ratio 500:1)" in _warnings(caplog)
    assert image_bounds.elongation_problem("a.jpg", 480, 640, input_size=512) is None


# --------------------------------------------------------------------------------------------
# Results files: no detections, non-numeric image names.


def test_no_detection_gives_ap_zero_and_a_note(clean_subset, tmp_path, caplog):
    data, _, _ = clean_subset
    ground_truth = coco_keypoints.coco_from_dataset(
        annotation_checks.check_coco_annotations(data, "clean.json").dataset)
    evaluator = CocoKeypointEvaluator(ground_truth, output_dir=tmp_path)
    evaluator.log_summary = False
    empty = (np.zeros((0, 17, 3)), np.zeros(0))
    evaluator.process(list(CROWDED_IMAGES), [empty] * len(CROWDED_IMAGES))
    caplog.set_level(logging.WARNING)
    metrics = evaluator.evaluate()
    assert metrics["AP"] == 0.0 and metrics["num_detections"] == 0
    assert "no person was detected in the 3 evaluated images" in _warnings(caplog)
    results_path = tmp_path / coco_keypoints.RESULTS_FILE_NAME
    assert json.loads(results_path.read_text()) == []
    assert "COCO.loadRes cannot load an empty list" in (
        tmp_path / coco_keypoints.EMPTY_RESULTS_NOTE_NAME).read_text()
    with pytest.raises(IndexError), contextlib.redirect_stdout(io.StringIO()):
        ground_truth.loadRes(str(results_path))  # pycocotools' own behaviour
    assert load_results(ground_truth, results_path).getAnnIds() == []
    with pytest.raises(ValueError, match=r"result 0 lacks \['image_id'\]"):
        load_results(ground_truth, [{"category_id": 1, "keypoints": [], "score": 1.0}])


def test_predict_results_have_numeric_ids_for_any_name(tmp_path):
    results = writers.ResultsWriter(str(tmp_path))
    poses = np.zeros((1, 17, 3), np.float32)
    poses[0, :, :2], poses[0, :, 2] = 5.0, 0.5
    names = ["holiday photo.jpg", "000000397133.jpg", "sub/cat.png", "397133.png"]
    for name in names:
        results.add(poses, np.ones(1), file_name=name, image_size=(40, 50))
    results.add(poses, np.ones(1), file_name="clip.mp4", image_size=(40, 50), frame_id=7)
    results.write()
    ids = {entry["file_name"]: entry["image_id"] for entry in results.results
           if "frame_id" not in entry}
    assert ids["000000397133.jpg"] == 397133
    assert ids["397133.png"] == 397134  # the number was taken: the next free id
    assert ids["holiday photo.jpg"] == writers.stable_image_id("holiday photo.jpg")
    assert len(set(ids.values())) == len(names)
    with contextlib.redirect_stdout(io.StringIO()):
        loaded = COCO(str(tmp_path / writers.IMAGE_IDS_FILE)).loadRes(
            str(tmp_path / writers.RESULTS_FILE))
    assert len(loaded.getAnnIds()) == len(names) + 1
    assert not (tmp_path / writers.RESULTS_NOTE_FILE).exists()


def test_predict_tool_says_nothing_was_detected(shared_data, tmp_path):
    model, _ = _tiny_predictor()
    model_path = tmp_path / "tiny.keras"
    model.save(model_path)
    out = tmp_path / "out"
    result = _run_tool(
        "predict", f"--input={shared_data / 'photos' / 'chelsea.png'}",
        f"--checkpoint={model_path}", f"--output_dir={out}", "--input_size=128",
        "--detection_threshold=0.99", "--nodraw",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Nothing was detected: {out / writers.RESULTS_FILE} is []" in result.stdout
    assert json.loads((out / writers.RESULTS_FILE).read_text()) == []
    assert "COCO.loadRes cannot load" in (out / writers.RESULTS_NOTE_FILE).read_text()
    (image,) = json.loads((out / writers.IMAGE_IDS_FILE).read_text())["images"]
    assert image["file_name"] == "chelsea.png"
    assert image["id"] == writers.stable_image_id("chelsea.png")


def test_check_counts_are_reported_as_one_structured_object(clean_subset):
    data, _, _ = clean_subset
    broken = copy.deepcopy(data)
    broken["annotations"].append({"id": 1, "image_id": 12345})  # no such image
    broken["annotations"].append("not an annotation")
    checked = annotation_checks.check_coco_annotations(broken, "file.json")
    report = checked.report
    assert report.skipped == {"annotation_malformed": 1, "annotation_unknown_image": 1}
    assert report.examples["annotation_unknown_image"] == [1]
    assert report.num_annotations == len(broken["annotations"])
    assert "Skipped: annotation_malformed=1" in report.summary()
    assert isinstance(report.issues, collections.Counter)
