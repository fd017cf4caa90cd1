"""MPII single-person refinement network (paper Table 1's "+ refine"; Sec. 4.1).

Command (the MPII JSON conversion under $MPII: annotations/{train,valid}.json, images/):
    python tools/train.py --config=experiments/mpii_refine_hg.py --workdir=runs/mpii_refine_hg \
        --strategy=mirrored \
        --config.dataset.train_annotations=$MPII/annotations/train.json \
        --config.dataset.train_images=$MPII/images \
        --config.dataset.val_annotations=$MPII/annotations/valid.json \
        --config.dataset.val_images=$MPII/images
Then `tools/reproduce.py --table 1 ... --refine_checkpoint=runs/mpii_refine_hg` (README,
"Reproducing the paper").

The recipe is experiments/coco_refine_hg.py's (its docstring says what is known and what is
chosen) on MPII's 16 joints; the training-time evaluation scores ground-truth-box crops with
the package's MPII multi-person mAP ('AP') and PCKh. No paper number exists for the network
alone; the paper's Table 1 total is 77.5 mAP with refinement. Not measured here (no GPU).

Variants:
    :smoke  a tiny model for 2 steps on ../shared/data/mmpose_samples/mpii (train = val).
"""

from __future__ import annotations

import importlib.util
import pathlib
from typing import Any

import ml_collections


def _sibling(name: str) -> Any:
    """Another config file of this folder, loaded by path (configs are loaded by path too)."""
    path = pathlib.Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_experiment_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    if variant not in ("", "smoke"):
        raise ValueError(f"unknown variant {variant!r}; choose '' or 'smoke'")
    config = _sibling("coco_refine_hg").get_config(variant)
    config.dataset.kind = "mpii"
    config.dataset.keypoints = "mpii"
    mpii = _sibling("mpii_hg4_512").get_config(variant).dataset
    for key in ("train_annotations", "train_images", "val_annotations", "val_images"):
        config.dataset[key] = mpii[key]
    return config
