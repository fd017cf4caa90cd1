"""Trains Associative Embedding from an experiment config.

Usage:
    python tools/train.py --config=experiments/synthetic_pose.py --workdir=runs/synthetic
    python tools/train.py --config=experiments/coco_hg4_512.py:smoke --workdir=/tmp/smoke \\
        --config.train.num_steps=2
    python tools/train.py --config=experiments/coco_hg4_512.py --workdir=runs/coco \\
        --strategy=mirrored --config.dataset.train_annotations=... (see the config's docstring)

    # Every field of a config, as the --config.a.b=value flags that override it (no training):
    python tools/train.py --config=experiments/synthetic_pose.py --print_config

Flags: --config (ml_collections file, ':variant' selects a variant, --config.a.b=v overrides),
--workdir (checkpoints, TensorBoard, metrics.json, drawings; rerunning resumes), --strategy
(default | mirrored | multi_worker), --num_cpu_devices (mirrored without GPUs), --print_config.
At the end the last evaluation's summary is printed (metrics, where the drawings and
metrics.json are). The logic lives in associative_embedding.training; this file only parses
flags.
"""

from __future__ import annotations

import os
import shlex
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from associative_embedding.core import startup  # noqa: E402

# Before anything imports TensorFlow or tqdm: quiet start-up, visible progress bars.
startup.start_tool()

import ml_collections  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

# The names of training.strategy.STRATEGIES, spelled out so that --help and --print_config
# run without importing TensorFlow (tests/training/test_train_tool.py checks they agree).
STRATEGY_NAMES = ("default", "mirrored", "multi_worker")

_CONFIG = config_flags.DEFINE_config_file(
    "config", None,
    "Experiment config file[:variant]; override any field with --config.<field>=<value> "
    "(--print_config lists them).",
)
_WORKDIR = flags.DEFINE_string(
    "workdir", None,
    "Work directory (resumes when it has checkpoints); required unless --print_config.",
)
_STRATEGY = flags.DEFINE_enum("strategy", "default", list(STRATEGY_NAMES),
                              "Distribution strategy.")
_NUM_CPU_DEVICES = flags.DEFINE_integer(
    "num_cpu_devices", 0, "With --strategy=mirrored and no GPU: logical CPU devices (0 = 2)."
)
_PRINT_CONFIG = flags.DEFINE_bool(
    "print_config", False,
    "Print the resolved config (the file, its variant and the --config.* overrides) as the "
    "--config.<field>=<value> flags that set each field, then exit without training.",
)
flags.mark_flags_as_required(["config"])


@flags.multi_flags_validator(
    ["workdir", "print_config"], message="--workdir is required (unless --print_config)."
)
def _workdir_given(values: dict[str, Any]) -> bool:
    return bool(values["workdir"]) or bool(values["print_config"])


def config_flag_lines(config: ml_collections.ConfigDict, prefix: str = "config") -> list[str]:
    """One `--config.a.b=value` line per field (shell-quoted, so it can be pasted as is)."""
    lines = []
    for key, value in config.items():
        name = f"{prefix}.{key}"
        if isinstance(value, ml_collections.ConfigDict):
            lines.extend(config_flag_lines(value, name))
        else:
            lines.append(f"--{name}={shlex.quote(_flag_text(value))}")
    return lines


def _flag_text(value: Any) -> str:
    """The text ml_collections' flag parser reads back as `value`."""
    if isinstance(value, tuple | list):
        items = ",".join(repr(item) for item in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    return str(value)


def _print_config(config: ml_collections.ConfigDict) -> None:
    filename = config_flags.get_config_filename(flags.FLAGS["config"])
    overrides = config_flags.get_override_values(flags.FLAGS["config"])
    print(f"# {filename}: the resolved config" + (" (with your overrides)" if overrides else ""))
    print("# Set any field with the flag as printed, e.g. --config.train.num_steps=100.")
    print("\n".join(config_flag_lines(config)))


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = _CONFIG.value
    from associative_embedding.core.config_checks import validate_config

    # Every field before any work: a bad value would otherwise surface at the first traced step
    # or, for an evaluation setting, after training (run_tool prints the ConfigError's lines).
    validate_config(config)
    if _PRINT_CONFIG.value:
        _print_config(config)
        return
    from associative_embedding.training import strategy as strategy_lib

    # The strategy first: splitting the CPU into logical devices must precede any TF op.
    strategy = strategy_lib.make_strategy(_STRATEGY.value, num_cpu_devices=_NUM_CPU_DEVICES.value)
    from associative_embedding.core.run_dir import CONFIG_NAME
    from associative_embedding.tasks.registry import make_trainer

    overrides = config_flags.get_override_values(flags.FLAGS["config"])
    logging.info(
        "training %s into %s%s (full config: %s; --print_config lists it)",
        config_flags.get_config_filename(flags.FLAGS["config"]), _WORKDIR.value,
        f" with {len(overrides)} override(s)" if overrides else "",
        os.path.join(_WORKDIR.value, CONFIG_NAME),
    )
    trainer = make_trainer(config, _WORKDIR.value, strategy)
    metrics = trainer.train()
    if metrics:  # non-chief workers of a cluster do not evaluate
        print(trainer.evaluation_report(metrics))


if __name__ == "__main__":
    startup.run_tool(main)
