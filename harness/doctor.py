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
class Finding:
    """One finding: level ok, warn or fail; what was checked; what was found or what to do."""

    level: str
    name: str
    detail: str


class DoctorEngine(Housekeeping, Protocol):
    """What doctor asks of the engine, beyond housekeeping."""

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


def engine_findings(engine: DoctorEngine, info: Mapping[str, object]) -> list[Finding]:
    """Where the engine is and, for a remote one, what that means for bind mounts."""
    endpoint = engine.endpoint()
    findings = [Finding("ok", "engine", f"Docker {info.get('ServerVersion', '?')} at {endpoint}")]
    if is_remote(endpoint):
        findings.append(Finding("warn", "remote engine", "containers bind-mount the run directory and the harness "
                            "source: both must exist at the same paths on the engine's host (a shared filesystem, "
                            "or run harness there); README: Remote engines"))
    return findings


def image_findings(engine: DoctorEngine, matrix: Matrix, environ: Mapping[str, str]) -> tuple[list[Finding], int]:
    """Base images of the matrix's Pythons, and how many environment images are still to build."""
    findings = []
    bases = sorted({(e.python, e.base_image.replace("{python}", e.python)) for e in matrix.environments})
    for python, image in bases:
        if engine.image_id(image):
            findings.append(Finding("ok", f"base image {image}", "present"))
        elif image.startswith("harness-base:"):
            findings.append(Finding("warn", f"base image {image}", f"missing; build it: "
                                f"dockerfiles/build-debian-base.sh {python}"))
        else:
            findings.append(Finding("warn", f"base image {image}", "missing; the first build pulls it (needs the "
                                "registry), or build local ones: dockerfiles/build-debian-base.sh "
                                f"{python} and --base-image 'harness-base:{{python}}'"))
    plans = plan_environments(matrix, environ)
    missing = [p for p in plans if not engine.image_id(p.image.tag)]
    findings.append(Finding("ok", "environment images", f"{len(plans) - len(missing)}/{len(plans)} of {matrix.name} "
                        f"built; {len(missing)} to build (about 1.5-2 GB and a minute or more each)"))
    return findings, len(missing)


def disk_findings(info: Mapping[str, object], remote: bool, images_to_build: int, out: Path) -> list[Finding]:
    """Free space where images go (the Docker root) and where the run directory goes."""
    findings = []
    root = str(info.get("DockerRootDir") or "")
    need = images_to_build * IMAGE_BYTES + GB
    free = None if remote or not root else _free(Path(root))
    if free is None:
        findings.append(Finding("warn", "disk (Docker root)", f"{root or '?'}: not checked (not on this machine)"))
    else:
        level = "fail" if free < need else "ok"
        findings.append(Finding(level, "disk (Docker root)", f"{root}: {free / GB:.1f} GB free, about "
                            f"{need / GB:.1f} GB needed for the images still to build"))
    free_out = _free(out.resolve())
    if free_out is not None:
        level = "fail" if free_out < GB else "warn" if free_out < 5 * GB else "ok"
        findings.append(Finding(level, "disk (run directory)", f"{out}: {free_out / GB:.1f} GB free"))
    return findings


def pip_findings(matrix: Matrix, environ: Mapping[str, str]) -> list[Finding]:
    """The index, extra indexes, trusted hosts and CA bundle image builds will use."""
    pip = effective_pip_settings(matrix.pip, environ)
    source = "the matrix's pip: keys" if matrix.pip.index_url or matrix.pip.ca_bundle else "the host's PIP_* variables"
    index = redact(pip.index_url) if pip.index_url else "pip's default (PyPI)"
    extra = " ".join(redact(u) for u in pip.extra_index_urls) or "none"
    findings = [Finding("ok", "package index", f"{index}; extra: {extra}; trusted hosts: "
                    f"{' '.join(pip.trusted_hosts) or 'none'} (from {source})"),
              Finding("ok", "CA bundle", f"{pip.ca_bundle} (copied into images)" if pip.ca_bundle
                    else "none: pip's own certificates")]
    for variable in CA_VARIABLES:
        value = environ.get(variable)
        if value and not Path(value).is_file():
            findings.append(Finding("warn", "CA bundle", f"{variable}={value} does not exist; ignored"))
    dropped = [u for u in (environ.get("PIP_INDEX_URL", ""), *environ.get("PIP_EXTRA_INDEX_URL", "").split())
               if u.startswith("file:")]
    if dropped and not matrix.pip.index_url:
        findings.append(Finding("ok", "package index",
                                f"host-only index(es) not passed into builds: {' '.join(dropped)}"))
    return findings


def runtime_findings(info: Mapping[str, object], runtime: str | None) -> list[Finding]:
    """The container runtimes the engine offers, and whether the one asked for is among them."""
    runtimes = sorted(info.get("Runtimes") or {})  # type: ignore[call-overload]  # docker info: a JSON object
    if runtime and runtime not in runtimes:
        return [Finding("fail", "runtime", f"{runtime} is not installed in the engine (have: {', '.join(runtimes)})")]
    chosen = f"{runtime} selected" if runtime else "default runtime"
    return [Finding("ok", "runtime", f"{chosen}; available: {', '.join(runtimes) or '?'}")]


def leftover_findings(engine: DoctorEngine, cleanup: bool) -> list[Finding]:
    """Containers of dead runs, stopped build containers and untagged harness images; removed with cleanup."""
    containers: list[ContainerInfo] = stale_containers(engine, builds=True)
    images = dangling_images(engine)
    if not cleanup:
        if not containers and not images:
            return [Finding("ok", "leftovers", "no containers of dead runs, no untagged harness images")]
        return [Finding("warn", "leftovers", f"{len(containers)} container(s) of dead runs or failed builds, "
                      f"{len(images)} untagged harness image(s); remove them: harness doctor --cleanup")]
    removed = engine.remove_container_ids([c.id for c in containers])
    gone = engine.remove_images(images)
    level = "ok" if removed == len(containers) and len(gone) == len(images) else "warn"
    return [Finding(level, "cleanup", f"removed {removed}/{len(containers)} container(s) and "
                  f"{len(gone)}/{len(images)} untagged image(s)")]


def diagnose(engine: DoctorEngine, matrix: Matrix | None, environ: Mapping[str, str], *, out: Path,
             runtime: str | None, cleanup: bool) -> list[Finding]:
    """Every finding, in order. The engine must answer (ping) before this is called."""
    info = engine.info()
    findings = engine_findings(engine, info)
    remote = is_remote(engine.endpoint())
    missing = 0
    if matrix is None:
        findings.append(Finding("warn", "matrix", "none given and no matrices/default.yaml here: images not checked"))
    else:
        image_found, missing = image_findings(engine, matrix, environ)
        findings += image_found
        findings += pip_findings(matrix, environ)
    findings += disk_findings(info, remote, missing, out)
    findings += runtime_findings(info, runtime)
    findings += leftover_findings(engine, cleanup)
    return findings


def render(findings: list[Finding], emit: Callable[[str], None]) -> int:
    """Print one line per finding; exit code 1 when any failed."""
    for finding in findings:
        emit(f"{finding.level:<5} {finding.name}: {finding.detail}")
    return 1 if any(c.level == "fail" for c in findings) else 0
