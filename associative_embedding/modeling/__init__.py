"""Modeling: the networks, built by name, and the loading of trained ones.

Backbones sit behind a small registry (``registry``: `config.model.backbone` -> builder; the
stacked hourglass of the paper in ``hourglass``, its blocks in ``layers``). ``loading`` rebuilds a
training run's network from its config.json and opens '.keras' files and SavedModels as a
``Predictor``, the one interface evaluation and inference call networks through. Pure: no
loss, no decoding, no dataset.
"""

from associative_embedding.modeling.hourglass import (
    DEFAULT_STEM_WIDTHS,
    DEFAULT_WIDTHS,
    LAYOUTS,
    OUTPUT_STRIDE,
    StackedHourglass,
    hourglass_module,
)
from associative_embedding.modeling.layers import (
    InputSizeCheck,
    LeadingChannels,
    StackPredictions,
    conv_block,
)
from associative_embedding.modeling.outputs import split_outputs
from associative_embedding.modeling.registry import BACKBONES, build_backbone, register_backbone

__all__ = [
    "BACKBONES",
    "DEFAULT_STEM_WIDTHS",
    "DEFAULT_WIDTHS",
    "OUTPUT_STRIDE",
    "InputSizeCheck",
    "LAYOUTS",
    "LeadingChannels",
    "StackPredictions",
    "StackedHourglass",
    "build_backbone",
    "conv_block",
    "hourglass_module",
    "register_backbone",
    "split_outputs",
]
