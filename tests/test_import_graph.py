"""The core's modules import each other without cycles.

Each module of the ``mtrec`` package in ``core/`` is parsed with ``ast``; its module-level imports
(including those under ``try``/``if``, but not those inside functions, which run later) are the
edges of the graph.  Two graphs are checked:

* the runtime graph, without imports under ``if TYPE_CHECKING:``: it must have no cycle at all;
* the typing graph, with them: the contracts (``mtrec.components``, ``mtrec.hookspecs``) and the
  trainer are typed against the ``Run`` protocol, not the engine's ``RunContext``, so
  ``mtrec.run_context`` sits on no cycle even there.
"""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "core"


def core_modules() -> dict[str, Path]:
    """Module name -> file, for every module of ``mtrec`` under core/ (templates are not modules)."""
    modules = {}
    for path in sorted(CORE.rglob("*.py")):
        parts = list(path.relative_to(CORE).with_suffix("").parts)
        if "templates" in parts:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(["mtrec", *parts])] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(path: Path, module: str, *, type_checking: bool) -> set[str]:
    """Every dotted name a module imports at its top level (``from a import b`` gives ``a`` and ``a.b``)."""
    is_package = path.name == "__init__.py"
    names: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    package = module.split(".") if is_package else module.split(".")[:-1]
                    package = package[: len(package) - (node.level - 1)]
                    base = ".".join(package + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                names.add(base)
                names.update(f"{base}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If):
                if _is_type_checking(node.test):
                    if type_checking:
                        visit(node.body)
                    visit(node.orelse)
                else:
                    visit(node.body)
                    visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, (ast.With,)):
                visit(node.body)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body)
    return names


def import_graph(*, type_checking: bool) -> dict[str, set[str]]:
    modules = core_modules()
    return {
        module: {name for name in imported_names(path, module, type_checking=type_checking)
                 if name in modules and name != module}
        for module, path in modules.items()
    }


def tangles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan): each lies on a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per tangle, as the path of modules that closes it."""
    return [_cycle_path(graph, component) for component in tangles(graph)]


def _cycle_path(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """One concrete cycle through ``component``: start at its first module, walk back to it."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:  # breadth first, inside the component: the shortest way back to ``start``
        v = queue.pop(0)
        for w in sorted(graph[v] & component):
            if w == start:
                return paths[v] + [start]
            if w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    return sorted(component)


def _describe(found: list[list[str]]) -> str:
    return "; ".join(" -> ".join(cycle) for cycle in found)


def test_the_graph_sees_the_core():
    graph = import_graph(type_checking=False)
    assert {"mtrec.engine", "mtrec.components", "mtrec.run_context", "mtrec.training.trainer"} <= set(graph)
    assert "mtrec.run_context" in graph["mtrec.engine"]
    assert "mtrec.components" in graph["mtrec.config"]


def test_cycle_finder_names_the_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_core_has_no_import_cycle():
    found = cycles(import_graph(type_checking=False))
    assert not found, f"import cycle(s) inside core/: {_describe(found)}"


def test_the_contracts_do_not_name_the_engines_run_context():
    graph = import_graph(type_checking=True)
    for module in ("mtrec.components", "mtrec.hookspecs", "mtrec.training.trainer"):
        assert "mtrec.run_context" not in graph[module], f"{module} imports mtrec.run_context: type it against mtrec.components.Run"
    through = [sorted(tangle) for tangle in tangles(graph) if "mtrec.run_context" in tangle]
    assert not through, f"mtrec.run_context is on an import cycle (TYPE_CHECKING imports included) with {through}"
