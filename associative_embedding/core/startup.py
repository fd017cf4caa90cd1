"""Start-up of the command-line tools: TensorFlow without its import-time noise, progress bars
that draw on any terminal, usage errors in one line.

Every tool in tools/ calls `start_tool()` first, before anything imports TensorFlow or tqdm,
and runs its `main` with `run_tool(main)` (absl's `app.run` with short error reports, see
`run_tool`).

Why a filter and not only TF_CPP_MIN_LOG_LEVEL: TensorFlow 2.21 reads that variable when it
first logs through its own logger, but two of its libraries (libtensorflow_framework.so and the
profiler plugin, each with a private copy of absl) log from static initialisers, through absl,
before anything has read it. So even at TF_CPP_MIN_LOG_LEVEL=3 every import prints, twice, the
absl pre-initialisation notice, the oneDNN notice and "Could not find cuda drivers" (INFO
lines), and on a machine without a GPU the first device query adds "failed call to cuInit"
(an ERROR line from the CUDA platform). `start_tool` therefore

* sets TF_CPP_MIN_LOG_LEVEL to 1 (INFO hidden, warnings and errors shown) unless the user set
  it, and gives TensorFlow's Python logger ('tensorflow') the same level;
* wraps the first `import tensorflow` (whoever imports it, whenever) and a device query: what
  they write to file descriptor 2 is captured and written back afterwards, less the absl lines
  below that level (the rule TensorFlow applies to its later lines anyway), the absl notice, and
  -- only when no NVIDIA GPU can be in use (`no_gpu_expected`) -- the cuInit failure. Everything
  else (warnings, errors, Python tracebacks) is written back in order. CUDA_VISIBLE_DEVICES is
  never touched, so GPUs stay visible;
* gives tqdm a fixed size when stderr is a terminal that reports zero columns and rows
  (`script`, some IDE consoles and `docker exec -t` sessions): tqdm then draws no bar at all,
  and data generation or evaluation looks like a silent program.

TF_CPP_MIN_LOG_LEVEL=0 turns all of this filtering off (TensorFlow's own output, unchanged).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import glob
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import re
import sys
import tempfile
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NoReturn

LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
#: INFO hidden; warnings and errors shown.
DEFAULT_LOG_LEVEL = 1
#: tqdm's size where the terminal reports none (the traditional terminal's).
FALLBACK_COLUMNS, FALLBACK_LINES = 80, 24

_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called"
# absl's prefix: severity letter, MMDD, time (before absl is initialised: 00:00 and the epoch
# seconds), thread id, file:line] message.
_ABSL_LINE = re.compile(
    r"^(?P<severity>[IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ (?P<file>[^:\]\s]+):\d+\] "
    r"(?P<message>.*)"
)
_SEVERITIES = "IWEF"
# Python logging levels of TF_CPP_MIN_LOG_LEVEL 0, 1, 2 and 3.
_PYTHON_LEVELS = (logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)
_NVIDIA_PCI_VENDOR = "0x10de"
#: The line after a usage error's message (absl would print every flag's help instead).
HELP_POINTER = "(run with --help to list the flags)"


class UserInputError(Exception):
    """A bad input the user gave: a config field, a model or checkpoint file.

    `run_tool` prints its message alone, one `<tool>: error:` line per message line, without a
    traceback. Library code raises subclasses that also derive from the builtin a caller
    would catch (ValueError, ...).
    """


@dataclasses.dataclass(frozen=True)
class StartupLogFilter:
    """Which lines of TensorFlow's import-time stderr are written back.

    Attributes:
        min_level: TF_CPP_MIN_LOG_LEVEL: absl lines of a lower severity (0 INFO, 1 WARNING,
            2 ERROR, 3 FATAL) are dropped, and at 1 or more the absl pre-initialisation notice.
        hide_cuinit_failure: drop the CUDA platform's "failed call to cuInit" error (set when
            no GPU can be in use, where that failure is the expected outcome, not news).
    """

    min_level: int
    hide_cuinit_failure: bool

    def keep(self, line: str) -> bool:
        """True when `line` (one line of stderr) is written back."""
        if line.startswith(_ABSL_PREAMBLE):
            return self.min_level <= 0
        match = _ABSL_LINE.match(line)
        if match is None:
            return True  # not an absl log line: Python warnings, tracebacks, other libraries
        if _SEVERITIES.index(match["severity"]) < self.min_level:
            return False
        is_cuinit_failure = match["file"].endswith("cuda_platform.cc") and match[
            "message"
        ].startswith("failed call to cuInit")
        return not (is_cuinit_failure and self.hide_cuinit_failure)


def start_tool(*, module: str = "tensorflow") -> StartupLogFilter | None:
    """Prepares the process of a command-line tool; call it before anything else is imported.

    Args:
        module: the module whose first import is filtered (tests use a stand-in).

    Returns:
        The filter installed, or None when TF_CPP_MIN_LOG_LEVEL=0 (or an unreadable value)
        asks for TensorFlow's output unchanged, or `module` is already imported.
    """
    _give_tqdm_a_width()
    user_level = os.environ.get(LOG_LEVEL_VARIABLE)
    if user_level is None:
        os.environ[LOG_LEVEL_VARIABLE] = str(DEFAULT_LOG_LEVEL)
    level = _parse_level(os.environ[LOG_LEVEL_VARIABLE])
    if level <= 0:
        return None
    # TensorFlow's Python side logs through the 'tensorflow' logger and, in newer code (an INFO
    # line per checkpoint save), through absl's: both follow the same level.
    python_level = _PYTHON_LEVELS[min(level, len(_PYTHON_LEVELS) - 1)]
    logging.getLogger("tensorflow").setLevel(python_level)
    package = _package_folder(module)
    if package is not None:
        # absl's own logger object (its class finds the caller past absl's frames): asking
        # logging for "absl" before absl is imported would create a plain one in its place.
        from absl import logging as absl_logging

        absl_logging.get_absl_logger().addFilter(_PackageLevelFilter(package, python_level))
    if module in sys.modules:
        return None
    log_filter = StartupLogFilter(min_level=level, hide_cuinit_failure=no_gpu_expected())
    install_import_filter(module, log_filter.keep, after_import=_query_devices)
    return log_filter


def run_tool(main: Callable[[list[str]], Any]) -> None:
    """Runs a tool's `main` like absl's `app.run`, with usage errors in one line.

    absl answers a usage error with the module docstring and every flag's help (~95 lines)
    before the message, and an unknown `--config.a.b` field with chained tracebacks. Here each
    of these prints `<tool>: error: <message>` and the `HELP_POINTER` line on stderr, then
    exits with status 1:

    * a flag absl rejects (unknown, badly typed, required and missing);
    * a `--config` file that does not exist, or a variant its `get_config` rejects;
    * a `--config.a.b` override naming no field of the config (with a close match, if any);
    * `app.UsageError` raised by `main`.

    A `UserInputError` raised by `main` (a bad config field, an unreadable model file) prints
    its message the same way, without the pointer. Anything else keeps its traceback.
    """
    from absl import app

    app.run(_with_short_errors(main), flags_parser=parse_flags)


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing (`app.run`'s `flags_parser`) with one-line usage errors.

    Returns:
        The arguments left after the flags (the program name first), as absl's parser.
    """
    from absl import flags

    problem = _missing_config_file(argv, flags.FLAGS)
    if problem:
        exit_with_usage_error(problem)
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        exit_with_usage_error(_flag_error_message(str(error)))
    except (AttributeError, KeyError):
        # ml_collections lets these escape from a `--config.a.b` override of no field.
        problem = _unknown_config_field(argv, flags.FLAGS)
        if problem is None:
            raise
        exit_with_usage_error(problem)


def exit_with_usage_error(message: str, *, exitcode: int = 1, pointer: bool = True) -> NoReturn:
    """Prints `<tool>: error: <message>` (a line per message line) and exits."""
    tool = os.path.splitext(os.path.basename(sys.argv[0] if sys.argv else ""))[0] or "error"
    lines = [line for line in str(message).strip().splitlines() if line.strip()] or ["failed"]
    text = "".join(f"{tool}: error: {line.strip()}\n" for line in lines)
    if pointer:
        text += HELP_POINTER + "\n"
    _flush_python_stderr()
    sys.stderr.write(text)
    sys.stderr.flush()
    sys.exit(exitcode)


def _with_short_errors(main: Callable[[list[str]], Any]) -> Callable[[list[str]], Any]:
    from absl import app

    @functools.wraps(main)
    def run(argv: list[str]) -> Any:
        try:
            return main(argv)
        except app.UsageError as error:
            exit_with_usage_error(str(error), exitcode=error.exitcode or 1)
        except UserInputError as error:
            exit_with_usage_error(str(error), pointer=False)

    return run


def _flag_error_message(message: str) -> str:
    """absl's flag error, shortened: a traceback (ml_collections puts the one of a config
    file's `get_config` into its message) becomes its last line."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return "invalid flags"
    required = re.fullmatch(r"flag --(\S+)=None: Flag --\S+ must have a value other than None\.",
                            lines[0])
    if required:
        return f"--{required[1]} is required."
    lines[0] = re.sub(r"^flag (--)", r"\1", lines[0])
    # A multi-flag validator's message starts with every flag's value: its own text suffices.
    lines[0] = re.sub(r"^flags \w+=[^:]*(, \w+=[^:]*)*: ", "", lines[0])
    if any(line.startswith("Traceback (most recent call last)") for line in lines):
        head = re.sub(r":?\s*(Error whilst parsing config file)?:?$", "", lines[0])
        last = re.sub(r"^(ValueError|TypeError): ", "", lines[-1])
        return f"{head}: {last}"
    return "\n".join(lines)


def _config_file_flags(flag_values: Any) -> list[str]:
    """Names of the ml_collections `DEFINE_config_file` flags."""
    try:
        # The parser class is not re-exported by ml_collections.config_flags.
        from ml_collections.config_flags import config_flags as implementation
    except ImportError:
        return []
    file_parser = getattr(implementation, "ConfigFileFlagParser", None)
    if file_parser is None:
        return []
    return [name for name in list(flag_values)
            if isinstance(getattr(flag_values[name], "parser", None), file_parser)]


def _flag_argument(argv: list[str], name: str) -> str | None:
    """The command line's value of flag `name` (`--name=value` or `--name value`)."""
    arguments = argv[1:]
    for index, argument in enumerate(arguments):
        if argument == "--":
            break
        for prefix in (f"--{name}", f"-{name}"):
            if argument.startswith(prefix + "="):
                return argument[len(prefix) + 1:]
            if argument == prefix and index + 1 < len(arguments):
                return arguments[index + 1]
    return None


def _missing_config_file(argv: list[str], flag_values: Any) -> str | None:
    # ml_collections defers a missing file's error to the first use of the config, where it
    # reads "failed to load config_config" with two chained tracebacks.
    for name in _config_file_flags(flag_values):
        value = _flag_argument(argv, name)
        if not value:
            continue
        path = value.split(":", 1)[0]
        if not os.path.exists(path):
            return f"--{name}={value}: config file not found: {path}"
        if not os.path.isfile(path):
            return f"--{name}={value}: {path} is not a file"
    return None


def _unknown_config_field(argv: list[str], flag_values: Any) -> str | None:
    """The first `--config.a.b` override that names no field of its config, described."""
    for name in _config_file_flags(flag_values):
        value = _flag_argument(argv, name)
        if not value:
            continue
        try:
            config = flag_values[name].parser.parse(value)
        except Exception:  # noqa: BLE001 (the flag's own parse reports the file's errors)
            continue
        for argument in argv[1:]:
            match = re.match(rf"^--?{re.escape(name)}\.([^=\s]+)", argument)
            if match:
                problem = _missing_field(config, match[1])
                if problem:
                    return f"--{name}.{match[1]}: {problem}"
    return None


def _missing_field(config: Any, path: str) -> str | None:
    node, walked = config, []
    for part in path.split("."):
        key = re.sub(r"\[.*\]$", "", part)
        if not isinstance(node, Mapping) and not hasattr(node, "keys"):
            return None  # below a leaf: not this function's to judge
        keys = [str(field) for field in node]
        if key not in keys:
            section = ".".join(["config", *walked])
            moved = _sections_with_field(config, key) if len(walked) == 1 else []
            close = difflib.get_close_matches(key, keys, n=1)
            if moved:
                # A field that lives in another section (e.g. the input size, said once in
                # `codec` for the target encoder and the decoder).
                hint = " (it is in " + " and ".join(
                    f"config.{name}: --config.{name}.{key}" for name in moved
                ) + ")"
            elif close:
                hint = f"; did you mean '{close[0]}'?"
            else:
                hint = f" (its fields: {', '.join(keys)})"
            return f"{section} has no field '{key}'{hint}"
        node, walked = node[key], [*walked, key]
    return None


def _sections_with_field(config: Any, key: str) -> list[str]:
    """The top-level sections of `config` that have a field named `key`."""
    return [
        str(name) for name in config
        if (isinstance(config[name], Mapping) or hasattr(config[name], "keys"))
        and key in [str(field) for field in config[name]]
    ]


def no_gpu_expected() -> bool:
    """True when no NVIDIA GPU can be in use: the user hid them (CUDA_VISIBLE_DEVICES empty or
    -1), or the machine has neither an NVIDIA device node nor an NVIDIA PCI device (a GPU
    without its driver still counts as a GPU: there the cuInit failure is news)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return True
    if glob.glob("/dev/nvidia[0-9]*"):
        return False
    for vendor_file in glob.glob("/sys/bus/pci/devices/*/vendor"):
        try:
            with open(vendor_file) as handle:
                if handle.read().strip().lower() == _NVIDIA_PCI_VENDOR:
                    return False
        except OSError:
            continue
    return True


def terminal_columns() -> int:
    """Columns of the terminal on stderr; 0 when stderr is no terminal or reports no width."""
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


def install_import_filter(
    module: str,
    keep: Callable[[str], bool],
    *,
    after_import: Callable[[types.ModuleType], Any] | None = None,
) -> None:
    """Filters what the first import of `module` (and `after_import`) writes to stderr.

    The filter is removed as soon as the import starts, so it applies once per process.
    """
    sys.meta_path.insert(0, _FilteredImportFinder(module, keep, after_import))


@contextlib.contextmanager
def filtered_stderr(keep: Callable[[str], bool]) -> Iterator[None]:
    """Captures file descriptor 2 (Python and C++ alike) and writes back the kept lines.

    The lines come back in order when the block ends, also when it raises.
    """
    _flush_python_stderr()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            _flush_python_stderr()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            kept = "".join(line for line in text.splitlines(keepends=True) if keep(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


class _FilteredImportFinder(importlib.abc.MetaPathFinder):
    """Finds `module` with the other finders, and wraps its loader in the stderr filter."""

    def __init__(
        self,
        module: str,
        keep: Callable[[str], bool],
        after_import: Callable[[types.ModuleType], Any] | None,
    ) -> None:
        self._module = module
        self._keep = keep
        self._after_import = after_import

    def find_spec(
        self, fullname: str, path: Any = None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self._module:
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _FilteredLoader(spec.loader, self._keep, self._after_import)
        return spec


class _FilteredLoader(importlib.abc.Loader):
    """Runs the real loader (and `after_import`) inside `filtered_stderr`."""

    def __init__(
        self,
        loader: importlib.abc.Loader,
        keep: Callable[[str], bool],
        after_import: Callable[[types.ModuleType], Any] | None,
    ) -> None:
        self._loader = loader
        self._keep = keep
        self._after_import = after_import

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        with filtered_stderr(self._keep):
            self._loader.exec_module(module)
            if self._after_import is not None:
                self._after_import(module)

    def __getattr__(self, name: str) -> Any:
        # get_resource_reader, is_package, get_filename, ...: the real loader's.
        return getattr(self._loader, name)


class _PackageLevelFilter(logging.Filter):
    """Drops the records below `level` logged from files inside `folder`."""

    def __init__(self, folder: str, level: int) -> None:
        super().__init__()
        self._folder = os.path.join(os.path.realpath(folder), "")
        self._level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self._level:
            return True
        return not os.path.realpath(record.pathname).startswith(self._folder)


def _package_folder(module: str) -> str | None:
    """The folder of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return locations[0] if locations else None


def _query_devices(tensorflow: types.ModuleType) -> None:
    # The CUDA platform initialises (and on a machine without a GPU logs its cuInit failure)
    # on the first device query; listing physical devices does not initialise the runtime, so
    # logical device configuration (strategy.configure_cpu_devices) still works afterwards.
    tensorflow.config.list_physical_devices()


def _give_tqdm_a_width() -> None:
    if not _stderr_is_terminal() or terminal_columns() > 0:
        return
    # tqdm reads TQDM_* defaults when it is imported (an explicit argument still wins). It
    # needs rows as well: with the zero it reads, it puts every bar below the last row, unseen.
    for variable, size, fallback in (("TQDM_NCOLS", "COLUMNS", FALLBACK_COLUMNS),
                                     ("TQDM_NROWS", "LINES", FALLBACK_LINES)):
        value = os.environ.get(size, "")
        os.environ.setdefault(
            variable, value if value.isdigit() and int(value) > 0 else str(fallback)
        )


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _parse_level(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 0  # TensorFlow reads an unparsable level as 0 too


def _flush_python_stderr() -> None:
    for stream in (sys.stderr, sys.__stderr__):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.flush()
