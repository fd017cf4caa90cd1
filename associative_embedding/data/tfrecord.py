"""PoseRecords ↔ tf.train.Example: the TFRecord shard schema and the shared raw-example format.

TFRecord schema (one ``tf.train.Example`` per image; P people, K joints):

    ==========================  ============  ===================================================
    feature                     type          content
    ==========================  ============  ===================================================
    image/id                    int64 [1]     dataset image id
    image/encoded               bytes [1]     the encoded image file (JPEG or PNG), unchanged
    image/file_name             bytes [1]     source path (provenance only; may be empty)
    image/height, image/width   int64 [1]     image size in pixels
    keypoints/num_joints        int64 [1]     K
    person/count                int64 [1]     P
    person/keypoints            float [P*K*3] (x, y, v) in image pixels, person-major
    person/boxes                float [P*4]   (x, y, w, h)
    person/areas                float [P]     segmentation areas
    person/annotation_ids       int64 [P]     source annotation ids
    ignore_mask/png             bytes [1]     single-channel PNG (H, W), 1 = ignored; empty
                                              bytes when nothing is ignored
    ==========================  ============  ===================================================

Shards are named ``<prefix>-<index:05d>-of-<count:05d>.tfrecord``; records are dealt to shards
round-robin so shard sizes differ by at most one.

Raw examples (what ``records_to_dataset`` and ``parse_example`` both produce and the pipeline's
decode step consumes), one dict per image:

    'image_id'         () int64
    'image_bytes'      () string, encoded image ('' when it must be read from 'image_path')
    'image_path'       () string
    'height', 'width'  () int32
    'keypoints'        (P, K, 3) float32 image pixels
    'ignore_mask_png'  () string, as 'ignore_mask/png' above
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import cv2
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from associative_embedding.core.record import PoseRecord

SHARD_SUFFIX = ".tfrecord"


def encode_ignore_mask_png(record: PoseRecord) -> bytes:
    """The record's ignore mask as single-channel PNG bytes (values 0/1); b'' if none."""
    if record.ignore_rle is None:
        return b""
    mask = record.decode_ignore_mask()
    if mask.shape != (record.height, record.width):
        raise ValueError(
            f"image {record.image_id}: ignore mask is {mask.shape}, image is "
            f"{record.height}x{record.width}."
        )
    if not mask.any():
        return b""
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(mask, dtype=np.uint8))
    if not ok:
        raise ValueError(f"image {record.image_id}: could not PNG-encode the ignore mask.")
    return encoded.tobytes()


def record_to_example(record: PoseRecord, *, embed_image: bool = True) -> tf.train.Example:
    """Serialises one record to a tf.train.Example with the module's schema.

    Args:
        record: the record; its image is read from ``file_name`` unless it carries bytes.
        embed_image: store the encoded image (True, the normal case). False stores an empty
            'image/encoded' and relies on 'image/file_name' (only readable where that path is).
    """

    def int64(values) -> tf.train.Feature:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))

    def floats(values) -> tf.train.Feature:
        return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))

    def byte(value: bytes) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    encoded = record.read_image_bytes() if embed_image else b""
    features = {
        "image/id": int64([record.image_id]),
        "image/encoded": byte(encoded),
        "image/file_name": byte(os.fsencode(record.file_name or "")),
        "image/height": int64([record.height]),
        "image/width": int64([record.width]),
        "keypoints/num_joints": int64([record.num_joints]),
        "person/count": int64([record.num_people]),
        "person/keypoints": floats(record.keypoints.reshape(-1).tolist()),
        "person/boxes": floats(record.boxes.reshape(-1).tolist()),
        "person/areas": floats(record.areas.reshape(-1).tolist()),
        "person/annotation_ids": int64(record.annotation_ids.reshape(-1).tolist()),
        "ignore_mask/png": byte(encode_ignore_mask_png(record)),
    }
    return tf.train.Example(features=tf.train.Features(feature=features))


def shard_paths(prefix: str, num_shards: int) -> list[str]:
    """The file names ``write_tfrecords`` uses for `num_shards` shards of `prefix`."""
    return [
        f"{prefix}-{index:05d}-of-{num_shards:05d}{SHARD_SUFFIX}" for index in range(num_shards)
    ]


def shard_pattern(prefix: str) -> str:
    """A glob matching every shard written under `prefix`."""
    return f"{prefix}-*-of-*{SHARD_SUFFIX}"


def write_tfrecords(
    records: Sequence[PoseRecord],
    pattern: str,
    num_shards: int,
    *,
    embed_image: bool = True,
    show_progress: bool = True,
) -> list[str]:
    """Writes records to `num_shards` TFRecord shards.

    Args:
        records: the records (all with the same K).
        pattern: path prefix of the shards, e.g. '/data/coco/train' → files
            '/data/coco/train-00000-of-00008.tfrecord', ...; read them back with
            ``shard_pattern(prefix)`` or any glob.
        num_shards: >= 1; use at least as many shards as there will be input pipelines (hosts)
            so that per-host sharding can split files.
        embed_image: see ``record_to_example``.
        show_progress: tqdm progress bar.

    Returns:
        The shard paths, in shard order.

    Raises:
        ValueError: no records, bad shard count, or records with different K.
    """
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    if not records:
        raise ValueError("write_tfrecords: no records to write.")
    _check_num_joints(records)
    paths = shard_paths(pattern, num_shards)
    directory = os.path.dirname(pattern)
    if directory:
        tf.io.gfile.makedirs(directory)
    writers = [tf.io.TFRecordWriter(path) for path in paths]
    try:
        for index, record in enumerate(
            tqdm(records, desc="tfrecords", unit="img", disable=not show_progress)
        ):
            example = record_to_example(record, embed_image=embed_image)
            writers[index % num_shards].write(example.SerializeToString())
    finally:
        for writer in writers:
            writer.close()
    return paths


_FEATURES = {
    "image/id": tf.io.FixedLenFeature([], tf.int64),
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/file_name": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "image/height": tf.io.FixedLenFeature([], tf.int64),
    "image/width": tf.io.FixedLenFeature([], tf.int64),
    "keypoints/num_joints": tf.io.FixedLenFeature([], tf.int64),
    "person/count": tf.io.FixedLenFeature([], tf.int64),
    "person/keypoints": tf.io.VarLenFeature(tf.float32),
    "ignore_mask/png": tf.io.FixedLenFeature([], tf.string, default_value=""),
}


def parse_example(serialized: tf.Tensor, num_joints: int) -> dict[str, tf.Tensor]:
    """Parses one serialised tf.train.Example into a raw example (module docstring).

    Args:
        serialized: () string.
        num_joints: K expected by the caller; a mismatch raises InvalidArgumentError naming the
            image id when the example is read.
    """
    parsed = tf.io.parse_single_example(serialized, _FEATURES)
    image_id = parsed["image/id"]
    values = tf.sparse.to_dense(parsed["person/keypoints"])
    checks = [
        tf.debugging.Assert(
            tf.equal(parsed["keypoints/num_joints"], num_joints),
            ["TFRecord example: keypoints/num_joints differs from", num_joints, "in image id",
             image_id, parsed["image/file_name"]],
        ),
        tf.debugging.Assert(
            tf.equal(tf.size(values, out_type=tf.int64), parsed["person/count"] * num_joints * 3),
            ["TFRecord example: person/keypoints length != person/count*K*3 in image id",
             image_id, parsed["image/file_name"]],
        ),
    ]
    with tf.control_dependencies(checks):
        keypoints = tf.reshape(values, [-1, num_joints, 3])
    return {
        "image_id": image_id,
        "image_bytes": parsed["image/encoded"],
        "image_path": parsed["image/file_name"],
        "height": tf.cast(parsed["image/height"], tf.int32),
        "width": tf.cast(parsed["image/width"], tf.int32),
        "keypoints": keypoints,
        "ignore_mask_png": parsed["ignore_mask/png"],
    }


def resolve_files(pattern: str | Sequence[str]) -> list[str]:
    """Sorted shard paths from a glob (or a list of globs/paths).

    Raises:
        FileNotFoundError: naming the pattern when nothing matches.
    """
    patterns = [pattern] if isinstance(pattern, (str, os.PathLike)) else list(pattern)
    files: list[str] = []
    for item in patterns:
        item = os.fspath(item)
        matches = tf.io.gfile.glob(item)
        if not matches:
            raise FileNotFoundError(f"no TFRecord files match {item!r}")
        files.extend(matches)
    return sorted(set(files))


def records_to_dataset(
    records: Sequence[PoseRecord], *, num_joints: int | None = None, show_progress: bool = True
) -> tf.data.Dataset:
    """A dataset of raw examples (module docstring) from in-memory records.

    Images are read lazily from ``file_name`` by the pipeline (records that carry
    ``image_bytes`` embed them). Ignore masks are PNG-encoded here once (small: crowd regions).

    Raises:
        ValueError: no records, or a record whose K differs (naming its image id).
    """
    if not records:
        raise ValueError("records_to_dataset: no records.")
    expected = _check_num_joints(records, num_joints)
    iterator: Iterable[PoseRecord] = tqdm(
        records, desc="records", unit="img", disable=not show_progress or len(records) < 1000
    )
    image_ids, paths, image_bytes, heights, widths, masks, counts = [], [], [], [], [], [], []
    keypoints = []
    for record in iterator:
        if record.image_bytes is None and not record.file_name:
            raise ValueError(f"image {record.image_id}: record has neither file_name nor bytes.")
        image_ids.append(record.image_id)
        paths.append(record.file_name or "")
        image_bytes.append(record.image_bytes or b"")
        heights.append(record.height)
        widths.append(record.width)
        masks.append(encode_ignore_mask_png(record))
        counts.append(record.num_people)
        keypoints.append(record.keypoints.reshape(-1, expected, 3))
    flat = np.concatenate(keypoints, axis=0).astype(np.float32)
    ragged = tf.RaggedTensor.from_row_lengths(flat, np.asarray(counts, np.int64))
    return tf.data.Dataset.from_tensor_slices(
        {
            "image_id": np.asarray(image_ids, np.int64),
            "image_bytes": tf.constant(image_bytes, tf.string),
            "image_path": tf.constant(paths, tf.string),
            "height": np.asarray(heights, np.int32),
            "width": np.asarray(widths, np.int32),
            "keypoints": ragged,
            "ignore_mask_png": tf.constant(masks, tf.string),
        }
    )


def _check_num_joints(records: Sequence[PoseRecord], num_joints: int | None = None) -> int:
    expected = records[0].num_joints if num_joints is None else int(num_joints)
    for record in records:
        if record.num_joints != expected:
            raise ValueError(
                f"image {record.image_id}: {record.num_joints} joints, expected {expected}."
            )
    return expected
