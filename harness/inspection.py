"""A first answer before TensorFlow starts: read a model file on the host, without TensorFlow, and predict which
routes fail in which releases and why (the table of harness/agent/accepts.py); containers confirm it later.

The file is untrusted, so everything here is bounded and memory-safe: a .keras archive is read with zipfile and
json, member by member, only after its stated size is checked (a zip bomb is never inflated); an HDF5 file with
the bounded reader of harness/h5attrs.py (never the HDF5 C library); a SavedModel's saved_model.pb and
keras_metadata.pb with a small protobuf wire reader that follows only the fields it needs; architecture JSON with
json under a size limit. Nothing is deserialized as a Keras object and no code the file holds runs. A file that
is no model at all (a Git LFS pointer, an HTML page saved under a model's name, an empty file) is named as such.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.agent.protocol import (
    CONFIG_LOADERS,
    LOADERS,
    Release,
    accepts_predict,
    config_findings,
    metric_names,
)
from harness.h5attrs import H5Error, root_attributes
from harness.untrusted import MAX_JSON  # config.json, metadata.json, an architecture JSON, a metadata blob

if TYPE_CHECKING:
    from harness.advisor.question import EnvRequest

MAX_ARCHIVE_MEMBERS = 10_000  # entries of a .keras archive
MAX_PROTO = 256 << 20  # a saved_model.pb read whole for its signatures and versions
SNIFF = 4096
DATA_TYPES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string", 9: "int64",
              10: "bool", 14: "bfloat16", 19: "float16"}
RISKY_OPS = (b"ReadFile", b"WriteFile", b"MatchingFiles", b"PyFunc", b"EagerPyFunc", b"PyFuncStateless")


@dataclass
class Inspected:
    """What the host read of a file: its format as the harness names it, the findings the table reads, and how long
    it took."""

    path: str
    format: str | None  # h5, keras, json, savedmodel, export, weights_h5, tf_checkpoint; None: not a model
    findings: dict[str, Any]
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def words(self) -> str:
        """What the file is, in a few words."""
        if self.format is None:
            return str(self.findings.get("not_a_model") or "not a model file")
        version = self.findings.get("keras_version")
        who = f"Keras {version}" if version else "an unknown Keras"
        if self.findings.get("tensorflow_version"):
            who += f", TensorFlow {self.findings['tensorflow_version']}"
        return f"{FORMAT_WORDS.get(self.format, self.format)} written by {who}"


FORMAT_WORDS = {"h5": "a legacy .h5 model", "keras": "a .keras archive", "json": "an architecture JSON",
                "savedmodel": "a Keras 2 SavedModel", "export": "a SavedModel without Keras metadata (model.export)",
                "weights_h5": "a weights-only .h5", "tf_checkpoint": "a TensorFlow checkpoint"}


def inspect_file(path: Path) -> Inspected:
    """Read what a model file says about itself, bounded; never raises for what the file holds."""
    start = time.monotonic()
    try:
        found = _inspect(path)
    except (OSError, ValueError, zipfile.BadZipFile, H5Error, RecursionError) as exc:
        # The file says it is a model (its signature) but its config could not be read here: unknown, not refused.
        found = Inspected(str(path), _guess(path), {"unread": f"{type(exc).__name__}: {str(exc)[:200]}"})
    found.seconds = round(time.monotonic() - start, 4)
    return found


def _guess(path: Path) -> str | None:
    """The format a file's name says, for a file whose content could not be read."""
    from harness.agent.protocol import FORMATS

    name = path.name.lower()
    return next((fmt for fmt in ("keras", "h5", "json") if name.endswith("." + fmt) and fmt in FORMATS),
                "savedmodel" if path.is_dir() else None)


def _inspect(path: Path) -> Inspected:
    if not os.path.lexists(path) and Path(f"{path}.index").is_file():  # a checkpoint is named by its prefix
        return Inspected(str(path), "tf_checkpoint", {})
    info = os.lstat(path)
    odd = next((words for test, words in _NOT_FILES if test(info.st_mode)), None)
    if odd is not None:
        return Inspected(str(path), None, {"not_a_model": odd})
    if stat.S_ISDIR(info.st_mode):
        return _directory(path)
    with open(path, "rb") as fh:
        head = fh.read(SNIFF)
    reader = next((read for sign, read in _READERS if sign(head)), None)
    return reader(path, info.st_size) if reader is not None else _other(path, head, info.st_size)


def _other(path: Path, head: bytes, size: int) -> Inspected:
    """A file that is neither HDF5 nor a zip: no model, an architecture JSON, a checkpoint, or unknown."""
    named = not_a_model(head, size)
    if named:
        return Inspected(str(path), None, {"not_a_model": named})
    if head.lstrip()[:1] == b"{":
        return _json_architecture(path, size)
    if path.name.endswith(".index") or (path.parent / (path.name + ".index")).is_file():
        return Inspected(str(path), "tf_checkpoint", {})
    unknown = "no HDF5, zip, JSON or SavedModel signature"
    guessed = _guess(path)  # named like a model: left to the containers to say
    return Inspected(str(path), guessed,
                     {"unread": unknown} if guessed else {"not_a_model": f"not a model ({unknown})"})


_NOT_FILES = ((stat.S_ISLNK, "a symbolic link, not followed"),
              (lambda mode: not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)), "not a regular file or folder"))
HDF5 = b"\x89HDF\r\n\x1a\n"

# What a file's first bytes say it is, when it is no model: (test, words), in this order.
NOT_MODELS: tuple[tuple[Any, str], ...] = (
    (lambda head, text, size: size == 0, "an empty file"),
    (lambda head, text, size: head.startswith(b"version https://git-lfs.github.com/spec/"),
     "a Git LFS pointer, not the model: fetch the file itself (git lfs pull)"),
    (lambda head, text, size: text.startswith((b"<!doctype html", b"<html", b"<head")) or b"<html" in text[:200],
     "an HTML page saved under a model's name (a login, an error or a download page), not the model"),
    (lambda head, text, size: head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ")),
     "a compressed archive (gzip, bzip2 or xz): unpack it first"),
    (lambda head, text, size: head.startswith((b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")),
     "a Python pickle, not a Keras model (and never to be unpickled)"),
)


def not_a_model(head: bytes, size: int) -> str | None:
    """What a file is when its first bytes say it is no model, or None."""
    text = head[:512].lstrip().lower()
    words = next((words for test, words in NOT_MODELS if test(head, text, size)), None)
    oid = re.search(rb"oid sha256:([0-9a-f]{64})", head) if words and "LFS" in words else None
    return words + (f"; it names sha256 {oid.group(1).decode()[:12]}..." if oid else "") if words else None


# ---------------------------------------------------------------------------- HDF5


def _h5(path: Path, size: int) -> Inspected:
    attrs = root_attributes(str(path), size)
    raw = attrs.text("model_config")
    if raw is None:
        return Inspected(str(path), "weights_h5", {"keras_version": attrs.text("keras_version"), "weights_only": True,
                                                   "weights_layout": weights_layout(attrs.members)},
                         notes=attrs.unread)
    config = _json(raw.encode("utf-8", "replace"))
    training_text = attrs.text("training_config")
    training = _json(training_text.encode("utf-8", "replace")) if training_text else None
    findings = config_findings(config, attrs.text("keras_version"), attrs.text("backend"), training)
    findings["compile_metrics"] = metric_names(training)
    return Inspected(str(path), "h5", findings, notes=attrs.unread)


def weights_layout(members: Sequence[str]) -> str | None:
    """Which layout a .weights.h5 file has: Keras 2.12's (_layer_checkpoint_dependencies), that of Keras 2.13 and
    later (layers), or None (a legacy weights .h5, which every Keras reads by layer order)."""
    if "_layer_checkpoint_dependencies" in members:
        return "2.12"
    return "2.13" if "layers" in members else None


def _json(data: bytes) -> Any:
    if len(data) > MAX_JSON:
        raise ValueError(f"a JSON document of more than {MAX_JSON} bytes")
    return json.loads(data)


# ---------------------------------------------------------------------------- .keras, JSON


def _keras_zip(path: Path, size: int = 0) -> Inspected:
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        if len(members) > MAX_ARCHIVE_MEMBERS:
            raise ValueError(f"a zip of more than {MAX_ARCHIVE_MEMBERS} members")
        names = {m.filename: m for m in members}
        if "config.json" not in names:
            return Inspected(str(path), None, {"not_a_model": "a zip archive without config.json: not a .keras file"})
        config = _json(_member(archive, names["config.json"]))
        meta = _json(_member(archive, names["metadata.json"])) if "metadata.json" in names else {}
    meta = meta if isinstance(meta, dict) else {}
    compile_config = config.get("compile_config") if isinstance(config, dict) else None
    findings = config_findings(config, meta.get("keras_version"), None, compile_config)
    return Inspected(str(path), "keras", findings)


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """One member, after its stated size is checked; reading stops at the limit whatever the header said."""
    if info.file_size > MAX_JSON:
        raise ValueError(f"{info.filename}: {info.file_size} bytes unpacked, more than {MAX_JSON}")
    with archive.open(info) as fh:
        data = fh.read(MAX_JSON + 1)
    if len(data) > MAX_JSON:
        raise ValueError(f"{info.filename}: more than {MAX_JSON} bytes unpacked")
    return data


def _json_architecture(path: Path, size: int) -> Inspected:
    if size > MAX_JSON:
        raise ValueError(f"a JSON file of more than {MAX_JSON} bytes")
    config = _json(path.read_bytes())
    if not isinstance(config, dict) or "class_name" not in config:
        return Inspected(str(path), None, {"not_a_model": "a JSON file that holds no Keras model config"})
    findings = config_findings(config, config.get("keras_version"), config.get("backend"))
    weights = [p for p in sorted(path.parent.glob("*.weights.h5")) if p.is_file() and not p.is_symlink()][:1]
    if weights:  # the weights beside an architecture are loaded with it
        findings["weights_layout"] = weights_layout(root_attributes(str(weights[0]), weights[0].stat().st_size).members)
    return Inspected(str(path), "json", findings)


# ---------------------------------------------------------------------------- SavedModel


def _directory(path: Path) -> Inspected:
    graph = path / "saved_model.pb"
    if not graph.is_file() or graph.is_symlink():
        index = [p for p in path.iterdir() if p.name.endswith(".index")][:1] if path.is_dir() else []
        if index:
            return Inspected(str(path), "tf_checkpoint", {})
        return Inspected(str(path), None, {"not_a_model": "a folder without saved_model.pb: not a SavedModel"})
    metadata = path / "keras_metadata.pb"
    has_metadata = metadata.is_file() and not metadata.is_symlink()
    size = graph.stat().st_size
    findings: dict[str, Any] = {"keras_metadata": has_metadata, "fingerprint": (path / "fingerprint.pb").is_file()}
    if size <= MAX_PROTO:
        data = graph.read_bytes()
        findings.update(saved_model_facts(data))
        findings["file_ops"] = sorted(op.decode() for op in RISKY_OPS if re.search(rb"\b" + op + rb"\b", data))
        findings["xla_call_module"] = b"XlaCallModule" in data
    if has_metadata and metadata.stat().st_size <= MAX_PROTO:
        findings.update(_keras_metadata(metadata.read_bytes()))
    return Inspected(str(path), "savedmodel" if has_metadata else "export", findings)


def fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of a protobuf message: an int, or the bytes of a length-delimited field."""
    at, end = 0, len(data)
    while at < end:
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 1:
            value, at = int.from_bytes(data[at:at + 8], "little"), at + 8
        elif wire == 2:
            length, at = _varint(data, at)
            if at + length > end:
                raise ValueError("a protobuf field runs past its message")
            value, at = data[at:at + length], at + length
        elif wire == 5:
            value, at = int.from_bytes(data[at:at + 4], "little"), at + 4
        else:
            raise ValueError(f"protobuf wire type {wire}")
        yield number, wire, value


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("a protobuf varint is cut short")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


def _first(data: bytes, number: int) -> Any:
    return next((value for n, _, value in fields(data) if n == number), None)


def saved_model_facts(data: bytes) -> dict[str, Any]:
    """The TensorFlow release that wrote a saved_model.pb and its serving signature's input types and output keys."""
    meta_graph = _first(data, 2)
    if not isinstance(meta_graph, bytes):
        return {}
    found: dict[str, Any] = {}
    info = _first(meta_graph, 1)
    if isinstance(info, bytes):
        version = _first(info, 5)
        if isinstance(version, bytes):
            found["tensorflow_version"] = version.decode("utf-8", "replace")[:40]
    for number, _, entry in fields(meta_graph):
        if number != 5 or not isinstance(entry, bytes):
            continue
        key, signature = _first(entry, 1), _first(entry, 2)
        if key == b"serving_default" and isinstance(signature, bytes):
            found.update(_signature(signature))
    return found


def _signature(signature: bytes) -> dict[str, Any]:
    inputs, outputs = [], []
    for number, _, entry in fields(signature):
        if number in (1, 2) and isinstance(entry, bytes):
            key, tensor = _first(entry, 1), _first(entry, 2)
            if not isinstance(key, bytes):
                continue
            if number == 1 and isinstance(tensor, bytes):
                inputs.append(DATA_TYPES.get(_first(tensor, 2) or 0, "other"))
            elif number == 2:
                outputs.append(key.decode("utf-8", "replace")[:100])
    return {"signature_input_dtypes": sorted(set(inputs)), "signature_output_keys": sorted(outputs)}


def _keras_metadata(data: bytes) -> dict[str, Any]:
    """keras_metadata.pb: the root object's metadata JSON (its config and the Keras that saved it)."""
    for number, _, node in fields(data):
        if number != 1 or not isinstance(node, bytes):
            continue
        path, metadata = _first(node, 3), _first(node, 5)
        if path == b"root" and isinstance(metadata, bytes):
            root = _json(metadata)
            if isinstance(root, dict):
                found = config_findings(root.get("config") or {}, _metadata_version(data), None,
                                        root.get("training_config"))
                return {k: v for k, v in found.items() if v not in (None, [], {}, False)}
    return {}


def _metadata_version(data: bytes) -> str | None:
    found = re.search(rb'"keras_version": "([0-9][0-9a-z.\-+]{0,30})"', data[:MAX_JSON])
    return found.group(1).decode() if found else None


# ---------------------------------------------------------------------------- predictions


OUTCOME_WORDS = {"error": "FAILS", "pass": "predicted to load", "unknown": "unknown (its config could not be read)"}


@dataclass(frozen=True)
class RouteForecast:
    """One route (the file's format and a loader) in one release: the outcome the table predicts, and why."""

    target: str
    loader: str
    outcome: str  # "error" or "pass"
    why: str
    causes: tuple[str, ...]


def loaders_for(fmt: str | None) -> list[str]:
    """The loaders a user may take on a format, in the catalog's order (serving and conversion routes included)."""
    return [name for name, spec in LOADERS.items() if fmt is not None and fmt in spec.reads and not spec.probes_only]


def forecast(inspected: Inspected, targets: Sequence[tuple[str, Release]], loaders: Sequence[str] | None = None, *,
             custom_objects: bool = False, evaluate: bool = False) -> list[RouteForecast]:
    """Every route of the file in every target: what the table predicts."""
    chosen = list(loaders) if loaders is not None else loaders_for(inspected.format)
    found = []
    for label, release in targets:
        for loader in chosen:
            if inspected.format is None:
                words = str(inspected.findings.get("not_a_model"))
                found.append(RouteForecast(label, loader, "error", words, ("not-a-model",)))
                continue
            told = accepts_predict(inspected.findings, inspected.format, loader, release,
                                   custom_objects=custom_objects, evaluate=evaluate)
            found.append(RouteForecast(label, loader, told["outcome"], told["why"], tuple(told["causes"])))
    return found


def config_loaders() -> tuple[str, ...]:
    """The loaders that rebuild a model from the file's own config."""
    return CONFIG_LOADERS


# Readers by the file's first bytes: HDF5 (a legacy model or weights), a zip (.keras).
def _tflite(path: Path, size: int) -> Inspected:
    """A model whose routes are the interpreter's: no Keras config to forecast from, the containers answer."""
    return Inspected(str(path), "tflite", {"unread": "a TensorFlow Lite flatbuffer holds no Keras config"})


_READERS: tuple[tuple[Callable[[bytes], bool], Callable[[Path, int], Inspected]], ...] = (
    (lambda head: HDF5 in head[:1024], _h5),
    (lambda head: head.startswith(b"PK\x03\x04"), _keras_zip),
    (lambda head: head[4:8] == b"TFL3", _tflite),  # a flatbuffer's file identifier
)


# ---------------------------------------------------------------------------- the answer


def release_of(spec: str, flag: str, python: str | None = None) -> tuple[str, Release]:
    """A check SPEC as the release the table reads, and a label for it (see release_of_request)."""
    from harness.advisor.question import parse_spec

    return spec, release_of_request(parse_spec(spec, flag), python)


def release_of_request(request: EnvRequest, python: str | None = None) -> Release:
    """One side of a check as the release the table reads: TensorFlow 2.15 and older bundle their Keras 2 minor,
    2.16 and later Keras 3 unless the side names Keras or tf-keras."""
    from harness.advisor.question import DEFAULT_PYTHON, KERAS3_TF, pinned_minor

    tf = pinned_minor(request.tensorflow)
    keras = (request.keras or "").replace("keras==", "").replace("==", "")
    package = "tf-keras" if keras.startswith(("tf-keras", "tf_keras")) else "keras"
    if package == "tf-keras" or (not keras and tf is not None and tf < KERAS3_TF):
        version = f"{tf[0]}.{tf[1]}" if tf else "2"
    else:
        version = keras or "3"
    return Release(keras=version, keras_package=package, python=request.python or python or DEFAULT_PYTHON,
                   tensorflow=request.tensorflow.lstrip("=<>~!"))


def inspect_answer(path: Path, targets: Sequence[str], *, python: str | None = None, custom_objects: bool = False,
                   as_json: bool = False) -> tuple[str, int]:
    """inspect's screen (or JSON) and exit code: 0 the usual route loads everywhere, 1 it fails somewhere, 2 no model
    file."""
    from harness.errors import EXIT_FAILURES, EXIT_OK, EXIT_USAGE

    start = time.monotonic()
    releases = [release_of(spec, "--to", python) for spec in targets]
    found = inspect_file(path)
    routes = forecast(found, releases, custom_objects=custom_objects)
    usual = usual_loader(found.format)
    fails = any(r.outcome == "error" for r in routes if r.loader == usual)
    code = EXIT_USAGE if found.format is None else (EXIT_FAILURES if fails else EXIT_OK)
    seconds = time.monotonic() - start
    if as_json:
        data = {"file": str(path), "format": found.format, "findings": found.findings, "seconds": round(seconds, 4),
                "routes": [r.__dict__ | {"causes": list(r.causes)} for r in routes]}
        return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", code
    return "\n".join(inspect_screen(found, routes, usual, seconds)) + "\n", code


def usual_loader(fmt: str | None) -> str | None:
    """The loader people use on a format."""
    from harness.agent.protocol import FORMATS

    return FORMATS[fmt].loader if fmt in FORMATS else None


def inspect_screen(found: Inspected, routes: Sequence[RouteForecast], usual: str | None, seconds: float) -> list[str]:
    """What inspect prints: the file, then per target its usual route and every route predicted to fail, why."""
    lines = [f"{found.path}: {found.words()} (read in {seconds:.2f} s, without TensorFlow)"]
    if found.format is None:
        return lines
    for target in dict.fromkeys(r.target for r in routes):
        mine = [r for r in routes if r.target == target]
        yours = next((r for r in mine if r.loader == usual), None)
        head = f"  {target}: " + ("no usual loader" if yours is None else f"{usual} {OUTCOME_WORDS[yours.outcome]}")
        lines.append(head + (f": {yours.why}" if yours is not None and yours.why else ""))
        others = [r for r in mine if r.outcome == "error" and r.loader != usual]
        works = [r.loader for r in mine if r.outcome == "pass" and r.loader != usual]
        lines += [f"    x {r.loader}: {r.why}" for r in others]
        if works:
            lines.append(f"    predicted to load: {', '.join(works)}")
    lines.append("a prediction from the file's stored config; `harness check` confirms it in containers")
    return lines
