"""Tests for the TFDS builders (associative_embedding.data.tfds): offline builds, read back."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from associative_embedding.data import image_io
from associative_embedding.data.coco import read_coco_keypoints
from associative_embedding.data.mpii_mat import read_mpii_mat
from associative_embedding.data.tfds import (
    CocoKeypoints,
    CocoKeypointsConfig,
    MpiiPose,
    MpiiPoseConfig,
    SyntheticPeople,
    SyntheticPeopleConfig,
    example_to_record,
)
from associative_embedding.data.tfds.mpii_pose import validation_image_names
from tests.data.test_mpii import _write_release


def _examples_by_id(builder, split: str) -> dict[int, dict]:
    return {int(ex["image_id"]): ex for ex in tfds.as_numpy(builder.as_dataset(split=split))}


def _assert_example_matches_record(example, record):
    np.testing.assert_array_equal(example["keypoints"], record.keypoints)
    np.testing.assert_array_equal(example["boxes"], record.boxes)
    np.testing.assert_array_equal(example["areas"], record.areas)
    np.testing.assert_array_equal(example["annotation_ids"], record.annotation_ids)
    np.testing.assert_array_equal(example["ignore_mask"][..., 0], record.decode_ignore_mask())
    np.testing.assert_array_equal(example["image"], image_io.read_image(record.file_name))
    assert example["file_name"].decode() == os.path.basename(record.file_name)


def test_coco_builder_from_manual_dir_layout(shared_data, tmp_path):
    """The default '2017' config on a manual dir laid out like COCO (links to the samples)."""
    manual = tmp_path / "manual"
    (manual / "annotations").mkdir(parents=True)
    mini = shared_data / "coco_mini_train2017"
    val = shared_data / "mmpose_samples/coco"
    os.symlink(mini / "person_keypoints_train2017.json",
               manual / "annotations/person_keypoints_train2017.json")
    os.symlink(mini / "images", manual / "train2017")
    os.symlink(val / "test_coco.json", manual / "annotations/person_keypoints_val2017.json")
    os.symlink(val, manual / "val2017")

    builder = CocoKeypoints(config="2017", data_dir=tmp_path / "data")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual)))
    train_records, _ = read_coco_keypoints(mini / "person_keypoints_train2017.json",
                                           mini / "images", split_role="train")
    val_records, _ = read_coco_keypoints(val / "test_coco.json", val, split_role="eval")
    assert builder.info.splits["train"].num_examples == len(train_records) == 28
    assert builder.info.splits["validation"].num_examples == len(val_records) == 4

    train = _examples_by_id(builder, "train")
    assert set(train) == {r.image_id for r in train_records}
    for record in train_records:
        _assert_example_matches_record(train[record.image_id], record)
    masked = [r for r in train_records if r.ignore_rle is not None]
    assert masked and all(train[r.image_id]["ignore_mask"].any() for r in masked)
    validation = _examples_by_id(builder, "validation")
    for record in val_records:
        _assert_example_matches_record(validation[record.image_id], record)

    # The dataset feeds tf.data: static dtypes and ragged-person shapes.
    spec = builder.as_dataset(split="train").element_spec
    assert spec["keypoints"].shape.as_list() == [None, 17, 3]
    assert spec["keypoints"].dtype == tf.float32
    assert spec["ignore_mask"].shape.as_list() == [None, None, 1]
    assert spec["image"].dtype == tf.uint8


def test_coco_builder_custom_config_crowdpose(shared_data, tmp_path):
    folder = shared_data / "mmpose_samples/crowdpose"
    config = CocoKeypointsConfig(
        name="crowdpose_sample", num_joints=14, ignore="crowd",
        splits={"validation": (os.fspath(folder / "test_crowdpose.json"), os.fspath(folder))},
    )
    builder = CocoKeypoints(config=config, data_dir=tmp_path)
    builder.download_and_prepare()  # absolute paths: no manual dir needed
    examples = _examples_by_id(builder, "validation")
    records, _ = read_coco_keypoints(folder / "test_crowdpose.json", folder, split_role="eval",
                                     ignore="crowd")
    assert set(examples) == {r.image_id for r in records}
    for record in records:
        _assert_example_matches_record(examples[record.image_id], record)
        assert examples[record.image_id]["keypoints"].shape[1:] == (14, 3)
        # ignore='crowd': CrowdPose's unlabelled person is not masked.
        assert not examples[record.image_id]["ignore_mask"].any()


def test_mpii_builder_from_official_mat(tmp_path):
    mat_file, image_dir = _write_release(tmp_path)
    config = MpiiPoseConfig(name="tiny", subset="all", mat_file=os.fspath(mat_file),
                            image_dir=os.fspath(image_dir), num_validation_images=1)
    builder = MpiiPose(config=config, data_dir=tmp_path / "data")
    builder.download_and_prepare()
    records, _ = read_mpii_mat(mat_file, image_dir, subset="all")
    train, validation = _examples_by_id(builder, "train"), _examples_by_id(builder, "validation")
    assert len(train) == len(validation) == 1
    assert set(train) | set(validation) == {r.image_id for r in records}
    for record in records:
        example = {**train, **validation}[record.image_id]
        _assert_example_matches_record(example, record)
        np.testing.assert_array_equal(example["head_boxes"], record.head_boxes)
        round_trip = example_to_record(example)
        np.testing.assert_array_equal(round_trip.decode_ignore_mask(),
                                      record.decode_ignore_mask())
        np.testing.assert_array_equal(round_trip.head_boxes, record.head_boxes)


def test_mpii_builder_from_manual_dir_and_json(shared_data, tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    _write_release(manual)  # writes manual/mpii_human_pose_v1_u12_1.mat and manual/images
    download_config = tfds.download.DownloadConfig(manual_dir=os.fspath(manual))
    # The registered config finds the .mat and images/ in the manual dir; 500 held-out images
    # are more than this file has.
    builder = MpiiPose(config="multi_person", data_dir=tmp_path / "data")
    with pytest.raises(ValueError, match="num_validation_images=500 leaves no training image"):
        builder.download_and_prepare(download_config=download_config)
    config = MpiiPoseConfig(name="small", subset="all", num_validation_images=1)
    builder = MpiiPose(config=config, data_dir=tmp_path / "data")
    builder.download_and_prepare(download_config=download_config)
    assert builder.info.splits["train"].num_examples == 1
    assert builder.info.splits["validation"].num_examples == 1

    folder = shared_data / "mmpose_samples/mpii"
    config = MpiiPoseConfig(
        name="json_sample",
        json_splits={"validation": (os.fspath(folder / "test_mpii.json"), os.fspath(folder))})
    builder = MpiiPose(config=config, data_dir=tmp_path / "data")
    builder.download_and_prepare()
    examples = _examples_by_id(builder, "validation")
    assert len(examples) == 5
    assert all(np.all(np.isfinite(ex["head_boxes"])) for ex in examples.values())


def test_validation_sample_is_seeded_and_disjoint():
    names = [f"{i:09d}.jpg" for i in range(50)]
    first = validation_image_names(names, 10, seed=0)
    assert first == validation_image_names(list(reversed(names)), 10, seed=0)
    assert len(first) == 10 and first <= set(names)
    assert first != validation_image_names(names, 10, seed=1)


def test_synthetic_builder_tiny(tmp_path):
    config = SyntheticPeopleConfig(name="tiny", image_size=128,
                                   splits={"train": ("train", 4, 0), "validation": ("val", 3, 1)})
    builder = SyntheticPeople(config=config, data_dir=tmp_path)
    builder.download_and_prepare()
    assert builder.info.splits["validation"].num_examples == 3
    generated = tmp_path / "downloads" / "synthetic_people_tiny_1.0.0"
    records, _ = read_coco_keypoints(generated / "annotations/person_keypoints_val.json",
                                     generated / "val", split_role="eval")
    examples = _examples_by_id(builder, "validation")
    for record in records:
        _assert_example_matches_record(examples[record.image_id], record)
    assert sum(r.num_people for r in records) > 0
    assert all(ex["image"].shape == (128, 128, 3) for ex in examples.values())
