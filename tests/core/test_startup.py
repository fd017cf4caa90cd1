"""The tools' start-up: TensorFlow's import-time noise filtered, real lines kept, tqdm drawn."""

from __future__ import annotations

import logging
import os
import pty
import select
import subprocess
import sys
import textwrap

import pytest

from associative_embedding.core import startup
from tests.conftest import PROJECT_ROOT

# Lines TensorFlow 2.21 prints on a CPU-only machine (copied from a real run).
ONEDNN = (
    "I0000 00:00:1796260898.522708    4837 port.cc:153] oneDNN custom operations are on. You "
    "may see slightly different numerical results due to floating-point round-off errors from "
    "different computation orders. To turn them off, set the environment variable "
    "`TF_ENABLE_ONEDNN_OPTS=0`.\n"
)
NO_DRIVER = (
    "I0000 00:00:1796260898.523203    4837 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.\n"
)
PREAMBLE = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
)
CUINIT = (
    "E0000 00:00:1796260956.691744    5115 cuda_platform.cc:52] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n"
)
A_WARNING = "W0000 00:00:1796262299.005700   13318 png_io.cc:96] PNG warning: iCCP: bad profile\n"
AN_ERROR = "E1203 01:26:57.569791 140062331591552 some_kernel.cc:12] a real error\n"
BANNER_MARKERS = ("oneDNN", "cuInit", "cuda drivers", "absl::InitializeLog")


def tool_env(**extra: str) -> dict[str, str]:
    """The environment of a user who set nothing (the test session sets a TF log level)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES", "TQDM_NCOLS")}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    env.update(extra)
    return env


def test_filter_drops_the_startup_banner_and_keeps_warnings_and_errors():
    log_filter = startup.StartupLogFilter(min_level=1, hide_cuinit_failure=True)
    assert not any(log_filter.keep(line) for line in (ONEDNN, NO_DRIVER, PREAMBLE, CUINIT))
    for line in (A_WARNING, AN_ERROR, "Traceback (most recent call last):\n", "plain text\n"):
        assert log_filter.keep(line), line


def test_cuinit_failure_is_kept_where_a_gpu_may_be_in_use():
    log_filter = startup.StartupLogFilter(min_level=1, hide_cuinit_failure=False)
    assert log_filter.keep(CUINIT)
    assert not log_filter.keep(ONEDNN)


def test_level_zero_keeps_everything_and_higher_levels_drop_more():
    everything = startup.StartupLogFilter(min_level=0, hide_cuinit_failure=False)
    assert all(everything.keep(line) for line in (ONEDNN, PREAMBLE, CUINIT, A_WARNING))
    errors_only = startup.StartupLogFilter(min_level=2, hide_cuinit_failure=False)
    assert not errors_only.keep(A_WARNING) and errors_only.keep(AN_ERROR)


def test_hidden_gpus_mean_no_gpu_expected(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert startup.no_gpu_expected()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert startup.no_gpu_expected()


def test_first_import_is_filtered_in_order(tmp_path, monkeypatch, capfd):
    # A stand-in for TensorFlow: writes its banner and a real warning to file descriptor 2
    # (as C++ code does) while it is imported.
    (tmp_path / "noisy_module.py").write_text(textwrap.dedent(f"""
        import os, sys
        os.write(2, {ONEDNN.encode()!r})
        os.write(2, {A_WARNING.encode()!r})
        print("python line", file=sys.__stderr__, flush=True)  # fd 2, not pytest's capture
        os.write(2, {CUINIT.encode()!r})
        def list_devices():
            os.write(2, {NO_DRIVER.encode()!r})
            os.write(2, {AN_ERROR.encode()!r})
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "noisy_module", raising=False)
    log_filter = startup.StartupLogFilter(min_level=1, hide_cuinit_failure=True)
    startup.install_import_filter(
        "noisy_module", log_filter.keep, after_import=lambda module: module.list_devices()
    )
    try:
        import noisy_module  # noqa: F401
    finally:
        sys.meta_path[:] = [
            finder for finder in sys.meta_path
            if not isinstance(finder, startup._FilteredImportFinder)
        ]
    err = capfd.readouterr().err
    assert err == A_WARNING + "python line\n" + AN_ERROR


def test_a_tool_help_prints_no_tensorflow_banner():
    # tools/smoke.py imports TensorFlow at module level, so --help goes through the filter.
    filtered = subprocess.run(
        [sys.executable, "tools/smoke.py", "--help"], cwd=PROJECT_ROOT, env=tool_env(),
        capture_output=True, text=True, timeout=300,
    )
    assert "Smoke job" in filtered.stdout, filtered.stderr[-3000:]
    banner = [line for line in filtered.stderr.splitlines()
              if any(marker in line for marker in BANNER_MARKERS)]
    assert banner == [], filtered.stderr


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_tqdm_draws_on_a_terminal_that_reports_no_width():
    # A fresh pseudo-terminal reports 0 columns, as `script` and some IDE consoles do; tqdm
    # then draws nothing at all unless start_tool gives it a width.
    code = textwrap.dedent("""
        from associative_embedding.core import startup
        startup.start_tool(module="not_imported_here")
        from tqdm import tqdm
        for _ in tqdm(range(3), desc="visible-bar"):
            pass
    """)
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", code], cwd=PROJECT_ROOT, env=tool_env(),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=terminal,
        )
        os.close(terminal)
        output = b""
        while True:
            ready, _, _ = select.select([controller], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        process.wait(timeout=60)
    finally:
        os.close(controller)
    assert process.returncode == 0, output
    assert b"visible-bar" in output and b"3/3" in output


def test_tensorflow_python_info_lines_follow_the_level(tmp_path):
    package = tmp_path / "tensorflow"
    log_filter = startup._PackageLevelFilter(str(package), logging.WARNING)

    def record(path, level):
        return logging.LogRecord("absl", level, str(path), 1, "message", None, None)

    inside = package / "python" / "checkpoint" / "functional_saver.py"
    assert not log_filter.filter(record(inside, logging.INFO))  # "Sharding callback duration"
    assert log_filter.filter(record(inside, logging.WARNING))
    assert log_filter.filter(record(tmp_path / "trainer.py", logging.INFO))  # ours: kept
