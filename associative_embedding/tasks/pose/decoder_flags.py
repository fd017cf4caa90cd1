"""The grouping decoder's command-line flags, shared by tools/evaluate.py, predict.py and export.py.

Each flag defaults to None: the training run's `codec` section then decides (the experiment says
each setting once), else the schema's defaults for a bare `.keras` file or SavedModel
(`tasks.pose.config.codec_settings`). Importing this module loads no TensorFlow, so the tools
can define their flags before their quiet start-up.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from absl import flags

from associative_embedding.tasks.pose.config_checks import ADJUST_MODES

_RUN_DEFAULT = "(default: the training run's codec.{} for a work dir or checkpoint, else {})."


@dataclasses.dataclass(frozen=True)
class DecoderFlags:
    """The holders of the decoder's flags (`define_decoder_flags`)."""

    detection_threshold: flags.FlagHolder
    tag_threshold: flags.FlagHolder
    max_people: flags.FlagHolder
    adjust: flags.FlagHolder
    refine: flags.FlagHolder

    def holders(self) -> tuple[flags.FlagHolder, ...]:
        """The holders, for `flags.declare_key_flag` in a tool (so its --help lists them)."""
        return tuple(getattr(self, field.name) for field in dataclasses.fields(self))

    def overrides(self) -> dict[str, Any]:
        """The codec fields the command line set; None where it left them to the run."""
        return {field.name: getattr(self, field.name).value for field in dataclasses.fields(self)}


def define_decoder_flags(flag_values: flags.FlagValues = flags.FLAGS) -> DecoderFlags:
    """Defines --detection_threshold, --tag_threshold, --max_people, --adjust and --refine."""
    return DecoderFlags(
        detection_threshold=flags.DEFINE_float(
            "detection_threshold", None,
            "Decoder: min joint score " + _RUN_DEFAULT.format("detection_threshold", 0.1),
            flag_values=flag_values,
        ),
        tag_threshold=flags.DEFINE_float(
            "tag_threshold", None,
            "Decoder: max tag distance " + _RUN_DEFAULT.format("tag_threshold", 1.0),
            flag_values=flag_values,
        ),
        max_people=flags.DEFINE_integer(
            "max_people", None,
            "Decoder: people per image " + _RUN_DEFAULT.format("max_people", 30),
            lower_bound=1, flag_values=flag_values,
        ),
        adjust=flags.DEFINE_enum(
            "adjust", None, list(ADJUST_MODES),
            "Decoder sub-pixel adjustment: official (quarter pixel; -0.25 px on equal "
            "neighbours), symmetric (no move on equal neighbours), taylor (log-heatmap Taylor "
            "offset, for models trained with sub-pixel targets) or none "
            + _RUN_DEFAULT.format("adjust", "official"),
            flag_values=flag_values,
        ),
        refine=flags.DEFINE_bool(
            "refine", None,
            "Decoder: fill missing joints " + _RUN_DEFAULT.format("refine", True),
            flag_values=flag_values,
        ),
    )
