"""Keras layers and the stacked hourglass (pure: no loss, no decoding)."""

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

__all__ = [
    "DEFAULT_STEM_WIDTHS",
    "DEFAULT_WIDTHS",
    "OUTPUT_STRIDE",
    "InputSizeCheck",
    "LAYOUTS",
    "LeadingChannels",
    "StackPredictions",
    "StackedHourglass",
    "conv_block",
    "hourglass_module",
    "split_outputs",
]
