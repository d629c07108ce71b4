"""`harness doctor`: is this machine ready to run a matrix, and what to do where it is not."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.engine import ContainerInfo
from harness.images import CA_VARIABLES, effective_pip_settings
from harness.leftovers import Housekeeping, dangling_images, stale_containers
from harness.matrix import Matrix
from harness.plan import plan_environments

GB = 1024**3
IMAGE_BYTES = 2.5 * GB  # one TensorFlow environment image, with room for its build
LOCAL_SCHEMES = ("unix://", "npipe://")


@dataclass(frozen=True)
class Check:
    """One finding: level ok, warn or fail; what was checked; what was found or what to do."""

    level: str
    name: str
    detail: str


class DoctorEngine(Housekeeping, Protocol):
    """What the checks ask of the engine, beyond housekeeping."""

    def ping(self) -> None:
        """Raise EngineUnavailable when unreachable."""

    def image_id(self, tag: str) -> str | None:
        """The image id of a tag, or None."""

    def info(self) -> dict[str, object]:
        """docker info."""

    def endpoint(self) -> str:
        """Where the engine is."""


def is_remote(endpoint: str) -> bool:
    """Whether the engine runs on another machine (tcp://, ssh://): host paths do not reach it."""
    return not endpoint.startswith(LOCAL_SCHEMES)


def redact(url: str) -> str:
    """An index URL without its credentials."""
    return re.sub(r"//[^/@]+@", "//***@", url)


def _free(path: Path) -> int | None:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free
    return None


def check_engine(engine: DoctorEngine, info: Mapping[str, object]) -> list[Check]:
    """Where the engine is and, for a remote one, what that means for bind mounts."""
    endpoint = engine.endpoint()
    checks = [Check("ok", "engine", f"Docker {info.get('ServerVersion', '?')} at {endpoint}")]
    if is_remote(endpoint):
        checks.append(Check("warn", "remote engine", "containers bind-mount the run directory and the harness "
                            "source: both must exist at the same paths on the engine's host (a shared filesystem, "
                            "or run harness there); README: Remote engines"))
    return checks


def check_images(engine: DoctorEngine, matrix: Matrix, environ: Mapping[str, str]) -> tuple[list[Check], int]:
    """Base images of the matrix's Pythons, and how many environment images are still to build."""
    checks = []
    bases = sorted({(e.python, e.base_image.replace("{python}", e.python)) for e in matrix.environments})
    for python, image in bases:
        if engine.image_id(image):
            checks.append(Check("ok", f"base image {image}", "present"))
        elif image.startswith("harness-base:"):
            checks.append(Check("warn", f"base image {image}", f"missing; build it: "
                                f"dockerfiles/build-debian-base.sh {python}"))
        else:
            checks.append(Check("warn", f"base image {image}", "missing; the first build pulls it (needs the "
                                "registry), or build local ones: dockerfiles/build-debian-base.sh "
                                f"{python} and --base-image 'harness-base:{{python}}'"))
    plans = plan_environments(matrix, environ)
    missing = [p for p in plans if not engine.image_id(p.image.tag)]
    checks.append(Check("ok", "environment images", f"{len(plans) - len(missing)}/{len(plans)} of {matrix.name} "
                        f"built; {len(missing)} to build (about 1.5-2 GB and a minute or more each)"))
    return checks, len(missing)


def check_disk(info: Mapping[str, object], remote: bool, images_to_build: int, out: Path) -> list[Check]:
    """Free space where images go (the Docker root) and where the run directory goes."""
    checks = []
    root = str(info.get("DockerRootDir") or "")
    need = images_to_build * IMAGE_BYTES + GB
    free = None if remote or not root else _free(Path(root))
    if free is None:
        checks.append(Check("warn", "disk (Docker root)", f"{root or '?'}: not checked (not on this machine)"))
    else:
        level = "fail" if free < need else "ok"
        checks.append(Check(level, "disk (Docker root)", f"{root}: {free / GB:.1f} GB free, about "
                            f"{need / GB:.1f} GB needed for the images still to build"))
    free_out = _free(out.resolve())
    if free_out is not None:
        level = "fail" if free_out < GB else "warn" if free_out < 5 * GB else "ok"
        checks.append(Check(level, "disk (run directory)", f"{out}: {free_out / GB:.1f} GB free"))
    return checks


def check_pip(matrix: Matrix, environ: Mapping[str, str]) -> list[Check]:
    """The index, extra indexes, trusted hosts and CA bundle image builds will use."""
    pip = effective_pip_settings(matrix.pip, environ)
    source = "the matrix's pip: keys" if matrix.pip.index_url or matrix.pip.ca_bundle else "the host's PIP_* variables"
    index = redact(pip.index_url) if pip.index_url else "pip's default (PyPI)"
    extra = " ".join(redact(u) for u in pip.extra_index_urls) or "none"
    checks = [Check("ok", "package index", f"{index}; extra: {extra}; trusted hosts: "
                    f"{' '.join(pip.trusted_hosts) or 'none'} (from {source})"),
              Check("ok", "CA bundle", f"{pip.ca_bundle} (copied into images)" if pip.ca_bundle
                    else "none: pip's own certificates")]
    for variable in CA_VARIABLES:
        value = environ.get(variable)
        if value and not Path(value).is_file():
            checks.append(Check("warn", "CA bundle", f"{variable}={value} does not exist; ignored"))
    dropped = [u for u in (environ.get("PIP_INDEX_URL", ""), *environ.get("PIP_EXTRA_INDEX_URL", "").split())
               if u.startswith("file:")]
    if dropped and not matrix.pip.index_url:
        checks.append(Check("ok", "package index", f"host-only index(es) not passed into builds: {' '.join(dropped)}"))
    return checks


def check_runtime(info: Mapping[str, object], runtime: str | None) -> list[Check]:
    """The container runtimes the engine offers, and whether the one asked for is among them."""
    runtimes = sorted(info.get("Runtimes") or {})  # type: ignore[call-overload]  # docker info: a JSON object
    if runtime and runtime not in runtimes:
        return [Check("fail", "runtime", f"{runtime} is not installed in the engine (have: {', '.join(runtimes)})")]
    chosen = f"{runtime} selected" if runtime else "default runtime"
    return [Check("ok", "runtime", f"{chosen}; available: {', '.join(runtimes) or '?'}")]


def check_leftovers(engine: DoctorEngine, cleanup: bool) -> list[Check]:
    """Containers of dead runs, stopped build containers and untagged harness images; removed with cleanup."""
    containers: list[ContainerInfo] = stale_containers(engine, builds=True)
    images = dangling_images(engine)
    if not cleanup:
        if not containers and not images:
            return [Check("ok", "leftovers", "no containers of dead runs, no untagged harness images")]
        return [Check("warn", "leftovers", f"{len(containers)} container(s) of dead runs or failed builds, "
                      f"{len(images)} untagged harness image(s); remove them: harness doctor --cleanup")]
    removed = engine.remove_container_ids([c.id for c in containers])
    gone = engine.remove_images(images)
    level = "ok" if removed == len(containers) and len(gone) == len(images) else "warn"
    return [Check(level, "cleanup", f"removed {removed}/{len(containers)} container(s) and "
                  f"{len(gone)}/{len(images)} untagged image(s)")]


def diagnose(engine: DoctorEngine, matrix: Matrix | None, environ: Mapping[str, str], *, out: Path,
             runtime: str | None, cleanup: bool) -> list[Check]:
    """Every check, in order. The engine must answer (ping) before this is called."""
    info = engine.info()
    checks = check_engine(engine, info)
    remote = is_remote(engine.endpoint())
    missing = 0
    if matrix is None:
        checks.append(Check("warn", "matrix", "none given and no matrices/default.yaml here: images not checked"))
    else:
        image_checks, missing = check_images(engine, matrix, environ)
        checks += image_checks
        checks += check_pip(matrix, environ)
    checks += check_disk(info, remote, missing, out)
    checks += check_runtime(info, runtime)
    checks += check_leftovers(engine, cleanup)
    return checks


def render(checks: list[Check], emit: Callable[[str], None]) -> int:
    """Print one line per check; exit code 1 when any failed."""
    for check in checks:
        emit(f"{check.level:<5} {check.name}: {check.detail}")
    return 1 if any(c.level == "fail" for c in checks) else 0
