"""Typed, frozen description of an expanded matrix: what every later step reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_BASE_IMAGE = "python:{python}-slim"
DEFAULT_TF_PACKAGE = "tensorflow-cpu"
TF_PACKAGES = ("tensorflow-cpu", "tensorflow")


@dataclass(frozen=True)
class Tolerance:
    """Absolute and relative tolerance for comparing predictions."""

    rtol: float = 1e-5
    atol: float = 1e-5


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

    def requirements(self) -> list[str]:
        """pip requirement lines, in install order (tf-keras last, see images.py)."""
        reqs = [self.tensorflow_package + self.tensorflow]
        if self.keras is not None:
            reqs.append("keras" + self.keras)
        reqs.extend(self.packages)
        return reqs

    def label(self) -> str:
        """Human-readable one-line description."""
        keras = "tf-keras" + (self.tf_keras or "") if self.legacy_keras else (
            "keras" + self.keras if self.keras else "keras (bundled)"
        )
        return f"Python {self.python}, {self.tensorflow_package}{self.tensorflow}, {keras}"


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


@dataclass(frozen=True)
class RandomInputs:
    """Seeded random inputs of one shape and dtype, the same in every environment."""

    shape: tuple[int, ...]
    dtype: str
    low: float | None = None  # uniform [low, high) when both are given; else standard normal (floats)
    high: float | None = None  # or integers in [low or 0, high)


@dataclass(frozen=True)
class ReferenceEnv:
    """Reference predictions of an existing artifact taken from one environment's load."""

    env: str
    loader: str | None = None  # None: the artifact format's usual loader


@dataclass(frozen=True)
class UserModel:
    """A user's own model: built by a factory in every environment, or an existing artifact."""

    name: str
    root: str | None = None  # host directory of the user's modules, mounted read-only
    factory: str | None = None  # "module:function" returning a (compiled) Keras model
    custom_objects: str | None = None  # "module:attribute" (a dict) or "module"
    predict: str | None = None  # "module:function" taking (model, raw inputs)
    inputs: str | None = None  # host path of a .npy or .npz file
    random_inputs: RandomInputs | None = None
    labels: str | None = None  # host path of a .npy file: evaluate() runs against it
    artifact: str | None = None  # host path of an existing file or SavedModel directory
    artifact_format: str | None = None  # h5, keras, savedmodel, weights_h5 or json
    architecture: str | None = None  # host path of the architecture JSON of a weights file
    reference: str | None = None  # host path of the artifact's reference predictions (.npy)
    reference_env: ReferenceEnv | None = None
    tolerance: Tolerance | None = None  # overrides the matrix's for this model's cells
    formats: tuple[str, ...] = ()  # factory: the formats it is saved in
    loaders: tuple[str, ...] = ()  # the loaders tried on it

    @property
    def kind(self) -> str:
        """'factory' or 'artifact'."""
        return "artifact" if self.artifact else "factory"


@dataclass(frozen=True)
class Matrix:
    """A validated, expanded matrix file."""

    name: str
    path: str
    sha256: str
    environments: tuple[Environment, ...]
    models: tuple[str, ...] = ("dense",)
    formats: tuple[str, ...] = ("h5", "keras")
    loaders: tuple[str, ...] = ("load_model",)
    tolerance: Tolerance = field(default_factory=Tolerance)
    pip: PipSettings = field(default_factory=PipSettings)
    expect: tuple[Expectation, ...] = ()
    user_models: tuple[UserModel, ...] = ()


def matrix_to_dict(matrix: Matrix) -> dict[str, object]:
    """A JSON-ready snapshot of an expanded matrix (stored in run.json)."""
    return asdict(matrix)


def matrix_from_dict(data: dict[str, Any]) -> Matrix:
    """Rebuild a Matrix from matrix_to_dict's output."""
    envs = tuple(
        Environment(**{**e, "packages": tuple(e.get("packages", ()))}) for e in data["environments"]
    )
    pip = data.get("pip") or {}
    return Matrix(
        name=data["name"],
        path=data["path"],
        sha256=data["sha256"],
        environments=envs,
        models=tuple(data["models"]),
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
        user_models=tuple(_user_model(m) for m in data.get("user_models", ())),
    )


def _user_model(data: dict[str, Any]) -> UserModel:
    random = data.get("random_inputs")
    reference_env = data.get("reference_env")
    tolerance = data.get("tolerance")
    return UserModel(**{
        **data,
        "random_inputs": None if random is None else RandomInputs(**{**random, "shape": tuple(random["shape"])}),
        "reference_env": None if reference_env is None else ReferenceEnv(**reference_env),
        "tolerance": None if tolerance is None else Tolerance(**tolerance),
        "formats": tuple(data.get("formats", ())),
        "loaders": tuple(data.get("loaders", ())),
    })


def _expectation(data: dict[str, Any]) -> Expectation:
    def selector(pairs: list[list[str]]) -> EnvSelector:
        return tuple((key, wanted) for key, wanted in pairs)

    return Expectation(**{**data, "source": selector(data["source"]), "target": selector(data["target"]),
                          "status": tuple(data["status"])})
