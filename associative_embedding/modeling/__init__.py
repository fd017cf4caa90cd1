"""Keras layers and the stacked hourglass (pure: no loss, no decoding)."""

from associative_embedding.modeling.outputs import split_outputs

__all__ = ["split_outputs"]
