"""Dockerfile rendering, content-hash tags and image reuse, one image per environment.

Builds take their packages from the host's wheel cache (harness/wheelcache.py), handed to them as
a build argument: the image holds no pip.conf, no index URL and no credentials, and the tag
depends only on what is installed, not on where it came from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import jinja2

from harness import __version__
from harness.engine import LABEL_MANAGED, LABEL_VERSION, BuildResult, ContainerEngine
from harness.errors import UsageError
from harness.matrix import Environment, PipSettings
from harness.matrix.environments import SELECTORS
from harness.untrusted import UnsafeFile, read_named
from harness.wheelcache import WheelCache, WheelStats, cache_enabled

log = logging.getLogger(__name__)
MAX_CA_BUNDLE = 64 << 20  # Debian's whole bundle is 200 kB

IMAGE_REPO = "harness-env"
TEMPLATE_NAME = "env.Dockerfile.j2"  # the venv and TensorFlow (and, for an environment of TensorFlow alone, all)
LAYER_TEMPLATE = "keras.Dockerfile.j2"  # the rest, FROM the TensorFlow image
# Host variables naming a CA bundle, in the order pip itself prefers them.
CA_VARIABLES = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
BUILD_RETRIES = 1  # a build that failed on a hiccup is tried once more
# pip's answers about the requirements themselves, a full disk, an unreadable CA bundle: the same on a second attempt
FINAL_BUILD_ERRORS = ("no matching distribution", "could not find a version", "resolutionimpossible",
                      "conflicting dependencies", "no space left on device", "ca bundle")


@dataclass(frozen=True)
class ImagePlan:
    """The rendered build context of one environment and the tag it hashes to."""

    env_id: str
    tag: str
    dockerfile: str
    files: Mapping[str, bytes]  # build-context files besides the Dockerfile
    ca_bundle: str | None = None  # host path copied into the context at build time (direct builds only)
    build_args: Mapping[str, str] = dataclasses.field(default_factory=dict)  # not in the tag: where, not what
    cached: bool = True  # packages come from the host's wheel cache (else builds reach the index themselves)
    # The image of this Python and TensorFlow release alone, built first: every environment on them builds FROM it
    # and shares its gigabyte. None for an environment of TensorFlow alone, whose image it is.
    parent: ImagePlan | None = None


def dockerfiles_dir() -> Path:
    """Where the Dockerfile template lives: HARNESS_DOCKERFILES, the wheel, or the source tree."""
    override = os.environ.get("HARNESS_DOCKERFILES")
    if override:
        return Path(override)
    packaged = Path(__file__).parent / "_dockerfiles"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "dockerfiles"


def effective_pip_settings(matrix_pip: PipSettings, environ: Mapping[str, str]) -> PipSettings:
    """Matrix `pip:` keys win; otherwise the host's PIP_* and CA variables pass through."""
    index = matrix_pip.index_url or environ.get("PIP_INDEX_URL") or None
    extra = matrix_pip.extra_index_urls or tuple(environ.get("PIP_EXTRA_INDEX_URL", "").split())
    trusted = matrix_pip.trusted_hosts or tuple(environ.get("PIP_TRUSTED_HOST", "").split())
    ca = matrix_pip.ca_bundle
    if ca and not Path(ca).is_file():  # the matrix parser checks this; a file may vanish since
        log.warning("CA bundle %s does not exist; ignored", ca)
        ca = None
    ca = ca or _host_ca_bundle(environ)
    return PipSettings(
        index_url=_container_url(index),
        extra_index_urls=tuple(u for u in map(_container_url, extra) if u),
        trusted_hosts=trusted,
        ca_bundle=ca,
    )


def _host_ca_bundle(environ: Mapping[str, str]) -> str | None:
    """The first CA bundle variable that names an existing file."""
    for variable in CA_VARIABLES:
        path = environ.get(variable)
        if not path:
            continue
        if Path(path).is_file():
            return path
        log.warning("%s=%s does not exist; ignored", variable, path)
    return None


def _container_url(url: str | None) -> str | None:
    # A file:// index on the host does not exist inside a container.
    if url and url.startswith("file:"):
        log.info("index %s is a host path; not passed into image builds", url)
        return None
    return url


def build_pip_settings(matrix_pip: PipSettings, environ: Mapping[str, str]) -> PipSettings | None:
    """The index settings builds use themselves, or None when they go through the host's wheel cache."""
    return None if cache_enabled(environ) else effective_pip_settings(matrix_pip, environ)


def direct_build_args(pip: PipSettings) -> dict[str, str]:
    """pip's settings as build arguments of a build that reaches the index itself (never a file in the image)."""
    values = (("PIP_INDEX_URL", pip.index_url or ""), ("PIP_EXTRA_INDEX_URL", " ".join(pip.extra_index_urls)),
              ("PIP_TRUSTED_HOST", " ".join(pip.trusted_hosts)))
    return {k: v for k, v in values if v}


def split_requirements(env: Environment) -> tuple[list[str], list[str]]:
    """(normal, no-deps) requirement lines for an environment."""
    reqs = env.requirements()
    nodeps: list[str] = []
    if env.legacy_keras:
        tf_keras = "tf-keras" + (env.tf_keras or "")
        if env.tensorflow_package == "tensorflow":
            reqs.append(tf_keras)
        else:
            # tf-keras depends on `tensorflow`, which would pull the ~600 MB full
            # wheel in beside tensorflow-cpu; its only dependency is TF itself.
            nodeps.append(tf_keras)
    return reqs, nodeps


def _template(name: str) -> jinja2.Template:
    template_dir = dockerfiles_dir()
    try:
        return jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(template_dir)), keep_trailing_newline=True, autoescape=False,
            trim_blocks=True, lstrip_blocks=True,
        ).get_template(name)
    except jinja2.TemplateNotFound as exc:
        raise UsageError(f"Dockerfile template {name} not found in {template_dir}") from exc


def _hashed(env_id: str, dockerfile: str, files: dict[str, bytes], direct: PipSettings | None,
            parent: ImagePlan | None = None) -> ImagePlan:
    # Neither the index (its URL, a token in it) nor the CA bundle's content is in the hash: a
    # rotated token or certificate must not rebuild every 2 GB TensorFlow image.
    digest = hashlib.sha256(dockerfile.encode())
    for name in sorted(files):
        digest.update(b"\0" + name.encode() + b"\0" + files[name])
    ca_bundle = direct.ca_bundle if direct else None
    return ImagePlan(env_id=env_id, tag=f"{IMAGE_REPO}:{digest.hexdigest()[:20]}", dockerfile=dockerfile,
                     files=files, ca_bundle=ca_bundle, build_args=direct_build_args(direct) if direct else {},
                     cached=direct is None, parent=parent)


def _tensorflow_image(env: Environment, direct: PipSettings | None) -> ImagePlan:
    """The image of the venv and TensorFlow alone: the whole image of an environment that asks for nothing more,
    the first stage of every other one on that Python and release (rendered as it always was: its tag, and the
    images already built under it, stay valid)."""
    dockerfile = _template(TEMPLATE_NAME).render(
        base_image=env.base_image.replace("{python}", env.python),
        python=env.python,
        legacy_keras=False,
        ca_bundle=bool(direct and direct.ca_bundle),
        no_deps_requirements=False,
    )
    requirements = env.tensorflow_package + env.tensorflow
    files = {"requirements.txt": (requirements + "\n").encode()}
    return _hashed(f"py{env.python}-{requirements}", dockerfile, files, direct)


def plan_image(env: Environment, direct: PipSettings | None = None) -> ImagePlan:
    """Render the Dockerfile and context of one environment; pure apart from reading the templates.

    `direct`: the index settings of a build that reaches the index itself; None for the wheel cache.
    An environment of TensorFlow alone is one image; any other is two: TensorFlow's, shared by every
    environment on that Python and release, and its own packages FROM it.
    """
    unresolved = [spec for spec in (env.tensorflow, env.keras, env.tf_keras) if spec in SELECTORS]
    if unresolved:
        raise UsageError(f"{env.id}: '{unresolved[0]}' is a version the package index decides: resolve the matrix's "
                         "versions first (validate, plan and run do)")
    reqs, nodeps = split_requirements(env)
    tensorflow = _tensorflow_image(env, direct)
    if len(reqs) == 1 and not nodeps and not env.legacy_keras:
        return dataclasses.replace(tensorflow, env_id=env.id)
    files: dict[str, bytes] = {"requirements.txt": ("\n".join(reqs) + "\n").encode()}
    if nodeps:
        files["requirements-nodeps.txt"] = ("\n".join(nodeps) + "\n").encode()
    dockerfile = _template(LAYER_TEMPLATE).render(
        tf_image=tensorflow.tag,
        legacy_keras=env.legacy_keras,
        ca_bundle=bool(direct and direct.ca_bundle),
        no_deps_requirements=bool(nodeps),
    )
    return _hashed(env.id, dockerfile, files, direct, parent=tensorflow)


@dataclass(frozen=True)
class ImageOutcome:
    """What happened to one environment's image."""

    tag: str
    image_id: str | None
    built: bool
    seconds: float
    error: str | None = None
    wheels: WheelStats | None = None  # what the build took from the wheel cache (None: it did not use it)


# One lock per tag a build may make: environments built in parallel on one TensorFlow build its image once.
_TAG_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def _tag_lock(tag: str) -> threading.Lock:
    with _LOCKS_LOCK:
        return _TAG_LOCKS.setdefault(tag, threading.Lock())


def ensure_image(engine: ContainerEngine, plan: ImagePlan, log_path: Path,
                 cache: WheelCache | None = None, before_build: Callable[[], None] | None = None) -> ImageOutcome:
    """Reuse the image when its tag exists; build it otherwise (its TensorFlow image first, when it has one and
    that is missing too), its packages from `cache` when it serves.

    `before_build` runs first when there is something to build (it waits for a base image built meanwhile).
    """
    existing = engine.image_id(plan.tag)
    if existing:
        return ImageOutcome(tag=plan.tag, image_id=existing, built=False, seconds=0.0)
    if before_build is not None:
        before_build()
    first: ImageOutcome | None = None
    if plan.parent is not None:
        with _tag_lock(plan.parent.tag):
            first = ensure_image(engine, plan.parent, log_path.with_name(f"{log_path.stem}-tensorflow.log"), cache)
        if first.error:
            return dataclasses.replace(first, tag=plan.tag, image_id=None,
                                       error=f"its TensorFlow image {plan.parent.tag}: {first.error}")
    outcome = _build_image(engine, plan, log_path, cache)
    return outcome if first is None else _after(first, outcome)


def _after(first: ImageOutcome, then: ImageOutcome) -> ImageOutcome:
    """An environment's outcome including the build of its TensorFlow image: the seconds and wheels of both."""
    wheels = first.wheels if then.wheels is None else then.wheels if first.wheels is None else \
        _added(first.wheels, then.wheels)
    return dataclasses.replace(then, seconds=first.seconds + then.seconds, wheels=wheels)


def _build_image(engine: ContainerEngine, plan: ImagePlan, log_path: Path, cache: WheelCache | None) -> ImageOutcome:
    """Build one image (its parent already built), its packages from `cache` when it serves.

    A build that failed for a reason other than pip's answer about the requirements (a network or engine hiccup)
    is tried once more; the failed attempt's log stays beside the log, as build-failed.log.
    """
    seconds = 0.0
    wheels: WheelStats | None = None
    for attempt in range(1 + BUILD_RETRIES):
        if plan.cached and cache is not None:
            with cache.session(plan.env_id) as session:
                result = _build(engine, plan, log_path, session.build_args, session.network)
            wheels = session.stats if wheels is None or session.stats is None else _added(wheels, session.stats)
        else:
            result = _build(engine, plan, log_path, plan.build_args, None)
        seconds += result.seconds
        if result.ok or attempt == BUILD_RETRIES or _final(result.error):
            break
        log.warning("image %s: build failed (%s); trying once more", plan.tag, result.error)
        if log_path.is_file():
            log_path.replace(log_path.with_name(f"{log_path.stem}-failed{log_path.suffix}"))
    if not result.ok:
        return ImageOutcome(tag=plan.tag, image_id=None, built=True, seconds=seconds, error=result.error,
                            wheels=wheels)
    return ImageOutcome(tag=plan.tag, image_id=engine.image_id(plan.tag), built=True, seconds=seconds,
                        wheels=wheels)


def _final(error: str | None) -> bool:
    """Whether a build's error is one a second attempt would repeat (pip's answer about the requirements, ...)."""
    return any(marker in (error or "").lower() for marker in FINAL_BUILD_ERRORS)


def _added(first: WheelStats, then: WheelStats) -> WheelStats:
    both = WheelStats(**dataclasses.asdict(first))
    both.add(then)
    return both


def _build(engine: ContainerEngine, plan: ImagePlan, log_path: Path, build_args: Mapping[str, str],
           network: str | None) -> BuildResult:
    """Write the build context to a temporary directory and build it."""
    with tempfile.TemporaryDirectory(prefix="harness-build-") as tmp:
        context = Path(tmp)
        (context / "Dockerfile").write_text(plan.dockerfile)
        for name, data in plan.files.items():
            (context / name).write_bytes(data)
        if plan.ca_bundle:
            try:  # a regular file of a bounded size: a FIFO named as the bundle would block the build for ever
                (context / "ca-bundle.pem").write_bytes(read_named(Path(plan.ca_bundle), MAX_CA_BUNDLE))
            except (OSError, UnsafeFile) as exc:
                return BuildResult(ok=False, seconds=0.0, error=f"CA bundle: {getattr(exc, 'strerror', None) or exc}")
        labels = {LABEL_MANAGED: "true", LABEL_VERSION: __version__, "org.harness.env": plan.env_id}
        return engine.build(context, plan.tag, labels, build_args, log_path, network=network)
