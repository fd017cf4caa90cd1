"""Tests of the tf.data pipelines and TFRecord shards (data/pipeline.py, data/tfrecord.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tensorflow as tf
from pycocotools import mask as mask_utils

from associative_embedding.codec.encode import KeypointEncoder
from associative_embedding.core import transforms
from associative_embedding.core.keypoint_info import COCO
from associative_embedding.core.record import PoseRecord
from associative_embedding.data import tfrecord
from associative_embedding.data.pipeline import build_dataset, build_eval_dataset

INPUT_SIZE = 128  # small inputs keep the tests fast; the code path is the same as at 512
NUM_RECORDS = 10
CROWDED_ID = 107  # the record with 35 people


def make_records(directory) -> list[PoseRecord]:
    rng = np.random.default_rng(0)
    records = []
    for index in range(NUM_RECORDS):
        height, width = [(60, 80), (80, 60), (96, 96), (50, 120), (121, 77)][index % 5]
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        extension = ".jpg" if index % 2 else ".png"
        path = directory / f"image_{index}{extension}"
        cv2.imwrite(str(path), image[..., ::-1])
        num_people = 35 if index == 7 else int(rng.integers(0, 4))
        xy = rng.uniform(-0.5, [width - 0.5, height - 0.5], (num_people, 17, 2))
        visibility = rng.integers(0, 3, (num_people, 17, 1))
        ignore_rle = None
        if index % 3 == 0:
            ignore = np.zeros((height, width), np.uint8, order="F")
            ignore[5:25, 10:40] = 1
            rle = mask_utils.encode(ignore)
            ignore_rle = {"size": [height, width], "counts": rle["counts"].decode("ascii")}
        records.append(
            PoseRecord(
                image_id=100 + index,
                file_name=str(path),
                height=height,
                width=width,
                keypoints=np.concatenate([xy, visibility], axis=-1),
                boxes=np.zeros((num_people, 4)),
                areas=np.ones(num_people),
                annotation_ids=np.arange(num_people),
                ignore_rle=ignore_rle,
            )
        )
    return records


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return make_records(tmp_path_factory.mktemp("pipeline_images"))


@pytest.fixture(scope="module")
def shards(records, tmp_path_factory):
    prefix = str(tmp_path_factory.mktemp("shards") / "train")
    paths = tfrecord.write_tfrecords(records, prefix, num_shards=3, show_progress=False)
    return prefix, paths


def take(dataset, count):
    return [{key: value.numpy() for key, value in batch.items()}
            for batch in dataset.take(count)]


def train_dataset(source, **overrides):
    arguments = dict(
        training=True, batch_size=4, keypoint_info=COCO, input_size=INPUT_SIZE, seed=5,
        deterministic=True, shuffle_buffer_size=16,
    )
    arguments.update(overrides)
    return build_dataset(source, **arguments)


def test_training_batches_follow_contract_4(records):
    batch = take(train_dataset(records, include_metadata=True), 1)[0]
    output = INPUT_SIZE // 4
    expected = {
        "image": ((4, INPUT_SIZE, INPUT_SIZE, 3), np.float32),
        "heatmaps": ((4, output, output, 17), np.float32),
        "mask": ((4, output, output), np.float32),
        "keypoints": ((4, 30, 17, 3), np.float32),
        "image_id": ((4,), np.int64),
        "input_from_image": ((4, 3, 3), np.float64),
        "num_dropped_people": ((4,), np.int32),
    }
    assert set(batch) == set(expected)
    for key, (shape, dtype) in expected.items():
        assert batch[key].shape == shape and batch[key].dtype == dtype, key
    assert batch["image"].min() >= 0.0 and batch["image"].max() <= 1.0
    assert set(np.unique(batch["mask"])) <= {0.0, 1.0}
    assert set(np.unique(batch["keypoints"][..., 2])) <= {0.0, 1.0}
    np.testing.assert_array_equal(batch["keypoints"], np.round(batch["keypoints"]))
    # Every valid keypoint target is a heatmap peak.
    for b in range(4):
        for person, joint in zip(*np.nonzero(batch["keypoints"][b, :, :, 2]), strict=True):
            x, y, _ = batch["keypoints"][b, person, joint].astype(int)
            assert batch["heatmaps"][b, y, x, joint] == 1.0
    default_keys = take(train_dataset(records), 1)[0].keys()
    assert set(default_keys) == {"image", "heatmaps", "mask", "keypoints", "image_id"}


def test_deterministic_pipeline_gives_identical_batches_twice(records):
    first = take(train_dataset(records), 4)  # 16 examples: crosses an epoch boundary
    second = take(train_dataset(records), 4)
    for a, b in zip(first, second, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    other_seed = take(train_dataset(records, seed=6), 1)[0]
    assert not np.array_equal(other_seed["image"], first[0]["image"])
    # Epochs differ: the second pass over the data is augmented differently.
    ids = np.concatenate([batch["image_id"] for batch in first])
    images = np.concatenate([batch["image"] for batch in first])
    repeated = [i for i in range(10, 16) if ids[i] in ids[:10]]
    assert repeated
    for i in repeated:
        j = int(np.flatnonzero(ids[:10] == ids[i])[0])
        assert not np.array_equal(images[i], images[j])


def test_cached_decoded_images_give_the_same_batches(records, tmp_path):
    # 16 examples: the second epoch reads the decoded images from the cache.
    cached = take(train_dataset(records, cache_decoded_images=True, include_metadata=True), 4)
    plain = take(train_dataset(records, include_metadata=True), 4)
    for a, b in zip(cached, plain, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_validation_targets_use_the_centred_fit_affine(records):
    dataset = train_dataset(records, training=False, include_metadata=True, batch_size=3)
    batches = take(dataset, 10)
    assert sum(len(batch["image_id"]) for batch in batches) == NUM_RECORDS  # one pass, in order
    ids = np.concatenate([batch["image_id"] for batch in batches])
    np.testing.assert_array_equal(ids, [record.image_id for record in records])
    encoder = KeypointEncoder(INPUT_SIZE // 4, 17)
    flat = [{key: batch[key][i] for key in batch} for batch in batches
            for i in range(len(batch["image_id"]))]
    for record, example in zip(records, flat, strict=True):
        long_side = max(record.height, record.width)
        half = (INPUT_SIZE - 1) / 2
        expected_matrix = (
            transforms.translation_matrix(half, half)
            @ np.diag([INPUT_SIZE / long_side, INPUT_SIZE / long_side, 1.0])
            @ transforms.translation_matrix(-(record.width - 1) / 2, -(record.height - 1) / 2)
        )
        np.testing.assert_allclose(example["input_from_image"], expected_matrix, atol=1e-12)
        moved = transforms.transform_points(record.keypoints, expected_matrix)
        targets = encoder.encode(moved.astype(np.float32))
        np.testing.assert_array_equal(example["keypoints"], targets["keypoints"].numpy())
        np.testing.assert_array_equal(example["heatmaps"], targets["heatmaps"].numpy())
        expected_dropped = 5 if record.image_id == CROWDED_ID else 0
        assert example["num_dropped_people"] == expected_dropped
        # The source image covers the central band; outside it is ignored (official default).
        if record.ignore_rle is None:
            inside = example["mask"].mean()
            short_side = min(record.height, record.width)
            assert inside == pytest.approx(short_side / long_side, abs=0.1)


def test_input_context_shards_the_records(records):
    seen = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline_id, num_replicas_in_sync=2
        )
        batches = take(
            train_dataset(records, training=False, input_context=context, batch_size=4), 10
        )
        assert all(len(batch["image_id"]) <= 2 for batch in batches)  # per-replica batch 4/2
        seen.append({int(i) for batch in batches for i in batch["image_id"]})
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] == {record.image_id for record in records}


def test_tfrecord_round_trip(records, shards):
    prefix, paths = shards
    assert paths == tfrecord.shard_paths(prefix, 3)
    assert sorted(tf.io.gfile.glob(tfrecord.shard_pattern(prefix))) == paths
    parsed = {}
    for serialized in tf.data.TFRecordDataset(paths):
        example = tfrecord.parse_example(serialized, 17)
        parsed[int(example["image_id"])] = example
    assert len(parsed) == NUM_RECORDS
    for record in records:
        example = parsed[record.image_id]
        np.testing.assert_array_equal(example["keypoints"].numpy(), record.keypoints)
        assert int(example["height"]) == record.height and int(example["width"]) == record.width
        with open(record.file_name, "rb") as handle:
            assert example["image_bytes"].numpy() == handle.read()
        mask_png = example["ignore_mask_png"].numpy()
        if record.ignore_rle is None:
            assert mask_png == b""
        else:
            decoded = tf.io.decode_png(mask_png)[..., 0].numpy()
            np.testing.assert_array_equal(decoded, record.decode_ignore_mask())


def test_tfrecord_and_record_sources_give_the_same_batches(records, shards):
    prefix, _ = shards
    from_records = take(train_dataset(records, training=False, batch_size=5), 2)
    from_shards = take(train_dataset(tfrecord.shard_pattern(prefix), training=False,
                                     batch_size=5), 2)
    # Round-robin dealing + deterministic interleave restores the original order.
    for a, b in zip(from_records, from_shards, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    first = take(train_dataset(tfrecord.shard_pattern(prefix)), 3)
    second = take(train_dataset(tfrecord.shard_pattern(prefix)), 3)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a["image"], b["image"])


def test_input_context_shards_tfrecord_files(shards):
    prefix, _ = shards
    seen = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(2, pipeline_id, 2)
        dataset = train_dataset(
            tfrecord.shard_pattern(prefix), training=False, input_context=context, batch_size=2
        )
        seen.append([int(i) for batch in take(dataset, 10) for i in batch["image_id"]])
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(100, 100 + NUM_RECORDS))
    # Three files over two hosts: host 0 reads shards 0 and 2, host 1 shard 1.
    assert set(seen[1]) == {101, 104, 107}
    # Four hosts, three files: every host reads all files and keeps every fourth example.
    seen = []
    for pipeline_id in range(4):
        context = tf.distribute.InputContext(4, pipeline_id, 4)
        dataset = train_dataset(
            tfrecord.shard_pattern(prefix), training=False, input_context=context, batch_size=4,
            deterministic=False,
        )
        seen.append([int(i) for batch in take(dataset, 10) for i in batch["image_id"]])
    assert sorted(sum(seen, [])) == list(range(100, 100 + NUM_RECORDS))


def test_eval_dataset_keeps_ids_and_affine(records):
    dataset = build_eval_dataset(records, keypoint_info=COCO, input_size=INPUT_SIZE,
                                 batch_size=3)
    batches = take(dataset, 10)
    ids = np.concatenate([batch["image_id"] for batch in batches])
    np.testing.assert_array_equal(ids, [record.image_id for record in records])
    examples = [{key: batch[key][i] for key in batch} for batch in batches
                for i in range(len(batch["image_id"]))]
    for record, example in zip(records, examples, strict=True):
        matrix, resized, _ = transforms.eval_resize_affine(record.height, record.width,
                                                           INPUT_SIZE)
        np.testing.assert_allclose(example["input_from_image"], matrix, atol=1e-15)
        assert tuple(example["resized_size"]) == resized
        assert tuple(example["image_size"]) == (record.height, record.width)
        assert example["image"].shape[0] % 64 == 0 and example["image"].shape[1] % 64 == 0
        assert not example["image"][resized[0]:].any()
        people = record.num_people
        np.testing.assert_array_equal(example["keypoints"][:people], record.keypoints)


def test_missing_image_names_the_path(records, tmp_path):
    broken = PoseRecord(
        image_id=999, file_name=str(tmp_path / "missing.jpg"), height=10, width=10,
        keypoints=np.zeros((0, 17, 3)), boxes=np.zeros((0, 4)), areas=np.zeros(0),
        annotation_ids=np.zeros(0),
    )
    dataset = train_dataset([broken], training=False, batch_size=1)
    with pytest.raises(tf.errors.NotFoundError, match="missing.jpg"):
        take(dataset, 1)


def test_corrupt_image_raises_or_is_skipped(records, tmp_path):
    path = tmp_path / "random.jpg"
    path.write_bytes(np.random.default_rng(0).bytes(500))
    corrupt = PoseRecord(
        image_id=998, file_name=str(path), height=10, width=10,
        keypoints=np.zeros((0, 17, 3)), boxes=np.zeros((0, 4)), areas=np.zeros(0),
        annotation_ids=np.zeros(0),
    )
    source = [records[0], corrupt, records[1]]
    with pytest.raises(tf.errors.InvalidArgumentError):
        take(train_dataset(source, training=False, batch_size=1), 3)
    kept = take(train_dataset(source, training=False, batch_size=1, skip_decode_errors=True), 3)
    assert [int(batch["image_id"][0]) for batch in kept] == [100, 101]


def test_size_mismatch_and_joint_mismatch_are_reported(records):
    wrong_size = PoseRecord(**{**records[1].__dict__, "height": 61})
    with pytest.raises(tf.errors.InvalidArgumentError, match="differs from the record"):
        take(train_dataset([wrong_size], training=False, batch_size=1), 1)
    wrong_joints = PoseRecord(**{**records[2].__dict__, "keypoints": np.zeros((1, 14, 3)),
                                 "boxes": np.zeros((1, 4)), "areas": np.ones(1),
                                 "annotation_ids": np.zeros(1)})
    with pytest.raises(ValueError, match="image 102"):
        train_dataset([records[0], wrong_joints])
    with pytest.raises(ValueError, match="input_size"):
        from associative_embedding.data.augment import AugmentConfig

        build_dataset(records, training=True, batch_size=2, keypoint_info=COCO, input_size=256,
                      augment_config=AugmentConfig(input_size=128))
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        train_dataset("/nonexistent/nothing_here-*.tfrecord")


def test_coco_sample_through_the_pipeline(shared_data):
    from associative_embedding.data.coco import read_coco_keypoints

    folder = shared_data / "coco_mini_train2017"
    coco_records, _ = read_coco_keypoints(
        folder / "person_keypoints_train2017.json", folder / "images"
    )
    with_crowd = [record for record in coco_records if record.num_crowd > 0][:2]
    assert with_crowd, "the COCO sample is documented to contain crowd regions"
    source = with_crowd + coco_records[:2]
    dataset = build_dataset(
        source, training=False, batch_size=len(source), keypoint_info=COCO, input_size=256,
        include_metadata=True, augment_config=None,
    )
    batch = take(dataset, 1)[0]
    for index, record in enumerate(source):
        # Ignored output pixels include the warped crowd region: compare with the record mask.
        ignore = record.decode_ignore_mask()
        output_from_image = transforms.output_from_input(4) @ batch["input_from_image"][index]
        image_from_output = transforms.invert(output_from_image)
        rows, cols = np.mgrid[:64, :64]
        source_xy = transforms.transform_points(
            np.stack([cols, rows], -1).astype(np.float64), image_from_output
        )
        sx = np.clip(np.round(source_xy[..., 0]).astype(int), 0, record.width - 1)
        sy = np.clip(np.round(source_xy[..., 1]).astype(int), 0, record.height - 1)
        inside = ((source_xy[..., 0] >= 0) & (source_xy[..., 0] <= record.width - 1)
                  & (source_xy[..., 1] >= 0) & (source_xy[..., 1] <= record.height - 1))
        expected_ignored = (ignore[sy, sx] > 0) & inside
        ignored = batch["mask"][index] == 0
        agreement = (ignored[inside] == expected_ignored[inside]).mean()
        assert agreement > 0.95
        if record.num_crowd:
            assert ignored[inside].any()
