"""Tests of the trainer's data resolution (training/inputs.py)."""

from __future__ import annotations

import pytest

from associative_embedding.training import inputs
from associative_embedding.training.config import base_config

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
