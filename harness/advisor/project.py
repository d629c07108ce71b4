"""A project's models, declared once: `[tool.harness]` in its pyproject.toml, or a harness.toml beside it.

    [[tool.harness.models]]                  # harness.toml: [[models]]
    model = "models/classifier.keras"        # a saved model, or path/to/file.py:FUNCTION that builds one
    inputs = "models/inputs.npy"             # a .npy/.npz file, or SHAPE[:DTYPE] such as "8x28x28:float32"
    custom-objects = "models/layers.py:CUSTOM_OBJECTS"
    tolerance = { rtol = 1e-5, atol = 1e-6 }

The keys are check's flags without their dashes (name, model, inputs, custom-objects, factory,
reference, format, tolerance, unsafe); paths start at the file's folder. `harness check` without
--model checks every model listed. Problems are collected and named by key path, as for matrices.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.advisor.question import ModelQuestion, parse_inputs
from harness.errors import UsageError
from harness.matrix.problems import MISSING, check_keys, found, join, shown, string, tolerance

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - tomllib's backport before Python 3.11
    import tomli as tomllib

PYPROJECT, HARNESS_TOML = "pyproject.toml", "harness.toml"
TABLE_KEYS = ("models",)
MODEL_KEYS = ("name", "model", "inputs", "custom-objects", "factory", "reference", "format", "tolerance", "unsafe")
_FLAGS = {"custom-objects": "custom_objects"}  # key -> ModelQuestion field, where the spelling differs


@dataclass(frozen=True)
class ProjectModels:
    """The models a project declares, and where (for messages)."""

    file: Path
    models: tuple[ModelQuestion, ...]


def project_models(folder: Path, python: str) -> ProjectModels:
    """The models of harness.toml, else of pyproject.toml's [tool.harness]; UsageError when neither lists one."""
    for name, prefix in ((HARNESS_TOML, ""), (PYPROJECT, "tool.harness")):
        path = folder / name
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: not valid TOML ({exc})") from None
        table: Any = data
        for key in prefix.split(".") if prefix else ():
            table = table.get(key, MISSING) if isinstance(table, dict) else MISSING
        if table is MISSING:
            continue
        return ProjectModels(file=path, models=parse_models(table, prefix, folder, path, python))
    raise UsageError(f"no --model, and no models declared in {folder}: list them in pyproject.toml's "
                     "[[tool.harness.models]] (or harness.toml's [[models]]), or give --model")


def parse_models(table: object, at: str, folder: Path, path: Path, python: str) -> tuple[ModelQuestion, ...]:
    """The `models` of a [tool.harness] table; UsageError with the first problem by key path (and how many more)."""
    problems: list[str] = []
    models: list[ModelQuestion] = []
    if not isinstance(table, dict):
        problems.append(f"{at or 'the file'}: expected a table, found {found(table)}")
    else:
        check_keys(table, TABLE_KEYS, at, problems)
        raw = table.get("models", MISSING)
        where = join(at, "models")
        if raw is MISSING:
            problems.append(f"{where}: required key missing; list the project's models ([[{where}]] with model = ...)")
        elif not isinstance(raw, list) or not raw:
            problems.append(f"{where}: expected a non-empty array of tables, found {found(raw)}")
        else:
            for i, entry in enumerate(raw):
                model = _model(entry, f"{where}[{i}]", folder, python, problems)
                if model is not None:
                    models.append(model)
            _unique(models, where, problems)
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise UsageError(f"{path}: {problems[0]}{more}")
    return tuple(models)


def _model(entry: object, at: str, folder: Path, python: str, problems: list[str]) -> ModelQuestion | None:
    if not isinstance(entry, dict):
        problems.append(f"{at}: expected a table, found {found(entry)}")
        return None
    before = len(problems)
    check_keys(entry, MODEL_KEYS, at, problems)
    if "model" not in entry:
        problems.append(f"{at}.model: required key missing; a saved model's path or path/to/file.py:FUNCTION")
        return None
    fields: dict[str, Any] = {"python": python, "folder": str(folder)}
    for key in ("model", "factory", "custom-objects"):
        if key in entry:
            fields[_FLAGS.get(key, key)] = _code_or_file(entry[key], f"{at}.{key}", folder, problems)
    if "inputs" in entry:
        fields["inputs"] = _inputs(entry["inputs"], f"{at}.inputs", folder, problems)
    if "reference" in entry:
        fields["reference"] = _file(entry["reference"], f"{at}.reference", folder, problems)
    for key in ("name", "format"):
        if key in entry:
            fields[key] = string(entry[key], f"{at}.{key}", problems)
    if "tolerance" in entry:
        tol = tolerance(entry["tolerance"], problems, f"{at}.tolerance")
        fields["tolerance"] = {k: getattr(tol, k) for k in ("rtol", "atol") if k in entry["tolerance"]}
    if "unsafe" in entry:
        if not isinstance(entry["unsafe"], bool):
            problems.append(f"{at}.unsafe: expected true or false, found {found(entry['unsafe'])}")
        fields["unsafe"] = entry["unsafe"] is True
    return ModelQuestion(**fields) if len(problems) == before else None


def _file(value: object, at: str, folder: Path, problems: list[str]) -> str | None:
    """An existing file or folder named from the project's folder, as an absolute path."""
    text = string(value, at, problems)
    if text is None:
        return None
    path = (folder / Path(text).expanduser()).resolve()
    if not path.exists():
        problems.append(f"{at}: not found: {path} (paths start at the folder of the file that lists them)")
        return None
    return str(path)


def _code_or_file(value: object, at: str, folder: Path, problems: list[str]) -> str | None:
    """A saved model's path, or path/to/file.py[:NAME] (the file found from the project's folder)."""
    text = string(value, at, problems)
    if text is None:
        return None
    head, sep, name = text.rpartition(":") if ".py:" in text else (text, "", "")
    if ":" in text and not sep and not (folder / text).exists():
        problems.append(f"{at}: {shown(text)}: name the module by its file, path/to/module.py:FUNCTION (a module "
                        "name would be looked up from wherever check runs)")
        return None
    path = _file(head, at, folder, problems)
    return None if path is None else path + sep + name


def _inputs(value: object, at: str, folder: Path, problems: list[str]) -> str | None:
    text = string(value, at, problems)
    if text is None:
        return None
    shape = parse_inputs(text) if not (folder / text).exists() else None
    if isinstance(shape, dict):
        return text
    return _file(text, at, folder, problems)


def model_name(model: ModelQuestion) -> str:
    """The name a model's check goes by: as given, else its function's name or its file's (up to the first dot),
    as `check --model` names it."""
    if model.name:
        return model.name
    if ".py:" in model.model:
        return model.model.rsplit(":", 1)[1]
    return Path(model.model).name.split(".")[0]


def _unique(models: Sequence[ModelQuestion], at: str, problems: list[str]) -> None:
    """Each model names its run directory: two may not share a name."""
    seen: dict[str, int] = {}
    for i, model in enumerate(models):
        name = model_name(model)
        if name in seen:
            problems.append(f"{at}[{i}]: a second model named {name!r} (as {at}[{seen[name]}]); give each a name")
        seen.setdefault(name, i)
