"""Inference inputs and outputs: where images come from and where predictions go.

The task-generic ends of ``tools/predict.py``; the tasks' prediction loops
(``tasks.pose.predict``, ``tasks.segmentation.predict``, ``tasks.tracking.predict``) run
between them.

Modules:
    sources: ``open_source(spec)`` -> image file / folder / glob / video / webcam ``Frame``s.
    writers: results JSON (COCO format), per-image JSON, drawn images, mp4, tag plot PNGs.

The names below are importable from this package; they are loaded on first use, so that
``sources`` and ``writers`` (OpenCV only) do not pull in TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
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
