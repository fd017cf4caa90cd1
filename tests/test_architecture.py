"""The package's shape: the import contracts hold, no module is too long to read, and no two
subpackages import each other (counting imports inside functions, which dodge circles at
import time but still tie the layers together)."""

from __future__ import annotations

import ast
import collections
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT

PACKAGE = "associative_embedding"
PACKAGE_DIR = PROJECT_ROOT / PACKAGE
MAX_MODULE_LINES = 600


def _modules() -> list[pathlib.Path]:
    return sorted(PACKAGE_DIR.rglob("*.py"))


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _unit(module: str) -> str | None:
    """The subpackage a module belongs to: associative_embedding.X, or for the tasks
    associative_embedding.tasks.X (each task is its own unit); None for the root package."""
    parts = module.split(".")
    if parts[0] != PACKAGE or len(parts) < 2:
        return None
    depth = 3 if parts[1] == "tasks" and len(parts) > 2 else 2
    return ".".join(parts[:depth])


def _imported_modules(path: pathlib.Path) -> set[str]:
    """Every module the file imports, at any depth (function bodies and TYPE_CHECKING blocks
    included), as absolute names."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            names.add(origin)
            # `from package import module` imports the module.
            names.update(f"{origin}.{alias.name}" for alias in node.names)
    return names


def _unit_graph() -> dict[str, dict[str, list[str]]]:
    """{importing unit: {imported unit: [importing modules]}}."""
    graph: dict[str, dict[str, list[str]]] = collections.defaultdict(
        lambda: collections.defaultdict(list)
    )
    for path in _modules():
        source = _unit(_module_name(path))
        for name in _imported_modules(path):
            target = _unit(name)
            if source and target and target != source:
                graph[source][target].append(_module_name(path))
    return graph


def _lint_imports_command() -> list[str]:
    beside_python = pathlib.Path(sys.executable).parent / "lint-imports"
    if beside_python.exists():
        return [str(beside_python)]
    found = shutil.which("lint-imports")
    if found is None:
        pytest.fail("lint-imports not found: pip install -e '.[dev]' installs import-linter")
    return [found]


def test_import_contracts_hold():
    """setup.cfg's [importlinter] contracts: the layers, and the tasks independent of each other
    with the task registry above them."""
    environment = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    result = subprocess.run(
        _lint_imports_command(), cwd=PROJECT_ROOT, capture_output=True, text=True,
        env=environment, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_no_module_is_over_600_lines():
    lengths = {
        str(path.relative_to(PROJECT_ROOT)): len(path.read_text().splitlines())
        for path in _modules()
    }
    too_long = {path: lines for path, lines in lengths.items() if lines > MAX_MODULE_LINES}
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines (split by concept): {too_long}"


def _reachable(graph: dict[str, dict[str, list[str]]], start: str) -> set[str]:
    seen, stack = set(), [start]
    while stack:
        for target in graph.get(stack.pop(), {}):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def test_no_two_subpackages_import_each_other():
    """No cycle between subpackages, directly (a <-> b) or through others (a -> b -> c -> a)."""
    graph = _unit_graph()
    assert graph, "the scan found no imports between subpackages"
    reach = {unit: _reachable(graph, unit) for unit in graph}
    cycles = sorted(
        f"{a} <-> {b}" + (f" ({graph[a][b][0]} -> {b}; {graph[b][a][0]} -> {a})"
                          if b in graph[a] and a in graph.get(b, {}) else " (through others)")
        for a in graph
        for b in reach[a]
        if a < b and a in reach.get(b, set())
    )
    assert not cycles, "subpackages importing each other:\n" + "\n".join(cycles)
