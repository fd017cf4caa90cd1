"""Trains Associative Embedding from an experiment config.

Usage:
    python tools/train.py --config=experiments/synthetic_pose.py --workdir=runs/synthetic
    python tools/train.py --config=experiments/coco_hg4_512.py:smoke --workdir=/tmp/smoke \
        --config.train.num_steps=2
    python tools/train.py --config=experiments/coco_hg4_512.py --workdir=runs/coco \
        --strategy=mirrored --config.dataset.train_annotations=... (see the config's docstring)

Flags: --config (ml_collections file, ':variant' selects a variant, --config.a.b=v overrides),
--workdir (checkpoints, TensorBoard, metrics.json, drawings; rerunning resumes), --strategy
(default | mirrored | multi_worker), --num_cpu_devices (mirrored without GPUs).
The logic lives in associative_embedding.training; this file only parses flags.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from associative_embedding.training import strategy as strategy_lib  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file[:variant].")
_WORKDIR = flags.DEFINE_string("workdir", None, "Work directory (resumes when it has checkpoints).")
_STRATEGY = flags.DEFINE_enum("strategy", "default", list(strategy_lib.STRATEGIES),
                              "Distribution strategy.")
_NUM_CPU_DEVICES = flags.DEFINE_integer(
    "num_cpu_devices", 0, "With --strategy=mirrored and no GPU: logical CPU devices (0 = 2)."
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    # The strategy first: splitting the CPU into logical devices must precede any TF op.
    strategy = strategy_lib.make_strategy(_STRATEGY.value, num_cpu_devices=_NUM_CPU_DEVICES.value)
    from associative_embedding.training.trainer import make_trainer

    config = _CONFIG.value
    logging.info("config:\n%s", config)
    metrics = make_trainer(config, _WORKDIR.value, strategy).train()
    summary = {k: v for k, v in metrics.items() if k != "history"}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    app.run(main)
