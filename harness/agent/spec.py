"""The one model concept: a ModelSpec, whatever the model is (a built-in probe, a user's factory, an existing file).

A built-in probe is a model like a user's whose code ships with the harness: every quirk a
probe has (its formats, loaders, exactness, training, post-processing) is a field here, so no
code branches on a model's name. Formats and loaders are described the same way.
Standard library only: imported on the host and inside containers (Python 3.9+).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

SEED = 1234  # every model is built, trained and fed under this seed unless its spec says otherwise
KINDS = ("probe", "factory", "artifact", "migration")
# What taking a route asks of the user, least first: the one ladder every ranking of routes sorts by.
# as_is: the file and its format's usual loader; option: the same file with another load option
# (compile=False, safe_mode=False, XLA); tf_keras: the legacy Keras package beside the target;
# serving: a SavedModel's signature or TFSMLayer (no longer a Keras model); migrated: a file made
# again from the original; code: the model's code rebuilds it.
CHANGES = ("as_is", "option", "tf_keras", "serving", "migrated", "code")


@dataclass(frozen=True)
class Tolerance:
    """Absolute and relative tolerance for comparing predictions."""

    rtol: float = 1e-5
    atol: float = 1e-5


EXACT = Tolerance(rtol=0.0, atol=0.0)


@dataclass(frozen=True)
class Code:
    """Where a model's code lives: 'module:attribute' references, imported inside the containers only.

    Every function is called without Keras passed in: it imports TensorFlow itself, as a user's does.
    """

    root: Optional[str] = None  # a container directory put on sys.path (a user's mounted directory)
    factory: Optional[str] = None  # () -> a fresh, compiled Keras model: built for saving, rebuilt to load weights
    data: Optional[str] = None  # (seed, n) -> (inputs by name, labels): training and reference data
    train_labels: Optional[str] = None  # (labels) -> the labels as this process trains on them
    files: Optional[str] = None  # () -> {file name: JSON value}: written beside the saved model
    custom_objects: Optional[str] = None  # a dict, a module, or () -> dict: what a loading process passes
    predict: Optional[str] = None  # (model, raw inputs) -> numbers: the user's own serving code
    postprocess: Optional[str] = None  # (outputs, model directory) -> outputs as the user's code reports them
    state: Optional[str] = None  # (model) -> {name: numbers}: restored state compared beside evaluate()


@dataclass(frozen=True)
class RandomInputs:
    """Seeded random inputs of one shape and dtype, the same in every environment."""

    shape: Tuple[int, ...]
    dtype: str
    low: Optional[float] = None  # uniform [low, high) when both are given; else standard normal (floats)
    high: Optional[float] = None  # or integers in [low or 0, high)


@dataclass(frozen=True)
class ReferenceEnv:
    """Reference predictions of an existing artifact taken from one environment's load."""

    env: str
    loader: Optional[str] = None  # None: the artifact format's usual loader


@dataclass(frozen=True)
class Origin:
    """Host paths of a user's model (the host stages and mounts them; containers never see these paths)."""

    root: Optional[str] = None  # directory of the user's modules, mounted read-only
    inputs: Optional[str] = None  # a .npy or .npz file
    random_inputs: Optional[RandomInputs] = None
    labels: Optional[str] = None  # a .npy file: evaluate() runs against it
    artifact: Optional[str] = None  # an existing file or SavedModel directory
    architecture: Optional[str] = None  # the architecture JSON of a weights file
    reference: Optional[str] = None  # the artifact's known-good predictions (.npy)
    reference_env: Optional[ReferenceEnv] = None  # or: what this environment's load predicts


@dataclass(frozen=True)
class Migration:
    """How a migrated model is made: an existing artifact loaded in one environment and saved there again.

    The first loader that gives back a Keras model makes it; the model is then saved in every format of
    the migrated model's spec, and its loads are compared with the original artifact's reference, so a
    migrated file passes only where it predicts like the file it was made from.
    """

    model: str  # the existing artifact's model (its pseudo-source is user-<model>)
    env: str  # the environment that loads and saves it again: the artifact's home
    format: str  # the artifact's format
    loaders: Tuple[str, ...]  # tried in this order at home
    weights: Optional[str] = None  # the weights file beside an architecture JSON


@dataclass(frozen=True)
class ModelSpec:
    """One model the harness saves and loads: what it is, how it is built and loaded, how it is judged."""

    name: str
    kind: str = "probe"  # probe | factory (a user's code builds it) | artifact (a user's existing file)
    description: str = ""
    hazards: Tuple[str, ...] = ()  # the known causes of breakage it exercises
    # None: every format (loader) the matrix lists that is not reserved for the models naming it.
    formats: Optional[Tuple[str, ...]] = None
    loaders: Optional[Tuple[str, ...]] = None
    code: Code = field(default_factory=Code)
    exact: bool = False  # compared bit for bit (a determinism probe)
    shows_hazard: bool = False  # a probe whose failures are its point: reported as hazards, never against an upgrade
    tolerance: Optional[Tolerance] = None  # None: the matrix's
    drift_hint: Optional[str] = None  # why it drifts, shown on a drift cell
    drift_hint_home: Optional[str] = None  # the same, when it drifts in the environment that saved it
    train_epochs: int = 0  # briefly trained on its own data after it is built
    evaluate: bool = True  # evaluate() is compared where the model has labels and compile() settings
    register_custom_objects: bool = False  # registered in the process that builds it (never where it is loaded)
    withhold_custom_objects: Tuple[str, ...] = ()  # loaders that load it without custom_objects (the hazard)
    has_inputs: bool = False  # the host staged inputs.npz for it
    has_labels: bool = False  # the host staged labels.npy for it
    artifact_format: Optional[str] = None  # an existing artifact's format
    weights: Optional[str] = None  # the weights file beside an architecture JSON
    seed: int = SEED
    # What can build it: Keras generations, the lowest Keras release, Keras backends (None: any);
    # elsewhere its formats are `unsupported` with build_note as the reason.
    builds_on: Tuple[int, ...] = (2, 3)
    min_keras: Optional[str] = None
    backends: Optional[Tuple[str, ...]] = None
    build_note: str = ""
    train_step: bool = False  # predictions are taken after one more training step, at the source and after a load
    cell_timeout: Optional[float] = None  # seconds one of its loads may take, when less than the run's (known hangs)
    migrates: Optional[Migration] = None  # a migrated model: made from another model's artifact, not a factory
    origin: Optional[Origin] = None  # host only: never sent to a container

    def for_agent(self) -> Dict[str, Any]:
        """The wire form a container receives: every field but the host's paths."""
        return to_dict(dataclasses.replace(self, origin=None))


@dataclass(frozen=True)
class FormatSpec:
    """A save format: which Keras generations write it, the loader people use on it, and what they call it."""

    generations: Tuple[int, ...]
    loader: str  # the usual way to load it (an existing artifact's reference comes from this loader)
    words: str
    named_only: bool = False  # only models whose spec names it are saved in it


@dataclass(frozen=True)
class LoaderSpec:
    """A loader: the formats it reads, when it runs, and how people call it."""

    reads: Tuple[str, ...]
    words: str
    opt_in: bool = False  # only when a matrix lists it
    named_only: bool = False  # only for models whose spec names it
    needs_custom_objects: bool = False  # only for models that have custom objects
    graph_mode: bool = False  # switches TensorFlow to graph mode: runs last, in a worker of its own
    resaves: bool = False  # gives back a Keras model that can be saved again: a migration can start from it
    change: str = "as_is"  # one of CHANGES: what it asks of someone whose format's usual loader is another
    needs_code: bool = False  # the model's code (its factory) rebuilds it before anything is read
    adapts: bool = False  # edits a copy of the file for this Keras (harness/agent/adapters.py), then loads the copy
    makes: Optional[str] = None  # the format of the file it hands over, when not the one it reads
    any_model: bool = False  # tried on every model the matrix lists it for, one naming its own loaders too
    snippet: str = ""  # the code that loads a file this way: {keras}, {path} and {objects} are filled in


# ---------------------------------------------------------------------------- routes


def applies(spec: ModelSpec, fmt: str, loader: str, loaders: Mapping[str, LoaderSpec]) -> bool:
    """Whether a loader is tried on a model saved in a format (one report cell per pair of environments)."""
    known = loaders.get(loader)
    if known is None or fmt not in known.reads:
        return False
    return not known.needs_custom_objects or spec.code.custom_objects is not None


def routes(spec: ModelSpec, loaders: Mapping[str, LoaderSpec]) -> List[Tuple[str, str]]:
    """The (format, loader) pairs tried on a model whose formats and loaders are resolved."""
    return [(fmt, loader) for fmt in spec.formats or () for loader in spec.loaders or ()
            if applies(spec, fmt, loader, loaders)]


def resolve(spec: ModelSpec, formats: Tuple[str, ...], loaders: Tuple[str, ...],
            format_specs: Mapping[str, FormatSpec], loader_specs: Mapping[str, LoaderSpec]) -> ModelSpec:
    """A catalog spec with the matrix's formats and loaders applied: the ones it is really tried with."""
    def keep(name: str, own: Optional[Tuple[str, ...]], named_only: bool, any_model: bool = False) -> bool:
        return (name in own or any_model) if own is not None else not named_only

    return dataclasses.replace(
        spec,
        formats=tuple(f for f in formats if keep(f, spec.formats, format_specs[f].named_only)),
        loaders=tuple(x for x in loaders if keep(x, spec.loaders, loader_specs[x].named_only,
                                                 loader_specs[x].any_model)),
    )


# ---------------------------------------------------------------------------- wire form


def to_dict(spec: ModelSpec) -> Dict[str, Any]:
    """A JSON-ready dict of a spec (tuples become lists)."""
    return dataclasses.asdict(spec)


def _tuple(value: Any) -> Optional[Tuple[Any, ...]]:
    return None if value is None else tuple(value)


def from_dict(data: Mapping[str, Any]) -> ModelSpec:
    """Rebuild a spec from to_dict's output (run.json, a container's spec)."""
    origin = data.get("origin")
    if origin is not None:
        random = origin.get("random_inputs")
        reference_env = origin.get("reference_env")
        origin = Origin(**{
            **origin,
            "random_inputs": None if random is None else RandomInputs(**{**random, "shape": tuple(random["shape"])}),
            "reference_env": None if reference_env is None else ReferenceEnv(**reference_env),
        })
    tolerance = data.get("tolerance")
    migrates = data.get("migrates")
    return ModelSpec(**{
        **data,
        "hazards": tuple(data.get("hazards", ())),
        "formats": _tuple(data.get("formats")),
        "loaders": _tuple(data.get("loaders")),
        "withhold_custom_objects": tuple(data.get("withhold_custom_objects", ())),
        "builds_on": tuple(data.get("builds_on", (2, 3))),
        "backends": _tuple(data.get("backends")),
        "code": Code(**data.get("code", {})),
        "tolerance": None if tolerance is None else Tolerance(**tolerance),
        "migrates": None if migrates is None else Migration(**{**migrates, "loaders": tuple(migrates["loaders"])}),
        "origin": origin,
    })
