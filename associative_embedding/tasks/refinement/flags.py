"""The refinement command-line flags shared by tools/evaluate.py and tools/predict.py.

    from associative_embedding.tasks.refinement import flags as refinement_flags
    REFINEMENT = refinement_flags.define_flags()          # at import time of the tool
    refiner = refinement_flags.refiner_from_flags(REFINEMENT, keypoint_info)   # or None
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from absl import flags


@dataclasses.dataclass(frozen=True)
class RefinementFlags:
    """The absl flag holders of `define_flags`."""

    checkpoint: flags.FlagHolder
    threshold: flags.FlagHolder
    crop_sizes: flags.FlagHolder
    flip: flags.FlagHolder
    agree_radius: flags.FlagHolder


def define_flags() -> RefinementFlags:
    """Defines --refine_checkpoint, --refine_threshold, --refine_crop_sizes, --refine_flip and
    --refine_agree_radius (call once per program)."""
    return RefinementFlags(
        checkpoint=flags.DEFINE_string(
            "refine_checkpoint", None,
            "Single-person refinement network (paper Table 4): a refinement training work dir "
            "(its best checkpoint), a checkpoint prefix or a '.keras' file. Every decoded "
            "person is cropped and refined (associative_embedding/tasks/refinement/refine.py). "
            "Pose task only.",
        ),
        threshold=flags.DEFINE_float(
            "refine_threshold", 0.15,
            "Refinement: a detected joint takes the refined position when its refined heatmap "
            "value exceeds this (missing joints are always filled).",
        ),
        crop_sizes=flags.DEFINE_list(
            "refine_crop_sizes", [],
            "Refinement: crop sizes in pixels (multiples of the network's 64), e.g. "
            "192,256,320; several are averaged (default: the refinement run's crop size, 256 "
            "for a '.keras' file).",
        ),
        flip=flags.DEFINE_bool(
            "refine_flip", None,
            "Refinement: flip test on the crops (default: the refinement run's eval.flip, true "
            "for a '.keras' file).",
        ),
        agree_radius=flags.DEFINE_float(
            "refine_agree_radius", 10.0,
            "Refinement: a person keeps its original pose when fewer than 20 percent of its "
            "detected joints have a refined position within this many image pixels (official "
            "demo: 10).",
        ),
    )


def refiner_from_flags(holders: RefinementFlags, keypoint_info: Any) -> Any:
    """The `PoseRefiner` the flags describe, or None without --refine_checkpoint.

    Raises:
        FileNotFoundError, ValueError: from `refine.load_refiner` (naming the path).
        core.run_dir.ModelFileError (a ValueError): naming the file and the reason when
            the model exists but cannot be read (truncated or corrupt).
    """
    if not holders.checkpoint.value:
        return None
    # Imported on use: the tools define these flags before TensorFlow may be loaded.
    from associative_embedding.modeling import loading
    from associative_embedding.tasks.refinement.refine import load_refiner, parse_crop_sizes

    options: dict[str, Any] = {}
    if holders.crop_sizes.value:
        options["crop_sizes"] = parse_crop_sizes(holders.crop_sizes.value)
    if holders.flip.value is not None:
        options["flip"] = holders.flip.value
    path = holders.checkpoint.value
    if path.endswith(".keras") and not os.path.isfile(path + ".index"):
        # Keras reports a truncated '.keras' file as "File not found".
        loading.check_keras_file(path)
    try:
        return load_refiner(
            path,
            keypoint_info,
            threshold=holders.threshold.value,
            agree_radius=holders.agree_radius.value,
            **options,
        )
    except (FileNotFoundError, ValueError):
        raise
    except loading.MODEL_READ_ERRORS as error:
        raise loading.unreadable_model_error(path, error) from None
