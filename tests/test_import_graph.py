"""The import rules the folder layout promises (docs/ARCHITECTURE.md), read from the source.

A loop between modules makes import order matter and hides which side owns a contract; an
agent that imports the collector could not be installed alone on a board; a collector that
imports the agent's engine loads onnxruntime for `flopgap status`. The graph is drawn from the
code with `ast`, so a rule broken anywhere fails here before it fails on a board.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agent", "collector", "shared")
# collector modules that may import agent/: none. The demo runs its local agent as a subprocess
# (`python -m agent run`), and settings, input specs, keys, the bundle format and the version
# are contracts in shared/; a module added here must say why.
COLLECTOR_MAY_IMPORT_AGENT: frozenset[str] = frozenset()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
    }


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.Module, top_level: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports run when the module loads (`top_level`), or also those inside functions.

    Imports under `if TYPE_CHECKING:` never run, so they are no edge of the graph.
    """
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
        elif not top_level or isinstance(node, ast.If | ast.Try):
            stack.extend(ast.iter_child_nodes(node))
        elif isinstance(node, ast.ExceptHandler):
            stack.extend(node.body)


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The project modules an import statement names (a submodule, else its package)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module.split(".")
            if not MODULES[module].name == "__init__.py":
                package = package[:-1]
            package = package[: len(package) - node.level + 1]
            base = ".".join([*package, base] if base else package)
        names = [f"{base}.{alias.name}" for alias in node.names]
        names = [n if n in MODULES else base for n in names]
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name:
            yield name


def _graph(top_level: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        graph[module] = {
            t for node in _import_nodes(tree, top_level) for t in _targets(module, node)
        } - {module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_scanner_reads_each_kind_of_import() -> None:
    """`from package import module`, `from package import name` and plain `import`."""
    loaded, anywhere = _graph(top_level=True), _graph(top_level=False)
    assert {"collector.store", "shared.errors", "collector.flops"} <= loaded["collector.export"]
    assert "agent.jobs.child" in loaded["agent.jobs.server"]
    assert len(MODULES) > 100
    lazy = {m for m, targets in anywhere.items() if targets - loaded[m]}
    assert lazy, "no module imports inside a function: the lazy scan is not reading them"


def test_the_scanner_finds_a_loop() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_loop_when_modules_load() -> None:
    assert _cycles(_graph(top_level=True)) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_package_has_no_loop_even_through_lazy_imports(package: str) -> None:
    """A loop through a function-level import is still two modules that need each other."""
    graph = {
        m: {t for t in targets if t.split(".")[0] == package}
        for m, targets in _graph(top_level=False).items()
        if m.split(".")[0] == package
    }
    assert _cycles(graph) == []


def test_agent_never_imports_the_collector() -> None:
    wrong = {
        m: sorted(t for t in targets if t.startswith("collector"))
        for m, targets in _graph(top_level=False).items()
        if m.startswith("agent")
    }
    assert {m: t for m, t in wrong.items() if t} == {}


def test_shared_imports_neither_side() -> None:
    wrong = {
        m: sorted(t for t in targets if t.split(".")[0] in ("agent", "collector"))
        for m, targets in _graph(top_level=False).items()
        if m.startswith("shared")
    }
    assert {m: t for m, t in wrong.items() if t} == {}


def test_collector_imports_the_agent_only_to_run_one() -> None:
    """Settings, input specs and keys are contracts in shared/, not the agent's code."""
    wrong = {
        m: sorted(t for t in targets if t.split(".")[0] == "agent")
        for m, targets in _graph(top_level=False).items()
        if m.startswith("collector") and m not in COLLECTOR_MAY_IMPORT_AGENT
    }
    assert {m: t for m, t in wrong.items() if t} == {}


def test_message_handlers_see_the_context_and_not_the_loop() -> None:
    graph = _graph(top_level=False)
    loop_side = {"collector.server", "collector.server.loop", "collector.server.table",
                 "collector.server.serve"}  # fmt: skip
    handlers = {m: graph[m] for m in MODULES if m.startswith("collector.server.handlers.")}
    assert {"agents", "jobs", "campaigns", "status"} <= {m.rsplit(".", 1)[1] for m in handlers}
    assert {m: t & loop_side for m, t in handlers.items() if t & loop_side} == {}
