"""Experiment-config file (tools/train.py --config=...) of the training tests' tiny model.

Variants: '' (see tiny_config.py) and 'resume' (deterministic, 30 steps, a checkpoint every 5
and every step's losses in WORKDIR/losses.jsonl: the kill-and-resume test).
"""

from __future__ import annotations

import pathlib
import sys

import ml_collections

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3]))

from tests.training.scripts.tiny_config import tiny_config  # noqa: E402


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = tiny_config()
    if variant == "resume":
        config.train.deterministic = True
        config.train.num_steps = 30
        config.train.checkpoint_every = 5
        config.train.log_every = 10
        config.train.loss_log = True
    elif variant:
        raise ValueError(f"unknown variant {variant!r}; choose '' or 'resume'")
    return config
