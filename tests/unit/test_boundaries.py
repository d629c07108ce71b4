"""Boundaries the architecture relies on, read from the source with `ast` (nothing is imported or run).

- The host imports exactly one agent module, the protocol: everything else under harness/agent/
  runs inside containers (Python 3.9, TensorFlow) and may change without the host noticing.
  Of the protocol it uses only what its __all__ lists.
- The agent imports nothing of the host: it runs where only the standard library, numpy and
  TensorFlow are installed.
- Only the engine module starts processes on the host: nothing else can run a container.
- No function-level import hides an import cycle between host modules.
- The report is built from a run directory alone: it reaches neither the planner nor the engine.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "harness"
AGENT = ROOT / "agent"
HOST = sorted(p for p in ROOT.rglob("*.py") if AGENT not in p.parents)
AGENT_FILES = sorted(AGENT.rglob("*.py"))
PROTOCOL = "harness.agent.protocol"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, *, top_level_only: bool = False) -> set[str]:
    """Every module a file imports (`from a import b` counts as a and, when b is a module, a.b)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _agent_modules() -> set[str]:
    return {_module(p) for p in AGENT_FILES}


@pytest.mark.parametrize("path", HOST, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_host_imports_only_the_agent_protocol(path: Path) -> None:
    agent = _agent_modules() - {"harness.agent"}
    reached = {name for name in _imports(path) if name in agent}
    assert reached <= {PROTOCOL}, f"{path.name} imports agent internals: {sorted(reached - {PROTOCOL})}"


def _protocol_all() -> set[str]:
    tree = ast.parse((AGENT / "protocol.py").read_text(encoding="utf-8"))
    assigned = next(node for node in tree.body if isinstance(node, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets))
    return set(ast.literal_eval(assigned.value))


def _protocol_names(path: Path) -> set[str]:
    """The protocol's names a file uses: imported from it, or read as protocol.NAME."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == PROTOCOL:
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "protocol":
            found.add(node.attr)
    return found


@pytest.mark.parametrize("path", HOST, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_host_uses_only_what_the_protocol_exports(path: Path) -> None:
    unlisted = _protocol_names(path) - _protocol_all()
    assert not unlisted, f"{path.name} uses protocol names outside its __all__: {sorted(unlisted)}"


def test_the_protocol_defines_what_it_exports() -> None:
    tree = ast.parse((AGENT / "protocol.py").read_text(encoding="utf-8"))
    bound = {alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom)
             for alias in node.names}
    bound |= {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    bound |= {t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
              for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}
    assert _protocol_all() <= bound, sorted(_protocol_all() - bound)


@pytest.mark.parametrize("path", AGENT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_agent_imports_nothing_of_the_host(path: Path) -> None:
    host = {name for name in _imports(path) if name.startswith("harness.") and not name.startswith("harness.agent")}
    assert not host, f"{path.name} imports host modules: {sorted(host)}"


@pytest.mark.parametrize("path", HOST, ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_engine_starts_processes(path: Path) -> None:
    if path == ROOT / "engine.py":
        return
    assert not {"subprocess", "os.system", "pty"} & _imports(path), f"{path.name} may start processes"


def _cycles(graph: dict[str, set[str]], packages: set[str]) -> list[list[str]]:
    """Import cycles; a package's __init__ re-exporting its own submodules is not one."""
    found = []
    for start in graph:
        stack = [(start, [start])]
        while stack:
            node, trail = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    found.append(trail)
                elif nxt not in trail:
                    stack.append((nxt, [*trail, nxt]))
    return [c for c in found if not any(p in c and all(m == p or m.startswith(p + ".") for m in c) for p in packages)]


def test_no_function_level_import_closes_a_cycle() -> None:
    """Host modules form no cycle, counting imports made inside functions too."""
    host = {_module(p): p for p in HOST}
    graph = {name: {m for m in _imports(path) if m in host and m != name} for name, path in host.items()}
    packages = {_module(p) for p in HOST if p.name == "__init__.py"}
    cycles = _cycles(graph, packages)
    assert not cycles, f"import cycles: {sorted({' -> '.join(c) for c in cycles})[:5]}"


def _reached(start: str) -> set[str]:
    """Every host module `start` imports, directly or through others, at top level or inside functions."""
    host = {_module(p): p for p in HOST}
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in host:
            continue
        seen.add(name)
        todo += [m for m in _imports(host[name]) if m in host]
    return seen


def test_the_report_reaches_neither_the_planner_nor_the_engine() -> None:
    reached = _reached("harness.report.build")
    assert not reached & {"harness.plan", "harness.engine", "harness.runner", "harness.workflow"}, sorted(reached)


def test_the_cycle_finder_finds_one() -> None:
    graph = {"a": {"b"}, "b": {"a"}, "p": {"p.x"}, "p.x": {"p"}, "c": set()}
    assert sorted(sorted(c) for c in _cycles(graph, {"p"})) == [["a", "b"], ["a", "b"]]


def test_the_boundary_test_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from harness.agent import probes\n    import subprocess\n"
                   "    from harness.agent.protocol import _task\n    protocol.read_json('x')\n")
    assert _protocol_names(bad) - _protocol_all() == {"_task", "read_json"}
    assert "harness.agent.probes" in _imports(bad)
    assert "subprocess" in _imports(bad)
    assert "harness.agent.probes" not in _imports(bad, top_level_only=True)
