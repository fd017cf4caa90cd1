"""Exports a trained model as a TF Serving SavedModel (and optionally TFLite).

Usage:
    python tools/export.py --workdir=runs/synthetic_pose --export_dir=exports/synthetic_pose
    python tools/export.py --checkpoint=runs/coco/checkpoints/ckpt-200000 \
        --export_dir=exports/coco --version=2 --flip --tflite
    python tools/export.py --checkpoint=model.keras --dataset=coco --export_dir=exports/m

Writes EXPORT_DIR/<version>/ with the signatures serving_default (uint8 images -> heatmaps and
tags), serve_bytes (encoded images -> the same) and predict_poses (uint8 image -> poses in image
pixels, decoded inside the graph), plus EXPORT_DIR/<version>/assets.extra/export_config.json; with
--tflite also EXPORT_DIR/model_<S>.tflite (the network alone, fixed S x S input). Check with
`saved_model_cli show --dir EXPORT_DIR/1 --all`. Defaults (input size, adjust, thresholds) come
from the work dir's config.json when there is one. With --refine_checkpoint (the paper's
single-person refinement network: a work dir, checkpoint prefix or .keras file) it is exported
too, as EXPORT_DIR/refinement/<version>/ with its refiner options (crop sizes, threshold, flip;
--refine_* flags override the refinement run's) in assets.extra/refinement_config.json; serve
it beside the pose model, e.g. `tools/predict.py --saved_model=EXPORT_DIR/1
--refine_checkpoint=EXPORT_DIR/refinement/1`. The logic is associative_embedding.export.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from associative_embedding.core import startup  # noqa: E402

# Before anything imports TensorFlow or tqdm: quiet start-up, visible progress bars.
startup.start_tool()

from absl import app, flags  # noqa: E402

from associative_embedding.conversion import release_config  # noqa: E402
from associative_embedding.core.keypoint_info import KEYPOINT_SETS  # noqa: E402
from associative_embedding.tasks.pose import decoder_flags  # noqa: E402
from associative_embedding.tasks.refinement import flags as refinement_flags  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "A tools/train.py work dir: its best checkpoint.")
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None,
    "Instead of --workdir: a training checkpoint prefix (WORKDIR/checkpoints/ckpt-N) or a "
    "'.keras' model file.",
)
_EXPORT_DIR = flags.DEFINE_string("export_dir", None, "TF Serving base path; <version>/ goes in.")
_VERSION = flags.DEFINE_integer("version", 1, "Version sub-directory (positive integer).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing version directory.")
_DATASET = flags.DEFINE_enum(
    "dataset", "auto", ["auto", *KEYPOINT_SETS],
    "Keypoint metadata; auto: the training config's, else from the joint count.",
)
_INPUT_SIZE = flags.DEFINE_integer(
    "input_size", -1, "predict_poses: long side of the network input (-1: the training "
    "config's codec.input_size, else 512; 0 keeps the image size).",
)
_FLIP = flags.DEFINE_bool("flip", False, "Fuse the mirrored image (all signatures).")
DECODER = decoder_flags.define_decoder_flags()
for _holder in DECODER.holders():
    flags.declare_key_flag(_holder)  # listed by --help beside the tool's own flags
_TFLITE = flags.DEFINE_bool("tflite", False, "Also write EXPORT_DIR/model_<S>.tflite.")
REFINEMENT = refinement_flags.define_flags()
_TFLITE_INPUT_SIZE = flags.DEFINE_integer(
    "tflite_input_size", 0, "TFLite input side (multiple of 64; 0: the predict_poses input size)."
)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    # A converted release (tools/convert_weights.py) brings its official test-time settings.
    for line in release_config.apply_release_defaults():
        print(f"release default: --{line}")
    if bool(_WORKDIR.value) == bool(_CHECKPOINT.value):
        raise app.UsageError("give exactly one of --workdir and --checkpoint.")
    if not _EXPORT_DIR.value:
        raise app.UsageError("--export_dir is required.")

    from associative_embedding.core.keypoint_info import (
        get_keypoint_info,
        keypoint_info_for_num_joints,
    )
    from associative_embedding.export import serving
    from associative_embedding.tasks.pose import export as saved_model
    from associative_embedding.tasks.pose.config import codec_settings, decoder_options

    model, training_config = _load_model(_WORKDIR.value, _CHECKPOINT.value)
    if _DATASET.value != "auto":
        keypoint_info = get_keypoint_info(_DATASET.value)
    elif training_config is not None:
        keypoint_info = get_keypoint_info(training_config["dataset"]["keypoints"])
    else:
        num_joints = int(model.num_joints) if hasattr(model, "num_joints") else None
        if num_joints is None:
            raise app.UsageError("cannot tell the dataset of this model: pass --dataset.")
        keypoint_info = keypoint_info_for_num_joints(num_joints)

    # The training run's codec (the library defaults for a bare .keras file), overridden by the
    # flags that were given.
    codec = codec_settings(
        training_config,
        input_size=None if _INPUT_SIZE.value < 0 else _INPUT_SIZE.value,
        **DECODER.overrides(),
    )
    input_size = int(codec["input_size"])
    decoder = decoder_options(codec)
    config = saved_model.ExportConfig(input_size=input_size, flip=_FLIP.value, decoder=decoder)
    try:
        version_dir = saved_model.export_saved_model(
            model,
            keypoint_info,
            _EXPORT_DIR.value,
            version=_VERSION.value,
            config=config,
            model_config=training_config,
            overwrite=_OVERWRITE.value,
        )
    except FileExistsError as error:
        raise app.UsageError(str(error)) from error
    print(f"SavedModel: {version_dir} (signatures: {', '.join(saved_model.SIGNATURES)})")
    if REFINEMENT.checkpoint.value:
        refinement_dir = _export_refinement(keypoint_info)
        print(f"Refinement SavedModel: {refinement_dir} (serving_default: uint8 crops -> "
              "heatmaps; refiner options in assets.extra/refinement_config.json)")
    if _TFLITE.value:
        size = _TFLITE_INPUT_SIZE.value or input_size or 512
        path = os.path.join(_EXPORT_DIR.value, f"model_{size}.tflite")
        serving.export_tflite(model, path, size)
        print(f"TFLite: {path} (input (1, {size}, {size}, 3) float32 in [0, 1])")


def _load_model(workdir: str | None, checkpoint: str | None):
    """(model, training config dict or None) from a work dir or a checkpoint / .keras path."""
    from associative_embedding.core import run_dir
    from associative_embedding.modeling import loading

    if workdir:
        try:
            model = loading.load_trained_model(workdir, which="best")
        except FileNotFoundError as error:
            raise app.UsageError(str(error)) from error
        return model, run_dir.read_training_config(workdir).to_dict()
    path = checkpoint
    if path.endswith(".keras"):
        # A missing file is a usage error; a damaged one raises ModelFileError, which names
        # the file and the reason (run_tool prints it).
        try:
            return loading.load_keras_model(path), None
        except FileNotFoundError as error:
            raise app.UsageError(str(error)) from None
    try:
        model, config = loading.load_model_from_checkpoint(path)
    except FileNotFoundError as error:
        raise app.UsageError(str(error)) from error
    return model, config.to_dict()


def _export_refinement(keypoint_info) -> str:
    """Exports --refine_checkpoint to EXPORT_DIR/refinement/<version>; returns that folder."""
    from associative_embedding.tasks.refinement.export import export_refinement_model
    from associative_embedding.tasks.refinement.refine import (
        parse_crop_sizes,
        training_refiner_options,
    )

    path = REFINEMENT.checkpoint.value
    is_workdir = os.path.isfile(os.path.join(path, "config.json"))
    model, config = _load_model(path if is_workdir else None, None if is_workdir else path)
    try:
        options = training_refiner_options(path, keypoint_info)
    except ValueError as error:
        raise app.UsageError(f"--refine_checkpoint: {error}") from None
    options.update(threshold=REFINEMENT.threshold.value,
                   agree_radius=REFINEMENT.agree_radius.value)
    if REFINEMENT.crop_sizes.value:
        options["crop_sizes"] = parse_crop_sizes(REFINEMENT.crop_sizes.value)
    if REFINEMENT.flip.value is not None:
        options["flip"] = REFINEMENT.flip.value
    try:
        return export_refinement_model(
            model, keypoint_info, os.path.join(_EXPORT_DIR.value, "refinement"),
            version=_VERSION.value, refiner_options=options, model_config=config,
            overwrite=_OVERWRITE.value,
        )
    except (FileExistsError, ValueError) as error:
        raise app.UsageError(f"--refine_checkpoint: {error}") from error


if __name__ == "__main__":
    flags.mark_flag_as_required("export_dir")
    startup.run_tool(main)
