"""Typed, frozen description of an expanded matrix: what every later step reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from harness.agent.protocol import ModelSpec, Tolerance, from_dict

DEFAULT_BASE_IMAGE = "python:{python}-slim"
DEFAULT_TF_PACKAGE = "tensorflow-cpu"
TF_PACKAGES = ("tensorflow-cpu", "tensorflow")


@dataclass(frozen=True)
class PipSettings:
    """Package index and CA bundle settings passed into image builds."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ()
    ca_bundle: str | None = None  # host path of a PEM file


@dataclass(frozen=True)
class Environment:
    """One Python x TensorFlow x Keras combination, as the user asked for it."""

    id: str  # filename-safe, unique within the matrix
    python: str  # "3.11": major.minor, selects the base image
    tensorflow: str  # pip specifier for the TF package: "==2.16.2", "==2.16.*", ">=2.16,<2.17"
    tensorflow_package: str = DEFAULT_TF_PACKAGE  # "tensorflow-cpu" | "tensorflow"
    keras: str | None = None  # pip specifier for the keras package, None = what TF pulls in
    legacy_keras: bool = False  # tf-keras installed and TF_USE_LEGACY_KERAS=1
    tf_keras: str | None = None  # pip specifier for tf-keras when legacy_keras
    packages: tuple[str, ...] = ()  # extra requirement lines: "h5py==3.8.0"
    base_image: str = DEFAULT_BASE_IMAGE  # template with {python}
    backend: str | None = None  # Keras 3 backend (KERAS_BACKEND in its containers); None: tensorflow
    env: tuple[tuple[str, str], ...] = ()  # environment variables of its containers, sorted by name
    # The id as written, when the index decided a version in it: the same environment from night to night, where the
    # id follows the releases (py3.13-tflatest-keraslatest is py3.13-tf2.21.0-keras3.15.1 today); "": the id itself.
    slot: str = ""
    selectors: tuple[tuple[str, str], ...] = ()  # (package, as written) for each version the index decided

    @property
    def as_written(self) -> str:
        """The id as the matrix wrote it: the same from night to night whatever the index decides."""
        return self.slot or self.id

    def requirements(self) -> list[str]:
        """pip requirement lines, in install order (tf-keras last, see images.py)."""
        reqs = [self.tensorflow_package + self.tensorflow]
        if self.keras is not None:
            reqs.append("keras" + self.keras)
        if self.backend == "jax":
            reqs.append("jax")  # jaxlib's CPU wheel comes with it
        reqs.extend(self.packages)
        return reqs

    def container_env(self) -> dict[str, str]:
        """What its containers' environment adds: the backend and the matrix's variables."""
        found = dict(self.env)
        if self.backend:
            found["KERAS_BACKEND"] = self.backend
        return found

    def label(self) -> str:
        """Human-readable one-line description."""
        keras = "tf-keras" + (self.tf_keras or "") if self.legacy_keras else (
            "keras" + self.keras if self.keras else "keras (bundled)"
        )
        extra = "".join(f", {name}={value}" for name, value in sorted(self.container_env().items()))
        return f"Python {self.python}, {self.tensorflow_package}{self.tensorflow}, {keras}{extra}"


# (field, wanted) pairs naming environments by the report's environment fields ("id", "python",
# "keras_major", ...); every pair must match; no pairs match every environment.
EnvSelector = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Expectation:
    """A known incompatibility: the cells it selects may fail with the statuses it allows."""

    reason: str
    source: EnvSelector = ()
    target: EnvSelector = ()
    model: str = "*"  # a name or an fnmatch glob, like format and loader
    format: str = "*"
    loader: str = "*"
    status: tuple[str, ...] = ()  # empty: any failing status
    cause: str = "*"  # a cause's name (report.json causes[].name) or an fnmatch glob


@dataclass(frozen=True)
class CorpusEntry:
    """One file of a corpus as a matrix runs it: what it is, its home here, or why it is left out."""

    name: str
    package: str
    version: str
    licence: str
    format: str
    kind: str
    saved_by: str
    member: str
    home: str | None = None  # the environment id of its home in this matrix
    left_out: str | None = None  # why it is not run here (no home here, or its home is not among the environments)


@dataclass(frozen=True)
class CorpusPlan:
    """The corpus a matrix takes its models from (`corpus:`), every file of it accounted for."""

    name: str
    path: str
    sha256: str
    files: tuple[CorpusEntry, ...] = ()


@dataclass(frozen=True)
class Matrix:
    """A validated, expanded matrix file."""

    name: str
    path: str
    sha256: str
    environments: tuple[Environment, ...]
    # Every model, in the order the file lists them: built-in probes and users' own, with the
    # formats and loaders each is really tried with.
    models: tuple[ModelSpec, ...] = ()
    formats: tuple[str, ...] = ("h5", "keras")
    loaders: tuple[str, ...] = ("load_model",)
    tolerance: Tolerance = field(default_factory=Tolerance)
    pip: PipSettings = field(default_factory=PipSettings)
    expect: tuple[Expectation, ...] = ()
    corpus: CorpusPlan | None = None  # `corpus:`: the public files among the models, and those left out

    def model(self, name: str) -> ModelSpec:
        """The model of this name."""
        return next(m for m in self.models if m.name == name)


class OldRunJson(ValueError):
    """A run.json written before models were specs."""


def matrix_to_dict(matrix: Matrix) -> dict[str, object]:
    """A JSON-ready snapshot of an expanded matrix (stored in run.json)."""
    return asdict(matrix)


def matrix_from_dict(data: dict[str, Any]) -> Matrix:
    """Rebuild a Matrix from matrix_to_dict's output."""
    if "user_models" in data or any(isinstance(m, str) for m in data.get("models", ())):
        raise OldRunJson("written by an older harness (models by name): re-run the matrix, or re-render the "
                         "report with the harness version that wrote it")
    envs = tuple(
        Environment(**{**e, "packages": tuple(e.get("packages", ())),
                       "env": tuple((str(k), str(v)) for k, v in e.get("env", ())),
                       "selectors": tuple((str(k), str(v)) for k, v in e.get("selectors", ()))})
        for e in data["environments"]
    )
    pip = data.get("pip") or {}
    return Matrix(
        name=data["name"],
        path=data["path"],
        sha256=data["sha256"],
        environments=envs,
        models=tuple(from_dict(m) for m in data["models"]),
        formats=tuple(data["formats"]),
        loaders=tuple(data["loaders"]),
        tolerance=Tolerance(**data.get("tolerance", {})),
        pip=PipSettings(
            index_url=pip.get("index_url"),
            extra_index_urls=tuple(pip.get("extra_index_urls", ())),
            trusted_hosts=tuple(pip.get("trusted_hosts", ())),
            ca_bundle=pip.get("ca_bundle"),
        ),
        expect=tuple(_expectation(e) for e in data.get("expect", ())),
        corpus=_corpus(data.get("corpus")),
    )


def _corpus(data: dict[str, Any] | None) -> CorpusPlan | None:
    if not data:
        return None
    return CorpusPlan(name=data["name"], path=data["path"], sha256=data["sha256"],
                      files=tuple(CorpusEntry(**f) for f in data.get("files", ())))


def _expectation(data: dict[str, Any]) -> Expectation:
    def selector(pairs: list[list[str]]) -> EnvSelector:
        return tuple((key, wanted) for key, wanted in pairs)

    return Expectation(**{**data, "source": selector(data["source"]), "target": selector(data["target"]),
                          "status": tuple(data["status"])})
