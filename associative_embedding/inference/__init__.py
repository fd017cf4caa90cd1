"""Inference on images, folders, videos and webcams (behind ``tools/predict.py``).

Modules:
    estimator: ``ImagePoseEstimator`` (RGB array -> ``ImagePrediction``: poses in image pixels,
        scores and the fused maps) and ``infer_layout`` (dataset, D and stride of a network).
    sources: ``open_source(spec)`` -> image file / folder / glob / video / webcam ``Frame``s.
    writers: results JSON (COCO format), per-image JSON, drawn images, mp4, tag plot PNGs.
    runner: ``run_prediction`` (the loop with a progress bar), its options and summary.

The names below are importable from this package; they are loaded on first use, so that
``sources`` and ``writers`` (OpenCV only) do not pull in TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ImagePoseEstimator": "estimator",
    "ImagePrediction": "estimator",
    "NetworkLayout": "estimator",
    "infer_layout": "estimator",
    "PredictOptions": "runner",
    "PredictSummary": "runner",
    "run_prediction": "runner",
    "tag_plot_pictures": "runner",
    "Frame": "sources",
    "Source": "sources",
    "open_source": "sources",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
