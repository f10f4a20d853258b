"""The package's layers as the README's Development section states them, checked on the source itself.

Every import of every module (top-level and inside functions) is read with ``ast``: lower layers never
import higher ones, the engine stays pure torch (no Lightning, no pandas), metrics and functional stay
free of pandas, modules stay readable in size, and no two modules import each other in a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "t5score"
MAX_LINES = 300
#: layer -> the t5score layers it may import (besides itself); modules at the top level are their own layer
ALLOWED = {
    "engine": {"assets"},  # the shipped default model's folder
    "functional": set(),
    "metrics": {"functional"},
    "data": {"records", "assets"},
    "scoring": {"engine", "data", "records", "functional"},
    "reports": {"data", "functional"},
    "runs": {"engine", "data", "records", "assets", "scoring", "metrics", "functional", "reports"},
    "cli": {
        "runs",
        "engine",
        "data",
        "records",
        "assets",
        "scoring",
        "metrics",
        "functional",
        "reports",
        "threads",
    },
}
#: third-party packages a layer must not import
FORBIDDEN = {"engine": {"lightning", "pandas"}, "functional": {"pandas", "lightning"}, "metrics": {"pandas"}}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "evaluate_metrics" not in p.parts}


def _imports(path: Path) -> set[str]:
    """Every module name imported anywhere in ``path`` (``from a.b import c`` gives ``a.b.c`` when that is
    a t5score module, else ``a.b``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                names.add(full if full in MODULES else node.module)
    return names


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "t5score"


def test_the_layers_are_folders():
    for layer in ALLOWED:
        assert (PACKAGE / layer / "__init__.py").is_file(), layer
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "api.py", "assets.py", "records.py", "threads.py"], top


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_imports_respect_the_layers(module):
    layer = _layer(module)
    if layer not in ALLOWED:
        return  # top-level modules (api, records, assets) may use any layer below the CLI
    for name in sorted(_imports(MODULES[module])):
        root = name.split(".")[0]
        assert root not in FORBIDDEN.get(layer, set()), f"{module} imports {name}"
        if root == "t5score" and name != "t5score":
            other = _layer(name)
            assert other == layer or other in ALLOWED[layer], f"{module} ({layer}) imports {name} ({other})"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_readable(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module}: {lines} lines"


def test_no_import_cycles():
    graph = {m: {n for n in _imports(p) if n in MODULES and n != m} for m, p in MODULES.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_the_checker_sees_imports_inside_functions(tmp_path):
    """The reader itself: a function-level import counts, so the checks above cannot pass by not looking."""
    source = tmp_path / "m.py"
    source.write_text(
        "import os\n\ndef f():\n    from t5score.engine import stats\n    import pandas as pd\n"
    )
    assert {"os", "pandas", "t5score.engine.stats"} <= _imports(source)
