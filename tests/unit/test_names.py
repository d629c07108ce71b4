"""One word, one meaning: no two host modules define the same public top-level name.

A name defined twice (a function, a class, a constant or a type alias) reads as one thing in one file and
another in the next, or is a copy that drifts: `decide` was the gate's verdict and a check target's answer,
`WORKING` was written out in three modules. Read with `ast`; nothing is imported. The agent is left out: it
runs in containers, its names are its own, and the host sees only what the protocol exports.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "harness"
AGENT = ROOT / "agent"
# Every command module defines these two (the command protocol of harness/cli/__init__.py); `log` is a logger.
ALLOWED = frozenset({"add_parser", "main", "log", "__all__"})


def defined_names(path: Path) -> set[str]:
    """The public names a module defines at its top level."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_") and n not in ALLOWED}


def defined_twice(files: list[Path], root: Path) -> dict[str, list[str]]:
    """Public names defined by more than one of these modules, with the modules."""
    where: dict[str, list[str]] = defaultdict(list)
    for path in files:
        for name in defined_names(path):
            where[name].append(str(path.relative_to(root)))
    return {name: sorted(paths) for name, paths in sorted(where.items()) if len(paths) > 1}


def test_no_two_host_modules_define_the_same_public_name() -> None:
    host = sorted(p for p in ROOT.rglob("*.py") if AGENT not in p.parents)
    assert defined_twice(host, ROOT) == {}


def test_a_name_defined_in_two_modules_is_found(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("WORKING = ('portable',)\ndef decide():\n    pass\nclass _Private:\n    pass\n")
    (tmp_path / "b.py").write_text("from a import WORKING\ndecide: int = 1\ndef main():\n    pass\n"
                                   "class _Private:\n    pass\n")
    (tmp_path / "c.py").write_text("def main():\n    pass\n")
    files = sorted(tmp_path.glob("*.py"))
    assert defined_twice(files, tmp_path) == {"decide": ["a.py", "b.py"]}
