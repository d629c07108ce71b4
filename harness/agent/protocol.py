"""The host/agent boundary: the only agent module the host imports.

Everything both sides must agree on lives here, spelled once: the catalog of models, formats and
loaders; the run directory's layout and the containers' mount points; a cell's identity; the JSON
Lines records; the manifest a save writes and the load tasks planned from it; atomic JSON writes
and file hashes. Standard library only (Python 3.9+): it runs inside every image.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Any, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Union

from harness.agent.adapters import ADAPTERS, Adapter
from harness.agent.adapters import chain as adapter_chain
from harness.agent.catalog import (
    DEFAULT_FORMATS,
    DEFAULT_LOADERS,
    DEFAULT_MODELS,
    FAULT_PROBES,
    FORMATS,
    LOADERS,
    OPT_IN_LOADERS,
    PROBES,
)
from harness.agent.spec import (
    CHANGES,
    EXACT,
    KINDS,
    SEED,
    Code,
    FormatSpec,
    LoaderSpec,
    Migration,
    ModelSpec,
    Origin,
    RandomInputs,
    ReferenceEnv,
    Tolerance,
    from_dict,
    resolve,
    to_dict,
)
from harness.agent.spec import applies as _applies
from harness.agent.spec import routes as _routes

__all__ = [  # what the host may use
    "ADAPTED", "ADAPTERS", "ARTIFACT_PREFIX", "CHANGES", "DEFAULT_FORMATS", "DEFAULT_LOADERS", "DEFAULT_MODELS",
    "EXACT", "FAULT_PROBES", "FORMATS", "KINDS", "LOADERS", "OPT_IN_LOADERS", "PROBES", "SEED", "Adapter", "CellKey",
    "Code", "FormatSpec", "LoaderSpec", "Migration", "ModelSpec", "Origin", "RandomInputs", "RecordWriter",
    "ReferenceEnv", "Tolerance", "adapted_dir", "adapter_chain", "applies", "artifact_source", "from_dict", "hash_tree",
    "plan_tasks", "random_array", "read_records", "resolve_probe", "routes", "sha256_file", "to_dict",
    "write_json_atomic",
]

RECORD_SCHEMA = 1
MANIFEST_SCHEMA = 1

# ---------------------------------------------------------------------------- the run directory

ARTIFACTS = "artifacts"  # artifacts/<env>/: what one environment saved (or a staged existing artifact)
OUTPUTS = "outputs"  # outputs/<target>/<source>/<model>/<format>/<loader>.npy: predictions of one load
RECORDS = "records"  # records/<phase>-<env>.jsonl
USERDATA = "userdata"  # userdata/<model>/: inputs and labels the host prepared for a user's model
MANIFEST = "manifest.json"  # artifacts/<env>/manifest.json: written last, when a save is complete
ENV_JSON = "env.json"  # artifacts/<env>/env.json: the versions of the environment that saved
PACKAGES = "packages.txt"  # artifacts/<env>/packages.txt: its pip freeze
INPUTS = "inputs.npz"  # <model>/inputs.npz: the reference inputs, by input name
LABELS = "labels.npy"  # <model>/labels.npy
REFERENCE = "reference.npy"  # <model>/reference.npy: what the saving environment predicted
LOAD_DONE = "load-done"  # the record kind a finished load phase ends with
ADAPTED = "adapted.json"  # <a load's predictions without .npy>/adapted.json: what an adapting loader changed

# Where containers see the run directory.
OUT_MOUNT = "/harness/out"  # the save container's artifacts/<env>/ (read-write)
RECORDS_MOUNT = "/harness/records.jsonl"  # the container's own record file (read-write)
ARTIFACTS_MOUNT = "/harness/artifacts"  # every environment's artifacts (read-only, for loading)
OUTPUTS_MOUNT = "/harness/outputs"  # the load container's outputs/<target>/ (read-write)
USER_MOUNT = "/harness/user"  # /harness/user/<model>: a user's code directory (read-only)
USERDATA_MOUNT = "/harness/userdata"  # the run directory's userdata/ (read-only)
ORIGINS_MOUNT = "/harness/origins"  # /harness/origins/<model>: an existing artifact a migration starts from (read-only)


ARTIFACT_PREFIX = "user-"  # artifacts/user-<model>/: the pseudo-environment that 'saved' an existing artifact


def artifact_source(model: str) -> str:
    """The pseudo-environment id that 'saved' a user's existing artifact."""
    return ARTIFACT_PREFIX + model


def records_name(phase: str, env: str) -> str:
    """records/<phase>-<env>.jsonl's file name."""
    return f"{phase}-{env}.jsonl"


def output_rel(source: str, model: str, fmt: str, loader: str) -> str:
    """Where one load's predictions go, relative to the target's outputs folder."""
    return f"{source}/{model}/{fmt}/{loader}.npy"


def adapted_dir(output: str) -> str:
    """The folder an adapting loader writes its adapted file and account into: beside the load's predictions,
    named like them (outputs/<target>/<source>/<model>/<format>/<loader>/)."""
    return os.path.splitext(output)[0]


def user_code_dir(model: str) -> str:
    """The container directory a user's code for `model` is mounted at."""
    return f"{USER_MOUNT}/{model}"


def origin_dir(model: str) -> str:
    """The container directory holding the pseudo-source of the existing artifact `model` (user-<model>)."""
    return f"{ORIGINS_MOUNT}/{model}"


def userdata_file(root: str, model: str, name: str) -> str:
    """A file the host prepared for a user's model, below the userdata folder `root`."""
    return f"{root}/{model}/{name}"


# ---------------------------------------------------------------------------- models and their routes


def resolve_probe(name: str, formats: Sequence[str], loaders: Sequence[str]) -> ModelSpec:
    """A built-in probe with the matrix's formats and loaders applied."""
    return resolve(PROBES[name], tuple(formats), tuple(loaders), FORMATS, LOADERS)


def applies(spec: ModelSpec, fmt: str, loader: str) -> bool:
    """Whether a loader is tried on a model saved in a format."""
    return _applies(spec, fmt, loader, LOADERS)


def routes(spec: ModelSpec) -> List[Any]:
    """The (format, loader) pairs tried on a resolved model."""
    return _routes(spec, LOADERS)


class CellKey(NamedTuple):
    """The identity of one cell: a model saved in one environment and loaded in another with one loader."""

    source: str
    target: str
    model: str
    format: str
    loader: str

    @classmethod
    def of(cls, record: Mapping[str, Any], target: Optional[str] = None) -> CellKey:
        """The cell a load record or a report cell is about (`target` for records that do not say it)."""
        return cls(str(record.get("source")), str(record.get("target") if target is None else target),
                   str(record.get("model")), str(record.get("format")), str(record.get("loader")))

    def fields(self) -> Dict[str, str]:
        """The identity as a report cell's fields."""
        return dict(self._asdict())


# ---------------------------------------------------------------------------- records


class RecordWriter:
    """Append-only JSON Lines writer that makes every record durable before returning."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the whole phase; see close()

    def write(self, record: Mapping[str, Any]) -> None:
        """Write one record and flush it to disk: a crash loses at most the record in flight."""
        record = {"schema": RECORD_SCHEMA, **record}
        self._fh.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Close the file."""
        self._fh.close()


def read_records(path: str) -> Iterator[Dict[str, Any]]:
    """The records of a JSON Lines file, skipping a torn last line."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            line = raw.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            if isinstance(record, dict):
                yield record


def done_cells(path: str, target: str) -> List[CellKey]:
    """The cells a load record file already holds (for resuming)."""
    return [CellKey.of(r, target) for r in read_records(path) if r.get("kind") == "load"]


def load_finished(path: str) -> bool:
    """Whether a load record file ends a finished load phase."""
    return any(r.get("kind") == LOAD_DONE for r in read_records(path))


# ---------------------------------------------------------------------------- manifests and load tasks


def manifest_entry(model: str, input_names: Sequence[str], formats: Mapping[str, Mapping[str, Any]], *,
                   evaluate: Optional[Mapping[str, float]], predict_call: Optional[str],
                   reference_output: Optional[Mapping[str, Any]] = None, **extra: Any) -> Dict[str, Any]:
    """One model's entry in manifest.json; its paths are relative to the environment's artifacts folder.

    `reference_output` (target, loader, then) says the reference predictions are what that load writes (or,
    when it wrote none, the first of the loads `then` lists), instead of the model's own reference.npy (an
    existing artifact with a reference environment).
    """
    return {"inputs": f"{model}/{INPUTS}", "input_names": list(input_names), "labels": f"{model}/{LABELS}",
            "reference": f"{model}/{REFERENCE}", "reference_output": reference_output,
            "predict_call": predict_call, "evaluate": evaluate, "formats": dict(formats), **extra}


def manifest(env: str, versions: Mapping[str, Any], models: Mapping[str, Any]) -> Dict[str, Any]:
    """manifest.json: what one environment saved."""
    return {"schema": MANIFEST_SCHEMA, "env": env, "versions": dict(versions), "models": dict(models)}


def read_json(path: str) -> Optional[Dict[str, Any]]:
    """A JSON object from a file, or None when it is missing, unreadable or not an object."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def plan_tasks(artifacts_root: str, outputs_root: str, specs: Sequence[ModelSpec]) -> List[Dict[str, Any]]:
    """One load task per (source, model, format, loader) found in the sources' manifests."""
    by_name = {spec.name: spec for spec in specs}
    tasks = []
    for source in sorted(os.listdir(artifacts_root)):
        root = os.path.join(artifacts_root, source)
        found = read_json(os.path.join(root, MANIFEST))
        if found is None:
            continue  # a save that did not finish
        where = {"source": source, "root": root, "versions": found.get("versions", {}), "outputs": outputs_root}
        for model, entry in sorted(found.get("models", {}).items()):
            spec = by_name.get(model)
            if spec is None:
                continue  # saved for another matrix
            for fmt, saved in sorted(entry.get("formats", {}).items()):
                tasks += [_task(spec, where, entry, fmt=fmt, saved=saved, loader=loader)
                          for loader in spec.loaders or () if applies(spec, fmt, loader)]
    return tasks


def _task(spec: ModelSpec, where: Mapping[str, Any], entry: Mapping[str, Any], *, fmt: str,
          saved: Mapping[str, Any], loader: str) -> Dict[str, Any]:
    root, model = where["root"], spec.name
    return {
        "source": where["source"], "model": model, "format": fmt, "loader": loader,
        "artifact": os.path.join(root, saved["path"]),
        "files": {os.path.join(root, model, rel): digest for rel, digest in saved.get("files", {}).items()},
        "model_dir": os.path.join(root, model),
        "source_versions": where["versions"],
        "inputs": os.path.join(root, entry["inputs"]),
        "input_names": entry["input_names"],
        "output_names": entry.get("output_names") or [],
        "labels": os.path.join(root, entry["labels"]),
        "evaluate": entry.get("evaluate") is not None,
        "graph_mode": LOADERS[loader].graph_mode,
        "timeout": spec.cell_timeout,
        "output": os.path.join(where["outputs"], output_rel(where["source"], model, fmt, loader)),
        "spec": spec.for_agent(),
    }


# ---------------------------------------------------------------------------- files


_UMASK: List[int] = []


def _umask() -> int:
    if not _UMASK:  # read once: setting it back and forth is not thread-safe
        mask = os.umask(0)
        os.umask(mask)
        _UMASK.append(mask)
    return _UMASK[0]


def write_json_atomic(path: Union[str, os.PathLike[str]], data: Any, strict: bool = False) -> None:
    """Write JSON through a temporary file beside it: readers see the old file or the whole new one.

    `strict`: standard JSON only (no NaN or Infinity, nothing converted with str()).
    """
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would hide reports from other users
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True, allow_nan=not strict, default=None if strict else str)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def random_array(shape: List[int], dtype: str, low: Optional[float] = None, high: Optional[float] = None,
                 seed: int = SEED) -> Any:
    """Seeded inputs, identical in every environment and on the host: integers in [low, high), uniform floats
    in [low, high) when both are given, else standard normal floats."""
    import numpy as np  # in every image and on the host; the rest of this module needs only the standard library

    rng = np.random.RandomState(seed)
    kind = np.dtype(dtype).kind
    if kind == "b":
        return rng.randint(0, 2, size=shape).astype(bool)
    if kind in "iu":
        start = int(low or 0)
        return rng.randint(start, int(high) if high is not None else start + 10, size=shape).astype(dtype)
    if low is not None and high is not None:
        return rng.uniform(low, high, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def sha256_file(path: str) -> str:
    """Hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_tree(root: str) -> Dict[str, str]:
    """sha256 of every file below root, keyed by its path relative to root."""
    found = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            full = os.path.join(folder, name)
            found[os.path.relpath(full, root)] = sha256_file(full)
    return dict(sorted(found.items()))
