"""The side config of a converted model: the release's test-time settings as tool defaults.

`tools/convert_weights.py --output=OUT.keras` also writes `OUT.release.json`:

    {"format": "pose_ae_train", "source": "...", "flag_defaults": {"flip": true, ...},
     "reported": "...", "multi_scales": [...]}

The tools (evaluate, predict, export, reproduce) call `apply_release_defaults` first: when a
model flag (--model, --checkpoint) or --refine_checkpoint names a `.keras` file with such a
side config, its `flag_defaults` become the values of the flags the command line did not set,
so a converted model runs with its release's official settings unless told otherwise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

#: Suffix of the side config that replaces '.keras'.
SIDE_CONFIG_SUFFIX = ".release.json"

#: Flag defaults of each release (tool flag name -> value), from the authors' test code:
#: pose-ae-train test.py (512 input, flip, scale 1, tags of the scale-1 pass, detection
#: threshold 0.1, missing joints filled); pose-ae-demo main.py (the same at one scale);
#: the demo's refinement (flip, replace a joint when its refined score > 0.15, keep the old
#: pose when fewer than 20 % of joints agree within 10 px). The demo refines on 512, 400 and
#: 300 pixel crops; this network needs multiples of 64, so the nearest: 512, 384, 320.
# Both multi-person releases share the official single-scale test settings.
_MULTI_PERSON_DEFAULTS: dict[str, Any] = {
    "input_size": 512,
    "flip": True,
    "scales": ["1"],
    "fusion": "official",
    "detection_threshold": 0.1,
    "refine": True,
}
FLAG_DEFAULTS: dict[str, dict[str, Any]] = {
    "pose_ae_train": dict(_MULTI_PERSON_DEFAULTS),
    "pose_ae_demo": dict(_MULTI_PERSON_DEFAULTS),
    "pose_ae_demo_refine": {
        "refine_crop_sizes": ["512", "384", "320"],
        "refine_flip": True,
        "refine_threshold": 0.15,
        "refine_agree_radius": 10.0,
    },
}

#: The multi-scale sets of the releases' test code (`--scales` for multi-scale runs).
MULTI_SCALES: dict[str, list[str]] = {
    "pose_ae_train": ["2", "1", "0.5"],
    "pose_ae_demo": ["2", "1.8", "1.5", "1.3", "1.2", "1", "0.7", "0.5", "0.25"],
}

#: What each release's authors report.
REPORTED: dict[str, str] = {
    "pose_ae_train": "AP about 0.59 single-scale and 0.66 multi-scale (2, 1, 0.5) on "
    "pose-ae-train's own COCO validation split (data/coco_pose/valid_id), README of "
    "princeton-vl/pose-ae-train",
    "pose_ae_demo": "the paper's COCO test-dev AP: 0.566 single-scale, 0.630 multi-scale; "
    "0.628 / 0.655 with the refinement network",
    "pose_ae_demo_refine": "the paper's '+ refine' rows (Tables 2-4)",
}


def side_config_path(model_path: str | os.PathLike) -> str:
    """`X.keras` -> `X.release.json` (any other path: path + '.release.json')."""
    path = os.fspath(model_path)
    stem = path[: -len(".keras")] if path.endswith(".keras") else path
    return stem + SIDE_CONFIG_SUFFIX


def write_release_config(model_path: str | os.PathLike, format: str, source: str) -> str:
    """Writes the side config of a converted model.

    Args:
        model_path: the `.keras` file.
        format: the release (a key of `FLAG_DEFAULTS`).
        source: the converted file or directory (recorded as given).

    Returns:
        The side config's path.
    """
    config = {
        "format": format,
        "source": source,
        "flag_defaults": FLAG_DEFAULTS[format],
        "multi_scales": MULTI_SCALES.get(format),
        "reported": REPORTED[format],
    }
    path = side_config_path(model_path)
    with open(path, "w") as file:
        json.dump(config, file, indent=1)
        file.write("\n")
    return path


def read_release_config(model_path: str | os.PathLike | None) -> dict[str, Any] | None:
    """The side config of a converted `.keras` model, or None when it has none."""
    if not model_path or not os.fspath(model_path).endswith(".keras"):
        return None
    path = side_config_path(model_path)
    if not os.path.isfile(path):
        return None
    with open(path) as file:
        config = json.load(file)
    if not isinstance(config, dict) or not isinstance(config.get("flag_defaults"), dict):
        raise ValueError(f"{path}: not a release config (no 'flag_defaults')")
    return config


def apply_release_defaults(
    flag_values: Any = None,
    model_flags: Sequence[str] = ("model", "checkpoint"),
    refine_flag: str = "refine_checkpoint",
    exclude: Sequence[str] = (),
) -> list[str]:
    """Gives unset flags the defaults of the converted models the command line names.

    Args:
        flag_values: absl FlagValues (default: absl.flags.FLAGS), already parsed.
        model_flags: flags that may name the multi-person model.
        refine_flag: the flag that may name the refinement network.
        exclude: flags left alone (tools/reproduce.py's --scales is its multi-scale set).

    Returns:
        'name=value' of every flag set here (for a log line).

    Raises:
        ValueError: when a side config is not one.
    """
    if flag_values is None:
        from absl import flags

        flag_values = flags.FLAGS
    known = set(flag_values)
    applied = []
    sources = [name for name in model_flags if name in known] + (
        [refine_flag] if refine_flag in known else []
    )
    for name in sources:
        config = read_release_config(flag_values[name].value)
        if config is None:
            continue
        for flag_name, value in config["flag_defaults"].items():
            if flag_name not in known or flag_name in exclude or flag_values[flag_name].present:
                continue
            # Refinement defaults only apply through the refinement flag and the model's
            # own defaults only through a model flag.
            if flag_name.startswith("refine_") != (name == refine_flag):
                continue
            flag_values[flag_name].value = value
            applied.append(f"{flag_name}={value}")
    return applied
