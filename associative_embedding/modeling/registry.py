"""The backbone registry: `config.model.backbone` -> the function that builds the network.

A builder takes the experiment config and K (the detection channels: joints or categories)
and returns a Keras model whose outputs are (B, S, h, w, K (1 + D)) stacked predictions with
`input_multiple` and `output_stride` attributes (what `modeling.loading.Predictor`, the losses
and the export read). Adding a backbone is a module in this folder plus one `register_backbone`
line at the end of this file; an experiment picks it with `config.model.backbone = 'name'`
(configs without the field build the stacked hourglass).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import ml_collections

from associative_embedding.modeling.hourglass import StackedHourglass

DEFAULT_BACKBONE = "hourglass"

#: name -> builder(config, num_channels).
BACKBONES: dict[str, Callable[[ml_collections.ConfigDict, int], keras.Model]] = {}


def register_backbone(
    name: str, builder: Callable[[ml_collections.ConfigDict, int], keras.Model]
) -> None:
    """Adds a backbone builder under `name`."""
    if name in BACKBONES:
        raise ValueError(f"a backbone named {name!r} is already registered")
    BACKBONES[name] = builder


def build_backbone(config: ml_collections.ConfigDict, num_channels: int) -> keras.Model:
    """The network of `config.model.backbone` (default: the stacked hourglass).

    Raises:
        ValueError: naming the registered backbones when the name is none of them.
    """
    name = config.model.get("backbone", DEFAULT_BACKBONE)
    if name not in BACKBONES:
        raise ValueError(
            f"config.model.backbone={name!r} is not registered; one of {sorted(BACKBONES)}"
        )
    return BACKBONES[name](config, num_channels)


def build_hourglass(config: ml_collections.ConfigDict, num_channels: int) -> StackedHourglass:
    """The stacked hourglass of `config.model` (paper Sec. 3.1 and the official layouts)."""
    model_config = config.model
    return StackedHourglass(
        num_stacks=model_config.num_stacks,
        widths=tuple(model_config.widths),
        stem_widths=tuple(model_config.stem_widths),
        feature_width=model_config.feature_width or None,
        num_joints=num_channels,
        tag_dim=model_config.tag_dim,
        batch_norm=model_config.batch_norm,
        coordinate_channels=bool(model_config.get("coordinate_channels", False)),
        output_stride=int(config.codec.get("output_stride", 4)),
    )


register_backbone("hourglass", build_hourglass)
