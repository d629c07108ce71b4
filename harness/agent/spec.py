"""The one model concept: a ModelSpec, whatever the model is (a built-in probe, a user's factory, an existing file).

A built-in probe is a model like a user's whose code ships with the harness: every quirk a
probe has (its formats, loaders, exactness, training, post-processing) is a field here, so no
code branches on a model's name. Formats and loaders are described the same way.
Standard library only: imported on the host and inside containers (Python 3.9+).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Literal, Mapping, Optional, Sequence, Tuple, get_args

SEED = 1234  # every model is built, trained and fed under this seed unless its spec says otherwise
# What a model is: a built-in probe; a user's factory (its code builds it in every environment); a user's
# existing file (an artifact, 'saved' once by its pseudo-environment); a migrated model (an existing file
# loaded in its home environment and saved there again).
Kind = Literal["probe", "factory", "artifact", "migration"]
KINDS: Tuple[str, ...] = get_args(Kind)
# What taking a route asks of the user, least first: the one ladder every ranking of routes sorts by.
# as_is: the file and its format's usual loader; option: the same file with another load option
# (compile=False, safe_mode=False, XLA); tf_keras: the legacy Keras package beside the target;
# serving: a SavedModel's signature or TFSMLayer (no longer a Keras model); migrated: a file made
# again from the original; code: the model's code rebuilds it.
Change = Literal["as_is", "option", "tf_keras", "serving", "migrated", "code"]
CHANGES: Tuple[str, ...] = get_args(Change)
ARTIFACT_PREFIX = "user-"  # artifacts/user-<model>/: the pseudo-environment that 'saved' an existing artifact


def artifact_source(model: str) -> str:
    """The pseudo-environment id that 'saved' a user's existing artifact."""
    return ARTIFACT_PREFIX + model


@dataclass(frozen=True)
class Tolerance:
    """Absolute and relative tolerance for comparing predictions."""

    rtol: float = 1e-5
    atol: float = 1e-5


EXACT = Tolerance(rtol=0.0, atol=0.0)
DEFAULT_TOLERANCE = Tolerance()  # a matrix that names none


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
    kind: Kind = "probe"
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
    # Attributes of the Keras module it is built from ("applications.ConvNeXtTiny"): which releases have it.
    needs: Tuple[str, ...] = ()
    build_note: str = ""
    train_step: bool = False  # predictions are taken after one more training step, at the source and after a load
    # Its factory draws random numbers for its weights only (no random constants, vocabularies or shapes): a
    # rebuild whose weights a file overwrites may copy an earlier seeded build's weights (models.py: rebuilt).
    random_in_weights_only: bool = False
    cell_timeout: Optional[float] = None  # seconds one of its loads may take, when less than the run's (known hangs)
    migrates: Optional[Migration] = None  # a migrated model: made from another model's artifact, not a factory
    origin: Optional[Origin] = None  # host only: never sent to a container

    def for_agent(self) -> ModelSpec:
        """The spec as a container receives it: every field but the host's paths."""
        return dataclasses.replace(self, origin=None)

    @property
    def is_existing_file(self) -> bool:
        """A user's existing file: 'saved' once, by its pseudo-environment, never built."""
        return self.kind == "artifact"

    @property
    def is_user_model(self) -> bool:
        """A user's model (a factory, an existing file or a migrated one), not a built-in probe."""
        return self.kind != "probe"

    def homes(self, env_ids: Sequence[str]) -> Dict[str, str]:
        """Where the model is saved, each source with the home of its routes (where they are judged to work).

        A model built in every environment is saved in each and at home there; a migrated model is saved in
        its home environment only; an existing file is 'saved' by its pseudo-environment and at home where
        its reference predictions come from (the matrix's first environment unless it names one).
        """
        if self.is_existing_file:
            source = artifact_source(self.name)
            ref = self.origin.reference_env if self.origin else None
            return {source: ref.env if ref else (env_ids[0] if env_ids else source)}
        saved = [env for env in env_ids if self.migrates is None or env == self.migrates.env]
        return {env: env for env in saved}

    def home(self, env_ids: Sequence[str]) -> Optional[str]:
        """The home of its routes where that is not the environment that saved it (an existing file's), else None."""
        return next((home for source, home in self.homes(env_ids).items() if home != source), None)


@dataclass(frozen=True)
class FormatSpec:
    """A save format: which Keras generations write it, the loader people use on it, and what they call it."""

    generations: Tuple[int, ...]
    loader: str  # the usual way to load it (an existing artifact's reference comes from this loader)
    words: str
    named_only: bool = False  # only models whose spec names it are saved in it
    weights_only: bool = False  # holds no architecture: the model's code (or an architecture JSON) rebuilds it
    folder: bool = False  # a folder of files (a SavedModel), not one file
    # Written after every other format of a model: its writer changes the live model (see save.py).
    saved_last: bool = False


@dataclass(frozen=True)
class LoaderSpec:
    """A loader: the formats it reads, when it runs, and how people call it."""

    reads: Tuple[str, ...]
    words: str
    opt_in: bool = False  # only when a matrix lists it
    named_only: bool = False  # only for models whose spec names it
    needs_custom_objects: bool = False  # only for models that have custom objects
    graph_mode: bool = False  # switches TensorFlow to graph mode: runs last, in a worker of its own
    # The Keras generations it runs on; elsewhere it says it is unsupported before it touches anything, so a
    # graph-mode loader there needs no graph-mode worker.
    keras_majors: Tuple[int, ...] = (2, 3)
    # May end its worker process (TFLite's converter aborts on some models): run after the loaders that cannot, so
    # a crash costs no second TensorFlow import for the loads that follow.
    may_abort: bool = False
    resaves: bool = False  # gives back a Keras model that can be saved again: a migration can start from it
    change: Change = "as_is"  # what it asks of someone whose format's usual loader is another
    needs_code: bool = False  # the model's code (its factory) rebuilds it before anything is read
    compiles: bool = False  # the model it gives keeps the file's compile() settings (optimizer, loss, metrics)
    runs_file_code: bool = False  # executes code the file holds (safe_mode=False): trusted last
    keras_object: bool = True  # gives a Keras model or layer, not a TensorFlow function or an interpreter
    probes_only: str = ""  # why users' models do without it (empty: a user may name it)
    users_default: bool = False  # tried on users' models even where the matrix does not list it
    adapts: bool = False  # edits a copy of the file for this Keras (harness/agent/adapters.py), then loads the copy
    makes: Optional[str] = None  # the format of the file it hands over, when not the one it reads
    any_model: bool = False  # tried on every model the matrix lists it for, one naming its own loaders too
    snippet: str = ""  # the code that loads a file this way: {keras}, {path} and {objects} are filled in

    @property
    def change_rank(self) -> int:
        """Its place on the CHANGES ladder: 0 asks nothing of the user."""
        return CHANGES.index(self.change)


# ---------------------------------------------------------------------------- routes


def applies(spec: ModelSpec, fmt: str, loader: str, loaders: Mapping[str, LoaderSpec]) -> bool:
    """Whether a loader is tried on a model saved in a format (one report cell per pair of environments)."""
    known = loaders.get(loader)
    if known is None or fmt not in known.reads:
        return False
    return missing(spec, known) is None


def missing(spec: ModelSpec, loader: LoaderSpec) -> Optional[str]:
    """What a model lacks that a loader needs (its factory, its custom objects), or None."""
    if loader.needs_code and spec.code.factory is None:
        return "a factory: the model is rebuilt in code before load_weights"
    if loader.needs_custom_objects and spec.code.custom_objects is None:
        return "custom objects to pass"
    return None


def trust_order(names: Iterable[str], loaders: Mapping[str, LoaderSpec]) -> List[str]:
    """Loaders in the order a load of a file is trusted to stand for it (an existing file's reference, the start
    of a migration): never one running the file's code before the others, a Keras object before a TensorFlow
    function, then the least change for the user, then the catalog's order."""
    order = {name: i for i, name in enumerate(loaders)}

    def key(name: str) -> Tuple[bool, bool, int, int]:
        spec = loaders[name]
        return spec.runs_file_code, not spec.keras_object, spec.change_rank, order[name]

    return sorted(names, key=key)


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
    if data.get("kind", "probe") not in KINDS:
        raise ValueError(f"unknown model kind {data.get('kind')!r}: expected one of {', '.join(KINDS)}")
    return ModelSpec(**{
        **data,
        "hazards": tuple(data.get("hazards", ())),
        "formats": _tuple(data.get("formats")),
        "loaders": _tuple(data.get("loaders")),
        "withhold_custom_objects": tuple(data.get("withhold_custom_objects", ())),
        "builds_on": tuple(data.get("builds_on", (2, 3))),
        "backends": _tuple(data.get("backends")),
        "needs": tuple(data.get("needs", ())),
        "code": Code(**data.get("code", {})),
        "tolerance": None if tolerance is None else Tolerance(**tolerance),
        "migrates": None if migrates is None else Migration(**{**migrates, "loaders": tuple(migrates["loaders"])}),
        "origin": origin,
    })
