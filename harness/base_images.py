"""Base images that resolve themselves: the matrix's own, else a local equivalent, else one built here.

An environment's base image is `python:{python}-slim` unless the matrix says otherwise. On a host
that cannot pull it (no registry: air-gapped, behind a proxy that serves only Debian and PyPI)
the equivalent `harness-base:{python}` is used, and built from Debian packages when it does not
exist yet: debootstrap of the Debian release that ships that Python, imported as an image. It is
built once per host; every later run finds it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.engine import LABEL_BASE, run_host_command
from harness.errors import BaseImageUnavailable, UsageError
from harness.matrix import DEFAULT_BASE_IMAGE, Matrix

LOCAL_REPO = "harness-base"
REPO_VARIABLE = "HARNESS_BASE_REPO"  # another name for the local base images (tests build theirs apart)
# The Debian release whose python3 is that Python.
SUITES = {"3.9": "bullseye", "3.11": "bookworm", "3.13": "trixie"}
PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BOOTSTRAP_TIMEOUT = 1800.0


class BaseEngine(Protocol):
    """What finding, pulling and importing a base image asks of the engine."""

    binary: str

    def ping(self) -> None:
        """Raise EngineUnavailable when unreachable."""

    def image_id(self, tag: str) -> str | None:
        """The image id of a tag, or None."""

    def pull(self, ref: str) -> str | None:
        """None when pulled, else why not."""

    def import_rootfs(self, root: Path, tag: str, changes: Sequence[str], log_path: Path) -> None:
        """Make an image of a root filesystem."""


class Bootstrap(Protocol):
    """Builds a Debian root filesystem on this host."""

    def unavailable(self) -> str | None:
        """Why it cannot run here (not root, no debootstrap), or None."""

    def build(self, suite: str, root: Path, log_path: Path) -> None:
        """Fill `root` with a minimal Debian `suite` that has Python; BaseImageUnavailable when it fails."""


@dataclass(frozen=True)
class Built:
    """One base image this host now has, and what it took."""

    tag: str
    python: str
    built: bool
    seconds: float


def local_tag(python: str) -> str:
    """The locally built base image of a Python: harness-base:PYTHON (or HARNESS_BASE_REPO:PYTHON)."""
    return f"{os.environ.get(REPO_VARIABLE) or LOCAL_REPO}:{python}"


def check_pythons(pythons: Sequence[str]) -> None:
    """Refuse a Python no Debian release ships (exit 2), before anything is built."""
    for python in pythons:
        if python not in SUITES:
            raise UsageError(f"{python}: no Debian release ships Python {python} "
                             f"(have {', '.join(SUITES)}); give the matrix a base_image for it")


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the harness keeps host-wide state: HARNESS_CACHE, else $XDG_CACHE_HOME/harness, else ~/.cache/harness."""
    if environ.get("HARNESS_CACHE"):
        return Path(environ["HARNESS_CACHE"])
    xdg = environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "harness"


def debian_mirror(environ: Mapping[str, str] = os.environ, apt_dir: Path = Path("/etc/apt")) -> str:
    """DEBIAN_MIRROR, else the Debian mirror apt uses here, else deb.debian.org."""
    if environ.get("DEBIAN_MIRROR"):
        return environ["DEBIAN_MIRROR"]
    deb822 = re.compile(r"^URIs:\s*(https?://\S+/debian)/?\s*$", re.MULTILINE)
    one_line = re.compile(r"^deb\s+(?:\[[^]]*\]\s+)?(https?://\S+/debian)/?\s", re.MULTILINE)
    sources = [*sorted((apt_dir / "sources.list.d").glob("*.sources")), apt_dir / "sources.list",
               *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in sources:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        found = deb822.search(text) or one_line.search(text)
        if found:
            return found.group(1)
    return DEFAULT_MIRROR


class Debootstrap:
    """debootstrap --variant=minbase, installed with apt-get when missing; needs root. Several build at once."""

    _installing = threading.Lock()  # one apt-get at a time: dpkg takes a lock of its own

    def __init__(self, mirror: str | None = None) -> None:
        self.mirror = mirror or debian_mirror()

    def unavailable(self) -> str | None:
        """Why debootstrap cannot run here, or None."""
        if os.geteuid() != 0:
            return "building one needs root (debootstrap)"
        if not shutil.which("debootstrap") and not shutil.which("apt-get"):
            return "building one needs debootstrap, and there is no apt-get to install it"
        return None

    def build(self, suite: str, root: Path, log_path: Path) -> None:
        """debootstrap `suite` into `root`, with Python, venv, pip and CA certificates."""
        with self._installing:
            if not shutil.which("debootstrap"):
                for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "debootstrap"]):
                    if run_host_command(argv, log_path, timeout=BOOTSTRAP_TIMEOUT) != 0:
                        raise BaseImageUnavailable(f"could not install debootstrap ({' '.join(argv)}); see {log_path}")
        argv = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", suite, str(root), self.mirror]
        if run_host_command(argv, log_path, timeout=BOOTSTRAP_TIMEOUT) != 0:
            raise BaseImageUnavailable(f"debootstrap {suite} from {self.mirror} failed; see {log_path}")
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):  # package downloads, not needed in an image
            for path in (root / junk).glob("*"):
                if path.is_file():
                    path.unlink()


def build_base(python: str, engine: BaseEngine, bootstrap: Bootstrap, step: Callable[[str], None],
               *, rebuild: bool = False) -> Built:
    """harness-base:PYTHON, kept when it exists (unless rebuild), else built from Debian packages."""
    check_pythons([python])
    tag = local_tag(python)
    if not rebuild and engine.image_id(tag):
        return Built(tag, python, built=False, seconds=0.0)
    reason = bootstrap.unavailable()
    if reason:
        command = build_command(engine.binary, [python])
        raise BaseImageUnavailable(f"{tag} does not exist and {reason}: run `{command}` once")
    suite = SUITES[python]
    logs = cache_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"base-{python}.log"
    log_path.write_text("")
    step(f"base image {tag}: building from Debian {suite} packages (about a minute; log {log_path})")
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"harness-base-{suite}-") as tmp:
        root = Path(tmp) / "rootfs"
        bootstrap.build(suite, root, log_path)
        engine.import_rootfs(root, tag, ("ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]',
                                         f"LABEL {LABEL_BASE}=debian-{suite}"), log_path)
    seconds = time.monotonic() - start
    step(f"base image {tag}: built in {seconds:.0f} s")
    return Built(tag, python, built=True, seconds=seconds)


def build_command(binary: str, pythons: Sequence[str]) -> str:
    """The command that builds these base images, to quote back to the user."""
    sudo = "" if os.geteuid() == 0 else "sudo "
    flag = "" if binary == "docker" else f" --engine {binary}"
    return f"{sudo}python -m harness{flag} base-images {' '.join(pythons)}"


class BaseBuilds:
    """Local base images built in the background, all at once, while the rest of a run goes on: an image
    build waits for its own base image only (wait), and environments whose base exists never wait.

    Each debootstrap mostly downloads and unpacks Debian packages; one after another, the three of the default
    matrix took 53 + 67 + 100 s on a fresh host before any environment image could start.
    """

    def __init__(self, engine: BaseEngine, bootstrap: Bootstrap, step: Callable[[str], None]) -> None:
        self.engine = engine
        self.bootstrap = bootstrap
        self.step = step
        self._pool = ThreadPoolExecutor(max_workers=len(SUITES), thread_name_prefix="base-image")
        self._builds: dict[str, Future[Built]] = {}

    def start(self, python: str) -> str:
        """harness-base:PYTHON: started building unless it exists or is under way (BaseImageUnavailable at once when
        this host cannot build it); its tag."""
        tag = local_tag(python)
        if tag in self._builds or self.engine.image_id(tag):
            return tag
        check_pythons([python])
        reason = self.bootstrap.unavailable()
        if reason:
            raise BaseImageUnavailable(f"{tag} does not exist and {reason}: run "
                                       f"`{build_command(self.engine.binary, [python])}` once")
        self._builds[tag] = self._pool.submit(build_base, python, self.engine, self.bootstrap, self.step)
        return tag

    def future(self, image: str) -> Future[Built] | None:
        """The build of a base image under way here (done or not), or None."""
        return self._builds.get(image)

    def pending(self, image: str) -> bool:
        """Whether an image is a base image still being built."""
        future = self._builds.get(image)
        return future is not None and not future.done()

    def wait(self, image: str) -> None:
        """Return once `image` is ready when it is a base image being built here; BaseImageUnavailable if that
        build failed. Any other image is ready already."""
        future = self._builds.get(image)
        if future is not None:
            future.result()

    def built(self) -> list[Built]:
        """The base images built here so far, with the time each took."""
        return [f.result() for f in self._builds.values() if f.done() and f.exception() is None]

    def close(self) -> None:
        """Wait for the builds under way (an image half imported is no image) and stop the threads."""
        self._pool.shutdown(wait=True)


def resolve_one(image: str, python: str, engine: BaseEngine, bootstrap: Bootstrap,
                step: Callable[[str], None], *, builds: BaseBuilds | None = None) -> str:
    """The base image to build FROM: the one asked for if present or pullable, else the local equivalent (built
    here and now, or, given `builds`, in the background)."""
    if engine.image_id(image):
        return image
    local = local_tag(python)
    if image != local:
        error = engine.pull(image)
        if error is None:
            step(f"base image {image}: pulled")
            return image
        if image != DEFAULT_BASE_IMAGE.format(python=python):  # the user's own base: nothing to stand in
            raise BaseImageUnavailable(f"base image {image} cannot be pulled: {error}")
        if python not in SUITES:
            raise BaseImageUnavailable(f"base image {image} cannot be pulled ({error}), and no Debian release "
                                       f"ships Python {python} to build {local} from")
        step(f"base image {image} cannot be pulled ({error}); using {local}")
    if builds is not None:
        return builds.start(python)
    return build_base(python, engine, bootstrap, step).tag


def resolve_base_images(matrix: Matrix, engine: BaseEngine, bootstrap: Bootstrap, step: Callable[[str], None],
                        env_ids: Collection[str] | None = None, *, builds: BaseBuilds | None = None) -> Matrix:
    """The matrix with every environment's base image (of env_ids, default all) one this host has, or (given
    `builds`) is building in the background."""
    chosen: dict[str, str] = {}
    for env in matrix.environments:
        if env_ids is not None and env.id not in env_ids:
            continue
        if env.base_image not in chosen:
            chosen[env.base_image] = resolve_one(env.base_image, env.python, engine, bootstrap, step, builds=builds)
    if all(k == v for k, v in chosen.items()):
        return matrix
    envs = tuple(dataclasses.replace(e, base_image=chosen.get(e.base_image, e.base_image))
                 for e in matrix.environments)
    return dataclasses.replace(matrix, environments=envs)


def standin(image: str, python: str) -> str | None:
    """The local equivalent a missing default base image is replaced by, or None for the user's own bases."""
    return local_tag(python) if image == DEFAULT_BASE_IMAGE.format(python=python) else None
