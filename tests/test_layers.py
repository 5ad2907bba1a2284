"""The package's imports form layers (tests/layers.toml) with no circles.

Every import is read with `ast`: module-level, inside functions (lazy) and under TYPE_CHECKING alike,
since a lazy import is still a dependency. A module imports its own layer and those below; an upward
import or a circle fails here, naming the modules and the line.
"""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "safemlrm"
TABLE = Path(__file__).with_name("layers.toml")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _resolve(name: str, known: dict[str, Path]) -> str:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name


def imports(known: dict[str, Path]) -> list[Edge]:
    """Every import of a package module by a package module (to the module, or its nearest package)."""
    edges = []
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from pkg import mod` imports the submodule; `from mod import name` the module.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
            for target in targets:
                if target == "safemlrm" or target.startswith("safemlrm."):
                    resolved = _resolve(target, known)
                    if resolved != name:
                        edges.append(Edge(name, resolved, node.lineno))
    return edges


def load_table(path: Path = TABLE) -> tuple[list[tuple[str, list[str]]], set[tuple[str, str]]]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    layers = [(layer["name"], list(layer["modules"])) for layer in data["layer"]]
    allowed = set()
    for entry in data.get("allow", []):
        assert entry.get("reason"), f"allow-listed import {entry} needs a reason"
        allowed.add((entry["from"], entry["to"]))
    return layers, allowed


def layer_of(module: str, layers: list[tuple[str, list[str]]]) -> int | None:
    """Index of the layer of the longest prefix that maps the module ("safemlrm" maps only the root)."""
    best: tuple[int, int] | None = None
    for index, (_name, prefixes) in enumerate(layers):
        for prefix in prefixes:
            matches = module == prefix or (prefix != "safemlrm" and module.startswith(prefix + "."))
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def upward_imports(edges: list[Edge], layers: list[tuple[str, list[str]]], allowed: set[tuple[str, str]]) -> list[str]:
    problems = []
    for e in edges:
        low, high = layer_of(e.source, layers), layer_of(e.target, layers)
        assert low is not None and high is not None
        if high > low and (e.source, e.target) not in allowed:
            problems.append(
                f"{e.source}:{e.line} ({layers[low][0]}) imports {e.target} ({layers[high][0]}), a higher layer"
            )
    return problems


def circles(edges: list[Edge]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
        graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_has_a_layer() -> None:
    layers, _ = load_table()
    unmapped = [m for m in modules() if layer_of(m, layers) is None]
    assert not unmapped, f"add these modules to {TABLE.name}: {unmapped}"


def test_no_module_imports_a_higher_layer() -> None:
    layers, allowed = load_table()
    problems = upward_imports(imports(modules()), layers, allowed)
    assert not problems, "\n".join(problems)


def test_no_import_circles() -> None:
    found = circles(imports(modules()))
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_allow_list_entries_are_still_needed() -> None:
    _, allowed = load_table()
    edges = {(e.source, e.target) for e in imports(modules())}
    assert not (allowed - edges), f"allow-listed imports that no longer exist: {sorted(allowed - edges)}"


# ---------------------------------------------------------------- the checker itself catches what it should


def _package(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    for rel, text in files.items():
        path = tmp_path / "safemlrm" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return modules(tmp_path / "safemlrm")


def test_checker_finds_a_lazy_upward_import_and_a_circle(tmp_path: Path) -> None:
    known = _package(
        tmp_path,
        {
            "__init__.py": "",
            "types.py": "def f():\n    from safemlrm.cli import main\n",  # lazy, upward
            "cli.py": "from safemlrm import types\n",
            "a/__init__.py": "",
            "a/x.py": "from . import y\n",
            "a/y.py": "def g():\n    from safemlrm.a.x import h\n",  # closes x <-> y
        },
    )
    edges = imports(known)
    layers = [("kernel", ["safemlrm.types", "safemlrm.a"]), ("verbs", ["safemlrm", "safemlrm.cli"])]
    assert upward_imports(edges, layers, set()) == [
        "safemlrm.types:2 (kernel) imports safemlrm.cli (verbs), a higher layer"
    ]
    assert upward_imports(edges, layers, {("safemlrm.types", "safemlrm.cli")}) == []
    assert sorted(circles(edges)) == [["safemlrm.a.x", "safemlrm.a.y"], ["safemlrm.cli", "safemlrm.types"]]


@pytest.mark.parametrize(("module", "layer"), [("safemlrm", 1), ("safemlrm.types", 0), ("safemlrm.typesx", None)])
def test_layer_of_matches_whole_names(module: str, layer: int | None) -> None:
    assert layer_of(module, [("kernel", ["safemlrm.types"]), ("verbs", ["safemlrm"])]) == layer
