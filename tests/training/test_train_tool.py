"""tools/train.py's flags: --help and --print_config run at once, without TensorFlow or a
work dir."""

from __future__ import annotations

import ast
import os
import shlex
import subprocess
import sys

from associative_embedding.training import strategy
from tests.conftest import PROJECT_ROOT

TOOL = PROJECT_ROOT / "tools" / "train.py"
CONFIG = "--config=experiments/synthetic_pose.py"


def run_train(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, str(TOOL), *args], cwd=PROJECT_ROOT, env=env,
        capture_output=True, text=True, timeout=120,
    )


def config_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line and not line.startswith("#")]


def test_help_mentions_print_config_and_stderr_stays_empty():
    result = run_train("--help")
    assert "--print_config" in result.stdout and "--workdir" in result.stdout
    assert result.stderr == ""  # no TensorFlow banner: --help does not even import it


def test_print_config_lists_every_field_as_the_flag_that_sets_it():
    result = run_train(CONFIG, "--print_config", "--config.train.num_steps=7",
                       "--config.input.scale_range=(0.5,1.5)")
    assert result.returncode == 0, result.stderr
    lines = config_lines(result.stdout)
    assert "--config.train.num_steps=7" in lines  # the override, resolved
    assert "--config.input.scale_range='(0.5,1.5)'" in lines
    assert "--config.eval.draw_threshold=0.3" in lines
    assert "--config.dataset.kind=synthetic" in lines
    assert all(line.startswith("--config.") and "=" in line for line in lines)


def test_printed_flags_give_back_the_same_config():
    first = run_train(CONFIG, "--print_config", "--config.train.num_steps=7")
    flags = [arg for line in config_lines(first.stdout) for arg in shlex.split(line)]
    again = run_train(CONFIG, "--print_config", *flags)
    assert again.returncode == 0, again.stderr
    assert config_lines(again.stdout) == config_lines(first.stdout)


def test_workdir_is_required_to_train():
    result = run_train(CONFIG)
    assert result.returncode != 0
    assert "--workdir is required (unless --print_config)" in result.stderr


def test_strategy_names_are_the_strategy_modules():
    # tools/train.py spells them out to parse its flags without importing TensorFlow.
    tree = ast.parse(TOOL.read_text())
    names = next(
        ast.literal_eval(node.value) for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "STRATEGY_NAMES"
    )
    assert tuple(names) == tuple(strategy.STRATEGIES)
