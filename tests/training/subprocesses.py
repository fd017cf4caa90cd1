"""Running the training tests' scripts in subprocesses (quiet TF, the project importable)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for the training scripts: quiet TF, the project importable."""
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PROJECT_ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def run_script(args: list[str], timeout: float, **env: str) -> subprocess.CompletedProcess:
    """Runs `python args...` from the project root; fails the test with its output on error."""
    try:
        completed = subprocess.run(
            [sys.executable, *args], cwd=PROJECT_ROOT, env=subprocess_env(**env),
            capture_output=True, text=True, timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"{args} timed out after {timeout} s:\n{error.stdout}\n{error.stderr}")
    if completed.returncode != 0:
        pytest.fail(
            f"{args} exited with {completed.returncode}:\n{completed.stdout[-4000:]}\n"
            f"{completed.stderr[-8000:]}"
        )
    return completed
