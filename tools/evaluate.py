"""Evaluates a pose model (or the paper's oracles) on a COCO- or MPII-format split, or an
instance-segmentation model on a COCO instances split or PASCAL VOC.

Examples:
    # Ceiling of the representation: ground-truth heatmaps and tags, full resolution, no model.
    python tools/evaluate.py \
        --annotations=../shared/data/coco_mini_train2017/person_keypoints_train2017.json \
        --images=../shared/data/coco_mini_train2017/images \
        --oracle=gt_heatmaps,gt_tags --input_size=0 --output_stride=1 --output_dir=OUT

    # A trained model, multi-scale with flip, the paper's tag fusion.
    python tools/evaluate.py --model=model.keras --annotations=... --images=... \
        --scales=2,1,0.5 --flip --fusion=paper --output_dir=OUT

    # The paper's diagnostic: ground-truth detections, predicted tags.
    python tools/evaluate.py --model=model.keras --oracle=gt_heatmaps ...

    # The paper's full pipeline (Table 4): every person refined by the single-person network.
    python tools/evaluate.py --model=runs/coco --refine_checkpoint=runs/coco_refine \
        --refine_crop_sizes=256 --scales=2,1,0.5 --flip ...

    # Instance segmentation (the task is read from the work dir): mAP^r@0.5/0.7, COCO segm AP.
    python tools/evaluate.py --model=runs/shapes --output_dir=OUT \
        --annotations=runs/shapes/synthetic_shapes/annotations/instances_val.json \
        --images=runs/shapes/synthetic_shapes/val
    python tools/evaluate.py --model=runs/voc --voc_root=VOCdevkit/VOC2012 --scales=0.5,1,1.5 ...

Writes <output_dir>/metrics.json (key 'AP' among others) and, for COCO-format splits,
<output_dir>/keypoint_results.json (COCO results format); for segmentation, metrics.json (keys
'mAPr@0.5', 'mAPr@0.7', 'segm_AP', ...), segm_results.json and drawings/. The work is done by
``associative_embedding.evaluation``; this file only parses flags.

The annotations are checked once when read (``associative_embedding.data.annotation_checks``):
invalid entries are skipped and counted in a warning, and the evaluation scores the cleaned
annotations; --strict stops instead, naming the file and the annotation ids. Without any
detection keypoint_results.json is [] (which COCO.loadRes cannot load), AP is 0, and the tool
says so (and keypoint_results_note.txt explains it).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from associative_embedding.core import startup  # noqa: E402

# Before anything imports TensorFlow or tqdm: quiet start-up, visible progress bars.
startup.start_tool()

from absl import app, flags, logging  # noqa: E402

from associative_embedding.conversion import release_config  # noqa: E402
from associative_embedding.core import run_dir  # noqa: E402
from associative_embedding.core.keypoint_info import KEYPOINT_SETS  # noqa: E402
from associative_embedding.data import readers  # noqa: E402
from associative_embedding.data.annotation_checks import AnnotationError  # noqa: E402
from associative_embedding.evaluation.coco_keypoints import RESULTS_FILE_NAME  # noqa: E402
from associative_embedding.modeling import loading  # noqa: E402
from associative_embedding.tasks.pose import decoder_flags  # noqa: E402
from associative_embedding.tasks.pose import estimator as predictor_lib  # noqa: E402
from associative_embedding.tasks.pose.config import codec_settings, decoder_options  # noqa: E402
from associative_embedding.tasks.pose.oracle import ORACLES, parse_oracles  # noqa: E402
from associative_embedding.tasks.refinement import flags as refinement_flags  # noqa: E402

_ANNOTATIONS = flags.DEFINE_string(
    "annotations", None, "COCO-format keypoint JSON, MPII JSON conversion or MPII .mat release."
)
_IMAGES = flags.DEFINE_string("images", None, "Folder of the split's images.")
_MODEL = flags.DEFINE_string(
    "model",
    None,
    "A '.keras' model file, a SavedModel directory or a tools/train.py work dir (its best "
    "checkpoint); not needed with both oracles.",
)
_DATASET = flags.DEFINE_enum(
    "dataset", "auto", ["auto", *KEYPOINT_SETS],
    "Keypoint metadata (OKS sigmas, flip index, grouping order); auto: the set whose joint "
    "names the annotations list (PoseTrack files: posetrack), else from the joint count.",
)
_INPUT_SIZE = flags.DEFINE_integer(
    "input_size", None, "Long side of the scale-1 input; 0 keeps the original resolution "
    "(default: the training run's codec.input_size for a work dir or checkpoint, else 512).",
)
_OUTPUT_STRIDE = flags.DEFINE_integer(
    "output_stride",
    0,
    "Input pixels per map pixel; 0 = the network's own (4 unless it was built with 2), 4 with "
    "both oracles.",
)
_ORACLE = flags.DEFINE_list(
    "oracle", [], f"Comma list of oracles substituted before decoding: {', '.join(ORACLES)}."
)
_FLIP = flags.DEFINE_bool("flip", False, "Flip test: add the mirrored image.")
_SCALES = flags.DEFINE_list("scales", ["1"], "Input scale factors, e.g. 2,1,0.5.")
_FUSION = flags.DEFINE_enum(
    "fusion", "official", ["official", "paper"],
    "Multi-scale tags: official (scale nearest 1) or paper (all scales concatenated).",
)
_MAX_IMAGES = flags.DEFINE_integer("max_images", 0, "Evaluate only the first N images (0: all).")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where metrics.json and results go.")
_SKIP_MISSING = flags.DEFINE_bool(
    "skip_missing_images", True,
    "Skip (and report) images listed in the annotations whose file is missing.",
)
DECODER = decoder_flags.define_decoder_flags()
for _holder in DECODER.holders():
    flags.declare_key_flag(_holder)  # listed by --help beside the tool's own flags
_NMS_KERNEL = flags.DEFINE_integer("nms_kernel", 3, "Decoder: NMS max-pool window.")
_ORACLE_SIGMA = flags.DEFINE_float(
    "oracle_sigma", 0.0, "Heatmap sigma of the gt_heatmaps oracle (0: output size / 64)."
)
_ORACLE_SUBPIXEL = flags.DEFINE_bool(
    "oracle_subpixel", False,
    "gt_heatmaps oracle Gaussians at the exact sub-pixel joint position (as training with "
    "codec.subpixel_targets).",
)
REFINEMENT = refinement_flags.define_flags()
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar.")
_VOC_ROOT = flags.DEFINE_string(
    "voc_root", None, "Segmentation: VOCdevkit/VOC2012 (instead of --annotations/--images)."
)
_VOC_SPLIT = flags.DEFINE_string("voc_split", "val", "Segmentation: the VOC split list.")
_STRICT = flags.DEFINE_bool(
    "strict", False,
    "Stop with an error naming the file and the annotation ids when the annotations hold "
    "entries that would otherwise be skipped and counted (wrong keypoint lengths, duplicate or "
    "dangling ids, unusable boxes).",
)


def _run_config(model_path: str | None) -> Any:
    """The training config of --model when it is a work dir or checkpoint prefix, else None
    (a `.keras` file, a SavedModel, no model)."""
    if not model_path:
        return None
    try:
        return run_dir.read_training_config(model_path)
    except FileNotFoundError:
        return None


def _segmentation_run(model_path: str | None) -> bool:
    """Whether --model is an instance-segmentation training run (work dir or checkpoint)."""
    config = _run_config(model_path)
    return config is not None and run_dir.config_task(config) == "segmentation"


def _load_network(path: str) -> loading.Predictor:
    """--model's network; a missing one is a usage error, a damaged one names the file and the
    reason (a `UserInputError`, printed by run_tool)."""
    from associative_embedding.modeling.loading import load_inference_model

    try:
        return load_inference_model(path)
    except (FileNotFoundError, ValueError) as error:
        if isinstance(error, startup.UserInputError):
            raise
        raise app.UsageError(f"--model: {error}") from None


def _evaluate_segmentation() -> int:
    """Scores a segmentation run: decoder settings from its codec config, --scales and
    --input_size override them when given."""
    from associative_embedding.data.coco_instances import read_coco_instances
    from associative_embedding.data.voc import read_voc_instances
    from associative_embedding.tasks.segmentation.evaluation_hook import (
        evaluate_segmenter,
        segmenter_from_config,
    )

    config = run_dir.read_training_config(_MODEL.value)
    if flags.FLAGS["scales"].present:
        config.eval.scales = predictor_lib.parse_scales(_SCALES.value)
    if _INPUT_SIZE.value is not None:
        config.codec.input_size = _INPUT_SIZE.value
    predictor = _load_network(_MODEL.value)
    if _VOC_ROOT.value:
        records, categories = read_voc_instances(_VOC_ROOT.value, _VOC_SPLIT.value)
    elif _ANNOTATIONS.value and _IMAGES.value:
        records, categories = read_coco_instances(
            _ANNOTATIONS.value, _IMAGES.value, skip_invalid=not _STRICT.value
        )
    else:
        raise app.UsageError("segmentation needs --annotations and --images, or --voc_root.")
    if categories.num_categories != int(config.dataset.num_categories):
        raise app.UsageError(
            f"the split has {categories.num_categories} categories, the model "
            f"{config.dataset.num_categories}."
        )
    if _MAX_IMAGES.value > 0:
        records = records[: _MAX_IMAGES.value]
    segmenter = segmenter_from_config(predictor, config)
    metrics, _ = evaluate_segmenter(
        segmenter, records, categories, _OUTPUT_DIR.value,
        progress=None if _PROGRESS.value else True,
    )
    print(
        f"mAPr@0.5 = {metrics['mAPr@0.5']:.4f}, mAPr@0.7 = {metrics['mAPr@0.7']:.4f}, "
        f"segm AP = {metrics['segm_AP']:.4f} on {len(records)} images (input_size "
        f"{config.codec.input_size}, scales {list(config.eval.scales)})"
    )
    return 0


def main(argv: list[str]) -> int:
    del argv
    # A converted release (tools/convert_weights.py) brings its official test-time settings.
    for line in release_config.apply_release_defaults():
        print(f"release default: --{line}")
    if _segmentation_run(_MODEL.value):
        return _evaluate_segmentation()
    oracles = parse_oracles(_ORACLE.value)
    codec = codec_settings(
        _run_config(_MODEL.value),
        input_size=_INPUT_SIZE.value,
        **DECODER.overrides(),
    )
    config = predictor_lib.InferenceConfig(
        input_size=int(codec["input_size"]),
        output_stride=_OUTPUT_STRIDE.value or predictor_lib.DEFAULT_OUTPUT_STRIDE,
        scales=predictor_lib.parse_scales(_SCALES.value),
        flip=_FLIP.value,
        fusion=_FUSION.value,
        oracles=oracles,
        oracle_sigma=_ORACLE_SIGMA.value or None,
        oracle_subpixel=_ORACLE_SUBPIXEL.value,
        decoder={**decoder_options(codec), "nms_kernel": _NMS_KERNEL.value},
    )
    if config.needs_network and not _MODEL.value:
        raise app.UsageError("--model is required unless --oracle=gt_heatmaps,gt_tags.")
    model_given = _MODEL.value and (
        os.path.exists(_MODEL.value) or os.path.isfile(_MODEL.value + ".index")
    )
    if config.needs_network and not model_given:
        # Before the split is read (minutes for a large one).
        raise app.UsageError(f"--model not found: {_MODEL.value}")
    try:
        split = readers.read_split(
            _ANNOTATIONS.value,
            _IMAGES.value,
            dataset=_DATASET.value,
            skip_missing_images=_SKIP_MISSING.value,
            strict=_STRICT.value,
        )
    except AnnotationError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    network = _load_network(_MODEL.value) if config.needs_network else None
    if network is not None and network.output_stride and not _OUTPUT_STRIDE.value:
        config = dataclasses.replace(config, output_stride=network.output_stride)
    try:
        refiner = refinement_flags.refiner_from_flags(REFINEMENT, split.keypoint_info)
    except (FileNotFoundError, ValueError) as error:
        raise app.UsageError(f"--refine_checkpoint: {error}") from None
    estimator = predictor_lib.PoseEstimator(network, split.keypoint_info, config, refiner)
    os.makedirs(_OUTPUT_DIR.value, exist_ok=True)
    evaluator = predictor_lib.build_evaluator(split, _OUTPUT_DIR.value)
    metrics = predictor_lib.evaluate_records(
        split.records,
        estimator,
        evaluator,
        max_images=_MAX_IMAGES.value,
        progress=_PROGRESS.value,
    )
    if not metrics:
        logging.error("No image was evaluated (is the split empty?).")
        return 1
    metrics["num_images_skipped"] = split.num_images_skipped
    metrics["refine_checkpoint"] = REFINEMENT.checkpoint.value
    run_dir.write_json(os.path.join(_OUTPUT_DIR.value, "metrics.json"), metrics)
    if refiner is not None:
        print(refiner.stats.describe())
    if metrics.get("num_detections") == 0:
        print(
            f"Nothing was detected in the {metrics['num_images']} images: AP is 0. "
            f"{os.path.join(_OUTPUT_DIR.value, RESULTS_FILE_NAME)} is [] (COCO.loadRes cannot "
            "load an empty list; coco_keypoints.load_results can)."
        )
    print(
        f"{split.keypoint_info.name} {os.path.basename(split.annotation_file)}: "
        f"AP = {metrics['AP']:.4f} on {metrics['num_images']} images "
        f"(oracles: {','.join(sorted(oracles)) or 'none'}; input_size {config.input_size}, "
        f"stride {config.output_stride}, scales {list(config.scales)}, flip {config.flip}, "
        f"refinement {REFINEMENT.checkpoint.value or 'none'})"
    )
    return 0


if __name__ == "__main__":
    flags.mark_flags_as_required(["annotations", "images", "output_dir"])
    startup.run_tool(main)
