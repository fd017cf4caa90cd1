"""Training and validation data of the tracking task: videos with track ids, and clip batches.

`prepare_data` resolves `config.dataset` into `TrackingData` (train and validation videos,
`data.posetrack.PoseTrackVideo`): PoseTrack 2018 files, or synthetic walking-people clips
(`data.synthetic.clips`) generated into WORKDIR/synthetic_clips when missing.

`train_dataset` gives batches of B clip samples of F frames (`input.frames_per_clip`): frames
t, t + g_1, t + g_1 + g_2, ... of one video, every gap g drawn from 1..`input.max_frame_gap`
(fewer near a video's end). Each frame is decoded, augmented and encoded like a pose example
(`data.augment.Augmenter`, `codec.encode.KeypointEncoder`), but one augmentation (affine and
colour) is drawn per clip and applied to all its frames, so the people's motion between the
frames stays the real one. A video's people are laid out on one track axis for all its frames
(`losses.temporal.tracks_to_dense`), so slot p of every frame is the same person and the
temporal grouping loss can pull a track across frames. Batches (P = the largest number of
tracks in a video, at most `codec.max_people`; h = w = S / stride):

    'image'       (B * F, S, S, 3) float32 RGB in [0, 1], clip-major (the network sees single
                  frames; the frames of clip b are rows b * F .. b * F + F - 1)
    'heatmaps'    (B, F, h, w, K) float32
    'mask'        (B, F, h, w) float32, 1 = supervised
    'keypoints'   (B, F, P, K, 3) float32 (x, y, valid) in integer output pixels, slot p = track
                  p of the clip's video in every frame (all invalid where it is absent)
    'track_ids'   (B, P) int64, the video's track id of each slot (-1 for unused slots)
    'frame_index' (B, F) int32, the frames' positions among their video's annotated frames
    'image_id'    (B, F) int64, the frames' image ids
    'input_from_image' (B, 3, 3) float64, the clip's one augmentation affine
"""

from __future__ import annotations

import dataclasses
import os

import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from associative_embedding.codec.encode import KeypointEncoder, keypoint_output_pixels
from associative_embedding.core.keypoint_info import KeypointInfo
from associative_embedding.core.record import PoseRecord
from associative_embedding.data import posetrack, tfrecord
from associative_embedding.data.augment import Augmenter, augmentation_affine, sample_augmentation
from associative_embedding.data.pipeline import decode_raw_example
from associative_embedding.data.skeleton import PipelinePlan, load_and_batch, shuffle_and_repeat
from associative_embedding.data.synthetic.clips import (
    ClipConfig,
    clip_annotation_dir,
    generate_synthetic_clips,
)
from associative_embedding.losses.temporal import tracks_to_dense
from associative_embedding.training.config import augment_config


@dataclasses.dataclass
class TrackingData:
    """Resolved data of one tracking experiment.

    Attributes:
        train_videos: training videos (frames sorted by index).
        val_videos: validation videos.
    """

    train_videos: list[posetrack.PoseTrackVideo]
    val_videos: list[posetrack.PoseTrackVideo]

    @property
    def val_records(self) -> list[PoseRecord]:
        """The annotated validation frames, videos in order (the loop's generic view)."""
        return [frame.record for video in self.val_videos for frame in video.labeled_frames]


def synthetic_clip_paths(config: ml_collections.ConfigDict, workdir: str) -> dict[str, str]:
    """Generates the synthetic train and val clips that are missing; returns their paths.

    A split counts as present when its annotation folder holds `synthetic_num_<split>` files
    (a run killed while generating regenerates the split). The val split is seeded with
    ``synthetic_seed + 1``.
    """
    dataset = config.dataset
    root = dataset.synthetic_dir or os.path.join(workdir, "synthetic_clips")
    clip_config = ClipConfig(num_frames=int(dataset.synthetic_num_frames))
    paths = {}
    for split, count, seed in (
        ("train", dataset.synthetic_num_train, dataset.synthetic_seed),
        ("val", dataset.synthetic_num_val, dataset.synthetic_seed + 1),
    ):
        folder = clip_annotation_dir(root, split)
        if len(list(folder.glob("*.json"))) != count:
            logging.info("generating %d synthetic %s clips into %s", count, split, root)
            generate_synthetic_clips(
                root, split=split, num_clips=int(count), seed=int(seed),
                image_size=int(dataset.synthetic_image_size), config=clip_config,
            )
        paths[f"{split}_annotations"] = os.fspath(folder)
        paths[f"{split}_images"] = os.fspath(root)
    return paths


def prepare_data(config: ml_collections.ConfigDict, workdir: str) -> TrackingData:
    """Reads (and for 'synthetic' first generates) the train and val videos.

    Raises:
        ValueError: for an unknown dataset kind or missing PoseTrack paths.
        FileNotFoundError: naming the config field whose path does not exist.
    """
    dataset = config.dataset
    if dataset.kind == "synthetic":
        paths = synthetic_clip_paths(config, workdir)
    elif dataset.kind == "posetrack":
        paths = {key: dataset[key] for key in
                 ("train_annotations", "train_images", "val_annotations", "val_images")}
        missing = [key for key, value in paths.items() if not value]
        if missing:
            raise ValueError(
                "config.dataset needs " + ", ".join(f"--config.dataset.{k}" for k in missing)
            )
        for key, value in paths.items():
            if not os.path.exists(value):
                raise FileNotFoundError(f"config.dataset.{key}: {value} does not exist")
    else:
        raise ValueError(f"config.dataset.kind={dataset.kind!r}: use 'posetrack' or 'synthetic'")
    options = dict(
        ignore=dataset.ignore, strict=bool(dataset.strict_annotations),
        skip_bad_images=bool(dataset.skip_bad_images),
    )
    train = posetrack.read_posetrack_videos(
        paths["train_annotations"], paths["train_images"], split_role="eval", **options
    )
    val = posetrack.read_posetrack_videos(
        paths["val_annotations"], paths["val_images"], split_role="eval", **options
    )
    for key, videos in (("train_annotations", train), ("val_annotations", val)):
        check_joint_set(videos, str(dataset.keypoints), paths[key])
    frames_per_clip = int(config.input.frames_per_clip)
    if not any(len(video.labeled_frames) >= frames_per_clip for video in train):
        raise ValueError(
            f"no training video with {frames_per_clip} annotated frames in "
            f"{paths['train_annotations']} (input.frames_per_clip)"
        )
    return TrackingData(train, val)


def check_joint_set(
    videos: list[posetrack.PoseTrackVideo], expected: str, source: str
) -> None:
    """Raises unless every video's joints are the `expected` set (config.dataset.keypoints).

    The flip index, the OKS sigmas of the trackers and the grouping order all come from the
    configured set, so a file with other joints (PoseTrack's head_bottom / head_top where COCO
    has the eyes, which a COCO flip would swap) would train and score silently wrong.

    Raises:
        ValueError: naming `source`, the set its joints are and the flag that selects it.
    """
    found = sorted({video.keypoint_info.name for video in videos})
    if found and found != [expected]:
        raise ValueError(
            f"{source}: the videos' joints are the {' and '.join(map(repr, found))} set, but "
            f"config.dataset.keypoints is {expected!r}; set "
            f"--config.dataset.keypoints={found[0]}"
        )


@dataclasses.dataclass(frozen=True)
class FrameTable:
    """Every annotated training frame, videos one after another, as arrays for tf.data.

    Attributes:
        paths, heights, widths, image_ids, ignore_pngs: (N,) per frame.
        keypoints: (N, P, K, 3) float32 image pixels, slot p = track p of the frame's video.
        track_ids: (N, P) int64 the video's track id of each slot, -1 unused.
        positions: (N,) int32 the frame's index among its video's annotated frames.
        starts: (W,) int32 table rows that can start a clip sample.
        max_gaps: (W,) int32 the largest gap a sample starting there may use.
    """

    paths: np.ndarray
    heights: np.ndarray
    widths: np.ndarray
    image_ids: np.ndarray
    ignore_pngs: np.ndarray
    keypoints: np.ndarray
    track_ids: np.ndarray
    positions: np.ndarray
    starts: np.ndarray
    max_gaps: np.ndarray


def frame_table(
    videos: list[posetrack.PoseTrackVideo],
    num_joints: int,
    *,
    frames_per_clip: int,
    max_frame_gap: int,
    max_tracks: int,
) -> FrameTable:
    """Lays the annotated frames of `videos` out for `train_dataset` (see `FrameTable`).

    A video with more than `max_tracks` tracks keeps its first `max_tracks` (by id; logged).
    """
    rows: list[tuple] = []
    dense_videos, starts, max_gaps = [], [], []
    num_tracks = 1
    for video in videos:
        frames = video.labeled_frames
        if len(frames) < frames_per_clip:
            continue
        dense, tracks = tracks_to_dense(
            [frame.record.keypoints.reshape(-1, num_joints, 3) for frame in frames],
            [frame.track_ids for frame in frames],
        )
        if len(tracks) > max_tracks:
            logging.warning("video %s: %d tracks, only the first %d are encoded",
                            video.video_id, len(tracks), max_tracks)
            dense, tracks = dense[:, :max_tracks], tracks[:max_tracks]
        num_tracks = max(num_tracks, len(tracks))
        first = len(rows)
        for position, frame in enumerate(frames):
            record = frame.record
            rows.append((record.file_name, record.height, record.width, record.image_id,
                         tfrecord.encode_ignore_mask_png(record), position))
            span = len(frames) - 1 - position
            gap = min(max_frame_gap, span // (frames_per_clip - 1)) if frames_per_clip > 1 else 1
            if gap >= 1:
                starts.append(first + position)
                max_gaps.append(gap)
        dense_videos.append((dense, tracks))
    if not starts:
        raise ValueError(f"no video has {frames_per_clip} annotated frames")
    keypoints = np.zeros((len(rows), num_tracks, num_joints, 3), np.float32)
    track_ids = np.full((len(rows), num_tracks), -1, np.int64)
    row = 0
    for dense, tracks in dense_videos:
        keypoints[row:row + len(dense), : len(tracks)] = dense
        track_ids[row:row + len(dense), : len(tracks)] = tracks
        row += len(dense)

    def column(index: int, dtype: type) -> np.ndarray:
        # object arrays keep bytes whole (a fixed-width bytes array drops trailing NULs).
        values = np.empty((len(rows),), dtype)
        values[:] = [entry[index] for entry in rows]
        return values

    return FrameTable(
        paths=column(0, object), heights=column(1, np.int32), widths=column(2, np.int32),
        image_ids=column(3, np.int64), ignore_pngs=column(4, object), keypoints=keypoints,
        track_ids=track_ids, positions=column(5, np.int32), starts=np.array(starts, np.int32),
        max_gaps=np.array(max_gaps, np.int32),
    )


def clip_frame_rows(
    start: tf.Tensor, max_gap: tf.Tensor, seed: tf.Tensor, frames_per_clip: int
) -> tf.Tensor:
    """(F,) int32 table rows of one sample: start, then gaps drawn from 1..max_gap."""
    uniform = tf.random.stateless_uniform(
        [frames_per_clip - 1], seed=tf.random.experimental.stateless_fold_in(seed, 1)
    )
    gaps = 1 + tf.minimum(
        tf.cast(tf.floor(uniform * tf.cast(max_gap, tf.float32)), tf.int32), max_gap - 1
    )
    return start + tf.concat([[0], tf.cumsum(gaps)], axis=0)


def train_dataset(
    config: ml_collections.ConfigDict,
    table: FrameTable,
    keypoint_info: KeypointInfo,
    input_context: tf.distribute.InputContext | None = None,
    seed: int | None = None,
    training: bool = True,
) -> tf.data.Dataset:
    """One host's batches of clip samples (layout in the module docstring).

    Args:
        config: the experiment config (codec, input, train sections).
        table: the training frames (`frame_table`).
        keypoint_info: the joints (K and the flip index).
        input_context: per-host sharding and the per-replica batch size.
        seed: the shuffle and augmentation seed (default `train.seed`).
        training: False gives one ordered pass without augmentation (for checks).
    """
    frames_per_clip = int(config.input.frames_per_clip)
    plan = PipelinePlan.resolve(
        batch_size=config.train.global_batch_size,
        seed=config.train.seed if seed is None else seed, training=training,
        num_epochs=None, input_context=input_context,
    )
    augmentation = augment_config(config)
    if not training:
        augmentation = augmentation.without_randomness()
    augmenter = Augmenter(augmentation, keypoint_info.flip_index)
    encoder = KeypointEncoder(
        augmentation.output_size, keypoint_info.num_joints, sigma=config.codec.sigma or None,
        max_people=int(config.codec.max_people), stride=augmentation.output_stride,
        subpixel=bool(config.codec.subpixel_targets),
    )
    columns = {
        "image_path": tf.constant(table.paths.astype(str)),
        "height": tf.constant(table.heights),
        "width": tf.constant(table.widths),
        "image_id": tf.constant(table.image_ids),
        "ignore_mask_png": tf.constant(list(table.ignore_pngs), tf.string),
        "keypoints": tf.constant(table.keypoints),
        "position": tf.constant(table.positions),
    }
    slot_ids = tf.constant(table.track_ids)
    samples = tf.data.Dataset.from_tensor_slices((table.starts, table.max_gaps))
    if input_context and input_context.num_input_pipelines > 1:
        samples = samples.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    samples = shuffle_and_repeat(
        samples, plan, training=training,
        shuffle_buffer_size=max(int(config.input.shuffle_buffer_size), 1),
    )

    @tf.autograph.experimental.do_not_convert
    def load(sample: tuple[tf.Tensor, tf.Tensor], sample_seed: tf.Tensor) -> dict:
        start, max_gap = sample
        rows = clip_frame_rows(start, max_gap, sample_seed, frames_per_clip)
        # One augmentation per clip, from the first frame's size (a video's frames share it).
        params = sample_augmentation(sample_seed, augmentation)
        input_from_image = augmentation_affine(
            columns["height"][start], columns["width"][start], params,
            augmentation.input_size, augmentation.placement,
        )
        frames = []
        for index in range(frames_per_clip):
            example = {name: column[rows[index]] for name, column in columns.items()}
            example["image_bytes"] = tf.constant(b"")
            image, ignore_mask = decode_raw_example(example)
            augmented = augmenter.apply(
                image, example["keypoints"], ignore_mask, input_from_image, params
            )
            targets = encoder.encode(augmented["keypoints"], augmented["ignore_mask"])
            # Track slots stay where they are (the encoder's own 'keypoints' packs people).
            ix, iy, valid = keypoint_output_pixels(
                augmented["keypoints"], augmentation.output_size, augmentation.output_stride
            )
            zero = tf.zeros_like(ix)
            slots = tf.cast(tf.stack(
                [tf.where(valid, ix, zero), tf.where(valid, iy, zero), tf.cast(valid, tf.int32)],
                axis=-1), tf.float32)
            frames.append({
                "image": augmented["image"], "heatmaps": targets["heatmaps"],
                "mask": targets["mask"], "keypoints": slots,
                "frame_index": example["position"], "image_id": example["image_id"],
            })
        clip = {name: tf.stack([frame[name] for frame in frames]) for name in frames[0]}
        clip["track_ids"] = slot_ids[start]
        clip["input_from_image"] = input_from_image
        return clip

    dataset = load_and_batch(
        samples, load, plan, training=training, num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=bool(config.train.deterministic), drop_remainder=True,
    )
    size = augmentation.input_size

    @tf.autograph.experimental.do_not_convert
    def frames_into_batch(batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        # The network sees single frames: B clips of F frames are B * F images.
        batch = dict(batch)
        batch["image"] = tf.reshape(batch["image"], [-1, size, size, 3])
        return batch

    return dataset.map(frames_into_batch)

