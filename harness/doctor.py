"""`harness doctor`: is this machine ready to run a matrix, and what to do where it is not."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.base_images import Bootstrap, build_command, cache_dir, local_tag, standin
from harness.cellcache import MAX_VARIABLE, cell_cache_bound, stored_bytes
from harness.engine import ContainerInfo
from harness.errors import UsageError
from harness.images import CA_VARIABLES, effective_pip_settings
from harness.leftovers import Housekeeping, dangling_images, stale_containers
from harness.matrix import Matrix
from harness.plan import plan_environments
from harness.wheelcache import CACHE_VARIABLE, cache_enabled, cache_root, redact

GB = 1024**3
IMAGE_BYTES = 2.5 * GB  # one TensorFlow environment image, with room for its build
LOCAL_SCHEMES = ("unix://", "npipe://", "local")


@dataclass(frozen=True)
class Finding:
    """One finding: level ok, warn or fail; what was checked; what was found or what to do."""

    level: str
    name: str
    detail: str


class DoctorEngine(Housekeeping, Protocol):
    """What doctor asks of the engine, beyond housekeeping."""

    binary: str
    product: str

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


def _free(path: Path) -> int | None:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free
    return None


def engine_findings(engine: DoctorEngine, info: Mapping[str, object]) -> list[Finding]:
    """Where the engine is and, for a remote one, what that means for bind mounts."""
    endpoint = engine.endpoint()
    findings = [Finding("ok", "engine", f"{engine.product} {info.get('ServerVersion', '?')} at {endpoint}")]
    if is_remote(endpoint):
        findings.append(Finding("warn", "remote engine", "containers bind-mount the run directory and the harness "
                            "source: both must exist at the same paths on the engine's host (a shared filesystem, "
                            "or run harness there); docs/setup.md: Remote engines"))
    return findings


def base_finding(engine: DoctorEngine, python: str, image: str, bootstrap: Bootstrap) -> Finding:
    """Whether a run has this base image, or will stand the local equivalent in, or can build it."""
    name = f"base image {image}"
    if engine.image_id(image):
        return Finding("ok", name, "present")
    local = standin(image, python)
    if local and engine.image_id(local):
        return Finding("ok", name, f"not here; runs pull it, or use {local} (present) when the registry cannot be "
                       "reached")
    if local is None and image != local_tag(python):
        return Finding("warn", name, "missing; the first run pulls it (needs the registry)")
    target = local or image
    reason = bootstrap.unavailable()
    if reason:
        return Finding("warn", name, f"missing; without a registry runs need {target}, and {reason}: "
                       f"{build_command(engine.binary, [python])}")
    return Finding("ok", name, f"missing; runs pull it, or build {target} from Debian packages once (about a "
                   f"minute) when the registry cannot be reached")


def image_findings(engine: DoctorEngine, matrix: Matrix, environ: Mapping[str, str],
                   bootstrap: Bootstrap) -> tuple[list[Finding], int]:
    """Base images of the matrix's Pythons, and how many environment images are still to build.

    An environment image counts as built when it exists for the matrix's base image or for the
    local equivalent a run would stand in for it.
    """
    bases = sorted({(e.python, e.base_image) for e in matrix.environments})
    findings = [base_finding(engine, python, image, bootstrap) for python, image in bases]
    plans = plan_environments(matrix, environ)
    local_envs = tuple(dataclasses.replace(e, base_image=standin(e.base_image, e.python) or e.base_image)
                       for e in matrix.environments)
    local_plans = plan_environments(dataclasses.replace(matrix, environments=local_envs), environ)
    missing = [p for p, q in zip(plans, local_plans) if not engine.image_id(p.image.tag)
               and not (q.image.tag != p.image.tag and engine.image_id(q.image.tag))]
    todo = f"{len(missing)} to build (about 1.5-2 GB and a minute or more each)" if missing else "nothing to build"
    findings.append(Finding("ok", "environment images", f"{len(plans) - len(missing)}/{len(plans)} of "
                            f"{matrix.name} built; {todo}"))
    return findings, len(missing)


def wheel_cache_finding(environ: Mapping[str, str], remote: bool) -> Finding:
    """Where builds get their packages: the host's wheel cache (each file downloaded once), or the index."""
    if remote and cache_enabled(environ):
        return Finding("fail", "wheel cache", f"the engine is on another machine, whose builds cannot reach this "
                       f"host's wheel cache: set {CACHE_VARIABLE}=off (builds then download their packages)")
    if not cache_enabled(environ):
        why = f"{CACHE_VARIABLE}=off" if environ.get(CACHE_VARIABLE, "").lower() == "off" else "a remote engine"
        return Finding("ok", "wheel cache", f"not used ({why}): every build downloads its packages itself")
    root = cache_root(environ, cache_dir(environ) / "wheels")
    files = [p for p in (root / "files").glob("*") if p.is_file() and not p.name.endswith((".json", ".metadata"))]
    size = sum(p.stat().st_size for p in files)
    return Finding("ok", "wheel cache", f"{root}: {len(files)} file(s), {size / GB:.1f} GB; builds download "
                   "each file once")


def cell_cache_finding(environ: Mapping[str, str]) -> Finding:
    """Where computed cells are kept, how much they take as the last run counted it, and the bound."""
    root = cache_dir(environ) / "cells"
    try:
        bound = cell_cache_bound(environ)
    except UsageError as exc:
        return Finding("fail", "cell cache", str(exc))
    held = stored_bytes(root)
    size = "nothing counted yet" if held is None else f"{held / GB:.1f} GB"
    limit = f"at most {bound / GB:.1f} GB ({MAX_VARIABLE})" if bound else f"no bound ({MAX_VARIABLE}=0)"
    return Finding("ok", "cell cache", f"{root}: {size}, {limit}; the entries used longest ago go first")


def disk_findings(info: Mapping[str, object], remote: bool, images_to_build: int, out: Path) -> list[Finding]:
    """Free space where images go (the Docker root) and where the run directory goes."""
    findings = []
    root = str(info.get("DockerRootDir") or "")
    need = images_to_build * IMAGE_BYTES + GB
    free = None if remote or not root else _free(Path(root))
    if free is None:
        findings.append(Finding("warn", "disk (engine storage)", f"{root or '?'}: not checked (not on this "
                                "machine)"))
    else:
        level = "fail" if free < need else "ok"
        wanted = (f"about {need / GB:.1f} GB needed for the {images_to_build} image(s) still to build"
                  if images_to_build else "no image to build")
        findings.append(Finding(level, "disk (engine storage)", f"{root}: {free / GB:.1f} GB free; {wanted}"))
    free_out = _free(out.resolve())
    if free_out is not None:
        level = "fail" if free_out < GB else "warn" if free_out < 5 * GB else "ok"
        findings.append(Finding(level, "disk (run directory)", f"{out}: {free_out / GB:.1f} GB free"))
    return findings


def pip_findings(matrix: Matrix, environ: Mapping[str, str]) -> list[Finding]:
    """The index, extra indexes, trusted hosts and CA bundle image builds will use, and whether they stay here."""
    pip = effective_pip_settings(matrix.pip, environ)
    cached = cache_enabled(environ)
    source = "the matrix's pip: keys" if matrix.pip.index_url or matrix.pip.ca_bundle else "the host's PIP_* variables"
    index = redact(pip.index_url) if pip.index_url else "pip's default (PyPI)"
    extra = " ".join(redact(u) for u in pip.extra_index_urls) or "none"
    findings = [Finding("ok", "package index", f"{index}; extra: {extra}; trusted hosts: "
                    f"{' '.join(pip.trusted_hosts) or 'none'} (from {source})"),
              Finding("ok", "CA bundle", "none: the system's certificates" if not pip.ca_bundle else
                      f"{pip.ca_bundle} (used on this host by the wheel cache; never copied into images)" if cached
                      else f"{pip.ca_bundle} (copied into images)")]
    secret = [u for u in (pip.index_url or "", *pip.extra_index_urls) if redact(u) != u]
    if secret and not cached:
        findings.append(Finding("warn", "package index", "the index URL carries credentials and builds reach it "
                                "themselves: they show in every image's history; use the wheel cache instead "
                                f"(unset {CACHE_VARIABLE}, or run on the engine's host)"))
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
             runtime: str | None, cleanup: bool, bootstrap: Bootstrap) -> list[Finding]:
    """Every finding, in order. The engine must answer (ping) before this is called."""
    info = engine.info()
    findings = engine_findings(engine, info)
    remote = is_remote(engine.endpoint())
    missing = 0
    if matrix is None:
        findings.append(Finding("warn", "matrix", "none given and no matrices/default.yaml here: images not checked"))
    else:
        image_found, missing = image_findings(engine, matrix, environ, bootstrap)
        findings += image_found
        findings += pip_findings(matrix, environ)
    findings.append(wheel_cache_finding(environ, remote))
    findings.append(cell_cache_finding(environ))
    findings += disk_findings(info, remote, missing, out)
    findings += runtime_findings(info, runtime)
    findings += leftover_findings(engine, cleanup)
    return findings


def overall_verdict(findings: list[Finding]) -> str:
    """The one line that ends doctor's output: ready or not, and what to look at first."""
    failed = [f.name for f in findings if f.level == "fail"]
    warned = [f.name for f in findings if f.level == "warn"]
    if failed:
        return f"verdict: NOT READY: {len(failed)} check(s) failed: {', '.join(failed)}"
    if warned:
        return f"verdict: ready, with {len(warned)} warning(s): {', '.join(warned)}"
    return "verdict: ready"


def render(findings: list[Finding], emit: Callable[[str], None]) -> int:
    """Print one line per finding, then the verdict; exit code 1 when any failed."""
    for finding in findings:
        emit(f"{finding.level:<5} {finding.name}: {finding.detail}")
    emit(overall_verdict(findings))
    return 1 if any(c.level == "fail" for c in findings) else 0
