"""Tests of the trainer's data resolution (tasks/pose/inputs.py)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from scipy import ndimage

from associative_embedding.codec import map_from_image
from associative_embedding.core import transforms
from associative_embedding.core.keypoint_info import get_keypoint_info
from associative_embedding.tasks.pose import inputs
from associative_embedding.tasks.pose.config import base_config

COCO_MINI = "coco_mini_train2017"


def coco_config(folder, **overrides):
    config = base_config()
    config.dataset.train_annotations = str(folder / "person_keypoints_train2017.json")
    config.dataset.train_images = str(folder / "images")
    config.dataset.update(overrides)
    return config


def test_validation_defaults_to_the_training_split(shared_data, tmp_path, caplog):
    folder = shared_data / COCO_MINI
    config = coco_config(folder)
    data = inputs.prepare_data(config, str(tmp_path))
    assert data.val_split.annotation_file == config.dataset.train_annotations
    # Eval mode keeps images without people; training keeps the 28 with usable people.
    assert len(data.train_records) == 28 and len(data.val_records) == 36
    assert {r.image_id for r in data.train_records} <= {r.image_id for r in data.val_records}
    assert "validating on the training split" in caplog.text


def test_an_explicit_validation_split_is_kept(shared_data):
    folder = shared_data / "mmpose_samples" / "coco"
    config = coco_config(
        shared_data / COCO_MINI,
        val_annotations=str(folder / "test_coco.json"),
        val_images=str(folder),
    )
    paths = inputs.resolve_split_paths(config.dataset)
    assert paths["val_annotations"] == str(folder / "test_coco.json")
    assert paths["train_annotations"].endswith("person_keypoints_train2017.json")


def test_missing_paths_are_named(tmp_path):
    config = base_config()
    with pytest.raises(ValueError, match="train_annotations.*train_images"):
        inputs.resolve_split_paths(config.dataset)
    # Only one of the two val fields: an error, not a silent default.
    (tmp_path / "ann.json").write_text("{}")
    config.dataset.update(
        train_annotations=str(tmp_path / "ann.json"), train_images=str(tmp_path),
        val_images=str(tmp_path),
    )
    with pytest.raises(ValueError, match="--config.dataset.val_annotations"):
        inputs.resolve_split_paths(config.dataset)
    config.dataset.update(val_images="", train_images=str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="config.dataset.train_images: .*absent"):
        inputs.resolve_split_paths(config.dataset)


def test_targets_of_augmented_photos_land_on_the_annotated_joints(shared_data, tmp_path):
    """The training pipeline on real COCO photos (reader, augmentation with flip, encoder):
    every heatmap peak maps back to an annotated joint of its type, and every annotated joint
    inside the crop has its peak, in the swapped channel when the example is flipped."""
    config = importlib.import_module("experiments.coco_overfit").get_config()
    config.dataset.update(
        train_annotations=str(shared_data / COCO_MINI / "person_keypoints_train2017.json"),
        train_images=str(shared_data / COCO_MINI / "images"),
    )
    # The official ranges, whatever the experiment narrows, to exercise the whole affine.
    # Sigma 1 at 256 input, so that a joint's left/right partner channel is low at its pixel.
    config.input.update(
        max_rotation_degrees=30.0, scale_range=(0.75, 1.25), max_translation=0.2,
        flip_probability=0.5,
    )
    config.codec.update(sigma=1.0, input_size=256)
    config.train.global_batch_size = 8
    data = inputs.prepare_data(config, str(tmp_path))
    records = {record.image_id: record for record in data.train_records}
    keypoint_info = get_keypoint_info("coco")
    flip_index = np.asarray(keypoint_info.flip_index)
    mirrored = flip_index != np.arange(keypoint_info.num_joints)
    stride, size = config.codec.output_stride, config.codec.input_size
    dataset = inputs.train_dataset(config, data, keypoint_info, seed=5, include_metadata=True)

    seen_flips, own, swapped, peaks = set(), [], [], 0
    for batch in dataset.take(4):
        for index in range(config.train.global_batch_size):
            heatmaps = batch["heatmaps"][index].numpy()
            input_from_image = batch["input_from_image"][index].numpy()
            flipped = bool(np.linalg.det(input_from_image[:2, :2]) < 0)
            seen_flips.add(flipped)
            # Channel c of a flipped example holds joint flip_index[c] of the annotation.
            channel_joint = flip_index if flipped else np.arange(keypoint_info.num_joints)
            record = records[int(batch["image_id"][index])]
            labelled = record.keypoints[..., 2] > 0
            map_from = map_from_image(input_from_image, stride)
            # Image pixels per map pixel (the affine is a rotation and a uniform zoom).
            map_pixel = 1.0 / np.sqrt(abs(np.linalg.det(map_from[:2, :2])))

            # Peaks -> image: each lands within one map pixel of an annotated joint of its type.
            local_max = ndimage.maximum_filter(heatmaps, size=(3, 3, 1)) == heatmaps
            rows, columns, channels = np.nonzero(local_max & (heatmaps > 0.75))
            image_xy = transforms.transform_points(
                np.stack([columns, rows], axis=1).astype(np.float64), transforms.invert(map_from)
            )
            for xy, channel in zip(image_xy, channels, strict=True):
                joint = channel_joint[channel]
                annotated = record.keypoints[labelled[:, joint], joint, :2]
                distance = np.linalg.norm(annotated - xy, axis=1).min()
                assert distance <= map_pixel, (record.image_id, flipped, joint, distance)
                peaks += 1

            # Annotated joints -> maps: a peak at their pixel in their channel.
            map_xy = transforms.transform_points(record.keypoints[..., :2], map_from)
            input_xy = transforms.transform_points(record.keypoints[..., :2], input_from_image)
            inside = labelled & np.all((input_xy >= -0.5) & (input_xy < size - 0.5), axis=-1)
            for person, joint in zip(*np.nonzero(inside), strict=True):
                column, row = np.floor(map_xy[person, joint] + 0.5).astype(int)
                channel = int(np.flatnonzero(channel_joint == joint)[0])
                # Sub-pixel Gaussians (sigma 1): >= exp(-0.25) at the nearest pixel.
                assert heatmaps[row, column, channel] >= 0.77, (record.image_id, flipped, joint)
                if mirrored[joint]:
                    own.append(heatmaps[row, column, channel])
                    swapped.append(heatmaps[row, column, flip_index[channel]])
    assert seen_flips == {False, True}
    assert peaks > 100
    # Left and right are told apart: the other side's channel is low at a joint's pixel.
    assert np.mean(own) > 0.9 and np.mean(swapped) < 0.2
