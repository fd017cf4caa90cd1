"""Tests for the COCO instances reader/writer (associative_embedding.data.coco_instances).

Hand-built files in tmp_path cover every segmentation form (polygons, compressed and
uncompressed RLE), crowds, and each invalid case; masks are compared with pycocotools' own
`annToMask`. The real COCO-mini instance and person-keypoint files from ../shared/data are read
and checked the same way when present.
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
from pycocotools.cocoeval import COCOeval

from associative_embedding.data import image_io
from associative_embedding.data.coco_instances import (
    read_coco_instances,
    read_coco_instances_with_report,
    rle_is_valid,
    write_coco_instances,
)
from associative_embedding.data.instances import InstanceCategories

HEIGHT, WIDTH = 40, 50


def _load_coco(path: pathlib.Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        return COCO(str(path))


def _box_mask(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed (list) RLE: column-major run lengths starting with zeros."""
    flat = mask.ravel(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0] == 1:
        runs = [0, *runs]
    return {"size": [HEIGHT, WIDTH], "counts": runs}


def _compressed_rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"size": [HEIGHT, WIDTH], "counts": rle["counts"].decode("ascii")}


def _write_images(image_dir: pathlib.Path, names: list[str]) -> None:
    for name in names:
        (image_dir / name).parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(image_dir / name), np.full((HEIGHT, WIDTH, 3), 90, np.uint8))


# Valid annotations of image 1 (ids 10-14) and their expected masks.
POLYGON = [[5.0, 5.0, 20.0, 5.0, 20.0, 18.0, 5.0, 18.0], [30.0, 30.0, 36.0, 30.0, 33.0, 36.0]]
RLE_MASK = _box_mask(25, 2, 45, 12)
UNCOMPRESSED_MASK = _box_mask(2, 22, 12, 38)
CROWD_MASK = _box_mask(38, 20, 50, 40)
CROWD_POLYGON_MASK_BOX = (14, 24, 22, 30)


def _dataset(extra_annotations: list[dict] | None = None) -> dict:
    annotations = [
        {"id": 10, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": POLYGON,
         "bbox": [5, 5, 15, 13], "area": 1.0},
        {"id": 11, "image_id": 1, "category_id": 3, "iscrowd": 0,
         "segmentation": _compressed_rle(RLE_MASK), "bbox": [0, 0, 1, 1], "area": 1.0},
        {"id": 12, "image_id": 1, "category_id": 1, "iscrowd": 0,
         "segmentation": _uncompressed_rle(UNCOMPRESSED_MASK), "bbox": [0, 0, 1, 1],
         "area": 1.0},
        {"id": 13, "image_id": 1, "category_id": 3, "iscrowd": 1,
         "segmentation": _uncompressed_rle(CROWD_MASK), "bbox": [38, 20, 12, 20], "area": 1.0},
        {"id": 14, "image_id": 1, "category_id": 1, "iscrowd": 1,
         "segmentation": [[14.0, 24.0, 22.0, 24.0, 22.0, 30.0, 14.0, 30.0]],
         "bbox": [14, 24, 8, 6], "area": 1.0},
        {"id": 20, "image_id": 3, "category_id": 1, "iscrowd": 0,
         "segmentation": [[1.0, 1.0, 9.0, 1.0, 9.0, 9.0]], "bbox": [1, 1, 8, 8], "area": 1.0},
    ]
    return {
        "images": [
            {"id": 1, "file_name": "a.png", "height": HEIGHT, "width": WIDTH},
            {"id": 2, "file_name": "b.png", "height": HEIGHT, "width": WIDTH},  # a negative
            {"id": 3, "file_name": "sub/c.png", "height": HEIGHT, "width": WIDTH},
        ],
        "annotations": annotations + list(extra_annotations or []),
        # Listed out of id order: channels follow the ids.
        "categories": [{"id": 3, "name": "cat"}, {"id": 1, "name": "dog"},
                       {"id": 7, "name": "unused"}],
    }


# Invalid annotations (all on image 1): (annotation, the issue it is counted under).
INVALID = {
    "empty_segmentation": ({"id": 30, "image_id": 1, "category_id": 1, "iscrowd": 0,
                            "segmentation": [], "bbox": [1, 1, 5, 5]},
                           "segmentation_missing"),
    "no_segmentation": ({"id": 31, "image_id": 1, "category_id": 1, "iscrowd": 0,
                         "bbox": [1, 1, 5, 5]}, "segmentation_missing"),
    "short_polygon": ({"id": 32, "image_id": 1, "category_id": 3, "iscrowd": 0,
                       "segmentation": [[1.0, 1.0, 5.0, 5.0]]}, "polygon_too_short"),
    "unknown_category": ({"id": 33, "image_id": 1, "category_id": 99, "iscrowd": 0,
                          "segmentation": POLYGON}, "category_unknown"),
    "corrupt_rle": ({"id": 34, "image_id": 1, "category_id": 3, "iscrowd": 0,
                     "segmentation": {"size": [HEIGHT, WIDTH], "counts": [5, 10, 99999]}},
                    "rle_invalid"),
    "rle_size_mismatch": ({"id": 35, "image_id": 1, "category_id": 3, "iscrowd": 0,
                           "segmentation": {"size": [HEIGHT + 1, WIDTH],
                                            "counts": [HEIGHT * WIDTH + WIDTH]}},
                          "rle_size_mismatch"),
    "outside_image": ({"id": 36, "image_id": 1, "category_id": 1, "iscrowd": 0,
                       "segmentation": [[100.0, 100.0, 120.0, 100.0, 120.0, 120.0]]},
                      "segmentation_empty"),
    "unknown_image": ({"id": 37, "image_id": 555, "category_id": 1, "iscrowd": 0,
                       "segmentation": POLYGON}, "annotation_unknown_image"),
}


@pytest.fixture
def coco_files(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    image_dir = tmp_path / "images"
    _write_images(image_dir, ["a.png", "b.png", "sub/c.png"])
    annotation_file = tmp_path / "instances.json"
    annotation_file.write_text(json.dumps(_dataset([a for a, _ in INVALID.values()])))
    return annotation_file, image_dir


def test_reads_polygons_rles_and_crowds_like_pycocotools(coco_files):
    annotation_file, image_dir = coco_files
    records, categories, report = read_coco_instances_with_report(annotation_file, image_dir)
    # All file categories, sorted by id, in channel order.
    assert categories == InstanceCategories(names=("dog", "cat", "unused"), ids=(1, 3, 7))
    assert [r.image_id for r in records] == [1, 2, 3]
    assert records[0].file_name == str((image_dir / "a.png").resolve())
    assert (records[0].height, records[0].width) == (HEIGHT, WIDTH)
    assert records[0].source == str(annotation_file)

    api = _load_coco(annotation_file)
    first = records[0]
    assert [s.annotation_id for s in first.segments] == [10, 11, 12]
    assert first.category_indices.tolist() == [0, 1, 0]
    for segment in first.segments:
        expected = api.annToMask(api.anns[segment.annotation_id])
        np.testing.assert_array_equal(segment.mask(), expected)
        assert isinstance(segment.rle["counts"], str)
        assert segment.area == float(expected.sum())  # from the mask, not the file's 'area'
        rows, columns = np.nonzero(expected)
        np.testing.assert_allclose(
            segment.bbox, [columns.min(), rows.min(), np.ptp(columns) + 1, np.ptp(rows) + 1]
        )
    np.testing.assert_array_equal(first.segments[1].mask(), RLE_MASK)
    np.testing.assert_array_equal(first.segments[2].mask(), UNCOMPRESSED_MASK)

    # Crowds (an RLE and a polygon, of both categories) are merged into the ignore mask.
    crowd_union = api.annToMask(api.anns[13]) | api.annToMask(api.anns[14])
    np.testing.assert_array_equal(first.ignore_mask(), crowd_union)
    assert first.ignore_mask()[CROWD_MASK > 0].all()
    # The negative image is kept, without instances or ignore region.
    assert records[1].segments == [] and records[1].ignore_rle is None
    assert [s.annotation_id for s in records[2].segments] == [20]

    assert report.num_crowd == 2
    assert report.num_instances_kept == 4
    assert report.num_images_without_instances == 1
    assert report.instances_per_category == {"dog": 3, "cat": 1, "unused": 0}
    for name, (annotation, issue) in INVALID.items():
        assert report.issues[issue] >= 1, name
        assert annotation["id"] in report.examples[issue], name
    assert report.issues["instance_skipped_invalid_segmentation"] == 5  # 30, 31, 32, 34, 35
    assert "image_missing" not in report.issues


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_annotation_raises_naming_id_and_file(tmp_path, case):
    annotation, _ = INVALID[case]
    _write_images(tmp_path / "images", ["a.png", "b.png", "sub/c.png"])
    annotation_file = tmp_path / f"{case}.json"
    annotation_file.write_text(json.dumps(_dataset([annotation])))
    with pytest.raises(ValueError) as error:
        read_coco_instances(annotation_file, tmp_path / "images", skip_invalid=False)
    assert f"annotation {annotation['id']}" in str(error.value)
    assert str(annotation_file) in str(error.value)
    # Skipping reads the same file, without that annotation.
    records, _ = read_coco_instances(annotation_file, tmp_path / "images")
    ids = {s.annotation_id for r in records for s in r.segments}
    assert ids == {10, 11, 12, 20}


def test_partly_valid_polygon_list_keeps_the_valid_polygons(tmp_path):
    _write_images(tmp_path / "images", ["a.png", "b.png", "sub/c.png"])
    annotation = {"id": 40, "image_id": 2, "category_id": 1, "iscrowd": 0,
                  "segmentation": [POLYGON[0], [1.0, 2.0]]}
    annotation_file = tmp_path / "partly.json"
    annotation_file.write_text(json.dumps(_dataset([annotation])))
    records, _, report = read_coco_instances_with_report(annotation_file, tmp_path / "images")
    (segment,) = records[1].segments
    expected = mask_utils.decode(mask_utils.merge(
        mask_utils.frPyObjects([POLYGON[0]], HEIGHT, WIDTH)))
    np.testing.assert_array_equal(segment.mask(), expected)
    assert report.issues["polygon_too_short"] == 1
    with pytest.raises(ValueError, match="annotation 40"):
        read_coco_instances(annotation_file, tmp_path / "images", skip_invalid=False)


def test_category_selection_and_min_area(coco_files):
    annotation_file, image_dir = coco_files
    records, categories, report = read_coco_instances_with_report(
        annotation_file, image_dir, category_ids=[3]
    )
    assert categories == InstanceCategories(names=("cat",), ids=(3,))
    assert [s.annotation_id for s in records[0].segments] == [11]
    assert records[0].segments[0].category_index == 0
    # Only the cat crowd is ignored; the dog crowd is background now.
    np.testing.assert_array_equal(records[0].ignore_mask(), CROWD_MASK)
    # 10, 12, 14, 20 and the invalid dogs 30, 31, 36; dog 37 names no image: the shared
    # annotation check skips it before categories are selected.
    assert report.num_other_category == 7
    assert records[2].segments == []

    # Channel order follows the requested order.
    _, categories = read_coco_instances(annotation_file, image_dir, category_ids=[3, 1])
    assert categories.ids == (3, 1)
    with pytest.raises(ValueError, match=r"category ids \[42\] are not in the file"):
        read_coco_instances(annotation_file, image_dir, category_ids=[42])

    # min_area: the triangle of annotation 20 (32 px) becomes an ignore region.
    records, _, report = read_coco_instances_with_report(annotation_file, image_dir, min_area=40)
    assert records[2].segments == []
    np.testing.assert_array_equal(
        records[2].ignore_mask(),
        mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(
            _dataset()["annotations"][-1]["segmentation"], HEIGHT, WIDTH))),
    )
    assert report.issues["instance_below_min_area"] == 1


def test_missing_and_broken_images(tmp_path):
    image_dir = tmp_path / "images"
    _write_images(image_dir, ["a.png", "sub/c.png"])  # b.png missing
    annotation_file = tmp_path / "instances.json"
    annotation_file.write_text(json.dumps(_dataset()))
    records, _, report = read_coco_instances_with_report(annotation_file, image_dir)
    assert [r.image_id for r in records] == [1, 3]
    assert report.issues["image_missing"] == 1
    with pytest.raises(FileNotFoundError, match=r"b\.png"):
        read_coco_instances(annotation_file, image_dir, skip_invalid=False)

    # verify_images: a truncated file and one of another size than annotated.
    (image_dir / "b.png").write_bytes((image_dir / "a.png").read_bytes()[:40])
    cv2.imwrite(str(image_dir / "sub/c.png"), np.zeros((HEIGHT, WIDTH + 2, 3), np.uint8))
    records, _, report = read_coco_instances_with_report(
        annotation_file, image_dir, verify_images=True
    )
    assert [r.image_id for r in records] == [1]
    assert report.issues["image_unreadable"] == 1 and report.issues["image_size_mismatch"] == 1
    with pytest.raises(image_io.ImageDecodeError, match=r"b\.png"):
        read_coco_instances(annotation_file, image_dir, verify_images=True, skip_invalid=False)


def test_file_level_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.json"):
        read_coco_instances(tmp_path / "nowhere.json", tmp_path)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ValueError, match="broken.json"):
        read_coco_instances(broken, tmp_path)
    not_coco = tmp_path / "not_coco.json"
    not_coco.write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match="missing keys"):
        read_coco_instances(not_coco, tmp_path)
    duplicate = tmp_path / "duplicate.json"
    data = _dataset()
    data["categories"].append({"id": 3, "name": "again"})
    duplicate.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="duplicate category id 3"):
        read_coco_instances(duplicate, tmp_path)
    with pytest.raises(FileNotFoundError, match="image directory"):
        read_coco_instances(duplicate, tmp_path / "no_images")


def test_rle_is_valid():
    mask = _box_mask(3, 4, 10, 20)
    assert rle_is_valid(_compressed_rle(mask), HEIGHT, WIDTH)
    assert rle_is_valid(_uncompressed_rle(mask), HEIGHT, WIDTH)
    encoded = mask_utils.encode(np.asfortranarray(mask))
    assert rle_is_valid(encoded, HEIGHT, WIDTH)  # bytes counts
    assert not rle_is_valid(_compressed_rle(mask), HEIGHT, WIDTH + 1)
    assert not rle_is_valid({"size": [HEIGHT, WIDTH], "counts": [HEIGHT * WIDTH - 1]}, HEIGHT,
                            WIDTH)
    assert not rle_is_valid({"size": [HEIGHT, WIDTH], "counts": [-1, HEIGHT * WIDTH + 1]},
                            HEIGHT, WIDTH)
    assert not rle_is_valid({"size": [HEIGHT, WIDTH], "counts": "\x7f\x7f"}, HEIGHT, WIDTH)
    assert not rle_is_valid({"size": [HEIGHT, WIDTH], "counts": "0`"}, HEIGHT, WIDTH)
    assert not rle_is_valid({"size": [HEIGHT, WIDTH], "counts": [1.5, HEIGHT * WIDTH - 1.5]},
                            HEIGHT, WIDTH)
    assert not rle_is_valid([1, 2], HEIGHT, WIDTH)


def test_write_round_trip_and_coco_evaluation(coco_files, tmp_path):
    annotation_file, image_dir = coco_files
    records, categories = read_coco_instances(annotation_file, image_dir)
    out = write_coco_instances(tmp_path / "out" / "gt.json", records, categories,
                               image_dir=image_dir, ignore_as_crowd=True, info={"note": "x"})
    written = json.loads(out.read_text())
    assert [i["file_name"] for i in written["images"]] == ["a.png", "b.png", "sub/c.png"]
    assert written["categories"] == [{"id": 1, "name": "dog"}, {"id": 3, "name": "cat"},
                                     {"id": 7, "name": "unused"}]
    instances = [a for a in written["annotations"] if not a["iscrowd"]]
    assert [a["id"] for a in instances] == [10, 11, 12, 20]  # unique positive ids kept
    crowds = [a for a in written["annotations"] if a["iscrowd"]]
    assert len(crowds) == 3 and min(a["id"] for a in crowds) == 21  # one per category

    again, categories_again = read_coco_instances(out, image_dir)
    assert categories_again == categories
    for original, reread in zip(records, again, strict=True):
        assert [s.annotation_id for s in reread.segments] == [
            s.annotation_id for s in original.segments]
        np.testing.assert_array_equal(reread.masks(), original.masks())
        np.testing.assert_array_equal(reread.ignore_mask(), original.ignore_mask())

    # The ground truth as detections scores AP 1 with pycocotools' segm evaluation.
    ground_truth = _load_coco(out)
    results = [{"image_id": a["image_id"], "category_id": a["category_id"],
                "segmentation": a["segmentation"], "score": 1.0} for a in instances]
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(ground_truth, ground_truth.loadRes(results), "segm")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(1.0)

    # Non-unique ids (VOC-style object indices) are renumbered; basenames without image_dir.
    for record in records:
        for segment in record.segments:
            segment.annotation_id = 1
    written = json.loads(write_coco_instances(tmp_path / "renumbered.json", records,
                                              categories).read_text())
    assert [a["id"] for a in written["annotations"]] == [1, 2, 3, 4]
    assert written["images"][2]["file_name"] == "c.png"


# --------------------------------------------------------------------------------------------
# Real data.


@pytest.mark.parametrize("file_name", ["instances_train2017.json",
                                       "person_keypoints_train2017.json"])
def test_real_coco_mini(shared_data, file_name):
    folder = shared_data / "coco_mini_train2017"
    annotation_file = folder / file_name
    if not annotation_file.is_file():
        pytest.skip(f"{annotation_file} is absent")
    records, categories, report = read_coco_instances_with_report(
        annotation_file, folder / "images"
    )
    api = _load_coco(annotation_file)
    assert categories.ids == tuple(sorted(api.getCatIds()))
    present = {p.name for p in (folder / "images").iterdir()}
    listed = {api.imgs[i]["file_name"] for i in api.getImgIds()}
    assert len(records) == len(present & listed)
    assert report.issues["image_missing"] == len(listed - present)
    num_crowd = 0
    for record in records:
        annotations = api.loadAnns(api.getAnnIds(imgIds=[record.image_id]))
        usable = [a for a in annotations if not a["iscrowd"]]
        crowds = [a for a in annotations if a["iscrowd"]]
        num_crowd += len(crowds)
        assert [s.annotation_id for s in record.segments] == [a["id"] for a in usable]
        for segment, annotation in zip(record.segments, usable, strict=True):
            np.testing.assert_array_equal(segment.mask(), api.annToMask(annotation))
            assert categories.ids[segment.category_index] == annotation["category_id"]
        expected_ignore = np.zeros((record.height, record.width), np.uint8)
        for annotation in crowds:
            expected_ignore |= api.annToMask(annotation)
        np.testing.assert_array_equal(record.ignore_mask(), expected_ignore)
    assert num_crowd > 0  # the sample has crowd RLEs
