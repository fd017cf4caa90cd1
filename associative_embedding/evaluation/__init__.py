"""Evaluation: COCO keypoint AP, MPII multi-person mAP, the paper's oracles, the inference loop.

Evaluators (detectron2 style: ``reset()``, ``process(images, predictions)``, ``evaluate()``):
    CocoKeypointEvaluator     pycocotools COCOeval 'keypoints' with the dataset's OKS sigmas.
    MpiiMultiPersonEvaluator  MPII multi-person mAP (Pishchulin et al.; toolkit's evaluateAP).

Inference (imported on first use, as they load TensorFlow):
    load_predictor, Predictor, InferenceConfig, PoseEstimator, read_split, build_evaluator,
    evaluate_records (``evaluation.predictor``); apply_oracles, ground_truth_heatmaps,
    ground_truth_tags, parse_oracles (``evaluation.oracle``).
"""

from __future__ import annotations

import importlib
from typing import Any

from associative_embedding.evaluation.coco_keypoints import (
    CocoKeypointEvaluator,
    poses_to_coco_results,
)
from associative_embedding.evaluation.mpii_multi_person import MpiiMultiPersonEvaluator

_LAZY = {
    "load_predictor": "predictor",
    "Predictor": "predictor",
    "InferenceConfig": "predictor",
    "PoseEstimator": "predictor",
    "read_split": "predictor",
    "build_evaluator": "predictor",
    "evaluate_records": "predictor",
    "apply_oracles": "oracle",
    "ground_truth_heatmaps": "oracle",
    "ground_truth_tags": "oracle",
    "parse_oracles": "oracle",
    "ORACLES": "oracle",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CocoKeypointEvaluator",
    "MpiiMultiPersonEvaluator",
    "poses_to_coco_results",
    *_LAZY,
]
