"""Validation of the tracking task: per-frame poses with tags, linked into tracks two ways.

For every validation video (the first `eval.max_videos`; its annotated frames, every
`eval.frame_step`-th), each frame goes through the network once at the codec's input size and
the pose decoder (`codec.decode.group_poses`, the codec section's options); every decoded person
gets its mean tag (`tracker.detections_from_decoder`). The same detections are then linked by
`TagTracker` (ours: tag distance, Hungarian) and by `OverlapTracker` (the baseline: OKS or box
IoU with the track's last pose), with the same birth and death rules, and both are scored
against the ground-truth tracks with motmetrics (`evaluation.tracking`):

* person boxes (the joints' box grown by `eval.box_margin` on each side, for ground truth and
  predictions alike): MOTA, IDF1 and ID switches;
* PoseTrack's per-joint protocol: MOTA averaged over joint types and ID switches summed.

Predicted people with at least half of their present joints on the frame's ignore mask (people a
dataset leaves unannotated) are dropped before scoring, as PoseTrack's evaluation does.

metrics.json keys: 'MOTA', 'IDF1', 'id_switches' (ours, boxes), the same with '_baseline',
'MOTA_joints', 'id_switches_joints' (and '_baseline'), every one of them again with the suffix
'_crossing' on the videos in which two annotated tracks cross (`data.synthetic.clips`'
definition: their boxes swap horizontal order while overlapping vertically), and the counts
'num_videos', 'num_videos_crossing', 'num_frames'. WORKDIR/eval/step_<N>/tracks.json holds
every video's predicted track ids per frame.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from associative_embedding.codec.decode import group_poses
from associative_embedding.codec.fusion import poses_to_image
from associative_embedding.core.overlap import keypoint_boxes
from associative_embedding.core.run_dir import write_json
from associative_embedding.data import image_io
from associative_embedding.data.augment import eval_preprocess
from associative_embedding.data.posetrack import PoseTrackVideo
from associative_embedding.data.synthetic.clips import crossing_pairs
from associative_embedding.evaluation.tracking import (
    FrameTracks,
    box_tracking_metrics,
    posetrack_joint_metrics,
)
from associative_embedding.modeling.loading import Predictor, model_predictor
from associative_embedding.modeling.outputs import split_outputs
from associative_embedding.tasks.tracking.config import decoder_options
from associative_embedding.tasks.tracking.tracker import (
    Detection,
    OverlapTracker,
    TagTracker,
    detections_from_decoder,
)

if TYPE_CHECKING:
    from associative_embedding.tasks.tracking.trainer import TrackingTrainer

#: The headline metrics, ours then the baseline's (metrics.json keys).
HEADLINE = ("MOTA", "IDF1", "id_switches", "MOTA_joints", "id_switches_joints")
CROSSING_SUFFIX = "_crossing"
BASELINE_SUFFIX = "_baseline"


def frame_detections(
    predictor: Predictor,
    images: list[np.ndarray],
    *,
    input_size: int,
    num_joints: int,
    tag_dim: int,
    stride: int,
    decoder: dict[str, Any],
) -> list[list[Detection]]:
    """Decoded people with their mean tags, in image pixels, for each image.

    Args:
        predictor: the network.
        images: (H, W, 3) uint8 RGB frames.
        input_size: the long side the frames are resized to (0 keeps them).
        num_joints, tag_dim: K and D.
        stride: the network's output stride.
        decoder: `codec.decode.group_poses` keyword arguments.

    Returns:
        Per image, its people (`Detection`: pose (K, 3) image pixels, score, tag (D,)).
    """
    detections = []
    for image in images:
        inputs = eval_preprocess(image, input_size, predictor.input_multiple)
        outputs = predictor(inputs["image"][None])
        heatmaps, tags = (np.asarray(m)[0] for m in split_outputs(outputs, num_joints, tag_dim))
        # Heatmap pixels over the padding show no image: no joint may be found there.
        resized_h, resized_w = (int(v) for v in inputs["resized_size"].numpy())
        map_h, map_w = -(-resized_h // stride), -(-resized_w // stride)
        heatmaps = heatmaps.copy()
        heatmaps[map_h:] = 0.0
        heatmaps[:, map_w:] = 0.0
        poses, scores = group_poses(heatmaps, tags, **decoder)
        people = detections_from_decoder(poses, scores, tags)
        image_poses = poses_to_image(poses, inputs["input_from_image"].numpy(), stride)
        detections.append([
            Detection(pose=np.asarray(pose, np.float64), score=person.score, tag=person.tag)
            for pose, person in zip(image_poses, people, strict=True)
        ])
    return detections


def padded_boxes(poses: np.ndarray, margin: float, min_score: float = 0.0) -> np.ndarray:
    """(P, 4) keypoint boxes (joints with score > min_score) grown by `margin` of each side."""
    boxes = keypoint_boxes(poses, min_score)
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    grow = np.stack([-width, -height, width, height], axis=1) * margin
    return boxes + grow


def outside_ignore_regions(
    poses: np.ndarray, ignore_mask: np.ndarray, min_joint_score: float = 0.0
) -> np.ndarray:
    """(P,) bool: people with less than half of their present joints on ignored pixels.

    PoseTrack's evaluation drops the predictions inside ignore regions before scoring (people
    there are not annotated, so a detection of one is no false positive); the same holds for
    the people a dataset writes without keypoints, which the reader puts in the ignore mask.

    Args:
        poses: (P, K, 3) (x, y, score) in image pixels.
        ignore_mask: (H, W) 1 = ignored.
        min_joint_score: a joint is present when its score is above this.
    """
    poses = np.asarray(poses, np.float64).reshape(-1, *np.shape(poses)[-2:])
    height, width = ignore_mask.shape
    present = poses[..., 2] > min_joint_score
    columns = np.clip(np.round(np.nan_to_num(poses[..., 0])).astype(int), 0, width - 1)
    rows = np.clip(np.round(np.nan_to_num(poses[..., 1])).astype(int), 0, height - 1)
    ignored = (ignore_mask[rows, columns] > 0) & present
    return ignored.sum(axis=1) * 2 < np.maximum(present.sum(axis=1), 1)


def has_crossing(video: PoseTrackVideo) -> bool:
    """Whether two annotated tracks of the video cross (`clips.crossing_pairs`)."""
    images, annotations = [], []
    for frame in video.labeled_frames:
        record = frame.record
        images.append({"id": record.image_id, "frame_id": frame.frame_index})
        for row, track in enumerate(frame.track_ids):
            labelled = record.keypoints[row, :, 2] > 0
            if not labelled.any():
                continue
            x1, y1 = record.keypoints[row, labelled, :2].min(axis=0)
            x2, y2 = record.keypoints[row, labelled, :2].max(axis=0)
            annotations.append({
                "image_id": record.image_id, "track_id": int(track),
                "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                "num_keypoints": int(labelled.sum()),
            })
    return bool(crossing_pairs({"images": images, "annotations": annotations}))


def _trackers(eval_config: Any, sigmas: np.ndarray) -> dict[str, Any]:
    common = dict(
        min_birth_score=float(eval_config.min_birth_score),
        max_missed_frames=int(eval_config.max_missed_frames), sigmas=sigmas,
    )
    return {
        "": TagTracker(
            max_tag_distance=float(eval_config.max_tag_distance),
            tag_momentum=float(eval_config.tag_momentum),
            overlap_weight=float(eval_config.overlap_weight), **common,
        ),
        BASELINE_SUFFIX: OverlapTracker(
            overlap=eval_config.baseline_overlap,
            min_overlap=float(eval_config.baseline_min_overlap), **common,
        ),
    }


def _scores(videos: list[list[tuple[FrameTracks, FrameTracks]]], min_joint_score: float) -> dict:
    boxes = box_tracking_metrics(videos)
    joints = posetrack_joint_metrics(videos, min_joint_score=min_joint_score)
    return {
        "MOTA": boxes["mota"], "IDF1": boxes["idf1"], "id_switches": boxes["num_switches"],
        "MOTA_joints": joints["mota"], "id_switches_joints": joints["num_switches"],
    }


def track_videos(
    videos: list[PoseTrackVideo],
    detections: list[list[list[Detection]]],
    eval_config: Any,
    sigmas: np.ndarray,
) -> tuple[dict[str, float], dict[str, list]]:
    """Links the detections with both trackers and scores them (module docstring).

    Args:
        videos: the scored videos (their frames as tracked: every `eval.frame_step`-th
            annotated frame).
        detections: per video, per tracked frame, its detections.
        eval_config: the `eval` section.
        sigmas: (K,) OKS sigmas.

    Returns:
        (metrics, per video id the predicted track ids per frame of our tracker).
    """
    trackers = _trackers(eval_config, sigmas)
    margin, min_score = float(eval_config.box_margin), float(eval_config.min_joint_score)
    scored: dict[str, list] = {suffix: [] for suffix in trackers}
    crossing: list[bool] = []
    tracks: dict[str, list] = {}
    frame_step = int(eval_config.frame_step)
    for video, video_detections in zip(videos, detections, strict=True):
        frames = video.labeled_frames[::frame_step]
        crossing.append(has_crossing(video))
        for suffix, tracker in trackers.items():
            ids = tracker.run(video_detections)
            pairs = []
            for frame, frame_ids, people in zip(frames, ids, video_detections, strict=True):
                record = frame.record
                poses = np.array([person.pose for person in people]).reshape(-1, *sigmas.shape, 3)
                scored_people = (frame_ids >= 0) & outside_ignore_regions(
                    poses, record.decode_ignore_mask(), min_score
                )
                kept = np.flatnonzero(scored_people)
                poses = poses[kept]
                ground_truth = FrameTracks(
                    ids=frame.track_ids, boxes=padded_boxes(record.keypoints, margin),
                    poses=record.keypoints, head_boxes=record.head_boxes,
                )
                prediction = FrameTracks(
                    ids=frame_ids[kept], boxes=padded_boxes(poses, margin, min_score),
                    poses=poses,
                )
                pairs.append((ground_truth, prediction))
            scored[suffix].append(pairs)
            if not suffix:
                tracks[video.video_id] = [frame_ids.tolist() for frame_ids in ids]
    metrics: dict[str, float] = {}
    for suffix, videos_pairs in scored.items():
        for name, value in _scores(videos_pairs, min_score).items():
            metrics[name + suffix] = float(value)
        crossing_pairs_ = [pairs for pairs, crosses in zip(videos_pairs, crossing, strict=True)
                           if crosses]
        if crossing_pairs_:
            for name, value in _scores(crossing_pairs_, min_score).items():
                metrics[name + suffix + CROSSING_SUFFIX] = float(value)
    metrics["num_videos"] = float(len(videos))
    metrics["num_videos_crossing"] = float(sum(crossing))
    return metrics, tracks


def evaluate_tracking(trainer: TrackingTrainer, step: int) -> dict[str, float]:
    """Tracks the trainer's validation videos with tags and with the overlap baseline.

    Writes WORKDIR/eval/step_<N>/metrics.json and tracks.json; returns the metrics (keys in
    the module docstring).
    """
    config = trainer.config
    videos = trainer.data.val_videos
    if int(config.eval.max_videos) > 0:
        videos = videos[: int(config.eval.max_videos)]
    output_dir = trainer.evaluation_dir(step)
    os.makedirs(output_dir, exist_ok=True)
    predictor = model_predictor(trainer.inference_model())
    options = dict(
        input_size=int(config.codec.input_size), num_joints=trainer.keypoint_info.num_joints,
        tag_dim=int(config.model.tag_dim), stride=int(trainer.model.output_stride),
        decoder={"grouping_order": trainer.keypoint_info.grouping_order,
                 **decoder_options(config.codec)},
    )
    detections = []
    num_frames = 0
    for video in videos:
        frames = video.labeled_frames[:: int(config.eval.frame_step)]
        images = [
            image_io.decode_image(frame.record.read_image_bytes(), source=frame.record.file_name)
            for frame in frames
        ]
        detections.append(frame_detections(predictor, images, **options))
        num_frames += len(frames)
    metrics, tracks = track_videos(
        videos, detections, config.eval, trainer.keypoint_info.sigmas_array
    )
    metrics["num_frames"] = float(num_frames)
    write_json(os.path.join(output_dir, "metrics.json"), metrics)
    with open(os.path.join(output_dir, "tracks.json"), "w") as handle:
        json.dump(tracks, handle)
    return metrics


def summary_line(metrics: dict[str, Any]) -> str:
    """IDF1, MOTA and ID switches of ours and the baseline, for the log line."""
    def value(name: str) -> float:
        return float(metrics.get(name, float("nan")))

    return (
        f"IDF1={value('IDF1'):.3f} (baseline {value('IDF1' + BASELINE_SUFFIX):.3f}) "
        f"MOTA={value('MOTA'):.3f} (baseline {value('MOTA' + BASELINE_SUFFIX):.3f}) "
        f"ID switches={value('id_switches'):.0f} "
        f"(baseline {value('id_switches' + BASELINE_SUFFIX):.0f})"
    )


def evaluation_table(metrics: dict[str, Any]) -> list[str]:
    """Ours and the baseline side by side, on all videos and on those with crossings."""
    lines = [f"  {'':22}{'tags':>9}{'overlap':>9}"]
    for scope, suffix in (("all", ""), ("crossing", CROSSING_SUFFIX)):
        for name in HEADLINE:
            ours = metrics.get(name + suffix)
            if ours is None:
                continue
            baseline = metrics.get(name + BASELINE_SUFFIX + suffix, float("nan"))
            digits = 0 if name.startswith("id_switches") else 3
            lines.append(f"  {name + ' (' + scope + ')':22}{ours:9.{digits}f}"
                         f"{baseline:9.{digits}f}")
    lines.append(
        f"  videos: {metrics.get('num_videos', 0):.0f} "
        f"({metrics.get('num_videos_crossing', 0):.0f} with crossings), "
        f"frames: {metrics.get('num_frames', 0):.0f}"
    )
    lines.append("  tags: TagTracker on the network's tags; overlap: OverlapTracker baseline")
    return lines
