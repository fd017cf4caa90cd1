"""Tests for the PASCAL VOC 2012 instance reader (associative_embedding.data.voc).

A miniature VOCdevkit/VOC2012 is built in tmp_path with real palette PNGs (Pillow, the VOC
colour map) whose indices are known, including the 255 void band.
"""

from __future__ import annotations

import contextlib
import io
import json
import pathlib

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from associative_embedding.data.coco_instances import write_coco_instances
from associative_embedding.data.voc import (
    VOC_CATEGORIES,
    VOC_CLASS_NAMES,
    read_voc_instances,
    read_voc_instances_with_report,
    read_voc_palette_png,
)

HEIGHT, WIDTH = 30, 40
PERSON, CAT, DOG = 15, 8, 12


def _voc_palette() -> list[int]:
    """The PASCAL VOC colour map (bit-interleaved class index), 256 RGB entries."""
    palette = []
    for index in range(256):
        red = green = blue = 0
        value = index
        for bit in range(8):
            red |= ((value >> 0) & 1) << (7 - bit)
            green |= ((value >> 1) & 1) << (7 - bit)
            blue |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        palette += [red, green, blue]
    return palette


def _save_palette_png(path: pathlib.Path, indices: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(indices.astype(np.uint8), mode="P")
    image.putpalette(_voc_palette())
    image.save(path)


def _labels(void_object: bool = True) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    """(object indices, class indices, object masks) of the main test image.

    Objects: 1 and 2 are two touching people (only a void line between them), 3 a cat with a
    few dog pixels (majority cat), 4 an object whose class pixels are all void (skipped; a dog
    with ``void_object=False``). Every object is surrounded by a void band, as in VOC.
    """
    objects = np.zeros((HEIGHT, WIDTH), np.uint8)
    classes = np.zeros((HEIGHT, WIDTH), np.uint8)
    masks = {n: np.zeros((HEIGHT, WIDTH), bool) for n in (1, 2, 3, 4)}
    masks[1][3:15, 3:10] = True
    masks[2][3:15, 11:18] = True
    masks[3][18:28, 20:35] = True
    masks[4][2:8, 30:38] = True
    for mask in masks.values():
        # Void band: one pixel around the object.
        grown = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        objects[grown & ~mask] = 255
        classes[grown & ~mask] = 255
    for index, mask in masks.items():
        objects[mask] = index
    classes[masks[1]] = PERSON
    classes[masks[2]] = PERSON
    classes[masks[3]] = CAT
    classes[20:22, 20:23] = DOG  # 6 dog pixels inside the cat: majority is still cat
    classes[masks[4]] = 255 if void_object else DOG
    return objects, classes, masks


def _make_voc(root: pathlib.Path, names=("2007_000001", "2007_000002"),
              void_object: bool = True) -> pathlib.Path:
    voc_root = root / "VOCdevkit" / "VOC2012"
    objects, classes, _ = _labels(void_object)
    for position, name in enumerate(names):
        if position == 0:
            object_png, class_png = objects, classes
        else:  # a background-only image with a void patch
            object_png = np.zeros((HEIGHT, WIDTH), np.uint8)
            object_png[0:2, 0:2] = 255
            class_png = object_png.copy()
        _save_palette_png(voc_root / "SegmentationObject" / f"{name}.png", object_png)
        _save_palette_png(voc_root / "SegmentationClass" / f"{name}.png", class_png)
        (voc_root / "JPEGImages").mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(voc_root / "JPEGImages" / f"{name}.jpg"),
                           np.full((HEIGHT, WIDTH, 3), 120, np.uint8))
    split_dir = voc_root / "ImageSets" / "Segmentation"
    split_dir.mkdir(parents=True, exist_ok=True)
    (split_dir / "val.txt").write_text("".join(f"{n}\n" for n in names) + "\n")
    return voc_root


def test_palette_png_reads_indices_not_colours(tmp_path):
    objects, classes, _ = _labels()
    path = tmp_path / "labels.png"
    _save_palette_png(path, classes)
    with Image.open(path) as image:
        assert image.mode == "P"
    indices = read_voc_palette_png(path)
    assert indices.dtype == np.uint8 and indices.shape == (HEIGHT, WIDTH)
    np.testing.assert_array_equal(indices, classes)
    assert set(np.unique(indices)) == {0, CAT, DOG, PERSON, 255}
    # OpenCV expands the palette to colours: the reason for Pillow.
    expanded = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert expanded.ndim == 3
    # Greyscale ('L') label images are indices too.
    grey = tmp_path / "grey.png"
    Image.fromarray(objects, mode="L").save(grey)
    np.testing.assert_array_equal(read_voc_palette_png(grey), objects)


def test_palette_png_errors_name_the_file(tmp_path):
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8), mode="RGB").save(rgb)
    with pytest.raises(ValueError, match=r"rgb\.png.*mode 'RGB'"):
        read_voc_palette_png(rgb)
    with pytest.raises(FileNotFoundError, match=r"missing\.png"):
        read_voc_palette_png(tmp_path / "missing.png")
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"garbage\.png"):
        read_voc_palette_png(garbage)


def test_reads_instances_categories_and_void(tmp_path):
    voc_root = _make_voc(tmp_path)
    records, categories, report = read_voc_instances_with_report(voc_root, "val")
    assert categories == VOC_CATEGORIES
    assert categories.names[PERSON - 1] == "person" and len(VOC_CLASS_NAMES) == 20
    assert [r.image_id for r in records] == [0, 1]
    first = records[0]
    assert first.file_name == str((voc_root / "JPEGImages" / "2007_000001.jpg").resolve())
    assert first.source.endswith("SegmentationObject/2007_000001.png")
    assert (first.height, first.width) == (HEIGHT, WIDTH)

    objects, classes, masks = _labels()
    assert [s.annotation_id for s in first.segments] == [1, 2, 3]
    assert first.category_indices.tolist() == [PERSON - 1, PERSON - 1, CAT - 1]
    for segment in first.segments:
        np.testing.assert_array_equal(segment.mask(), masks[segment.annotation_id])
        assert segment.area == masks[segment.annotation_id].sum()
    # Ignore = every 255 pixel plus the skipped object 4.
    expected_ignore = (objects == 255) | (classes == 255) | masks[4]
    np.testing.assert_array_equal(first.ignore_mask(), expected_ignore)
    # The two people touch through the void line only.
    assert not np.any(first.segments[0].mask() & first.segments[1].mask())

    assert records[1].segments == []
    np.testing.assert_array_equal(records[1].ignore_mask()[0:2, 0:2], 1)
    assert records[1].ignore_mask().sum() == 4

    assert report.num_annotations == 4
    assert report.num_instances_kept == 3
    assert report.issues["object_without_class"] == 1
    assert report.examples["object_without_class"] == ["2007_000001:4"]
    assert report.issues["object_class_mixed"] == 1
    assert report.instances_per_category["person"] == 2
    assert report.num_images_without_instances == 1


def test_invalid_object_raises_naming_png_and_object(tmp_path):
    voc_root = _make_voc(tmp_path)
    with pytest.raises(ValueError, match=r"2007_000001\.png: object 4"):
        read_voc_instances(voc_root, "val", skip_invalid=False)
    # A class index that is no VOC class.
    objects, classes, masks = _labels()
    classes[masks[2]] = 77
    _save_palette_png(voc_root / "SegmentationClass" / "2007_000001.png", classes)
    records, _, report = read_voc_instances_with_report(voc_root, "val")
    assert [s.annotation_id for s in records[0].segments] == [1, 3]
    assert report.issues["class_index_invalid"] == 1
    assert records[0].ignore_mask()[masks[2]].all()


def test_category_selection_and_min_area(tmp_path):
    voc_root = _make_voc(tmp_path)
    records, categories = read_voc_instances(voc_root, "val", category_ids=[CAT])
    assert categories.names == ("cat",) and categories.ids == (CAT,)
    assert [(s.annotation_id, s.category_index) for s in records[0].segments] == [(3, 0)]
    with pytest.raises(ValueError, match="not in the file"):
        read_voc_instances(voc_root, "val", category_ids=[21])
    _, _, masks = _labels()
    records, _, report = read_voc_instances_with_report(voc_root, "val", min_area=100)
    assert [s.annotation_id for s in records[0].segments] == [3]  # people are 84 px
    assert records[0].ignore_mask()[masks[1] | masks[2]].all()
    assert report.issues["instance_below_min_area"] == 2


def test_missing_files(tmp_path):
    voc_root = _make_voc(tmp_path, void_object=False)
    (voc_root / "JPEGImages" / "2007_000002.jpg").unlink()
    records, _, report = read_voc_instances_with_report(voc_root, "val")
    assert [r.image_id for r in records] == [0]
    assert report.issues["image_missing"] == 1
    with pytest.raises(FileNotFoundError, match=r"2007_000002\.jpg"):
        read_voc_instances(voc_root, "val", skip_invalid=False)
    with pytest.raises(FileNotFoundError, match=r"Segmentation/train\.txt"):
        read_voc_instances(voc_root, "train")
    with pytest.raises(ValueError, match="plain name"):
        read_voc_instances(voc_root, "../val")


def test_png_size_mismatch_and_image_verification(tmp_path):
    voc_root = _make_voc(tmp_path, void_object=False)
    _save_palette_png(voc_root / "SegmentationClass" / "2007_000002.png",
                      np.zeros((HEIGHT + 1, WIDTH), np.uint8))
    records, _, report = read_voc_instances_with_report(voc_root, "val")
    assert len(records) == 1 and report.issues["png_size_mismatch"] == 1
    with pytest.raises(ValueError, match=r"2007_000002\.png is"):
        read_voc_instances(voc_root, "val", skip_invalid=False)

    voc_root = _make_voc(tmp_path / "second")
    assert cv2.imwrite(str(voc_root / "JPEGImages" / "2007_000002.jpg"),
                       np.zeros((HEIGHT, WIDTH + 4, 3), np.uint8))
    records, _, report = read_voc_instances_with_report(voc_root, "val", verify_images=True)
    assert len(records) == 1 and report.issues["image_size_mismatch"] == 1


def test_records_write_as_coco_instances(tmp_path):
    voc_root = _make_voc(tmp_path)
    records, categories = read_voc_instances(voc_root, "val")
    path = write_coco_instances(tmp_path / "voc_val.json", records, categories,
                                image_dir=voc_root / "JPEGImages")
    with contextlib.redirect_stdout(io.StringIO()):
        api = COCO(str(path))
    annotations = api.loadAnns(api.getAnnIds())
    assert [a["category_id"] for a in annotations] == [PERSON, PERSON, CAT]
    for annotation, segment in zip(annotations, records[0].segments, strict=True):
        np.testing.assert_array_equal(api.annToMask(annotation), segment.mask())
    data = json.loads(path.read_text())
    assert data["images"][0]["file_name"] == "2007_000001.jpg"
