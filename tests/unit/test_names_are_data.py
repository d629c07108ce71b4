"""Loaders, formats and model kinds are data: no module compares their names to a string literal.

What a loader, a format or a kind of model does is a field of its spec (harness/agent/spec.py) or a
method of ModelSpec; code asks for the field (`LOADERS[name].needs_code`, `model.is_existing_file`)
instead of testing a name (`loader == "rebuild"`, `kind != "artifact"`, `fmt in ("h5", "keras")`).
Read from the source with `ast`, like test_boundaries.py.
"""

from __future__ import annotations

import ast
import re
from dataclasses import replace
from pathlib import Path

import pytest

from harness.agent.protocol import (
    FORMATS,
    KINDS,
    LOADERS,
    Code,
    Migration,
    ModelSpec,
    Origin,
    ReferenceEnv,
    from_dict,
    missing,
    routes,
    to_dict,
    trust_order,
)
from harness.matrix.user_models import PROBE_LOADERS, USER_DEFAULT_EXTRA

ROOT = Path(__file__).resolve().parents[2] / "harness"
NAMES = frozenset((*LOADERS, *FORMATS, *KINDS))
# Names that are ordinary words elsewhere too (the keras package, the json report format, the artifact
# isolation level, a user model's `factory:` and `artifact:` keys): a comparison with one of them is
# flagged only where the other side is named after a loader, a format or a kind.
AMBIGUOUS = frozenset({"keras", "json", "artifact", "factory", "probe", "seed", "export", "serving"})
NAMED = re.compile(r"(^|_)(loaders?|formats?|fmt|kinds?)$")
# Where a name is defined rather than tested: ModelSpec's own properties (is_existing_file, ...).
DEFINITIONS = {"agent/spec.py"}
# Agent modules not yet turned into data, each with why.
AGENT_PENDING = {
    "agent/preflight.py": "per-format scanners and their outcome rules: a rule table of their own is next",
}
# Host modules being rewritten on main (the advisor package, one verdict, the views), checked once their rewrite
# lands: remove an entry then. At the time of writing only cli/check.py, cli/bisect.py (model.kind == "artifact")
# and upgrade.py (loader == "rebuild", loader != "rebuild") compared names.
FENCED: set[str] = set()  # modules being rewritten, exempt until they are (none now)
EXEMPT = DEFINITIONS | set(AGENT_PENDING) | FENCED
FILES = sorted(p for p in ROOT.rglob("*.py"))


def _literals(node: ast.expr) -> list[str]:
    """The string constants a comparison operand spells: itself, or the items of a literal tuple, list or set."""
    items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
    return [i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)]


def _named(node: ast.expr) -> str | None:
    """The name an operand goes by: a variable, an attribute, a subscript's or a .get()'s string key."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    key = node.slice if isinstance(node, ast.Subscript) else (
        node.args[0] if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get" and node.args else None)
    return key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else None


def _compares_a_name(node: ast.Compare) -> bool:
    operands = [node.left, *node.comparators]
    spelled = {name for o in operands for name in _literals(o) if name in NAMES}
    if spelled - AMBIGUOUS:
        return True
    return bool(spelled) and any(NAMED.search(_named(o) or "") for o in operands)


def name_comparisons(path: Path) -> list[str]:
    """'line: code' of every comparison of a loader, format or kind name with a string literal in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [f"{node.lineno}: {ast.unparse(node)}" for node in ast.walk(tree)
            if isinstance(node, ast.Compare) and _compares_a_name(node)]


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", [p for p in FILES if _rel(p) not in EXEMPT], ids=_rel)
def test_no_module_compares_a_loader_format_or_kind_name(path: Path) -> None:
    found = name_comparisons(path)
    assert not found, f"{_rel(path)} tests names instead of fields (harness/agent/spec.py): {found}"


def test_the_exemptions_name_existing_modules() -> None:
    gone = EXEMPT - {_rel(p) for p in FILES}
    assert not gone, f"exempt modules that no longer exist (remove them here): {sorted(gone)}"


@pytest.mark.parametrize(("source", "flagged"), [
    ('if x.loader == "rebuild": pass', True),
    ('ok = kind != "artifact"', True),
    ('ok = c["format"] == "h5"', True),
    ('ok = loader in ("rebuild", "load_model")', True),
    ('ok = cell.get("format") in {"keras"}', True),
    ('ok = "tfsm_layer" in chosen', True),
    ('ok = "artifact" in entry', False),  # a user model's artifact: key
    ('ok = package == "keras"', False),
    ('ok = isolation == "artifact"', False),
    ('ok = record.get("kind") == "load"', False),
    ("ok = LOADERS[loader].needs_code", False),
])
def test_the_check_tells_a_name_from_other_words(tmp_path: Path, source: str, flagged: bool) -> None:
    module = tmp_path / "module.py"
    module.write_text(source + "\n")
    assert bool(name_comparisons(module)) is flagged


# ---------------------------------------------------------------------------- the fields that replaced the names


def test_the_agent_has_one_function_per_catalog_loader_and_format() -> None:
    from harness.agent import formats

    assert list(formats.LOADING) == list(LOADERS)
    assert set(formats.SAVERS) == set(FORMATS)


@pytest.mark.parametrize(("fmt", "order"), [
    # An existing file's reference and a migration's start: the orders once kept by hand, per format.
    ("h5", ["load_model", "load_model_custom", "load_model_nocompile", "rebuild"]),
    ("keras", ["load_model", "load_model_custom", "load_model_nocompile", "load_model_unsafe"]),
    ("savedmodel", ["load_model", "load_model_custom", "load_model_nocompile", "tfsm_layer", "saved_model"]),
])
def test_trust_order_keeps_the_keras_model_first_and_the_files_code_last(fmt: str, order: list[str]) -> None:
    readers = [name for name in reversed(LOADERS) if fmt in LOADERS[name].reads and name in order]
    assert trust_order(readers) == order


def test_trust_order_runs_no_files_code_before_a_loader_that_runs_none() -> None:
    assert trust_order(["load_model_unsafe", "load_model_xla", "tflite"]) == [
        "load_model_xla", "tflite", "load_model_unsafe"]


def test_homes_say_where_a_model_is_saved_and_where_its_routes_are_at_home() -> None:
    envs = ["a", "b"]
    probe = ModelSpec(name="p")
    artifact = ModelSpec(name="f", kind="artifact")
    referenced = replace(artifact, origin=Origin(reference_env=ReferenceEnv(env="b")))
    migrated = ModelSpec(name="m", kind="migration", migrates=Migration(model="f", env="b", format="h5", loaders=()))
    assert probe.homes(envs) == {"a": "a", "b": "b"} and probe.home(envs) is None
    assert artifact.homes(envs) == {"user-f": "a"} and artifact.home(envs) == "a"
    assert referenced.homes(envs) == {"user-f": "b"} and referenced.home(envs) == "b"
    assert migrated.homes(envs) == {"b": "b"} and migrated.homes(["a"]) == {} and migrated.home(envs) is None


def test_a_kind_is_one_of_the_kinds() -> None:
    assert KINDS == ("probe", "factory", "artifact", "migration")
    assert [ModelSpec(name="x", kind=k).is_user_model for k in ("probe", "factory")] == [False, True]
    with pytest.raises(ValueError, match="unknown model kind 'user'"):
        from_dict({**to_dict(ModelSpec(name="x")), "kind": "user"})


def test_users_loaders_are_fields() -> None:
    assert PROBE_LOADERS.keys() == {"load_model_custom", "rebuild_from_seed", "tf1_session"}
    assert USER_DEFAULT_EXTRA == ("load_model_nocompile", "tflite_interpreter")


def test_a_loader_that_needs_code_applies_only_to_a_model_with_a_factory() -> None:
    without = ModelSpec(name="x", kind="artifact", formats=("h5",), loaders=("load_model", "rebuild"))
    assert routes(without) == [("h5", "load_model")]
    assert routes(replace(without, code=Code(factory="m:f"))) == [("h5", "load_model"), ("h5", "rebuild")]
    assert missing(without, "rebuild") == "a factory: the model is rebuilt in code before load_weights"
