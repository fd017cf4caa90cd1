"""Runs a pose or instance-segmentation model on photos, a folder, a glob, a video or a webcam.

Examples:
    # A folder of photos with a training run's best checkpoint (non-images are skipped).
    python tools/predict.py --input=photos/ --checkpoint=runs/coco --output_dir=out

    # A video with an exported SavedModel, flip test and two scales: out/drawings/clip.mp4.
    python tools/predict.py --input=clip.mp4 --saved_model=export/1 --flip --scales=1,0.5 \\
        --output_dir=out

    # A glob, a .keras file, and the paper's tag plots (Figures 4 and 7) for every image.
    python tools/predict.py --input='data/**/*.jpg' --checkpoint=model.keras --tag_plot \\
        --output_dir=out

    # The paper's full pipeline: every person refined by a single-person network (Table 4).
    python tools/predict.py --input=photos/ --checkpoint=runs/coco \\
        --refine_checkpoint=runs/coco_refine --output_dir=out

    # The first webcam until Ctrl-C (or --max_frames).
    python tools/predict.py --input=0 --checkpoint=model.keras --output_dir=out

    # Pose tracking on a video (a tracking run's work dir is recognised; any pose model with
    # tags works): out/drawings/clip.mp4 with one colour per track, per-frame track ids in
    # out/predictions.json, every track's first and last frame in out/tracks.json.
    python tools/predict.py --input=clip.mp4 --checkpoint=runs/posetrack --task=tracking \\
        --max_tag_distance=0.5 --output_dir=out

    # Instance segmentation (the task is read from the run's config; --task forces it):
    # coloured instance masks in out/drawings, COCO segm results (RLE) in out/results.json.
    python tools/predict.py --input=photos/ --checkpoint=runs/synthetic_shapes_seg \
        --task=segmentation --output_dir=out

Writes under --output_dir (see associative_embedding/inference/writers.py):
    results.json       COCO keypoint results with a numeric image_id each (joints clipped into
                       the image; frame_id for video); [] when nobody is found, with
                       results_note.txt saying so (COCO.loadRes cannot load an empty list),
    image_ids.json     every image with its image_id (a numeric file name keeps its number,
                       others a stable hash of the name) as a COCO dataset without
                       annotations: COCO("image_ids.json").loadRes("results.json") works,
    predictions.json   one entry per image / frame with its people ([] for no person),
    drawings/          the images with skeletons under their own names, or <video>.mp4
                       (people scoring below --draw_threshold left out: a weak model's
                       phantoms; the JSON files keep everyone),
    tag_plots/         with --tag_plot: <name>_tags.png (tag per joint and person) and
                       <name>_tag_maps.png (each joint's tag map over the image).
For --task=segmentation the files are described in associative_embedding/tasks/segmentation/
predict.py (results.json with RLE masks, predictions.json with 'instances', drawings with
coloured masks); the decoder settings come from the training run's codec section.
For --task=tracking they are described in associative_embedding/tasks/tracking/predict.py
(predictions.json and results.json with each person's track_id, tracks.json, the mp4 drawn
in track colours); the tracker's options come from a tracking run's eval section unless a
flag is given.
The work is done by ``associative_embedding.inference``, ``associative_embedding.tasks.pose``,
``associative_embedding.tasks.segmentation`` and ``associative_embedding.tasks.tracking``;
this file only parses flags.
"""

from __future__ import annotations

import os
import sys
import zipfile
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from associative_embedding.core import startup  # noqa: E402

# Before anything imports TensorFlow or tqdm: quiet start-up, visible progress bars.
startup.start_tool()

from absl import app, flags  # noqa: E402

from associative_embedding.conversion import release_config  # noqa: E402
from associative_embedding.core.keypoint_info import (  # noqa: E402
    KEYPOINT_SETS,
    KeypointInfo,
    get_keypoint_info,
)
from associative_embedding.core.visualization import DEFAULT_DRAW_THRESHOLD  # noqa: E402

# OpenCV only: input errors are reported before TensorFlow is imported (main imports it).
from associative_embedding.inference import sources  # noqa: E402
from associative_embedding.tasks.pose import decoder_flags  # noqa: E402
from associative_embedding.tasks.refinement import flags as refinement_flags  # noqa: E402

# NumPy, SciPy and OpenCV only (no TensorFlow): the tracker's defaults for the flags' help.
from associative_embedding.tasks.tracking import predict as tracking_runner  # noqa: E402

_INPUT = flags.DEFINE_string(
    "input", None,
    "An image file, a folder of images, a glob pattern (quote it), a video file "
    f"({', '.join(sorted(sources.VIDEO_EXTENSIONS))}) or a webcam index (0, 1, ...).",
)
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None,
    "A tools/train.py work dir (its best checkpoint), a training checkpoint prefix "
    "(WORKDIR/checkpoints/ckpt-N) or a '.keras' file.",
)
_SAVED_MODEL = flags.DEFINE_string(
    "saved_model", None, "A SavedModel directory (e.g. tools/export.py's EXPORT_DIR/1)."
)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where the JSON and drawings go.")
_TASK = flags.DEFINE_enum(
    "task", "auto", ["auto", "pose", "segmentation", "tracking"],
    "auto: the training run's config.task for a work dir or checkpoint prefix, else pose. "
    "tracking: poses linked over the frames by their tags (any pose model with tags).",
)
_DATASET = flags.DEFINE_enum(
    "dataset", "auto", ["auto", *KEYPOINT_SETS],
    "Keypoint metadata (skeleton, joint names, flip index, grouping order); auto: the training "
    "run's config.dataset.keypoints for a work dir or checkpoint, else from the model's joint "
    "count.",
)
_INPUT_SIZE = flags.DEFINE_integer(
    "input_size", None,
    "Long side of the scale-1 network input; 0 keeps the original size (default: the training "
    "run's codec.input_size for a work dir or checkpoint, else 512).",
)
_SCALES = flags.DEFINE_list("scales", ["1"], "Input scale factors, e.g. 2,1,0.5.")
_FLIP = flags.DEFINE_bool("flip", False, "Flip test: add the mirrored image.")
_FUSION = flags.DEFINE_enum(
    "fusion", "official", ["official", "paper"],
    "Multi-scale tags: official (scale nearest 1) or paper (all scales concatenated).",
)
_DRAW_THRESHOLD = flags.DEFINE_float(
    "draw_threshold", None,
    "Drawings only (results.json and predictions.json keep everyone): people (segmentation: "
    "instances) whose score is below this are not drawn, nor tag-plotted. A person's score is "
    "the mean heatmap value of its K joints, missing joints counting 0. Default: "
    f"{DEFAULT_DRAW_THRESHOLD} for poses (e.g. every joint at {DEFAULT_DRAW_THRESHOLD}, or a "
    "third of them at 0.9: a weak model's people below it are nearly all phantoms, see "
    "associative_embedding/core/visualization.py), 0 for instances. 0 draws everyone.",
)
flags.DEFINE_alias("person_threshold", "draw_threshold")
_SCORE_THRESHOLD = flags.DEFINE_float(
    "score_threshold", None,
    "Drawings only: joints scoring below this are not drawn (default: --detection_threshold, "
    "the decoder's own bar for a joint).",
)
DECODER = decoder_flags.define_decoder_flags()
for _holder in DECODER.holders():
    flags.declare_key_flag(_holder)  # listed by --help beside the tool's own flags
REFINEMENT = refinement_flags.define_flags()
# --task=tracking: the TagTracker's options under its own names, defaulting to a tracking run's
# config.eval fields of the same names, else to the tracker's defaults.
_TRACKER_DEFAULTS = tracking_runner.tracker_options()
_TRACKER_HELP = {
    "max_tag_distance": "a person continues a track only within this tag distance (RMS over "
                        "the tag dims, like --tag_threshold)",
    "tag_momentum": "a track's tag after a match: momentum * old + (1 - momentum) * new",
    "overlap_weight": "weight of (1 - OKS) added to the tag distance when matching (0: tags "
                      "alone)",
    "min_birth_score": "an unmatched person starts a track only with a score >= this (others "
                       "get track_id -1)",
    "max_missed_frames": "a track unmatched for more consecutive frames than this ends",
}
_TRACKER_FLAGS = {
    name: (flags.DEFINE_integer if name == "max_missed_frames" else flags.DEFINE_float)(
        name, None,
        f"Tracking: {help_text} (default: a tracking run's eval.{name}, else "
        f"{_TRACKER_DEFAULTS[name]}).",
    )
    for name, help_text in _TRACKER_HELP.items()
}
_TAG_PLOT = flags.DEFINE_bool(
    "tag_plot", False, "Also save the tag plot PNGs (paper Figures 4 and 7) per image / frame."
)
_DRAW = flags.DEFINE_bool("draw", True, "Write drawn images (or the mp4 of a video).")
_MAX_FRAMES = flags.DEFINE_integer(
    "max_frames", 0, "Process at most this many images or video frames (0: all)."
)
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar.")


def _model_path() -> str:
    """The model to load, checked against the flag that named it."""
    if bool(_CHECKPOINT.value) == bool(_SAVED_MODEL.value):
        raise app.UsageError("give exactly one of --checkpoint and --saved_model.")
    if _SAVED_MODEL.value:
        path = _SAVED_MODEL.value
        if not os.path.exists(path):
            raise app.UsageError(f"--saved_model not found: {path}")
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise app.UsageError(f"--saved_model {path}: not a SavedModel (no saved_model.pb).")
        return path
    path = _CHECKPOINT.value
    if not os.path.exists(path) and not _is_checkpoint_prefix(path):
        raise app.UsageError(f"--checkpoint not found: {path}")
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise app.UsageError(f"--checkpoint {path} is a SavedModel; pass it as --saved_model.")
    is_keras_file = os.path.isfile(path) and path.endswith(".keras")
    is_workdir = os.path.isfile(os.path.join(path, "config.json"))
    if not (is_keras_file or is_workdir or _is_checkpoint_prefix(path)):
        raise app.UsageError(
            f"--checkpoint {path}: neither a '.keras' file, a tools/train.py work dir "
            "(no config.json) nor a checkpoint prefix (no .index file)."
        )
    if is_keras_file and not zipfile.is_zipfile(path):
        raise app.UsageError(
            f"--checkpoint {path} exists but is unreadable (truncated or corrupt: not a zip "
            "archive, as every '.keras' file is)."
        )
    return path


def _is_checkpoint_prefix(path: str) -> bool:
    return os.path.isfile(path + ".index")


def _training_config(model_path: str) -> Any:
    """The training run's config when the model is a work dir or checkpoint prefix, else None
    (a .keras file: the flags' defaults are the schema's)."""
    from associative_embedding.core.run_dir import read_training_config

    try:
        return read_training_config(model_path)
    except FileNotFoundError:
        return None


def _inference_config(model_path: str) -> Any:
    """The test-time settings (an ``InferenceConfig``) from the flags and the run's codec."""
    from associative_embedding.tasks.pose import estimator as predictor_lib
    from associative_embedding.tasks.pose.config import codec_settings, decoder_options

    codec = codec_settings(
        _training_config(model_path) if _CHECKPOINT.value else None,
        input_size=_INPUT_SIZE.value,
        **DECODER.overrides(),
    )
    try:
        return predictor_lib.InferenceConfig(
            input_size=int(codec["input_size"]),
            scales=predictor_lib.parse_scales(_SCALES.value),
            flip=_FLIP.value,
            fusion=_FUSION.value,
            decoder=decoder_options(codec),
        )
    except ValueError as error:
        raise app.UsageError(str(error)) from None


def _keypoint_info(model_path: str) -> KeypointInfo | None:
    """--dataset, else the training run's joint set, else None (told by the joint count)."""
    if _DATASET.value != "auto":
        return get_keypoint_info(_DATASET.value)
    config = _training_config(model_path) if _CHECKPOINT.value else None
    if config is not None and "keypoints" in config.get("dataset", {}):
        return get_keypoint_info(config.dataset.keypoints)
    return None


def _draw_threshold(*, default: float) -> float:
    """--draw_threshold, or the task's default (poses and instances have their own)."""
    return default if _DRAW_THRESHOLD.value is None else _DRAW_THRESHOLD.value


def _task(model_path: str) -> str:
    """--task, or the training run's task (pose for .keras files and SavedModels)."""
    if _TASK.value != "auto":
        return _TASK.value
    if not _CHECKPOINT.value:
        return "pose"
    from associative_embedding.core.run_dir import config_task, read_training_config

    try:
        return config_task(read_training_config(model_path))
    except FileNotFoundError:
        return "pose"


def _run_segmentation(model_path: str, source: Any) -> int:
    """--task=segmentation: a segmentation work dir or checkpoint prefix."""
    from associative_embedding.core.run_dir import read_training_config, training_workdir
    from associative_embedding.modeling.loading import load_inference_model
    from associative_embedding.tasks.pose import estimator as predictor_lib
    from associative_embedding.tasks.segmentation import predict as segmentation_predict
    from associative_embedding.tasks.segmentation.evaluation_hook import segmenter_from_config

    try:
        config = read_training_config(model_path)
    except FileNotFoundError as error:
        source.close()
        raise app.UsageError(
            f"--task=segmentation needs a training work dir or checkpoint prefix: {error}"
        ) from None
    try:
        predictor = load_inference_model(model_path)
    except (FileNotFoundError, ValueError) as error:
        source.close()
        if isinstance(error, startup.UserInputError):
            raise  # a damaged model: its message names the file and the reason
        raise app.UsageError(str(error)) from None
    num_categories = int(config.dataset.num_categories)
    categories = segmentation_predict.read_categories(
        training_workdir(model_path), num_categories
    )
    if flags.FLAGS["scales"].present:
        config.eval.scales = predictor_lib.parse_scales(_SCALES.value)
    if _INPUT_SIZE.value is not None:
        config.codec.input_size = _INPUT_SIZE.value
    segmenter = segmenter_from_config(predictor, config)
    try:
        summary = segmentation_predict.run_segmentation(
            source, segmenter, categories, _OUTPUT_DIR.value,
            score_threshold=_draw_threshold(default=0.0), draw=_DRAW.value,
            progress=_PROGRESS.value,
        )
    except (sources.SourceError, OSError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    print(
        f"{source.description}: {summary.num_frames} images, {summary.num_instances} "
        f"instances.\nResults: {summary.results_path} (per image: {summary.predictions_path})."
    )
    if summary.drawing_paths:
        print(f"Drawings: {os.path.dirname(summary.drawing_paths[0])}{os.sep}")
    if summary.num_frames == 0:
        print("No image could be read.", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    # A converted release (tools/convert_weights.py) brings its official test-time settings.
    for line in release_config.apply_release_defaults():
        print(f"release default: --{line}")
    if os.path.isfile(_OUTPUT_DIR.value):
        raise app.UsageError(f"--output_dir {_OUTPUT_DIR.value} is a file.")
    model_path = _model_path()
    # Input first: a wrong path fails at once, before TensorFlow and the model are loaded.
    try:
        source = sources.open_source(_INPUT.value, max_frames=_MAX_FRAMES.value)
    except (FileNotFoundError, ValueError) as error:
        raise app.UsageError(f"--input: {error}") from None

    task = _task(model_path)
    if task == "segmentation":
        if REFINEMENT.checkpoint.value:
            source.close()
            raise app.UsageError("--refine_checkpoint refines poses; not for segmentation.")
        return _run_segmentation(model_path, source)
    if task == "tracking" and _TAG_PLOT.value:
        source.close()
        raise app.UsageError("--tag_plot is for --task=pose; tracking draws track colours.")

    estimator, refiner = _pose_estimator(model_path, source)
    score_threshold = (
        estimator.config.decoder["detection_threshold"] if _SCORE_THRESHOLD.value is None
        else _SCORE_THRESHOLD.value
    )
    if task == "tracking":
        status = _run_tracking(model_path, source, estimator, score_threshold)
    else:
        status = _run_pose(source, estimator, score_threshold)
    if refiner is not None:
        print(refiner.stats.describe())
    return status


def _pose_estimator(model_path: str, source: Any) -> tuple[Any, Any]:
    """The ``ImagePoseEstimator`` of the model and flags, and its refiner (or None)."""
    from associative_embedding.modeling.loading import load_inference_model
    from associative_embedding.tasks.pose import image_estimator as estimator_lib

    config = _inference_config(model_path)
    try:
        predictor = load_inference_model(model_path)
        layout = estimator_lib.infer_layout(predictor, _keypoint_info(model_path))
    except (FileNotFoundError, ValueError) as error:
        source.close()
        if isinstance(error, startup.UserInputError):
            raise  # a damaged model: its message names the file and the reason
        raise app.UsageError(str(error)) from None
    try:
        refiner = refinement_flags.refiner_from_flags(REFINEMENT, layout.keypoint_info)
    except (FileNotFoundError, ValueError) as error:
        source.close()
        raise app.UsageError(f"--refine_checkpoint: {error}") from None
    config.output_stride = layout.output_stride
    estimator = estimator_lib.ImagePoseEstimator(
        predictor, layout.keypoint_info, config, refiner
    )
    return estimator, refiner


def _run_pose(source: Any, estimator: Any, score_threshold: float) -> int:
    """--task=pose: poses per image or frame."""
    from associative_embedding.inference import writers
    from associative_embedding.tasks.pose import predict as runner

    options = runner.PredictOptions(
        score_threshold=score_threshold,
        person_threshold=_draw_threshold(default=DEFAULT_DRAW_THRESHOLD),
        draw=_DRAW.value,
        tag_plot=_TAG_PLOT.value,
        progress=_PROGRESS.value,
    )
    try:
        summary = runner.run_prediction(source, estimator, _OUTPUT_DIR.value, options)
    except (sources.SourceError, OSError) as error:
        # An input that stops yielding frames, or an output that cannot be written: the
        # message names the file; what was done so far is already written.
        print(f"Error: {error}", file=sys.stderr)
        return 1
    print(runner.describe(summary, source))
    if summary.num_frames and not summary.num_people:
        print(
            f"Nothing was detected: {summary.results_path} is [] "
            f"(see {os.path.join(_OUTPUT_DIR.value, writers.RESULTS_NOTE_FILE)})."
        )
    if summary.num_frames == 0:
        print("No image could be read.", file=sys.stderr)
        return 1
    return 0


def _run_tracking(model_path: str, source: Any, estimator: Any, score_threshold: float) -> int:
    """--task=tracking: poses per frame linked into tracks by their tags."""
    from associative_embedding.tasks.tracking.tracker import TagTracker

    run_config = _training_config(model_path) if _CHECKPOINT.value else None
    try:
        tracker = TagTracker(
            **tracking_runner.tracker_options(
                run_config, **{name: flag.value for name, flag in _TRACKER_FLAGS.items()}
            ),
            sigmas=estimator.keypoint_info.sigmas_array,
        )
    except ValueError as error:
        source.close()
        raise app.UsageError(str(error)) from None
    options = tracking_runner.TrackingOptions(
        score_threshold=score_threshold,
        person_threshold=_draw_threshold(default=DEFAULT_DRAW_THRESHOLD),
        draw=_DRAW.value,
        progress=_PROGRESS.value,
    )
    try:
        summary = tracking_runner.run_tracking(
            source, estimator, tracker, _OUTPUT_DIR.value, options
        )
    except (sources.SourceError, OSError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    print(tracking_runner.describe(summary, source))
    if summary.num_frames == 0:
        print("No frame could be read.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    flags.mark_flags_as_required(["input", "output_dir"])
    startup.run_tool(main)
