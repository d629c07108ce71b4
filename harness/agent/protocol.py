"""The host/agent boundary: the only agent module the host imports.

Everything both sides must agree on lives here, spelled once: the catalog of models, formats and
loaders; the run directory's layout and the containers' mount points; a cell's identity; what
crosses the boundary as types (the save and load requests, the JSON Lines records, the manifest a
save writes and env.json, the load tasks planned from manifests); atomic JSON writes and file
hashes. Standard library only (Python 3.9+): it runs inside every image.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from typing import (
    Any,
    Dict,
    Generic,
    Iterable,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    TypedDict,
    TypeVar,
    Union,
)

from harness.agent.accepts import CONFIG_LOADERS, REFUSALS, Release, config_findings, metric_names
from harness.agent.accepts import predict as accepts_predict
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
    ARTIFACT_PREFIX,
    CHANGES,
    DEFAULT_TOLERANCE,
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
    artifact_source,
    from_dict,
    resolve,
    to_dict,
)
from harness.agent.spec import applies as _applies
from harness.agent.spec import missing as _missing
from harness.agent.spec import routes as _routes
from harness.agent.spec import trust_order as _trust_order

__all__ = [  # what the host may use: all it imports from here (tests/unit/test_boundaries.py checks)
    "ADAPTED", "ADAPTERS", "ARTIFACTS", "ARTIFACTS_MOUNT", "ARTIFACT_PREFIX", "CHANGES", "CONFIG_LOADERS",
    "DEFAULT_FORMATS", "DEFAULT_LOADERS", "DEFAULT_MODELS", "ENV_JSON", "EXACT", "FAULT_PROBES", "FORMATS", "INPUTS",
    "KINDS", "LABELS", "LOADERS", "LOAD_DONE", "MANIFEST", "OPT_IN_LOADERS", "OUTPUTS", "OUTPUTS_MOUNT", "OUT_MOUNT",
    "PACKAGES", "PROBES", "RECORDS", "RECORDS_MOUNT", "REFERENCE", "REFUSALS", "SEED", "USERDATA", "USERDATA_MOUNT",
    "USER_MOUNT", "Adapter", "CellKey", "Code", "ErrorInfo", "FormatSpec", "LoadRecord", "LoadRequest", "LoadTask",
    "LoaderSpec", "MadeBy", "Manifest", "ManifestEntry", "Migration", "ModelSpec", "Only", "Origin", "Preflight",
    "RandomInputs", "RecordWriter", "ReferenceEnv", "ReferenceOutput", "Release", "SaveRecord", "SaveRequest",
    "SavedFormat", "Tolerance", "Tried", "Versions", "accepts_predict", "adapted_dir", "adapter_chain", "applies",
    "artifact_source", "config_findings", "from_dict", "hash_tree", "manifest", "manifest_entry", "metric_names",
    "missing", "origin_dir", "output_rel", "plan_tasks", "random_array", "read_records", "records_name",
    "resolve_probe", "routes", "sha256_file", "to_dict", "trust_order", "umask", "user_code_dir", "write_json_atomic",
    "write_npz", "write_text_atomic",
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


def routes(spec: ModelSpec) -> List[Tuple[str, str]]:
    """The (format, loader) pairs tried on a resolved model."""
    return _routes(spec, LOADERS)


def missing(spec: ModelSpec, loader: str) -> Optional[str]:
    """What a model lacks that a loader needs (its factory, its custom objects), or None."""
    return _missing(spec, LOADERS[loader])


def trust_order(names: Iterable[str]) -> List[str]:
    """Loaders in the order a load of a file is trusted to stand for it: see spec.trust_order."""
    return _trust_order(names, LOADERS)


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


# ---------------------------------------------------------------------------- what crosses the boundary
# Requests go into a container as frozen dataclasses (JSON on its command line); what comes back (records,
# manifests, env.json) is a TypedDict whose every field may be missing: the host reads it as a container wrote
# it and checks it before use (harness/untrusted.py), so a malformed field becomes an error on its cell.


class Versions(TypedDict, total=False):
    """env.json, and the versions every record carries: what an environment really runs (null: unknown)."""

    python: Optional[str]
    tensorflow: Optional[str]
    tensorflow_package: str
    keras: Optional[str]
    keras_package: Optional[str]
    keras_major: Optional[int]
    backend: str
    numpy: str
    h5py: str
    platform: str
    artifact: str  # an existing file's pseudo-environment: the file, as the user named it
    sha256: Optional[str]


class ErrorInfo(TypedDict, total=False):
    """An exception as a record holds it."""

    type: str
    message: str
    traceback: Optional[str]


class Preflight(TypedDict, total=False):
    """What a static scan of an artifact found, and the outcome it predicts for one load (pass or error)."""

    outcome: str
    why: str
    findings: Dict[str, object]


class LoadRecord(TypedDict, total=False):
    """A line of records/load-<target>.jsonl: how one cell's load went (kind 'load'), or the phase's end (LOAD_DONE).

    A worker answers a task with the record's body (status to preflight); the parent adds the cell's identity.
    """

    schema: int
    kind: str
    target: str
    source: str
    model: str
    format: str
    loader: str
    versions: Optional[Versions]
    worker: int  # the worker's process id
    status: str  # ok, error, crash, timeout or unsupported
    stage: str  # startup, integrity, load, predict
    seconds: float
    load_seconds: float
    error: ErrorInfo
    signal: str
    exit_code: int
    predict_call: str
    loader_options: Dict[str, object]
    evaluate: Dict[str, float]
    evaluate_error: ErrorInfo
    preflight: Preflight
    noise: float  # a drifting load repeated in its worker: the largest difference between its predictions


class SaveRecord(TypedDict, total=False):
    """A line of records/save-<env>.jsonl: one model saved in one format, or why it was not."""

    schema: int
    kind: str
    env: str
    versions: Versions
    model: str
    format: str
    status: str  # ok, error or unsupported
    stage: str
    path: str  # relative to the model's folder
    files: Dict[str, str]  # sha256 by path relative to the model's folder
    seconds: float
    error: ErrorInfo


class SavedFormat(TypedDict, total=False):
    """One format of one model in manifest.json: the artifact, and the sha256 of every file it is made of."""

    path: str  # relative to the environment's artifacts folder
    files: Dict[str, str]  # relative to the model's folder


class ReferenceOutput(TypedDict, total=False):
    """Where an existing file's reference predictions come from: a load in its home environment."""

    target: str
    loader: str
    then: List[str]  # the loads that stand in, in turn, when that one wrote nothing


class Tried(TypedDict, total=False):
    """One loader a migration tried at home."""

    loader: str
    status: str
    error: ErrorInfo


class MadeBy(TypedDict, total=False):
    """How a migrated model was made: which load of which file, where, after what."""

    model: str
    source: str
    format: str
    loader: str
    env: str
    tried: List[Tried]


class ManifestEntry(TypedDict, total=False):
    """One model in manifest.json; its paths are relative to the environment's artifacts folder."""

    inputs: str
    input_names: List[str]
    output_names: List[str]
    labels: str
    reference: str
    reference_output: Optional[ReferenceOutput]
    predict_call: Optional[str]
    evaluate: Optional[Dict[str, float]]
    formats: Dict[str, SavedFormat]
    build_seconds: float
    made_by: MadeBy
    origin_sha256: Dict[str, str]  # an existing file staged by the host: the sha256 of each file it came from


class Manifest(TypedDict, total=False):
    """manifest.json: what one environment saved, written last when its save is complete."""

    schema: int
    env: str
    versions: Versions
    models: Dict[str, ManifestEntry]


def _request_json(request: Any, models: Sequence[ModelSpec]) -> str:
    """A request's JSON: its models without the host's paths, whatever the host passed."""
    return json.dumps({**dataclasses.asdict(request), "models": [to_dict(m.for_agent()) for m in models]},
                      sort_keys=True)


def _models_from(data: Mapping[str, Any]) -> Tuple[ModelSpec, ...]:
    return tuple(from_dict(m) for m in data["models"])


@dataclass(frozen=True)
class SaveRequest:
    """What a save container is asked: build these models, save them under `out`, record into `records`."""

    env: str
    models: Tuple[ModelSpec, ...]  # as the container receives them: without the host's paths (for_agent)
    out: str = OUT_MOUNT
    records: str = RECORDS_MOUNT

    def to_json(self) -> str:
        """The request as the container's command line carries it."""
        return _request_json(self, self.models)

    @classmethod
    def from_json(cls, text: str) -> SaveRequest:
        """The request to_json wrote."""
        data = json.loads(text)
        return cls(**{**data, "models": _models_from(data)})


@dataclass(frozen=True)
class Only:
    """One artifact: a source's model in one format (--isolation artifact loads it alone)."""

    source: str
    model: str
    format: str

    def covers(self, task: LoadTask) -> bool:
        """Whether a load task reads this artifact."""
        return (task.source, task.model, task.format) == (self.source, self.model, self.format)


@dataclass(frozen=True)
class LoadRequest:
    """What a load container is asked: load every artifact under `artifacts` (or only one) with every loader
    that applies, write predictions under `outputs`, record into `records`."""

    env: str
    models: Tuple[ModelSpec, ...]
    timeout: float = 300.0  # seconds one load may take (a model's own cell_timeout may be less)
    isolation: str = "target"  # "artifact": a fresh worker for every load
    only: Optional[Only] = None
    tolerance: Tolerance = DEFAULT_TOLERANCE  # the matrix's: a load beyond it (and its model's own) is repeated
    artifacts: str = ARTIFACTS_MOUNT
    outputs: str = OUTPUTS_MOUNT
    records: str = RECORDS_MOUNT

    def to_json(self) -> str:
        """The request as the container's command line carries it."""
        return _request_json(self, self.models)

    @classmethod
    def from_json(cls, text: str) -> LoadRequest:
        """The request to_json wrote."""
        data = json.loads(text)
        only, tolerance = data.get("only"), data.get("tolerance")
        return cls(**{**data, "models": _models_from(data), "only": None if only is None else Only(**only),
                      "tolerance": Tolerance(**tolerance) if tolerance else Tolerance()})


@dataclass(frozen=True)
class LoadTask:
    """One load a worker runs: a source's model in one format, one loader, and where everything is."""

    source: str
    model: str
    format: str
    loader: str
    artifact: str
    files: Dict[str, str]  # sha256 by absolute path: checked before the artifact is loaded
    model_dir: str
    source_versions: Versions
    inputs: str
    input_names: List[str]
    output_names: List[str]
    labels: str
    evaluate: bool  # the source has evaluate() figures to compare with
    graph_mode: bool
    timeout: Optional[float]  # the model's own limit, when less than the run's
    output: str
    spec: ModelSpec
    reference: Optional[str] = None  # the source's own predictions, when it has them: a load is compared in place
    tolerance: Tolerance = DEFAULT_TOLERANCE  # ... with the model's tolerance; beyond it the load is repeated (noise)

    def cell(self, target: str) -> CellKey:
        """The cell this load decides in `target`."""
        return CellKey(self.source, target, self.model, self.format, self.loader)

    def to_json(self) -> str:
        """One line to the worker."""
        return json.dumps({**dataclasses.asdict(self), "spec": to_dict(self.spec)})

    @classmethod
    def from_json(cls, text: str) -> LoadTask:
        """The task to_json wrote."""
        data = json.loads(text)
        return cls(**{**data, "spec": from_dict(data["spec"]), "tolerance": Tolerance(**data["tolerance"])})


# ---------------------------------------------------------------------------- records


Record = TypeVar("Record", SaveRecord, LoadRecord)


class RecordWriter(Generic[Record]):
    """Append-only JSON Lines writer of one kind of record that makes every record durable before returning."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the whole phase; see close()

    def write(self, record: Record) -> None:
        """Write one record and flush it to disk: a crash loses at most the record in flight."""
        self._fh.write(json.dumps({"schema": RECORD_SCHEMA, **record}, sort_keys=True, default=str) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Close the file."""
        self._fh.close()


def read_records(path: str) -> Iterator[Union[SaveRecord, LoadRecord]]:
    """The records of a JSON Lines file (as the agent reads its own: the host checks them, see rundir.py), skipping
    a torn last line."""
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
                yield record  # type: ignore[misc]  # the agent's own records: written by RecordWriter


def done_cells(path: str, target: str) -> List[CellKey]:
    """The cells a load record file already holds (for resuming)."""
    return [CellKey.of(r, target) for r in read_records(path) if r.get("kind") == "load"]


def load_finished(path: str) -> bool:
    """Whether a load record file ends a finished load phase."""
    return any(r.get("kind") == LOAD_DONE for r in read_records(path))


# ---------------------------------------------------------------------------- manifests and load tasks


def manifest_entry(model: str, input_names: Sequence[str], formats: Mapping[str, SavedFormat], *,
                   evaluate: Optional[Mapping[str, float]], predict_call: Optional[str],
                   reference_output: Optional[ReferenceOutput] = None, output_names: Optional[Sequence[str]] = None,
                   build_seconds: Optional[float] = None, made_by: Optional[MadeBy] = None,
                   origin_sha256: Optional[Mapping[str, str]] = None) -> ManifestEntry:
    """One model's entry in manifest.json; its paths are relative to the environment's artifacts folder.

    `reference_output` (target, loader, then) says the reference predictions are what that load writes (or,
    when it wrote none, the first of the loads `then` lists), instead of the model's own reference.npy (an
    existing artifact with a reference environment).
    """
    entry: ManifestEntry = {
        "inputs": f"{model}/{INPUTS}", "input_names": list(input_names), "labels": f"{model}/{LABELS}",
        "reference": f"{model}/{REFERENCE}", "reference_output": reference_output, "predict_call": predict_call,
        "evaluate": None if evaluate is None else dict(evaluate), "formats": dict(formats)}
    if output_names is not None:
        entry["output_names"] = list(output_names)
    if build_seconds is not None:
        entry["build_seconds"] = build_seconds
    if made_by is not None:
        entry["made_by"] = made_by
    if origin_sha256 is not None:
        entry["origin_sha256"] = dict(origin_sha256)
    return entry


def manifest(env: str, versions: Versions, models: Mapping[str, ManifestEntry]) -> Manifest:
    """manifest.json: what one environment saved."""
    return {"schema": MANIFEST_SCHEMA, "env": env, "versions": versions, "models": dict(models)}


def read_json(path: str) -> Optional[Dict[str, object]]:
    """A JSON object from a file, or None when it is missing, unreadable or not an object."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_manifest(folder: str) -> Optional[Manifest]:
    """A save's manifest.json, as the agent reads its sources' (None: the save did not finish)."""
    return read_json(os.path.join(folder, MANIFEST))  # type: ignore[return-value]  # written by manifest()


class _Source(NamedTuple):
    """A source environment's folder, what its manifest says of its versions, and where loads of it go."""

    name: str
    root: str
    versions: Versions
    outputs: str


def plan_tasks(artifacts_root: str, outputs_root: str, specs: Sequence[ModelSpec],
               tolerance: Tolerance = DEFAULT_TOLERANCE) -> List[LoadTask]:
    """One load task per (source, model, format, loader) found in the sources' manifests; `tolerance` is the
    matrix's, for models without their own."""
    by_name = {spec.name: spec for spec in specs}
    tasks = []
    for name in sorted(os.listdir(artifacts_root)):
        root = os.path.join(artifacts_root, name)
        found = read_manifest(root)
        if found is None:
            continue  # a save that did not finish
        source = _Source(name, root, found.get("versions") or {}, outputs_root)
        for model, entry in sorted(found.get("models", {}).items()):
            spec = by_name.get(model)
            if spec is None:
                continue  # saved for another matrix
            for fmt, saved in sorted(entry.get("formats", {}).items()):
                tasks += [_task(spec, source, entry, fmt=fmt, saved=saved, loader=loader, tolerance=tolerance)
                          for loader in spec.loaders or () if applies(spec, fmt, loader)]
    return tasks


def _task(spec: ModelSpec, source: _Source, entry: ManifestEntry, *, fmt: str, saved: SavedFormat,
          loader: str, tolerance: Tolerance) -> LoadTask:
    root, model = source.root, spec.name
    own = not entry.get("reference_output") and isinstance(entry.get("reference"), str)
    return LoadTask(
        source=source.name, model=model, format=fmt, loader=loader,
        artifact=os.path.join(root, saved["path"]),
        files={os.path.join(root, model, rel): digest for rel, digest in saved.get("files", {}).items()},
        model_dir=os.path.join(root, model),
        source_versions=source.versions,
        inputs=os.path.join(root, entry["inputs"]),
        input_names=entry["input_names"],
        output_names=entry.get("output_names") or [],
        labels=os.path.join(root, entry["labels"]),
        evaluate=entry.get("evaluate") is not None,
        graph_mode=LOADERS[loader].graph_mode,
        timeout=spec.cell_timeout,
        output=os.path.join(source.outputs, output_rel(source.name, model, fmt, loader)),
        spec=spec.for_agent(),
        reference=os.path.join(root, str(entry["reference"])) if own else None,
        tolerance=EXACT if spec.exact else spec.tolerance or tolerance,
    )


# ---------------------------------------------------------------------------- files


_UMASK: List[int] = []


def umask() -> int:
    """The process's umask (read once: setting it back and forth is not thread-safe)."""
    if not _UMASK:
        mask = os.umask(0)
        os.umask(mask)
        _UMASK.append(mask)
    return _UMASK[0]


def write_json_atomic(path: Union[str, os.PathLike[str]], data: Any, strict: bool = False) -> None:
    """Write JSON through a temporary file beside it: readers see the old file or the whole new one.

    `strict`: standard JSON only (no NaN or Infinity, nothing converted with str()).
    """
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=not strict, default=None if strict else str)
    write_text_atomic(path, text + "\n")


def write_text_atomic(path: Union[str, os.PathLike[str]], text: str) -> None:
    """Write text through a new, uniquely named temporary file beside it, renamed into place: readers see the old
    file or the whole new one, and a file planted under a fixed temporary name is never written through."""
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp's 0600 would hide reports from other users
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
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


def write_npz(path: Union[str, os.PathLike[str]], arrays: Mapping[str, Any]) -> None:
    """An .npz of named arrays, as np.savez writes one, whatever their names: savez takes the arrays as keyword
    arguments, so an input named like one of its own parameters (file, allow_pickle) would be refused or lost."""
    import zipfile

    import numpy as np  # in every image and on the host

    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


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
