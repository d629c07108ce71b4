"""Read, validate and expand a matrix file into the frozen `Matrix` every later step uses."""

# Hand-written checks, not pydantic: nearly every field needs its own message (the quoted-version
# hint, did-you-mean, key paths into matrix axes), so remapping pydantic's errors came out longer.
from __future__ import annotations

import hashlib
import os
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from harness.agent.protocol import DEFAULT_MODELS, PROBES, ModelSpec, resolve_probe
from harness.errors import MatrixError
from harness.matrix.corpus import matrix_models
from harness.matrix.environments import Defaults, Resolve, parse_base_image, parse_environments, parse_tf_package
from harness.matrix.expect import CATALOGS, parse_expect
from harness.matrix.model import DEFAULT_BASE_IMAGE, DEFAULT_TF_PACKAGE, CorpusPlan, Environment, Matrix, PipSettings
from harness.matrix.problems import MAX_NAME, Raw, existing_file
from harness.matrix.problems import MISSING as _MISSING
from harness.matrix.problems import check_keys as _check_keys
from harness.matrix.problems import found as _found
from harness.matrix.problems import str_list as _str_list
from harness.matrix.problems import string as _string
from harness.matrix.problems import suggest as _suggest
from harness.matrix.problems import tolerance as _tolerance
from harness.matrix.source import load_yaml, read_bytes
from harness.matrix.user_models import Context as UserContext
from harness.matrix.user_models import artifact_sources, parse_user_model

_TOP_KEYS = (
    "name", "matrix", "environments", "models", "formats", "loaders", "tolerance",
    "base_image", "tensorflow_package", "pip", "expect", "corpus",
)  # fmt: skip
_PIP_KEYS = ("index_url", "extra_index_urls", "trusted_hosts", "ca_bundle")


# ---------------------------------------------------------------------------- public API


# What decides the versions of latest, latest-pre and specifiers: given the matrix's pip: settings, a resolver
# (harness/selectors.py asks the package index). Without one they stay as written.
Versions = Callable[[PipSettings], Resolve]


def load_matrix(path: str | os.PathLike[str], *, base_image: str | None = None,
                versions: Versions | None = None) -> Matrix:
    """Read, validate and expand the matrix file at `path`; MatrixError lists every problem."""
    where = os.fspath(path)
    raw = read_bytes(where)
    data = load_yaml(raw, where)
    return parse_matrix(data, path=where, sha256=hashlib.sha256(raw).hexdigest(), base_image=base_image,
                        versions=versions)


def parse_matrix(data: object, *, path: str, sha256: str, base_image: str | None = None,
                 versions: Versions | None = None) -> Matrix:
    """Validate and expand already-loaded YAML data; raise MatrixError listing every problem. With `versions`,
    what the index decides is resolved into exact versions (and the environment ids)."""
    if data is None:
        raise MatrixError(path, ["the file is empty; expected a mapping with 'matrix' or 'environments'"])
    if not isinstance(data, dict):
        found = _found(data)
        raise MatrixError(path, [f"top level: expected a mapping with 'matrix' or 'environments', found {found}"])
    problems: list[str] = []
    _check_keys(data, _TOP_KEYS, "", problems)
    defaults = _defaults(data, base_image, problems)
    pip = _pip(data.get("pip", _MISSING), Path(path).parent, problems)
    environments = parse_environments(data, defaults, problems, None if versions is None else versions(pip))
    env_ids = tuple(env.id for env in environments)
    formats = _names(data.get("formats", _MISSING), "formats", problems)
    loaders = _names(data.get("loaders", _MISSING), "loaders", problems)
    context = UserContext(base=Path(path).parent, formats=formats, loaders=loaders, env_ids=env_ids)
    corpus_entries, corpus = _corpus(data, Path(path).parent, environments, defaults, problems)
    # A matrix that names a corpus and no models runs the corpus alone.
    models = () if corpus is not None and "models" not in data else _models(data.get("models", _MISSING), context,
                                                                            problems)
    models += _corpus_models(corpus_entries, context, models, problems)
    matrix = Matrix(
        name=_top_name(data.get("name", _MISSING), path, problems),
        path=path,
        sha256=sha256,
        environments=environments,
        models=models,
        formats=formats,
        loaders=loaders,
        tolerance=_tolerance(data.get("tolerance", _MISSING), problems),
        pip=pip,
        expect=parse_expect(data.get("expect", _MISSING), (*env_ids, *artifact_sources(models, env_ids)),
                            [m.name for m in models if m.is_user_model], problems),
        corpus=corpus,
    )
    if problems:
        raise MatrixError(path, list(dict.fromkeys(problems)))  # matrix combos can repeat a problem
    return matrix


# ---------------------------------------------------------------------------- other top-level keys


def _defaults(data: Raw, override: str | None, problems: list[str]) -> Defaults:
    """Top-level tensorflow_package and base_image, and the --base-image override."""
    package = DEFAULT_TF_PACKAGE
    if "tensorflow_package" in data:
        package = parse_tf_package(data["tensorflow_package"], "tensorflow_package", problems) or package
    template = DEFAULT_BASE_IMAGE
    if "base_image" in data:
        template = parse_base_image(data["base_image"], "base_image", problems) or template
    checked = None if override is None else parse_base_image(override, "--base-image/HARNESS_BASE_IMAGE", problems)
    return Defaults(tensorflow_package=package, base_image=template, override=checked)


def _top_name(raw: object, path: str, problems: list[str]) -> str:
    """The matrix name; defaults to the file stem."""
    stem = Path(path).stem[:MAX_NAME] or "matrix"
    if raw is _MISSING:
        return stem
    name = _string(raw, "name", problems)
    if name is not None and (len(name) > MAX_NAME or not name.isprintable()):
        problems.append(f"name: expected at most {MAX_NAME} printable characters (it names the run directory), "
                        f"found {len(name)} characters")
        return stem
    return name or stem


def _names(raw: object, key: str, problems: list[str]) -> tuple[str, ...]:
    """A non-empty list of catalog names (formats or loaders)."""
    what, known, default = CATALOGS[key]
    if raw is _MISSING:
        return default
    if not isinstance(raw, list) or not raw:
        problems.append(f"{key}: expected a non-empty list of {what} names, found {_found(raw)}")
        return default
    names: list[str] = []
    for i, name in enumerate(raw):
        if not isinstance(name, str):
            problems.append(f"{key}[{i}]: expected a {what} name, found {_found(name)}")
        elif name not in known:
            problems.append(f"{key}[{i}]: unknown {what} {name!r}{_suggest(name, list(known))}")
        elif name in names:
            problems.append(f"{key}[{i}]: {what} {name!r} is listed twice")
        else:
            names.append(name)
    return tuple(names)


def _models(raw: object, ctx: UserContext, problems: list[str]) -> tuple[ModelSpec, ...]:
    """`models:` in the order written: built-in probes by name, users' own models as mappings."""
    if raw is _MISSING:
        return tuple(resolve_probe(name, ctx.formats, ctx.loaders) for name in DEFAULT_MODELS)
    if not isinstance(raw, list) or not raw:
        problems.append(f"models: expected a non-empty list of probe names or model mappings, found {_found(raw)}")
        return ()
    models: list[ModelSpec] = []
    for i, entry in enumerate(raw):
        if isinstance(entry, dict):
            model = parse_user_model(entry, f"models[{i}]", replace(ctx, earlier=tuple(models)), problems)
        elif not isinstance(entry, str):
            problems.append(f"models[{i}]: expected a probe name or a mapping, found {_found(entry)}")
            continue
        elif entry not in PROBES:
            problems.append(f"models[{i}]: unknown probe {entry!r}{_suggest(entry, list(PROBES))}")
            continue
        else:
            model = resolve_probe(entry, ctx.formats, ctx.loaders)
        if model is None:
            continue
        if any(m.name == model.name for m in models):
            where = "models[{i}].name" if isinstance(entry, dict) else f"models[{i}]"
            problems.append(f"{where.format(i=i)}: model {model.name!r} is listed twice")
            continue
        models.append(model)
    return tuple(models)


def _corpus(data: Raw, base: Path, environments: tuple[Environment, ...], defaults: Defaults,
            problems: list[str]) -> tuple[list[Raw], CorpusPlan | None]:
    """`corpus:`: the models: entries of its fetched files whose home is among the environments, and its plan."""
    if "corpus" not in data:
        return [], None
    return matrix_models(data["corpus"], base, environments, defaults, environ=os.environ, problems=problems)


def _corpus_models(entries: list[Raw], ctx: UserContext, earlier: tuple[ModelSpec, ...],
                   problems: list[str]) -> tuple[ModelSpec, ...]:
    """The corpus's files as existing-artifact models, after the matrix's own."""
    models: list[ModelSpec] = []
    for entry in entries:
        at = f"corpus: {entry['name']}"
        if any(m.name == entry["name"] for m in (*earlier, *models)):
            problems.append(f"{at}: a model of this name is listed under models: too")
            continue
        model = parse_user_model(entry, at, replace(ctx, earlier=(*earlier, *models)), problems)
        if model is not None:
            models.append(model)
    return tuple(models)


def _ca_bundle(value: object, base: Path, problems: list[str]) -> str | None:
    """Absolute path of an existing CA bundle; a relative one starts at the matrix file."""
    path = existing_file(value, "pip.ca_bundle", base, problems)
    return None if path is None else str(path)


def _pip(raw: object, base: Path, problems: list[str]) -> PipSettings:
    """Package index and CA bundle settings."""
    if raw is _MISSING:
        return PipSettings()
    if not isinstance(raw, dict):
        problems.append(f"pip: expected a mapping with {', '.join(_PIP_KEYS)}, found {_found(raw)}")
        return PipSettings()
    _check_keys(raw, _PIP_KEYS, "pip", problems)
    extra = _str_list(raw.get("extra_index_urls", []), "pip.extra_index_urls", problems)
    trusted = _str_list(raw.get("trusted_hosts", []), "pip.trusted_hosts", problems)
    return PipSettings(
        index_url=_index_url(raw["index_url"], "pip.index_url", problems) if "index_url" in raw else None,
        extra_index_urls=tuple(u for i, u in enumerate(extra) if _index_url(u, f"pip.extra_index_urls[{i}]", problems)),
        trusted_hosts=tuple(h for i, h in enumerate(trusted) if _host(h, f"pip.trusted_hosts[{i}]", problems)),
        ca_bundle=_ca_bundle(raw["ca_bundle"], base, problems) if "ca_bundle" in raw else None,
    )


# pip.conf is written from these: a space, newline or control character could add settings or sections.
_URL_TEXT = re.compile(r"[!-~]{1,2048}")
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                   r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def _index_url(value: object, at: str, problems: list[str]) -> str | None:
    """A package index URL: http(s) with a host, or file:, in printable ASCII without spaces."""
    text = _string(value, at, problems)
    if text is None:
        return None
    try:
        parts = urllib.parse.urlsplit(text) if _URL_TEXT.fullmatch(text) else None
    except ValueError:  # e.g. an unclosed [IPv6] host
        parts = None
    if parts is None or parts.scheme not in ("http", "https", "file") or (
            parts.scheme != "file" and not parts.hostname):
        problems.append(f"{at}: expected an index URL like https://pypi.example/simple (printable, no spaces), "
                        f"found {text!r}")
        return None
    return text


def _host(text: str, at: str, problems: list[str]) -> str | None:
    """A trusted host: a host name or address, with an optional port."""
    if not _HOST.fullmatch(text) or len(text) > 255:
        problems.append(f"{at}: expected a host name like pypi.example or pypi.example:8443, found {text!r}")
        return None
    return text
