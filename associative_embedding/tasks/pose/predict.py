"""The predict loop: source frames -> poses -> results JSON, drawings (images or mp4), tag plots.

``run_prediction`` is what ``tools/predict.py`` runs once it has parsed its flags; it is usable
alone (tests, notebooks). Files and their layout: ``inference.writers``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np
from absl import logging
from tqdm import tqdm

from associative_embedding.core import visualization
from associative_embedding.inference.sources import Source
from associative_embedding.inference.writers import (
    ImageWriter,
    ResultsWriter,
    TagPlotWriter,
    VideoWriter,
)
from associative_embedding.tasks.pose.image_estimator import ImagePoseEstimator, ImagePrediction

__all__ = ["PredictOptions", "PredictSummary", "describe", "run_prediction", "tag_plot_pictures"]

# Long side of each panel of the tag-map picture (Figure 7) and of its maps' grid.
_TAG_PANEL_SIZE = 256


@dataclasses.dataclass
class PredictOptions:
    """What to draw and write besides the results JSON.

    Attributes:
        score_threshold: joints with a lower score are not drawn (nor plotted in the tag plot).
        person_threshold: people with a lower score are not drawn (nor plotted); the results
            JSON keeps every person (COCO AP wants all detections). Default:
            ``visualization.DEFAULT_DRAW_THRESHOLD`` (tools/predict.py --draw_threshold).
        draw: write drawn images (or the mp4 for a video).
        tag_plot: also write the tag plot (Figure 4) and tag-map picture (Figure 7) per image.
        progress: show a tqdm progress bar.
    """

    score_threshold: float = 0.1
    person_threshold: float = visualization.DEFAULT_DRAW_THRESHOLD
    draw: bool = True
    tag_plot: bool = False
    progress: bool = True


@dataclasses.dataclass
class PredictSummary:
    """What a run did.

    Attributes:
        num_frames: images or video frames processed.
        num_people: people written to the results JSON (all frames).
        num_skipped_non_images: files skipped because they are not images.
        num_skipped_unreadable: image files skipped because they could not be decoded.
        non_image_files: the paths of the former.
        unreadable_files: the paths of the latter.
        results_path: the results JSON.
        predictions_path: the per-image JSON.
        drawing_paths: drawn images, or the one mp4 of a video.
        tag_plot_paths: tag plot PNGs.
        interrupted: True when the run was stopped with Ctrl-C (files are still complete).
    """

    num_frames: int
    num_people: int
    num_skipped_non_images: int
    num_skipped_unreadable: int
    non_image_files: list[str]
    unreadable_files: list[str]
    results_path: str
    predictions_path: str
    drawing_paths: list[str]
    tag_plot_paths: list[str]
    interrupted: bool = False


def _drawn_people(prediction: ImagePrediction, person_threshold: float) -> np.ndarray:
    """Indices of the people drawn (and tag-plotted): score >= person_threshold."""
    return visualization.people_to_draw(prediction.scores, person_threshold)


def tag_plot_pictures(
    image: np.ndarray,
    prediction: ImagePrediction,
    joint_names: Sequence[str],
    *,
    people: np.ndarray | None = None,
    score_threshold: float = 0.1,
    detection_threshold: float = 0.1,
) -> list[tuple[str, np.ndarray]]:
    """The Figure 4 tag plot and the Figure 7 tag-map picture of one prediction.

    Args:
        image: (H, W, 3) uint8 RGB, the image the prediction belongs to.
        prediction: its ``ImagePrediction``.
        joint_names: K joint names.
        people: indices of the people to plot, in drawing order so their colours match
            the drawing (default: all).
        score_threshold: joints with a lower score are left out of the tag plot.
        detection_threshold: heatmap value counted as a detection (tag-map colour range).

    Returns:
        [('tags', (480, 720, 3) uint8 RGB), ('tag_maps', (h, w, 3) uint8 RGB)].
    """
    if people is None:
        people = np.arange(prediction.num_people)
    people = np.asarray(people, dtype=np.int64).reshape(-1)
    # Decoder poses are heatmap corner coordinates; the tag maps are read at pixel centres.
    centre_poses = prediction.map_poses[people] - np.array([0.5, 0.5, 0.0], np.float32)
    person_tags = visualization.person_joint_tags(
        centre_poses, prediction.tags, score_threshold=score_threshold
    )
    tag_plot = visualization.draw_tag_plot(person_tags, joint_names)
    heatmaps, tags = prediction.maps_on_image(max_size=_TAG_PANEL_SIZE)
    tag_maps = visualization.draw_tag_heatmaps(
        image, heatmaps, tags, joint_names, detection_threshold=detection_threshold,
        panel_size=_TAG_PANEL_SIZE,
    )
    return [("tags", tag_plot), ("tag_maps", tag_maps)]


def _video_fps(source: Source) -> float:
    return float(getattr(source, "fps", 30.0))


def run_prediction(
    source: Source,
    estimator: ImagePoseEstimator,
    output_dir: str,
    options: PredictOptions | None = None,
) -> PredictSummary:
    """Estimates poses on every frame of `source` and writes the files of ``writers``.

    The JSON files and the mp4 are finished even when the loop stops early (an error, or
    Ctrl-C, which ends a webcam run cleanly).

    Args:
        source: the input (``sources.open_source``).
        estimator: image -> poses.
        output_dir: created if needed.
        options: drawing and output options.

    Returns:
        A ``PredictSummary``.
    """
    options = options or PredictOptions()
    os.makedirs(output_dir, exist_ok=True)
    keypoint_info = estimator.keypoint_info
    detection_threshold = float(estimator.config.decoder.get("detection_threshold", 0.1))
    results = ResultsWriter(output_dir)
    image_writer = ImageWriter(output_dir)
    tag_writer = TagPlotWriter(output_dir)
    video_writer: VideoWriter | None = None
    num_frames = 0
    interrupted = False
    unit = "frame" if source.is_video else "img"
    progress = tqdm(total=source.length, desc="predict", unit=unit, disable=not options.progress)
    try:
        for frame in source:
            prediction = estimator(frame.image)
            results.add(
                prediction.poses, prediction.scores, file_name=frame.name,
                image_size=prediction.image_size, frame_id=frame.frame_id,
            )
            people = _drawn_people(prediction, options.person_threshold)
            if options.draw:
                picture = visualization.draw_poses(
                    frame.image, prediction.poses[people], keypoint_info,
                    score_threshold=options.score_threshold,
                )
                if source.is_video:
                    if video_writer is None:
                        video_writer = VideoWriter(output_dir, frame.name, _video_fps(source))
                    video_writer.write(picture, input_path=frame.path)
                else:
                    image_writer.write(frame.name, picture, input_path=frame.path)
            if options.tag_plot:
                pictures = tag_plot_pictures(
                    frame.image, prediction, keypoint_info.joint_names, people=people,
                    score_threshold=options.score_threshold,
                    detection_threshold=detection_threshold,
                )
                tag_writer.write(frame.name, pictures, frame_id=frame.frame_id)
            num_frames += 1
            progress.set_postfix(people=results.num_people, refresh=False)
            progress.update(1)
    except KeyboardInterrupt:
        # Stopping a webcam (or a long video) with Ctrl-C keeps what was done so far.
        interrupted = True
        logging.warning("interrupted after %d frames; writing what was done.", num_frames)
    finally:
        progress.close()
        if video_writer is not None:
            video_writer.close()
        source.close()
        results.write()
    _report_skipped(source)
    drawing_paths = [video_writer.path] if video_writer is not None else image_writer.paths
    return PredictSummary(
        num_frames=num_frames,
        num_people=results.num_people,
        num_skipped_non_images=source.num_skipped_non_images,
        num_skipped_unreadable=source.num_skipped_unreadable,
        non_image_files=list(source.non_image_files),
        unreadable_files=list(source.unreadable_files),
        results_path=results.results_path,
        predictions_path=results.predictions_path,
        drawing_paths=list(drawing_paths),
        tag_plot_paths=list(tag_writer.paths),
        interrupted=interrupted,
    )


def _report_skipped(source: Source) -> None:
    if source.num_skipped_unreadable:
        logging.warning(
            "%s: %d unreadable image files were skipped: %s", source.description,
            source.num_skipped_unreadable,
            ", ".join(source.unreadable_files),
        )


def describe(summary: PredictSummary, source: Source) -> str:
    """A one-paragraph human summary of a run (printed by the tool)."""
    what = "frames" if source.is_video else "images"
    lines = [f"{source.description}: {summary.num_frames} {what}, {summary.num_people} people."]
    if not source.is_video:
        lines.append(
            f"Skipped {summary.num_skipped_non_images} non-image files and "
            f"{summary.num_skipped_unreadable} unreadable images."
        )
    lines.append(f"Results: {summary.results_path} (per image: {summary.predictions_path}).")
    if summary.drawing_paths:
        where = (summary.drawing_paths[0] if len(summary.drawing_paths) == 1
                 else os.path.dirname(summary.drawing_paths[0]) + os.sep)
        lines.append(f"Drawings: {where}")
    if summary.tag_plot_paths:
        lines.append(f"Tag plots: {os.path.dirname(summary.tag_plot_paths[0])}{os.sep}")
    if summary.interrupted:
        lines.append("Interrupted: the files hold the frames processed before Ctrl-C.")
    return "\n".join(lines)
