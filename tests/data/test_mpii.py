"""Tests for the MPII readers (associative_embedding.data.mpii).

The .mat path is tested on a small file written with scipy.io.savemat in the structure of the
official ``mpii_human_pose_v1_u12_1.mat`` (RELEASE.annolist(i).image.name /
.annorect(r).{x1,y1,x2,y2,annopoints.point(p).{x,y,id,is_visible},scale,objpos.{x,y}},
RELEASE.img_train, RELEASE.single_person{i}, RELEASE.act, RELEASE.version), including the
MATLAB quirks the real file has: 1 x 1 struct arrays (squeezed to a struct on loading), empty
annorect / annopoints, is_visible as double, char or [] and test images without joints.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import scipy.io
from pycocotools import mask as mask_utils

from associative_embedding.core.keypoint_info import MPII
from associative_embedding.data import mpii
from associative_embedding.data.mpii import estimate_head_box, read_mpii_json
from associative_embedding.data.mpii_mat import read_mpii_mat

HEIGHT, WIDTH = 120, 160

_POINT_FIELDS = ("x", "y", "id", "is_visible")
_RECT_FIELDS = ("x1", "y1", "x2", "y2", "annopoints", "scale", "objpos")


def _struct_array(rows: list[dict], fields: tuple[str, ...]) -> np.ndarray:
    """A MATLAB 1 x N struct array (savemat writes numpy structured arrays as struct arrays)."""
    array = np.zeros((1, len(rows)), dtype=[(name, object) for name in fields])
    for index, row in enumerate(rows):
        for name in fields:
            array[0, index][name] = row.get(name, np.zeros((0, 0)))
    return array


def _points(points: list[tuple]) -> np.ndarray:
    """(id, x, y, is_visible) tuples -> a 1 x J point struct array (MATLAB doubles)."""
    return _struct_array(
        [{"x": float(x), "y": float(y), "id": float(joint), "is_visible": visible}
         for joint, x, y, visible in points], _POINT_FIELDS)


def _rect(points=None, head=None, objpos=None, scale=None) -> dict:
    rect = {}
    if head is not None:
        rect.update(zip(("x1", "y1", "x2", "y2"), map(float, head), strict=True))
    rect["annopoints"] = {"point": _points(points)} if points else np.zeros((0, 0))
    if objpos is not None:
        rect["objpos"] = {"x": float(objpos[0]), "y": float(objpos[1])}
    if scale is not None:
        rect["scale"] = float(scale)
    return rect


def _image(name: str, rects: list[dict], fields=_RECT_FIELDS) -> dict:
    return {"image": {"name": name}, "annorect": _struct_array(rects, fields),
            "frame_sec": np.zeros((0, 0)), "vididx": np.zeros((0, 0))}


# Image 000000001.jpg: two people of a group (annorect 1, 2), a separated single person (3)
# and an unannotated person (4, objpos + scale only). 1-based MATLAB coordinates; points are
# (id, x, y, is_visible) with is_visible as double, char or [] (empty).
GROUP_PERSON_1 = [
    (0, 11, 101, 1), (9, 21, 11, "1"), (8, 21, 31, "0"), (7, 22, 41, np.zeros((0, 0)))]
GROUP_PERSON_2 = [(9, 61, 12, 0), (8, 61, 30, 1), (15, WIDTH + 5, 50, 1)]  # last: outside
SINGLE_PERSON = [(9, 131, 15, 1), (8, 131, 33, 1)]


def _write_release(tmp_path) -> tuple:
    annolist = [
        _image("000000001.jpg", [
            _rect(GROUP_PERSON_1, head=(15, 5, 27, 35), objpos=(20, 60), scale=0.5),
            _rect(GROUP_PERSON_2, head=(55, 6, 67, 36), objpos=(60, 60), scale=0.5),
            _rect(SINGLE_PERSON, head=(125, 10, 137, 38), objpos=(130, 60), scale=0.5),
            _rect(None, objpos=(100, 100), scale=0.1),
        ]),
        # One person (a 1 x 1 struct array) with one point: both squeezed to structs on loading.
        _image("000000002.jpg", [_rect([(6, 41, 51, "1")], head=(30, 20, 50, 40),
                                       objpos=(40, 50), scale=0.4)]),
        # A test image: only objpos and scale, as in the release.
        _image("000000003.jpg", [_rect(None, objpos=(40, 50), scale=0.3)],
               fields=("scale", "objpos")),
        # A training image whose annorect is empty (1 x 0).
        _image("000000004.jpg", [], fields=("scale", "objpos")),
    ]
    annolist_array = np.zeros((1, len(annolist)), dtype=[(k, object) for k in annolist[0]])
    for index, entry in enumerate(annolist):
        for key, value in entry.items():
            annolist_array[0, index][key] = value
    single_person = np.empty((len(annolist), 1), dtype=object)
    single_person[0, 0] = np.array([[3.0]])  # column vector of 1-based annorect indices
    single_person[1, 0] = np.array([[1.0]])
    single_person[2, 0] = np.zeros((0, 0))
    single_person[3, 0] = np.zeros((0, 0))
    act = _struct_array([{"cat_name": "sports", "act_name": "running", "act_id": 1.0}] * 4,
                        ("cat_name", "act_name", "act_id"))
    release = {
        "annolist": annolist_array,
        "img_train": np.array([[1.0, 1.0, 0.0, 1.0]]),
        "version": "12",
        "single_person": single_person,
        "act": act.T,
        "video_list": np.array([["abc"]], dtype=object),
    }
    mat_file = tmp_path / "mpii_human_pose_v1_u12_1.mat"
    scipy.io.savemat(mat_file, {"RELEASE": release})
    image_dir = tmp_path / "images"
    image_dir.mkdir()
    for index in range(1, 5):
        cv2.imwrite(str(image_dir / f"{index:09d}.jpg"), np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    return mat_file, image_dir


@pytest.fixture()
def release(tmp_path):
    return _write_release(tmp_path)


def _expected(points, num_joints=16):
    """MATLAB (id, x, y, is_visible) -> (16, 3) 0-based keypoints with COCO-style v."""
    keypoints = np.zeros((num_joints, 3), np.float32)
    for joint, x, y, visible in points:
        flag = visible if not isinstance(visible, np.ndarray) else None
        v = 2.0 if flag is None or float(flag) > 0 else 1.0
        keypoints[joint] = (x - 1, y - 1, v)
    return keypoints


def test_mat_file_has_the_official_layout(release):
    mat_file, _ = release
    loaded = scipy.io.loadmat(mat_file, struct_as_record=False, squeeze_me=True)["RELEASE"]
    assert set(loaded._fieldnames) >= {"annolist", "img_train", "single_person", "act"}
    second = loaded.annolist[1]
    assert not isinstance(second.annorect, np.ndarray)  # 1 x 1 struct squeezed to a struct
    assert not isinstance(second.annorect.annopoints.point, np.ndarray)
    assert loaded.annolist[0].annorect[0].annopoints.point[1].is_visible == "1"
    assert isinstance(loaded.annolist[0].annorect[3].annopoints, np.ndarray)  # empty []


def test_mat_multi_person_subset_keeps_the_group_together(release):
    mat_file, image_dir = release
    records, report = read_mpii_mat(mat_file, image_dir)
    (record,) = records  # only image 1 holds people not listed in single_person
    assert record.image_id == 1
    assert (record.height, record.width) == (HEIGHT, WIDTH)
    # Every annotated person of the image, group and single person, in annorect order.
    np.testing.assert_array_equal(record.annotation_ids, [0, 1, 2])
    assert record.keypoints.shape == (3, MPII.num_joints, 3)
    np.testing.assert_array_equal(record.keypoints[0], _expected(GROUP_PERSON_1))
    expected_second = _expected(GROUP_PERSON_2)
    expected_second[15] = 0  # outside the image: dropped
    np.testing.assert_array_equal(record.keypoints[1], expected_second)
    np.testing.assert_array_equal(record.keypoints[2], _expected(SINGLE_PERSON))
    assert report.issues["keypoint_outside_image"] == 1
    assert report.issues["visibility_missing"] == 1
    assert report.issues["image_not_multi_person"] == 2
    assert report.issues["image_not_train"] == 1
    # Head boxes: 1-based x1, y1, x2, y2 -> 0-based.
    np.testing.assert_array_equal(record.head_boxes[0], [14, 4, 26, 34])
    np.testing.assert_array_equal(record.head_boxes[2], [124, 9, 136, 37])


def test_mat_visibility_mapping(release):
    mat_file, image_dir = release
    (record,), _ = read_mpii_mat(mat_file, image_dir)
    first = record.keypoints[0]
    # is_visible 1 (double) -> 2; '1' (char) -> 2; '0' (char) -> 1; [] -> 2 (counted).
    assert first[0, 2] == 2 and first[9, 2] == 2 and first[8, 2] == 1 and first[7, 2] == 2
    assert record.keypoints[1, 9, 2] == 1  # is_visible 0 (double)
    assert first[1, 2] == 0  # joint never annotated


def test_mat_unannotated_person_is_masked_by_its_scale_square(release):
    mat_file, image_dir = release
    (record,), report = read_mpii_mat(mat_file, image_dir)
    assert report.num_unlabelled == 1 and record.num_unlabelled == 1
    side = 200 * 0.1
    box = np.array([[99 - side / 2, 99 - side / 2, side, side]])
    expected = mask_utils.decode(mask_utils.frPyObjects(box, HEIGHT, WIDTH))[..., 0]
    np.testing.assert_array_equal(record.decode_ignore_mask(), expected)
    (record,), _ = read_mpii_mat(mat_file, image_dir, ignore="crowd")
    assert record.ignore_rle is None


def test_mat_all_subset_and_squeezed_single_structs(release):
    mat_file, image_dir = release
    records, report = read_mpii_mat(mat_file, image_dir, subset="all")
    assert [r.image_id for r in records] == [1, 2]
    single = records[1]
    np.testing.assert_array_equal(single.keypoints, [_expected([(6, 41, 51, "1")])])
    np.testing.assert_array_equal(single.head_boxes, [[29, 19, 49, 39]])
    assert report.issues["image_without_people"] == 1  # image 4: empty annorect
    # 'eval' keeps the training image without people.
    records, _ = read_mpii_mat(mat_file, image_dir, subset="all", split_role="eval")
    assert [r.image_id for r in records] == [1, 2, 4]
    assert records[2].keypoints.shape == (0, 16, 3)


def test_mat_image_name_filter(release):
    mat_file, image_dir = release
    records, _ = read_mpii_mat(mat_file, image_dir, subset="all", image_names=["000000002.jpg"])
    assert [r.image_id for r in records] == [2]


def test_mat_boxes_contain_joints_and_head(release):
    mat_file, image_dir = release
    (record,), _ = read_mpii_mat(mat_file, image_dir)
    for row in range(record.num_people):
        x, y, w, h = record.boxes[row]
        labelled = record.keypoints[row][record.keypoints[row, :, 2] > 0]
        assert np.all(labelled[:, 0] >= x) and np.all(labelled[:, 0] <= x + w)
        assert np.all(labelled[:, 1] >= y) and np.all(labelled[:, 1] <= y + h)
        head = record.head_boxes[row]
        assert head[0] >= x and head[2] <= x + w and head[1] >= y and head[3] <= y + h
        assert record.areas[row] == pytest.approx(w * h)


def test_mat_errors_name_the_file(tmp_path, release):
    mat_file, image_dir = release
    with pytest.raises(FileNotFoundError, match="absent.mat"):
        read_mpii_mat(tmp_path / "absent.mat", image_dir)
    garbage = tmp_path / "garbage.mat"
    garbage.write_bytes(b"MATLAB 5.0 MAT-file" + bytes(200))
    with pytest.raises(ValueError, match="garbage.mat"):
        read_mpii_mat(garbage, image_dir)
    other = tmp_path / "other.mat"
    scipy.io.savemat(other, {"something": np.ones(3)})
    with pytest.raises(ValueError, match=r"other\.mat: no RELEASE"):
        read_mpii_mat(other, image_dir)
    with pytest.raises(FileNotFoundError, match="no_images"):
        read_mpii_mat(mat_file, tmp_path / "no_images")


def test_mat_missing_image_raises_or_is_skipped(release):
    mat_file, image_dir = release
    (image_dir / "000000001.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"000000001\.jpg"):
        read_mpii_mat(mat_file, image_dir)
    records, report = read_mpii_mat(mat_file, image_dir, subset="all", skip_bad_images=True)
    assert [r.image_id for r in records] == [2]
    assert report.issues["image_missing"] == 1


def test_mat_corrupt_image_with_verification(release):
    mat_file, image_dir = release
    (image_dir / "000000002.jpg").write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(ValueError, match=r"000000002\.jpg"):
        read_mpii_mat(mat_file, image_dir, subset="all", verify_images=True)
    records, report = read_mpii_mat(mat_file, image_dir, subset="all", verify_images=True,
                                    skip_bad_images=True)
    assert [r.image_id for r in records] == [1]
    assert report.issues["image_unreadable"] == 1


# --------------------------------------------------------------------------------------------
# JSON conversion.


def test_json_sample(shared_data):
    folder = shared_data / "mmpose_samples/mpii"
    entries = json.loads((folder / "test_mpii.json").read_text())
    records, report = read_mpii_json(folder / "test_mpii.json", folder)
    assert len(records) == len(entries) == 5
    assert not {k for k in report.issues if k != "head_box_estimated"}
    for record, entry in zip(records, entries, strict=True):
        assert record.file_name.endswith(entry["image"])
        assert record.image_id == int(entry["image"].split(".")[0])
        assert (record.height, record.width) == ((480, 854) if entry["image"] == "052475643.jpg"
                                                 else (720, 1280))
        joints = np.asarray(entry["joints"], np.float32)
        labelled = np.asarray(entry["joints_vis"]) > 0
        keypoints = record.keypoints[0]
        np.testing.assert_allclose(keypoints[labelled, :2], joints[labelled] - 1, rtol=1e-6)
        np.testing.assert_array_equal(keypoints[labelled, 2], 2)
        np.testing.assert_array_equal(keypoints[~labelled], 0)
        assert np.all(np.isfinite(record.head_boxes))
    assert report.issues["head_box_estimated"] == 5


def test_json_groups_entries_by_image(tmp_path):
    image_dir = tmp_path / "images"
    image_dir.mkdir()
    cv2.imwrite(str(image_dir / "000000007.jpg"), np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    cv2.imwrite(str(image_dir / "000000008.jpg"), np.zeros((HEIGHT, WIDTH, 3), np.uint8))

    def entry(image, offset, vis=None):
        joints = [[10.0 + offset + k, 20.0 + k] for k in range(16)]
        return {"image": image, "joints": joints, "joints_vis": vis or [1] * 16,
                "center": [50.0 + offset, 60.0], "scale": 0.4}

    entries = [entry("000000007.jpg", 0), entry("000000008.jpg", 5),
               entry("000000007.jpg", 40), entry("000000007.jpg", 80, vis=[0] * 16)]
    path = tmp_path / "mpii.json"
    path.write_text(json.dumps(entries))
    records, report = read_mpii_json(path, image_dir)
    assert [r.image_id for r in records] == [7, 8]
    np.testing.assert_array_equal(records[0].annotation_ids, [0, 2])
    assert records[0].keypoints[1, 0].tolist() == [49.0, 19.0, 2.0]
    # The joint-less entry is an unannotated person, masked around its centre.
    assert report.num_unlabelled == 1
    mask = records[0].decode_ignore_mask()
    assert mask[59, 129] == 1 and mask[59, 20] == 0
    # one_based=False keeps the values.
    records, _ = read_mpii_json(path, image_dir, one_based=False)
    assert records[0].keypoints[1, 0].tolist() == [50.0, 20.0, 2.0]


def test_json_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="none.json"):
        read_mpii_json(tmp_path / "none.json", tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text('[{"image": ')
    with pytest.raises(ValueError, match=r"bad\.json: invalid JSON"):
        read_mpii_json(bad, tmp_path)
    bad.write_text('{"images": []}')
    with pytest.raises(ValueError, match=r"bad\.json: expected a list"):
        read_mpii_json(bad, tmp_path)
    bad.write_text('[{"joints": []}]')
    with pytest.raises(ValueError, match=r"bad\.json: entry 0 has no 'image'"):
        read_mpii_json(bad, tmp_path)


def test_head_box_estimate_on_mpii_example():
    # MPII image 008734041: head rectangle [353, 97, 391, 145], upper neck and head top as the
    # release stores them (via the JSON dump quoted in microsoft/human-pose-estimation.pytorch
    # issue 7).
    box = estimate_head_box(np.array([377.2021, 144.9295]), np.array([366.7979, 97.0705]))
    np.testing.assert_allclose((box[:2] + box[2:]) / 2, [372, 121], atol=1e-3)
    size = np.linalg.norm(box[2:] - box[:2])
    annotated = np.linalg.norm([391 - 353, 145 - 97])
    assert abs(size / annotated - 1) < 0.03


def test_json_person_without_head_joints_gets_nan_head_box(tmp_path):
    image_dir = tmp_path
    cv2.imwrite(str(image_dir / "1.jpg"), np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    vis = [1] * 16
    vis[mpii.HEAD_TOP] = 0
    path = tmp_path / "m.json"
    path.write_text(json.dumps([{"image": "1.jpg", "joints": [[5.0, 6.0]] * 16,
                                 "joints_vis": vis, "center": [5, 6], "scale": 1.0}]))
    (record,), report = read_mpii_json(path, image_dir)
    assert np.all(np.isnan(record.head_boxes))
    assert report.issues["head_box_unavailable"] == 1
