"""Tests for the synthetic shapes instance dataset (associative_embedding.data.synthetic.shapes)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from associative_embedding.data.coco_instances import read_coco_instances
from associative_embedding.data.synthetic import (
    SHAPES_CATEGORIES,
    ShapesConfig,
    generate_synthetic_shapes,
    image_rng,
    render_shapes_scene,
    shapes_annotation_path,
    shapes_statistics_path,
    touching_pairs,
)

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[2]
NUM_IMAGES = 60
SIZE = 128


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    return root, generate_synthetic_shapes(root, "val", NUM_IMAGES, seed=1, image_size=SIZE)


def _load_coco(path: pathlib.Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def test_layout_and_coco_json(dataset):
    root, written = dataset
    assert written.annotation_file == shapes_annotation_path(root, "val")
    assert written.annotation_file == root / "annotations" / "instances_val.json"
    assert written.statistics_file == shapes_statistics_path(root, "val")
    assert written.image_dir == root / "val"
    api = _load_coco(written.annotation_file)
    assert [c["name"] for c in api.loadCats(api.getCatIds())] == ["disc", "square", "triangle"]
    assert sorted(api.getImgIds()) == list(range(1, NUM_IMAGES + 1))
    annotations = api.loadAnns(api.getAnnIds())
    assert [a["id"] for a in annotations] == list(range(1, len(annotations) + 1))
    assert len(annotations) == written.statistics.num_instances
    for image in api.loadImgs(api.getImgIds()):
        assert (image["height"], image["width"]) == (SIZE, SIZE)
        assert image["file_name"] == f"{image['id']:012d}.png"
        pixels = cv2.imread(str(root / "val" / image["file_name"]))
        assert pixels.shape == (SIZE, SIZE, 3)
        count = len(api.getAnnIds(imgIds=[image["id"]]))
        assert 2 <= count <= 6
    for annotation in annotations:
        mask = api.annToMask(annotation)
        assert annotation["iscrowd"] == 0
        assert annotation["area"] == mask.sum() >= 0.004 * SIZE * SIZE
    statistics = json.loads(written.statistics_file.read_text())
    assert statistics == json.loads(json.dumps(dataclasses.asdict(written.statistics)))


def test_masks_match_the_drawn_scene_and_touching_pairs_exist(dataset):
    root, written = dataset
    records, categories = read_coco_instances(written.annotation_file, root / "val")
    assert categories == SHAPES_CATEGORIES
    config = ShapesConfig()
    total_same = 0
    images_with_pair = 0
    for index, record in enumerate(records):
        scene = render_shapes_scene(image_rng(1, "val", index), SIZE)
        # The PNG is the rendered image and the annotations are its visible masks, in order.
        pixels = cv2.imread(record.file_name)[..., ::-1]
        np.testing.assert_array_equal(pixels, scene.image)
        masks = record.masks().astype(bool)
        np.testing.assert_array_equal(masks, np.stack([i.mask for i in scene.instances]))
        assert record.category_indices.tolist() == [i.category_index for i in scene.instances]
        # Visible masks never overlap, and each is painted in its instance's colour (shading
        # of +-12 % and noise of sigma 3 around it).
        assert masks.sum(axis=0).max() <= 1
        for mask, instance in zip(masks, scene.instances, strict=True):
            deviation = np.abs(pixels[mask].astype(float) - instance.colour)
            assert np.all(deviation <= config.shading_strength * instance.colour + 6 * 3 + 1)
            assert mask.sum() >= config.min_visible_fraction * instance.full_area
        pairs = touching_pairs(masks, record.category_indices)
        total_same += len(pairs)
        images_with_pair += bool(pairs)
        for first, second in pairs:
            assert not np.any(masks[first] & masks[second])  # shared boundary, no overlap
    statistics = written.statistics
    assert total_same == statistics.touching_same_category_pairs > 0
    assert images_with_pair == statistics.images_with_touching_same_category_pair
    assert images_with_pair / NUM_IMAGES >= 0.3
    assert statistics.num_images == NUM_IMAGES
    assert sum(statistics.instances_per_image.values()) == NUM_IMAGES
    assert all(n > 0 for n in statistics.instances_per_category.values())
    assert statistics.occluded_instances > 0
    assert statistics.placements["touch"] > 0 and statistics.placements["occlude"] > 0


def test_noise_free_scene_regions_are_exactly_the_masks():
    config = ShapesConfig(noise_std=0.0, shading_strength=0.0, background_blob_amplitude=0.0,
                          background_gradient=0.0)
    for index in range(10):
        scene = render_shapes_scene(image_rng(5, "test", index), 96, config)
        background = np.ones((96, 96), bool)
        for instance in scene.instances:
            background &= ~instance.mask
            colour = np.round(instance.colour).astype(np.uint8)
            matches = np.all(scene.image == colour, axis=-1)
            # Exactly its visible pixels have its colour (other shapes and the background
            # differ by >= the contrast thresholds wherever they could be confused).
            np.testing.assert_array_equal(matches & instance.full_mask, instance.mask)
        flat = scene.image[background].reshape(-1, 3)
        assert len(np.unique(flat, axis=0)) == 1  # a flat background, untouched elsewhere


def test_touching_placements_share_a_boundary():
    config = ShapesConfig(touch_probability=1.0, occlusion_probability=0.0,
                          instance_count_range=(2, 2))
    touched = 0
    for index in range(20):
        scene = render_shapes_scene(image_rng(3, "touch", index), SIZE, config)
        if len(scene.instances) < 2 or scene.instances[1].placement != "touch":
            continue
        first, second = scene.instances
        assert first.category_index == second.category_index
        assert touching_pairs([first.mask, second.mask], [0, 0]) == [(0, 1)]
        touched += 1
    assert touched >= 15


def test_deterministic_for_a_seed(tmp_path, dataset):
    _, written = dataset
    again = generate_synthetic_shapes(tmp_path / "again", "val", 5, seed=1, image_size=SIZE)
    first = json.loads(written.annotation_file.read_text())
    second = json.loads(again.annotation_file.read_text())
    count = sum(1 for a in first["annotations"] if a["image_id"] <= 5)
    assert second["annotations"] == first["annotations"][:count]
    for image in second["images"]:
        assert (again.image_dir / image["file_name"]).read_bytes() == (
            written.image_dir / image["file_name"]).read_bytes()
    other = generate_synthetic_shapes(tmp_path / "other", "val", 5, seed=2, image_size=SIZE)
    assert json.loads(other.annotation_file.read_text())["annotations"] != second["annotations"]
    train = generate_synthetic_shapes(tmp_path / "again", "train", 5, seed=1, image_size=SIZE)
    assert json.loads(train.annotation_file.read_text())["annotations"] != second["annotations"]


def _files(root: pathlib.Path) -> dict[str, bytes]:
    """Every file under root by relative path, with its bytes."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*")) if path.is_file()
    }


def test_worker_processes_write_byte_identical_files(tmp_path):
    # One root for both runs: the annotation JSON holds the image folder's path.
    serial = generate_synthetic_shapes(tmp_path, "val", 12, seed=1, image_size=SIZE, workers=1)
    serial_files = _files(tmp_path)
    parallel = generate_synthetic_shapes(tmp_path, "val", 12, seed=1, image_size=SIZE, workers=2)
    parallel_files = _files(tmp_path)
    statistics = parallel.statistics_file.relative_to(tmp_path).as_posix()
    assert len(serial_files) == 14  # 12 images, the annotations and the statistics
    assert serial_files.keys() == parallel_files.keys()
    for name, data in serial_files.items():
        if name != statistics:
            assert parallel_files[name] == data, name
    # The statistics agree but for the time taken.
    assert dataclasses.replace(serial.statistics, seconds=0) == dataclasses.replace(
        parallel.statistics, seconds=0)


def test_touching_pairs_helper():
    masks = np.zeros((4, 6, 6), bool)
    masks[0, 0:2, 0:2] = True
    masks[1, 0:2, 2:4] = True  # 4-adjacent to 0
    masks[2, 2:4, 4:6] = True  # only diagonal to 1: not touching
    masks[3, 4:6, 0:2] = True
    assert touching_pairs(masks, [0, 0, 0, 0]) == [(0, 1)]
    assert touching_pairs(masks, [0, 1, 0, 0]) == []


def test_config_validation_and_arguments(tmp_path):
    with pytest.raises(ValueError, match="instance_count_range"):
        ShapesConfig(instance_count_range=(3, 2))
    with pytest.raises(ValueError, match="touch_probability"):
        ShapesConfig(touch_probability=0.7, occlusion_probability=0.5)
    with pytest.raises(ValueError, match="size_range"):
        ShapesConfig(size_range=(0.5, 0.2))
    with pytest.raises(ValueError, match="num_images"):
        generate_synthetic_shapes(tmp_path, "val", 0, seed=0)
    with pytest.raises(ValueError, match="plain name"):
        generate_synthetic_shapes(tmp_path, "a/b", 1, seed=0)


def test_make_synthetic_tool_writes_shapes(tmp_path):
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "tools" / "make_synthetic.py"), "--kind=shapes",
         f"--output_dir={tmp_path}", "--split=val", "--num_images=3", "--seed=4"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "touching same-category pairs" in result.stdout
    data = json.loads(shapes_annotation_path(tmp_path, "val").read_text())
    assert len(data["images"]) == 3 and data["info"]["image_size"] == 128
    assert (tmp_path / "val" / "000000000003.png").is_file()
