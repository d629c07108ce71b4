"""`check --migrate DIR`: hand over the best verified file made again, the code that loads it, and a manifest.

A file is made again in two ways: migrated, when the source environment saved it again after
loading the user's artifact (harness/agent/migrate.py); adapted, when a copy of the artifact was
edited for the target's Keras and loaded there (harness/agent/adapters.py). Only a file that was
verified is handed over: a migrated file whose route is portable (it predicted like the original at
home and in the target), an adapted file whose load in the target predicted like the original, both
within the report's tolerance. The copy is checked against the sha256 recorded when it was written,
and the manifest says where it comes from, how it was made (for an adapted file, every edit), where it
was verified and by how much its predictions differ.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness import __version__, untrusted
from harness.advisor import adaptation, words
from harness.advisor.answer import route_dict, route_from_dict
from harness.advisor.ranking import Route
from harness.agent.protocol import FORMATS, LOADERS, CellKey, ModelSpec, hash_tree, write_json_atomic
from harness.errors import UsageError
from harness.models import keras_classes
from harness.report.statuses import WORKING
from harness.rundir import RunDir

MANIFEST = "manifest.json"
SNIPPET = "load.py"


@dataclass(frozen=True)
class Handed:
    """What was written for one target: the folder, the file to load, and the route that verified it."""

    target: str
    folder: Path
    file: str
    route: Route
    note: str | None = None  # what keeps it from being a file load_model reads by default

    @property
    def words(self) -> str:
        """How the file was made and verified, in the words every view uses."""
        return words.steps(self.route)

    def entry(self) -> dict[str, Any]:
        """What run.json and check.json record of it."""
        return {"target": self.target, "folder": str(self.folder), "file": self.file, "words": self.words,
                "route": route_dict(self.route), "note": self.note}


def check_folder(folder: Path) -> None:
    """--migrate DIR must be new or empty (checked before anything is built): nothing is written over."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UsageError(f"--migrate {folder}: exists and is not an empty folder; name a new one")


def _verified(route: Mapping[str, Any]) -> bool:
    """A file made again that may be handed over: a migrated file that works at home and in the target, an adapted
    copy that works in the target (where it was made)."""
    if adaptation.adapts(str(route["loader"])):
        return route.get("route_status") in WORKING
    return route.get("made_with") is not None and route.get("route_status") == "portable"


def verified_made(target: Mapping[str, Any]) -> list[Route]:
    """The verified files made again for one target of report.json's `check`, best first: one that loads in the
    target itself before one that needs tf-keras, then in the answer's order (harness/advisor/ranking.py)."""
    made = [route_from_dict(r) for r in target["works"] if _verified(r)]
    return sorted(made, key=lambda r: (r.tf_keras, made.index(r)))


def best_migrated(target: Mapping[str, Any]) -> Route | None:
    """The best verified file made again for one target (see verified_made)."""
    made = verified_made(target)
    return made[0] if made else None


# Keras 3.12.1 and 3.13.2+ refuse to deserialize a TFSMLayer unless safe_mode=False (keras-team/keras#22034): a
# file wrapping a SavedModel so is never handed over as one load_model reads by default.
WRAPPER = "TFSMLayer"
WRAPPER_NOTE = ("it wraps a SavedModel in a TFSMLayer, which Keras 3.12.1 and 3.13.2 and later load only with "
                "load_model(path, safe_mode=False) (it runs the SavedModel's graph): not a file load_model reads by "
                "default")


def hand_over(folder: Path, report: Mapping[str, Any], *, run_dir: RunDir, model: ModelSpec,
              migrated: ModelSpec | None) -> list[Handed]:
    """Write each target's best verified file made again (in folder/<target> when there are several targets)."""
    handed = []
    targets = report["check"]["targets"]
    for target in targets:
        made = [(route, _made(run_dir, report, model, migrated, route)) for route in verified_made(target)]
        if not made:
            continue
        # A file wrapping a SavedModel only when nothing else was verified, and said so.
        route, found = next(((r, m) for r, m in made if not m.note), made[0])
        where = folder / target["target"] if len(targets) > 1 else folder
        handed.append(_write(where, target["target"], route, found, report=report, model=model))
    return handed


def _made(run_dir: RunDir, report: Mapping[str, Any], model: ModelSpec, migrated: ModelSpec | None,
          route: Route) -> _Made:
    made = (_adapted(run_dir, report, model, route) if adaptation.adapts(route.loader)
            else _migrated(run_dir, migrated, route))
    wraps = WRAPPER in keras_classes(made.source / made.artifact)  # nothing for a file that is not a .keras archive
    return replace(made, note=WRAPPER_NOTE) if wraps else made


@dataclass(frozen=True)
class _Made:
    """A verified file made again, where the run directory holds it: its folder, the files to hand over (and their
    sha256), the file to load, and how it was made (the manifest's `made`)."""

    source: Path
    files: dict[str, str]
    artifact: str
    made: dict[str, Any]
    note: str | None = None  # what keeps it from being a file load_model reads by default

def _migrated(run_dir: RunDir, migrated: ModelSpec | None, route: Route) -> _Made:
    how = migrated.migrates if migrated is not None else None
    if migrated is None or how is None:
        raise UsageError("--migrate: the check made no migrated model")
    manifest = run_dir.read_manifest(how.env) or {}
    saved = manifest.get("models", {}).get(migrated.name, {}).get("formats", {}).get(route.format)
    if not isinstance(saved, dict):
        raise UsageError(f"--migrate: {how.env} holds no {route.format} file of {migrated.name}")
    prefix = route.format + "/"
    files = {rel[len(prefix):]: digest for rel, digest in saved.get("files", {}).items() if rel.startswith(prefix)}
    made = LOADERS[route.made_with].words if route.made_with in LOADERS else route.made_with
    return _Made(run_dir.artifacts(how.env) / migrated.name / route.format, files,
                 str(saved["path"]).split("/", 2)[-1],  # <model>/<format>/<file>: the file below the format folder
                 {"env": how.env, "loader": route.made_with,
                  "words": f"loaded with {made} in {how.env}, saved there as {FORMATS[route.format].words}"})


def _adapted(run_dir: RunDir, report: Mapping[str, Any], model: ModelSpec, route: Route) -> _Made:
    key = CellKey(str(report["check"]["source"]), str(route.env), model.name, route.format, route.loader)
    found = adaptation.account(run_dir, key)
    if found is None or not found.get("hand"):
        raise UsageError(f"--migrate: no adapted file of {model.name} was kept for {route.env}")
    envs = {e["id"]: e for e in report["environments"]}
    keras = envs.get(route.env or "", {}).get("keras")
    return _Made(run_dir.adapted(key), adaptation.hand_files(found), str(found["file"]), {
        "env": route.env, "loader": None, "adapters": found["adapters"],
        "words": f"a copy of the original edited for Keras {keras} (no model loaded with another Keras): "
                 + "; ".join(adaptation.edits(found))})


def _write(where: Path, target: str, route: Route, made: _Made, *, report: Mapping[str, Any],
           model: ModelSpec) -> Handed:
    tmp = where.with_name(f".{where.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _copy(made.source, tmp, made.files)
        envs = {e["id"]: e for e in report["environments"]}
        code = snippet(route, made.artifact, model, envs.get(route.env or "", {}))
        (tmp / SNIPPET).write_text(f"# NOTE: {made.note}\n{code}" if made.note else code, encoding="utf-8")
        write_json_atomic(tmp / MANIFEST, _manifest(route, made, target, report=report, model=model), strict=True)
        where.parent.mkdir(parents=True, exist_ok=True)
        if where.exists():
            where.rmdir()  # the empty folder check_folder allowed
        tmp.rename(where)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Handed(target, where, made.artifact, route, made.note)


def _copy(source: Path, dest: Path, expected: dict[str, str]) -> None:
    """Copy the files made again (their top-level entries; links and special files refused), then check every file's
    sha256."""
    for name in sorted({rel.split("/")[0] for rel in expected}):
        untrusted.copy_artifact(source / name, dest / name)
    found = hash_tree(str(dest))
    if found != expected:
        odd = sorted(set(found) ^ set(expected)) or sorted(k for k in found if found[k] != expected.get(k))
        raise UsageError(f"--migrate: {source} is not what was written and verified ({odd[0]} differs); nothing "
                         "handed over")


def _versions(env: dict[str, Any]) -> dict[str, Any]:
    return {k: env.get(k) for k in ("python", "tensorflow", "keras", "keras_package")}


def _manifest(route: Route, made: _Made, target: str, *, report: Mapping[str, Any],
              model: ModelSpec) -> dict[str, Any]:
    envs = {e["id"]: e for e in report["environments"]}
    original = model.origin.artifact if model.origin else None
    source: dict[str, Any] = next((e for e in report["environments"]
                                   if (e.get("spec") or {}).get("artifact") == original), {})
    return {
        "schema": 1,
        "harness_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "file": made.artifact,
        "format": route.made_format or route.format,
        "files": made.files,
        "original": {"path": original, "format": model.artifact_format, "sha256": source.get("spec", {}).get("sha256"),
                     "keras": source.get("keras")},
        "made": {**made.made, "versions": _versions(envs.get(str(made.made["env"]), {}))},
        "verified": {"target": target, "env": route.env, "versions": _versions(envs.get(route.env or "", {})),
                     "tf_keras": route.tf_keras, "loader": route.loader,
                     "loaded_with": LOADERS[loaded_with(route)].words, "max_abs_diff": route.max_abs_diff,
                     "bit_exact": route.bit_exact, "tolerance": report["tolerance"],
                     "compared_with": "the original file's reference predictions"},
        "load": SNIPPET,
        "note": made.note,
        "steps": words.steps(route),
        "run": report["matrix"]["name"],
    }


def loaded_with(route: Route) -> str:
    """The loader the handed-over file is loaded with: an adapted copy's format's own, else the route's."""
    made = route.made_format
    return FORMATS[made].loader if adaptation.adapts(route.loader) and made in FORMATS else route.loader


def _objects(ref: str | None) -> tuple[list[str], str]:
    """Lines that import the user's custom objects, and the keyword argument passing them."""
    if not ref:
        return [], ""
    module, _, attribute = ref.partition(":")
    if attribute:
        return [f"from {module} import {attribute} as custom_objects  # your code: its folder on sys.path",
                "custom_objects = custom_objects() if callable(custom_objects) else custom_objects"], \
            ", custom_objects=custom_objects"
    return [f"import {module} as custom_module  # your code: its folder on sys.path",
            "custom_objects = {n: o for n, o in vars(custom_module).items() if not n.startswith('_')}"], \
        ", custom_objects=custom_objects"


def snippet(route: Route, artifact: str, model: ModelSpec, env: dict[str, Any]) -> str:
    """load.py: the code that loads the handed-over file the way it was verified (runnable as it is): an adapted
    file with its format's own loader."""
    loader = LOADERS[loaded_with(route)]
    lines = [f'"""Load {artifact} as harness check verified it in {route.env} (Python {env.get("python")}, '
             f'TensorFlow {env.get("tensorflow")}, Keras {env.get("keras")}{", tf-keras" if route.tf_keras else ""}).',
             "", "Its predictions matched the original file's " + (
                 "bit for bit." if route.bit_exact else f"within {route.max_abs_diff!r} (max abs diff)."),
             '"""', "", "import os", ""]
    if route.tf_keras:
        lines += ['os.environ["TF_USE_LEGACY_KERAS"] = "1"  # tf-keras (pip install tf-keras): before TensorFlow']
    keras3 = env.get("keras_major") == 3 and not route.tf_keras
    lines += ["import tensorflow as tf"]
    if "{keras}" in loader.snippet:  # the Keras the file was verified with: Keras 3's own, else TensorFlow's
        lines.append("import keras" if keras3 else "keras = tf.keras")
    lines.append("")
    imports, objects = _objects(model.code.custom_objects)
    factory = ""
    if "{factory}" in loader.snippet and model.code.factory:
        module, _, factory = model.code.factory.partition(":")
        imports.append(f"from {module} import {factory}  # your code: its folder on sys.path")
    lines += [*imports, *([""] if imports else []), "HERE = os.path.dirname(os.path.abspath(__file__))"]
    path = f"os.path.join(HERE, {artifact!r})"
    weights = f"os.path.join(HERE, {str(Path(artifact).with_name('model.weights.h5'))!r})"
    lines += loader.snippet.format(keras="keras", path=path, objects=objects, factory=factory,
                                   weights=weights).splitlines()
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"
