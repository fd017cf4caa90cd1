"""Converts the authors' released Associative Embedding weights into a `.keras` model.

Usage:
    # pose-ae-train's pretrained PyTorch checkpoint (exp/pretrained/checkpoint.pth.tar)
    python tools/convert_weights.py --format=pose_ae_train \\
        --input=exp/pretrained/checkpoint.pth.tar --output=models/pose_ae_train.keras

    # pose-ae-demo's TensorFlow 1 models: the multi-person network and the refinement network
    python tools/convert_weights.py --format=pose_ae_demo --input=pose-ae-demo/multiperson \\
        --output=models/pose_ae_demo.keras
    python tools/convert_weights.py --format=pose_ae_demo_refine \\
        --input=pose-ae-demo/refinement --output=models/pose_ae_demo_refine.keras

Formats:
    pose_ae_train        a torch.save file of princeton-vl/pose-ae-train (legacy or zip torch
                         format, read without PyTorch and without unpickling code)
    pose_ae_demo         a princeton-vl/pose-ae-demo model directory (DIR/snapshot.*) or
                         checkpoint prefix: the multi-person network
    pose_ae_demo_refine  the same for the demo's single-person refinement network

Writes OUT.keras (a `StackedHourglass`: RGB in [0, 1], (B, H, W, 3), H and W multiples of 64 ->
(B, 4, H/4, W/4, 34) heatmaps then tags, or 17 heatmaps for the refinement network; loads with
keras.saving.load_model(..., safe_mode=True)) and OUT.release.json (the release's official
test-time settings, used as defaults by tools/evaluate.py, predict.py, export.py and
reproduce.py when they are given OUT.keras). Errors are one line on stderr, exit status 1.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from associative_embedding.core import startup  # noqa: E402

startup.start_tool()

from absl import app, flags  # noqa: E402

from associative_embedding.conversion.release_config import (  # noqa: E402
    MULTI_SCALES,
    REPORTED,
    write_release_config,
)

FORMATS = ("pose_ae_train", "pose_ae_demo", "pose_ae_demo_refine")

_FORMAT = flags.DEFINE_enum(
    "format",
    None,
    list(FORMATS),
    "The released file's format: pose_ae_train (PyTorch checkpoint of princeton-vl/"
    "pose-ae-train), pose_ae_demo (TF1 multi-person snapshot of princeton-vl/pose-ae-demo) or "
    "pose_ae_demo_refine (its refinement network).",
)
_INPUT = flags.DEFINE_string(
    "input",
    None,
    "pose_ae_train: the checkpoint file; pose_ae_demo(_refine): the model directory holding "
    "'snapshot.index' (or a checkpoint prefix).",
)
_OUTPUT = flags.DEFINE_string("output", None, "The '.keras' file to write.")
_NUM_JOINTS = flags.DEFINE_integer(
    "num_joints", 17, "Joints K of the released network (17: COCO, both releases)."
)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing output file.")


def _fail(message: str) -> int:
    print(f"convert_weights: error: {message}", file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    output = _OUTPUT.value
    if not output.endswith(".keras"):
        raise app.UsageError(f"--output must end in '.keras', got {output}.")
    if os.path.exists(output) and not _OVERWRITE.value:
        return _fail(f"{output} exists (use --overwrite to replace it)")

    # TensorFlow is only imported once the flags are known to be usable.
    from associative_embedding.conversion.released import (
        ConversionError,
        convert_released_weights,
    )
    from associative_embedding.conversion.torch_reader import TorchFormatError

    start = time.perf_counter()
    try:
        conversion = convert_released_weights(
            _FORMAT.value, _INPUT.value, num_joints=_NUM_JOINTS.value
        )
    except FileNotFoundError as error:
        return _fail(str(error))
    except TorchFormatError as error:
        return _fail(f"{_INPUT.value}: not a readable PyTorch checkpoint: {error}")
    except ConversionError as error:
        return _fail(f"{_INPUT.value}: does not fit --format={_FORMAT.value}: {error}")
    except ValueError as error:
        return _fail(f"{_INPUT.value}: {error}")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    conversion.model.save(output)
    config_path = write_release_config(output, _FORMAT.value, _INPUT.value)
    model = conversion.model
    print(
        f"{output}: {_FORMAT.value}, {model.num_stacks} stacks, widths {list(model.widths)}, "
        f"{model.count_params() / 1e6:.2f} M parameters, outputs "
        f"(B, {model.num_stacks}, H/4, W/4, {model.output_channels}); "
        f"{len(conversion.assigned)} variables assigned in {time.perf_counter() - start:.1f} s"
    )
    print(f"{config_path}: its official test-time settings (tool defaults)")
    print(f"expected: {REPORTED[_FORMAT.value]}")
    if _FORMAT.value in MULTI_SCALES:
        print(
            f"evaluate: python tools/evaluate.py --model={output} --annotations=ANN.json "
            "--images=IMAGES --output_dir=OUT  (multi-scale: "
            f"--scales={','.join(MULTI_SCALES[_FORMAT.value])})"
        )
    else:
        print(
            f"use: python tools/predict.py --checkpoint=MODEL.keras "
            f"--refine_checkpoint={output} --input=IMAGES --output_dir=OUT"
        )
    return 0


if __name__ == "__main__":
    flags.mark_flags_as_required(["format", "input", "output"])
    startup.run_tool(main)
