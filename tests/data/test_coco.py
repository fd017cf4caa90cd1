"""Tests for the COCO-format reader (associative_embedding.data.coco).

Real files from ../shared/data check counts, keypoints and masks against pycocotools; small
hand-built files in tmp_path cover each annotation quirk listed in ../shared/data/README.md and
the ones real files at full scale are known for.
"""

from __future__ import annotations

import contextlib
import io
import json
import pathlib

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from associative_embedding.data import coco as coco_reader
from associative_embedding.data import image_io
from associative_embedding.data.coco import read_coco_keypoints

# (annotation file, image folder) relative to ../shared/data: every COCO-format keypoint file.
SHARED_COCO_FILES = [
    ("coco_mini_train2017/person_keypoints_train2017.json", "coco_mini_train2017/images"),
    ("mmpose_samples/coco/test_coco.json", "mmpose_samples/coco"),
    ("mmpose_samples/crowdpose/test_crowdpose.json", "mmpose_samples/crowdpose"),
    ("mmpose_samples/ochuman/test_ochuman.json", "mmpose_samples/ochuman"),
    ("mmpose_samples/posetrack18/annotations/test_posetrack18_val.json",
     "mmpose_samples/posetrack18"),
    ("mmpose_samples/posetrack18/annotations/val/003418_mpii_test.json",
     "mmpose_samples/posetrack18"),
    ("mmpose_samples/posetrack18/annotations/val/009473_mpii_test.json",
     "mmpose_samples/posetrack18"),
    ("mmpose_samples/posetrack18/annotations/val/012834_mpii_test.json",
     "mmpose_samples/posetrack18"),
]

HEIGHT, WIDTH = 48, 64


def _load_coco(path: pathlib.Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        return COCO(str(path))


def _pycocotools_counts(api: COCO) -> tuple[int, int, int]:
    """(usable persons, crowd, unlabelled) by pycocotools' own fields."""
    annotations = api.loadAnns(api.getAnnIds())
    persons = sum(1 for a in annotations if not a["iscrowd"] and a["num_keypoints"] > 0)
    crowd = sum(1 for a in annotations if a["iscrowd"])
    unlabelled = sum(1 for a in annotations if not a["iscrowd"] and a["num_keypoints"] == 0)
    return persons, crowd, unlabelled


# --------------------------------------------------------------------------------------------
# Real data.


@pytest.mark.parametrize(("annotation", "images"), SHARED_COCO_FILES,
                         ids=[pathlib.Path(a).stem for a, _ in SHARED_COCO_FILES])
def test_counts_equal_pycocotools(shared_data, annotation, images):
    api = _load_coco(shared_data / annotation)
    persons, crowd, unlabelled = _pycocotools_counts(api)
    # 'eval' reads every listed image; coco_mini lists 44 images whose files are not shipped.
    records, report = read_coco_keypoints(
        shared_data / annotation, shared_data / images, split_role="eval", skip_bad_images=True
    )
    assert (report.num_people, report.num_crowd, report.num_unlabelled) == (
        persons, crowd, unlabelled)
    assert report.num_people_kept == persons
    assert sum(r.num_crowd for r in records) == crowd
    assert sum(r.num_unlabelled for r in records) == unlabelled
    num_joints = len(api.loadCats(api.getCatIds())[0]["keypoints"])
    assert all(r.keypoints.shape[1:] == (num_joints, 3) for r in records)
    # 'train' keeps exactly the images with a usable person.
    with_people = {a["image_id"] for a in api.loadAnns(api.getAnnIds())
                   if not a["iscrowd"] and a["num_keypoints"] > 0}
    train_records, train_report = read_coco_keypoints(
        shared_data / annotation, shared_data / images, split_role="train"
    )
    assert {r.image_id for r in train_records} == with_people
    assert train_report.num_people_kept == persons


def test_shared_file_counts_match_data_readme(shared_data):
    _, report = read_coco_keypoints(
        shared_data / SHARED_COCO_FILES[0][0], shared_data / SHARED_COCO_FILES[0][1],
        split_role="eval", skip_bad_images=True,
    )
    # README: 80 images listed, 36 present; 167 people; 5 crowd regions; 86 annotations with
    # num_keypoints = 0 (the 5 crowds and 81 people).
    assert report.num_images_listed == 80
    assert report.num_images_kept == 36
    assert report.issues["image_missing"] == 44
    assert report.num_people + report.num_unlabelled == 167
    assert report.num_crowd == 5
    assert report.num_unlabelled + report.num_crowd == 86


def test_keypoints_boxes_areas_equal_annotations(shared_data):
    annotation, images = SHARED_COCO_FILES[0]
    api = _load_coco(shared_data / annotation)
    records, _ = read_coco_keypoints(shared_data / annotation, shared_data / images)
    assert records
    for record in records:
        image = api.loadImgs(record.image_id)[0]
        assert (record.height, record.width) == (image["height"], image["width"])
        assert record.file_name.endswith(image["file_name"])
        for row, annotation_id in enumerate(record.annotation_ids):
            source = api.loadAnns(int(annotation_id))[0]
            expected = np.asarray(source["keypoints"], np.float32).reshape(-1, 3)
            np.testing.assert_array_equal(record.keypoints[row], expected)
            np.testing.assert_allclose(record.boxes[row], source["bbox"], rtol=1e-6)
            assert record.areas[row] == pytest.approx(source["area"], rel=1e-6)


@pytest.mark.parametrize("annotation_index", [0, 1])
@pytest.mark.parametrize("ignore", ["crowd_and_unlabelled", "crowd"])
def test_ignore_mask_equals_union_of_ann_to_mask(shared_data, annotation_index, ignore):
    annotation, images = SHARED_COCO_FILES[annotation_index]
    api = _load_coco(shared_data / annotation)
    records, _ = read_coco_keypoints(
        shared_data / annotation, shared_data / images, split_role="eval",
        skip_bad_images=True, ignore=ignore,
    )
    checked = 0
    for record in records:
        expected = np.zeros((record.height, record.width), np.uint8)
        for source in api.loadAnns(api.getAnnIds(imgIds=record.image_id)):
            masked = source["iscrowd"] or (
                ignore == "crowd_and_unlabelled" and source["num_keypoints"] == 0)
            if masked:
                expected |= api.annToMask(source).astype(np.uint8)
        np.testing.assert_array_equal(record.decode_ignore_mask(), expected)
        checked += int(expected.any())
    # Not vacuous: coco_mini has crowds and unlabelled people, test_coco unlabelled people only.
    assert checked > 0 or (annotation_index == 1 and ignore == "crowd")


def test_crowdpose_quirks_num_keypoints_and_missing_segmentation(shared_data):
    """CrowdPose: K = 14, num_keypoints counts 12 body joints only, no segmentation key."""
    path = shared_data / "mmpose_samples/crowdpose/test_crowdpose.json"
    records, report = read_coco_keypoints(path, path.parent)
    assert report.keypoint_names[-2:] == ("head", "neck")
    assert report.issues["num_keypoints_mismatch"] == 4
    by_id = {int(i): (r, row) for r in records for row, i in enumerate(r.annotation_ids)}
    record, row = by_id[123803]  # num_keypoints 5, seven joints with v > 0
    assert int((record.keypoints[row, :, 2] > 0).sum()) == 7
    # Person 131039 (num_keypoints 0, no segmentation) is masked by its box.
    assert report.issues["segmentation_missing"] == 1
    box = np.array([[108.5, 96.78, 35.46, 30.23]])
    expected = mask_utils.decode(mask_utils.frPyObjects(box, record.height, record.width))[..., 0]
    np.testing.assert_array_equal(record.decode_ignore_mask(), expected)
    # No `area` in CrowdPose: the box area is used (counted for all 5 annotations, the
    # unlabelled one too: the evaluator reads every area).
    assert report.issues["area_missing"] == 5
    np.testing.assert_allclose(record.areas, record.boxes[:, 2] * record.boxes[:, 3], rtol=1e-6)


def test_posetrack_keypoint_outside_image_and_ignore_regions(shared_data):
    root = shared_data / "mmpose_samples/posetrack18"
    path = root / "annotations/test_posetrack18_val.json"
    records, report = read_coco_keypoints(path, root)
    assert report.issues["keypoint_outside_image"] == 1
    assert report.examples["keypoint_outside_image"] == [1012834000010]
    api = _load_coco(path)
    source = api.loadAnns(1012834000010)[0]
    raw = np.asarray(source["keypoints"], np.float32).reshape(-1, 3)
    record = next(r for r in records if 1012834000010 in r.annotation_ids)
    row = list(record.annotation_ids).index(1012834000010)
    x, y = raw[:, 0], raw[:, 1]
    inside = (x >= -0.5) & (x < record.width - 0.5) & (y >= -0.5) & (y < record.height - 0.5)
    outside = (raw[:, 2] > 0) & ~inside
    assert outside.sum() == 1
    np.testing.assert_array_equal(record.keypoints[row][outside], 0.0)
    np.testing.assert_array_equal(record.keypoints[row][~outside], raw[~outside])
    # The image-level ignore polygons agree with PoseTrack's own ignore-mask images.
    image = api.loadImgs(record.image_id)[0]
    reference = cv2.imread(str(root / image["mask_file"]), cv2.IMREAD_GRAYSCALE) > 127
    ours = record.decode_ignore_mask().astype(bool)
    iou = (ours & reference).sum() / (ours | reference).sum()
    assert iou > 0.95
    _, without = read_coco_keypoints(path, root, use_image_ignore_regions=False)
    assert without.issues["image_ignore_regions"] == 0


def test_non_keypoint_file_is_rejected_with_categories(shared_data):
    path = shared_data / "coco_mini_train2017/instances_train2017.json"
    with pytest.raises(ValueError, match="instances_train2017.json: cannot choose the keypoint"):
        read_coco_keypoints(path, path.parent / "images")


# --------------------------------------------------------------------------------------------
# Hand-built files.


def _keypoints(joints: dict[int, tuple[float, float, int]], num_joints: int = 17) -> list:
    values = [0.0] * (3 * num_joints)
    for joint, (x, y, v) in joints.items():
        values[3 * joint: 3 * joint + 3] = [x, y, v]
    return values


def _person(annotation_id, image_id=1, joints=None, bbox=(10, 10, 20, 30), **fields):
    joints = joints or {}
    annotation = {
        "id": annotation_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
        "keypoints": _keypoints(joints), "num_keypoints": sum(v > 0 for _, _, v in
                                                              joints.values()),
        "bbox": list(bbox), "area": 100.0,
        "segmentation": [[10, 10, 30, 10, 30, 40, 10, 40]],
    }
    annotation.update(fields)
    return annotation


def _write(tmp_path, annotations, *, num_images=1, images=None, categories=None, jpeg=True):
    image_dir = tmp_path / "images"
    image_dir.mkdir(exist_ok=True)
    if images is None:
        images = [{"id": i, "file_name": f"{i:04d}.jpg", "height": HEIGHT, "width": WIDTH}
                  for i in range(1, num_images + 1)]
    if jpeg:
        pixels = np.full((HEIGHT, WIDTH, 3), 127, np.uint8)
        for image in images:
            cv2.imwrite(str(image_dir / image["file_name"]), pixels)
    dataset = {
        "images": images,
        "annotations": annotations,
        "categories": categories or [{"id": 1, "name": "person",
                                      "keypoints": [f"j{k}" for k in range(17)]}],
    }
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(dataset))
    return path, image_dir


def _box_mask(box) -> np.ndarray:
    rle = mask_utils.frPyObjects(np.array([box], np.float64), HEIGHT, WIDTH)
    return mask_utils.decode(rle)[..., 0]


def _polygon_mask(polygons) -> np.ndarray:
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, HEIGHT, WIDTH)))


def test_visibility_comes_from_v_not_num_keypoints(tmp_path):
    path, image_dir = _write(tmp_path, [
        _person(1, joints={0: (20, 20, 2), 5: (25, 30, 1)}, num_keypoints=0),
        _person(2, joints={}, num_keypoints=3, bbox=(40, 5, 10, 10), segmentation=[]),
    ])
    records, report = read_coco_keypoints(path, image_dir)
    (record,) = records
    np.testing.assert_array_equal(record.annotation_ids, [1])
    assert record.keypoints[0, 0].tolist() == [20, 20, 2]
    assert record.keypoints[0, 5].tolist() == [25, 30, 1]
    assert report.num_unlabelled == 1
    # Both disagree on whether the person has joints at all (what the evaluator goes by).
    assert report.issues["num_keypoints_zero_mismatch"] == 2
    cleaned = report.checked.dataset["annotations"]
    assert [a["num_keypoints"] for a in cleaned] == [2, 0]
    np.testing.assert_array_equal(record.decode_ignore_mask(), _box_mask((40, 5, 10, 10)))


def test_out_of_image_and_negative_keypoints_are_dropped_and_counted(tmp_path):
    joints = {
        0: (-3.0, 5.0, 2),  # negative x
        1: (WIDTH - 0.5, 5.0, 2),  # just past the last pixel centre's extent
        2: (WIDTH - 0.6, 5.0, 2),  # inside the last column
        3: (5.0, HEIGHT, 1),  # below the image
        4: (-0.5, -0.5, 2),  # corner of the first pixel: inside
        5: (7.0, 9.0, 2),
    }
    path, image_dir = _write(tmp_path, [
        _person(1, joints=joints),
        _person(2, joints={0: (-10, -10, 2), 1: (500, 5, 2)}, bbox=(50, 30, 8, 8),
                segmentation=None),
    ])
    records, report = read_coco_keypoints(path, image_dir)
    (record,) = records
    np.testing.assert_array_equal(record.annotation_ids, [1])
    kept = record.keypoints[0]
    for joint in (0, 1, 3):
        assert kept[joint].tolist() == [0, 0, 0]
    assert kept[2].tolist() == pytest.approx([WIDTH - 0.6, 5.0, 2])
    assert kept[4].tolist() == [-0.5, -0.5, 2]
    assert kept[5].tolist() == [7, 9, 2]
    assert report.issues["keypoint_outside_image"] == 5
    # Person 2 has no joint inside the image: unlabelled, masked by its box.
    assert report.issues["person_all_keypoints_outside"] == 1
    assert report.num_unlabelled == 1
    np.testing.assert_array_equal(record.decode_ignore_mask(), _box_mask((50, 30, 8, 8)))


@pytest.mark.parametrize("segmentation", [None, "absent", [], [[]], [[1, 2, 3, 4]], [[5, 5]]])
def test_unusable_segmentation_falls_back_to_box(tmp_path, segmentation):
    unlabelled = _person(2, joints={}, bbox=(40, 8, 12, 20))
    if segmentation == "absent":
        del unlabelled["segmentation"]
    else:
        unlabelled["segmentation"] = segmentation
    path, image_dir = _write(tmp_path, [_person(1, joints={0: (5, 5, 2)}), unlabelled])
    (record,), report = read_coco_keypoints(path, image_dir)
    np.testing.assert_array_equal(record.decode_ignore_mask(), _box_mask((40, 8, 12, 20)))
    if segmentation in ([[]], [[1, 2, 3, 4]], [[5, 5]]):
        assert report.issues["polygon_too_short"] == 1
    assert report.issues["segmentation_missing"] == 1


def test_short_polygons_are_dropped_from_mixed_segmentation(tmp_path):
    good = [40, 8, 52, 8, 52, 28, 40, 28]
    path, image_dir = _write(tmp_path, [
        _person(1, joints={0: (5, 5, 2)}),
        _person(2, joints={}, segmentation=[good, [1, 1, 60, 40]], bbox=(0, 0, 64, 48)),
    ])
    (record,), report = read_coco_keypoints(path, image_dir)
    np.testing.assert_array_equal(record.decode_ignore_mask(), _polygon_mask([good]))
    assert report.issues["polygon_too_short"] == 1
    assert report.issues["segmentation_missing"] == 0


def test_crowd_rle_uncompressed_and_compressed(tmp_path):
    region = np.zeros((HEIGHT, WIDTH), np.uint8)
    region[5:20, 30:50] = 1
    other = np.zeros((HEIGHT, WIDTH), np.uint8)
    other[30:45, 2:12] = 1
    compressed = mask_utils.encode(np.asfortranarray(other))
    # Uncompressed RLE as COCO stores crowds: column-major run lengths starting with zeros.
    flat = region.flatten(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    crowd_uncompressed = _person(2, joints={}, iscrowd=1, segmentation={
        "size": [HEIGHT, WIDTH], "counts": runs})
    crowd_compressed = _person(3, joints={}, iscrowd=1, segmentation={
        "size": [HEIGHT, WIDTH], "counts": compressed["counts"].decode("ascii")})
    path, image_dir = _write(tmp_path, [
        _person(1, joints={0: (5, 5, 2)}), crowd_uncompressed, crowd_compressed])
    (record,), report = read_coco_keypoints(path, image_dir)
    assert report.num_crowd == 2 and record.num_crowd == 2
    np.testing.assert_array_equal(record.decode_ignore_mask(), region | other)
    assert not report.issues


def test_rle_of_wrong_size_falls_back_to_box(tmp_path):
    wrong = mask_utils.encode(np.asfortranarray(np.ones((10, 10), np.uint8)))
    path, image_dir = _write(tmp_path, [
        _person(1, joints={0: (5, 5, 2)}),
        _person(2, joints={}, iscrowd=1, bbox=(20, 20, 5, 5),
                segmentation={"size": [10, 10], "counts": wrong["counts"].decode()}),
    ])
    (record,), report = read_coco_keypoints(path, image_dir)
    assert report.issues["rle_size_mismatch"] == 1
    np.testing.assert_array_equal(record.decode_ignore_mask(), _box_mask((20, 20, 5, 5)))


def test_invalid_boxes_repaired_or_dropped(tmp_path):
    path, image_dir = _write(tmp_path, [
        _person(1, joints={0: (10, 12, 2), 3: (20, 30, 2)}, bbox=(10, 12, 0, 18)),
        _person(2, joints={1: (40, 40, 2)}, bbox=(40, 40, 5, -1)),
        _person(3, joints={}, bbox=(5, 5, -1, 3), segmentation=[]),  # nothing left to mask
        _person(4, joints={}, bbox=(5, 5, 0, 0)),  # valid polygon: used despite the box
    ])
    (record,), report = read_coco_keypoints(path, image_dir)
    assert report.issues["box_repaired_from_keypoints"] == 2
    # Pixel extent of the labelled joints (pixel-centre convention).
    np.testing.assert_allclose(record.boxes[0], [9.5, 11.5, 11, 19])
    np.testing.assert_allclose(record.boxes[1], [39.5, 39.5, 1, 1])
    assert report.issues["region_dropped_invalid_box"] == 1
    np.testing.assert_array_equal(
        record.decode_ignore_mask(), _polygon_mask([[10, 10, 30, 10, 30, 40, 10, 40]]))


def test_missing_area_visibility_out_of_range_and_malformed_keypoints(tmp_path):
    first = _person(1, joints={0: (10, 12, 2), 1: (11, 12, 3)})
    del first["area"]
    second = _person(2, joints={0: (30, 30, 2)}, area=None, segmentation=None,
                     bbox=(25, 25, 10, 4))
    third = _person(3, keypoints=[1, 2, 2], bbox=(50, 2, 4, 4), segmentation=[])
    path, image_dir = _write(tmp_path, [first, second, third])
    (record,), report = read_coco_keypoints(path, image_dir)
    assert report.issues["area_missing"] == 2
    polygon_area = mask_utils.area(mask_utils.merge(
        mask_utils.frPyObjects([[10, 10, 30, 10, 30, 40, 10, 40]], HEIGHT, WIDTH)))
    np.testing.assert_allclose(record.areas, [polygon_area, 40.0])
    assert report.issues["visibility_invalid"] == 1
    assert record.keypoints[0, 1, 2] == 2
    assert report.issues["keypoints_malformed"] == 1
    assert report.num_unlabelled == 1
    np.testing.assert_array_equal(record.decode_ignore_mask(), _box_mask((50, 2, 4, 4)))


def test_unknown_image_and_other_category_annotations(tmp_path):
    categories = [
        {"id": 1, "name": "person", "keypoints": [f"j{k}" for k in range(17)]},
        {"id": 2, "name": "dog"},
    ]
    dog = _person(3, joints={0: (5, 5, 2)}, category_id=2)
    path, image_dir = _write(tmp_path, [
        _person(1, joints={0: (5, 5, 2)}), _person(2, image_id=99, joints={0: (5, 5, 2)}), dog,
    ], categories=categories)
    (record,), report = read_coco_keypoints(path, image_dir)
    assert record.num_people == 1
    assert report.issues["annotation_unknown_image"] == 1
    assert report.num_other_category == 1


def test_category_choice(tmp_path):
    categories = [
        {"id": 1, "name": "person", "keypoints": [f"j{k}" for k in range(17)]},
        {"id": 7, "name": "hand", "keypoints": ["a", "b"]},
    ]
    hand = {"id": 5, "image_id": 1, "category_id": 7, "iscrowd": 0, "bbox": [1, 1, 5, 5],
            "keypoints": [3, 3, 2, 4, 4, 1], "area": 25}
    path, image_dir = _write(tmp_path, [_person(1, joints={0: (5, 5, 2)}), hand],
                             categories=categories)
    (record,), report = read_coco_keypoints(path, image_dir)
    assert record.keypoints.shape == (1, 17, 3) and report.category_name == "person"
    (record,), report = read_coco_keypoints(path, image_dir, category="hand")
    assert record.keypoints.shape == (1, 2, 3)
    assert report.keypoint_names == ("a", "b")
    with pytest.raises(ValueError, match="cannot choose the keypoint category"):
        read_coco_keypoints(path, image_dir, category="cat")


def test_images_without_people_skipped_for_train_kept_for_eval(tmp_path):
    crowd = _person(2, image_id=2, joints={}, iscrowd=1, bbox=(1, 1, 10, 10), segmentation=None)
    path, image_dir = _write(tmp_path, [_person(1, joints={0: (5, 5, 2)}), crowd], num_images=3)
    train, train_report = read_coco_keypoints(path, image_dir, split_role="train")
    assert [r.image_id for r in train] == [1]
    assert train_report.issues["image_without_people"] == 2
    evaluation, _ = read_coco_keypoints(path, image_dir, split_role="eval")
    assert [r.image_id for r in evaluation] == [1, 2, 3]
    assert evaluation[1].keypoints.shape == (0, 17, 3)
    assert evaluation[1].boxes.shape == (0, 4)
    np.testing.assert_array_equal(evaluation[1].decode_ignore_mask(), _box_mask((1, 1, 10, 10)))
    assert evaluation[2].ignore_rle is None


def test_crowd_only_ignore_mode(tmp_path):
    path, image_dir = _write(tmp_path, [
        _person(1, joints={0: (5, 5, 2)}),
        _person(2, joints={}, bbox=(40, 8, 12, 20), segmentation=None),
        _person(3, joints={}, iscrowd=1, bbox=(2, 30, 10, 10), segmentation=None),
    ])
    (record,), report = read_coco_keypoints(path, image_dir, ignore="crowd")
    np.testing.assert_array_equal(record.decode_ignore_mask(), _box_mask((2, 30, 10, 10)))
    assert report.num_unlabelled == 1 and record.num_unlabelled == 1
    (record,), _ = read_coco_keypoints(path, image_dir)
    np.testing.assert_array_equal(
        record.decode_ignore_mask(), _box_mask((2, 30, 10, 10)) | _box_mask((40, 8, 12, 20)))


def test_missing_image_size_is_read_from_the_file(tmp_path):
    images = [{"id": 1, "file_name": "0001.jpg"}]
    path, image_dir = _write(tmp_path, [_person(1, joints={0: (5, 5, 2)})], images=images)
    (record,), report = read_coco_keypoints(path, image_dir)
    assert (record.height, record.width) == (HEIGHT, WIDTH)
    assert report.issues["image_size_missing"] == 1


def test_report_logged_once_however_many_issues(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(coco_reader.logging, "warning", lambda *a: calls.append(("w", a)))
    monkeypatch.setattr(coco_reader.logging, "info", lambda *a: calls.append(("i", a)))
    people = [_person(i, joints={0: (-5, 5, 2), 1: (5, 5, 2)}, bbox=(1, 1, 0, 0))
              for i in range(1, 30)]
    path, image_dir = _write(tmp_path, people)
    read_coco_keypoints(path, image_dir)
    assert len(calls) == 1 and calls[0][0] == "w"
    message = calls[0][1][0] % calls[0][1][1:]
    assert "keypoint_outside_image=29" in message and "box_repaired_from_keypoints=29" in message


# --------------------------------------------------------------------------------------------
# Errors.


def test_missing_annotation_file_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_coco_keypoints(tmp_path / "missing.json", tmp_path)


def test_broken_json_names_path(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"images": [{"id": 1, "file_name": ')
    with pytest.raises(ValueError, match=r"broken\.json: invalid JSON"):
        read_coco_keypoints(path, tmp_path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"broken\.json: expected a JSON object"):
        read_coco_keypoints(path, tmp_path)
    path.write_text('{"images": []}')
    with pytest.raises(ValueError, match=r"broken\.json: not COCO format"):
        read_coco_keypoints(path, tmp_path)


def test_missing_image_dir_names_path(tmp_path):
    path, _ = _write(tmp_path, [_person(1, joints={0: (5, 5, 2)})])
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        read_coco_keypoints(path, tmp_path / "no_such_dir")


def test_missing_image_file_raises_or_is_skipped(tmp_path):
    path, image_dir = _write(tmp_path, [
        _person(1, joints={0: (5, 5, 2)}), _person(2, image_id=2, joints={0: (5, 5, 2)})],
        num_images=2)
    (image_dir / "0002.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"image 2: .*0002\.jpg"):
        read_coco_keypoints(path, image_dir)
    records, report = read_coco_keypoints(path, image_dir, skip_bad_images=True)
    assert [r.image_id for r in records] == [1]
    assert report.issues["image_missing"] == 1
    assert report.examples["image_missing"][0].endswith("0002.jpg")


def _write_bad_images(tmp_path):
    path, image_dir = _write(tmp_path, [
        _person(i, image_id=i, joints={0: (5, 5, 2)}) for i in (1, 2, 3)], num_images=3)
    good = (image_dir / "0001.jpg").read_bytes()
    (image_dir / "0002.jpg").write_bytes(good[: len(good) // 2])  # truncated JPEG
    (image_dir / "0003.jpg").write_bytes(np.random.default_rng(0).bytes(3000))  # random bytes
    return path, image_dir


@pytest.mark.parametrize(("bad_name", "keep"), [("0002.jpg", "0003.jpg"), ("0003.jpg", "0002.jpg")])
def test_truncated_and_random_images_raise_naming_the_file(tmp_path, bad_name, keep):
    """A truncated JPEG (0002) and a random-bytes file (0003) each give a clear error."""
    path, image_dir = _write_bad_images(tmp_path)
    # Check each bad file on its own: the other one is replaced by a good image.
    (image_dir / keep).write_bytes((image_dir / "0001.jpg").read_bytes())
    with pytest.raises(image_io.ImageDecodeError, match=bad_name):
        read_coco_keypoints(path, image_dir, verify_images=True)


def test_bad_images_skipped_and_counted(tmp_path):
    path, image_dir = _write_bad_images(tmp_path)
    records, report = read_coco_keypoints(
        path, image_dir, verify_images=True, skip_bad_images=True)
    assert [r.image_id for r in records] == [1]
    assert report.issues["image_unreadable"] == 2
    assert report.num_images_kept == 1


def test_image_size_mismatch_detected_when_verifying(tmp_path):
    images = [{"id": 1, "file_name": "0001.jpg", "height": HEIGHT + 1, "width": WIDTH}]
    path, image_dir = _write(tmp_path, [_person(1, joints={0: (5, 5, 2)})], images=images)
    with pytest.raises(ValueError, match=r"0001\.jpg is 48x64, annotated as 49x64"):
        read_coco_keypoints(path, image_dir, verify_images=True)
    records, report = read_coco_keypoints(path, image_dir, verify_images=True,
                                          skip_bad_images=True)
    assert not records and report.issues["image_size_mismatch"] == 1


def test_argument_validation(tmp_path):
    path, image_dir = _write(tmp_path, [_person(1, joints={0: (5, 5, 2)})])
    with pytest.raises(ValueError, match="split_role"):
        read_coco_keypoints(path, image_dir, split_role="test")
    with pytest.raises(ValueError, match="ignore"):
        read_coco_keypoints(path, image_dir, ignore="everything")
