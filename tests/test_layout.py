"""The house's rules about imports: no cycle between qa's packages and modules, faces on top."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "qa"


def _unit(module: str) -> str:
    """``qa.reading.spans`` -> ``qa.reading``: a package or a top-level module of qa."""
    return ".".join(module.split(".")[:2])


def _imports(path: Path) -> set[str]:
    """Every ``qa.*`` module ``path`` imports, at the top or inside functions, typing included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found.update(n for n in names if n == "qa" or n.startswith("qa."))
    return found


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        here = _unit(module)
        for target in _imports(path):
            if target != "qa" and _unit(target) != here:
                edges.setdefault(here, set()).add(_unit(target))
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_import_cycle_between_qas_packages_and_modules() -> None:
    edges = _graph()
    assert "qa.training" in edges and "qa.reading" in edges  # the graph saw the packages
    cycle = _cycle(edges)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None


def test_the_roads_do_not_import_the_faces() -> None:
    edges = _graph()
    faces = {"qa.cli", "qa.web"}
    for unit, targets in edges.items():
        if unit not in faces:
            assert not targets & faces, f"{unit} imports a face: {sorted(targets & faces)}"
    # ui.py, the web chat's entry, uses the web face and the logging setup, not the CLI.
    assert not any(t.startswith("qa.cli") for t in _imports(REPO / "ui.py"))
