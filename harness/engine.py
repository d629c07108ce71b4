"""The one seam to the container engine: a small protocol and its Docker and Podman CLI implementations.

The command-line clients (not docker-py) are used on purpose: `docker` honours DOCKER_HOST,
contexts and ssh:// remotes exactly as the user's own does, `podman` needs no daemon, and
neither needs an extra dependency on the host. Nothing else in the project starts a process
on the host: the engine clients, and the few host tools building a base image needs
(run_host_command), all start here.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import resource
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.errors import EngineUnavailable, UsageError

log = logging.getLogger(__name__)

LABEL_MANAGED = "org.harness.managed"
LABEL_RUN = "org.harness.run"
LABEL_VERSION = "org.harness.version"
LABEL_HOST = "org.harness.host"  # the machine whose harness process started the container
LABEL_PID = "org.harness.pid"  # that process: when it is gone, the container is a leftover
LABEL_BASE = "org.harness.base"  # base images built from Debian packages (harness base-images)
ENGINES = ("docker", "podman")
CATATONIT = "/usr/libexec/podman/catatonit"  # the init `podman run --init` starts unless told another
BUILD_GRACE = 6 * 3600.0  # seconds: an untagged image younger than this may belong to a build still running
ENGINE_VARIABLE = "HARNESS_ENGINE"
# `docker run` (and `podman run`) exit 125 when the engine, not the container, failed (daemon hiccup, image store,
# mount setup): no result of the container's.
DOCKER_RUN_FAILED = 125


@dataclass(frozen=True)
class Mount:
    """A bind mount: host path -> container path."""

    host: Path
    container: str
    read_only: bool = True


@dataclass(frozen=True)
class RunSpec:
    """Everything needed to run one container to completion."""

    image: str
    command: tuple[str, ...]
    name: str
    mounts: tuple[Mount, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None
    memory: str | None = None  # docker --memory syntax, e.g. "4g"
    pids_limit: int | None = None
    cpus: float | None = None  # docker --cpus
    network: str | None = None  # "none" disables networking
    user: str | None = None  # "uid:gid"
    workdir: str | None = None
    sandbox: bool = True  # read-only root, tmpfs /tmp, no capabilities, no privilege gain
    runtime: str | None = None  # e.g. "runsc" (gVisor) for a stronger boundary
    masks: tuple[str, ...] = ()  # container paths inside a mount covered by an empty read-only tmpfs (a .git)


@dataclass(frozen=True)
class RunResult:
    """How a container ended."""

    exit_code: int | None
    seconds: float
    timed_out: bool = False
    oom_killed: bool = False
    output_tail: str = ""


@dataclass(frozen=True)
class ContainerInfo:
    """A container the engine knows, with its labels."""

    id: str
    name: str
    labels: Mapping[str, str]
    running: bool
    finished: float | None = None  # when it stopped (seconds since the epoch), if it has

    def stopped_long_ago(self) -> bool:
        """Stopped more than BUILD_GRACE ago: not a build step whose layer is still being committed."""
        return not self.running and self.finished is not None and self.finished < time.time() - BUILD_GRACE


@dataclass(frozen=True)
class BuildResult:
    """How an image build ended; `error` is the most telling line of the log."""

    ok: bool
    seconds: float
    error: str | None = None


class ContainerEngine(Protocol):
    """What the harness needs from a container engine."""

    def ping(self) -> None:
        """Raise EngineUnavailable when the engine cannot be reached."""

    def image_id(self, tag: str) -> str | None:
        """The image id for a tag, or None when the image does not exist."""

    def build(
        self, context: Path, tag: str, labels: Mapping[str, str], build_args: Mapping[str, str], log_path: Path,
        *, network: str | None = None,
    ) -> BuildResult:
        """Build an image from a context directory, writing the whole log to log_path.

        `network` "host" lets the build's RUN steps reach a server on this machine's loopback (the wheel cache).
        """

    def run(self, spec: RunSpec, log_path: Path) -> RunResult:
        """Run a container to completion (or timeout); always removes it."""

    def remove_containers(self, labels: Mapping[str, str]) -> int:
        """Remove every container carrying all the labels; return how many."""


TAIL_BYTES = 64 << 10  # the end of a log read back: a container may print gigabytes into it


def _tail(path: Path, lines: int = 20, limit: int = TAIL_BYTES) -> str:
    """The last lines of a log the engine's client wrote, read from its end only."""
    with path.open("rb") as fh:
        fh.seek(max(0, fh.seek(0, os.SEEK_END) - limit))
        text = fh.read(limit).decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def build_error_line(log_text: str) -> str:
    """Pick the line of a failed build log that says why (pip's own ERROR line first)."""
    plain = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", log_text)  # the classic builder colours pip's errors
    # BuildKit's plain output prefixes step lines with "#7 1.894 " (or "1.894 " in its summary).
    lines = [re.sub(r"^(?:#\d+\s+)?(?:\d+\.\d+\s+)?", "", ln.strip()) for ln in plain.splitlines() if ln.strip()]
    for marker in ("ERROR: No matching distribution", "ERROR: Could not find a version", "ERROR: "):
        found = [ln for ln in lines if ln.startswith(marker)]
        if found:
            return found[0]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors or lines or ["build failed with no output"])[-1]


# -- arguments: every value the harness passes to an engine is checked or encoded here -------------------------
#
# `--mount` takes one CSV record of key=value fields: Docker's CLI reads it with Go's encoding/csv (as Podman does
# since 4.1) and keeps the last of a repeated key, so a comma in a path would start a field of the path's choosing
# ("inj,source=/etc" mounts the host's /etc). A field is therefore written as encoding/csv's writer writes it:
# quoted, with its quotes doubled, whenever it holds a comma, a quote or a line break or starts with a space, which
# the reader gives back byte for byte; then '=' needs nothing (a field is split at its first '='). Control
# characters are refused instead of quoted: the reader turns "\r\n" into "\n", and no folder worth mounting has
# one. (Podman before 4.1 split the option at every comma: a quoted field is an unknown option there, an error,
# never a second source.)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RUNTIME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def csv_field(text: str) -> str:
    """One field of a CSV record, quoted as Go's encoding/csv writer quotes it (fieldNeedsQuotes) when it must be."""
    if text == "" or (text != "\\." and not any(c in text for c in ',"\r\n') and not text[0].isspace()):
        return text
    return '"' + text.replace('"', '""') + '"'


def csv_record(fields: Sequence[str]) -> str:
    """A CSV record of fields, each quoted when it must be."""
    return ",".join(csv_field(f) for f in fields)


def mount_problem(path: str) -> str | None:
    """Why a path cannot be a bind mount's source or target, or None."""
    if not path.startswith("/"):
        return "not an absolute path"
    bad = _CONTROL.search(path)
    if bad:
        return (f"it holds the control character {bad.group()!r}, which a container engine's --mount option "
                "cannot carry")
    return None


def mount_option(mount: Mount) -> str:
    """`--mount=type=bind,source=...,target=...[,readonly]`, every path carried as written (see csv_field)."""
    source = str(mount.host.resolve())
    for path, role in ((source, "source"), (mount.container, "target")):
        problem = mount_problem(path)
        if problem:
            raise UsageError(f"{path!r}: cannot be mounted into a container ({role} of a mount): {problem}")
    fields = ["type=bind", f"source={source}", f"target={mount.container}", *(["readonly"] if mount.read_only else [])]
    return f"--mount={csv_record(fields)}"


def check_spec(spec: RunSpec) -> None:
    """UsageError when a container spec holds a value its engine arguments cannot carry (before anything runs)."""
    checked_arguments([mount_option(m) for m in spec.mounts], spec)


def checked_arguments(args: list[str], spec: RunSpec) -> list[str]:
    """`docker run`'s arguments, refused (UsageError) when a value would change what an option says."""
    problems = [f"the {what} {value!r} is not one" for what, value, pattern in (
        *(("environment variable name", k, _VARIABLE) for k in spec.env),
        *(("container runtime", r, _RUNTIME) for r in [spec.runtime] if r))
        if not pattern.match(value)]
    problems += [f"{what} {value!r} starts with '-' (it would read as an option)"
                 for what, value in (("image", spec.image), ("container name", spec.name)) if value.startswith("-")]
    problems += [f"the container path {p!r}: {problem}" for p in spec.masks if (problem := mount_problem(p))]
    if any("\x00" in arg for arg in args):
        problems.append("an argument holds a NUL byte")
    if problems:
        raise UsageError(f"container {spec.name}: {problems[0]}")
    return args


class DockerCLI:
    """ContainerEngine implemented with the `docker` command-line client."""

    product = "Docker"

    def __init__(self, binary: str = "docker") -> None:
        self.binary = binary

    def _exe(self) -> str:
        """The full path of the client, or EngineUnavailable when it is not installed."""
        exe = shutil.which(self.binary)
        if exe is None:
            raise EngineUnavailable(f"the '{self.binary}' command is not installed; install {self.product} first")
        return exe

    def _docker(self, *args: str, timeout: float | None = 120) -> subprocess.CompletedProcess[str]:
        exe = self._exe()
        try:
            return subprocess.run(
                [exe, *args], capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired as exc:
            raise EngineUnavailable(f"{self.binary} {args[0]} did not answer within {timeout:.0f} s") from exc

    def ping(self) -> None:
        """Raise EngineUnavailable when `docker version` cannot reach the daemon."""
        proc = self._docker("version", "--format", "{{.Server.Version}}", timeout=30)
        if proc.returncode != 0:
            reason = (proc.stderr.strip().splitlines() or ["no answer"])[-1]
            raise EngineUnavailable(f"Docker engine unavailable: {reason}")

    def image_id(self, tag: str) -> str | None:
        """The image id for a tag, or None."""
        proc = self._docker("image", "inspect", "--format", "{{.Id}}", tag)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def pull(self, ref: str) -> str | None:
        """Pull an image; None when it worked, else the engine's own last line (no registry, no such image)."""
        proc = self._docker("pull", "--quiet", self.qualified(ref), timeout=1800)
        if proc.returncode == 0:
            return None
        return (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["pull failed"])[-1]

    def qualified(self, ref: str) -> str:
        """The reference as the registry knows it (Docker resolves short names itself)."""
        return ref

    def import_rootfs(self, root: Path, tag: str, changes: Sequence[str], log_path: Path) -> None:
        """Make an image of a root filesystem directory (`tar | docker import`); EngineUnavailable if it fails."""
        exe = self._exe()
        cmd = [exe, "import", *(f"--change={c}" for c in changes), "-", tag]
        with open(log_path, "a", encoding="utf-8") as out:
            tar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE,
                                   stderr=out, stdin=subprocess.DEVNULL)
            try:
                code = subprocess.run(cmd, stdin=tar.stdout, stdout=out, stderr=subprocess.STDOUT,
                                      check=False).returncode
            finally:
                if tar.stdout is not None:
                    tar.stdout.close()
                tar_code = tar.wait()
        if code != 0 or tar_code != 0:
            raise EngineUnavailable(f"{self.binary} import of {tag} failed (exit {code or tar_code}); see {log_path}")

    def build(
        self, context: Path, tag: str, labels: Mapping[str, str], build_args: Mapping[str, str], log_path: Path,
        *, network: str | None = None,
    ) -> BuildResult:
        """Build with the classic builder semantics; the full log goes to log_path."""
        exe = self._exe()
        # --pull=false: the base image is resolved (pulled, or built here) before any build starts.
        # --force-rm: a failed build leaves no intermediate container behind (the classic builder would).
        cmd = [exe, "build", "--pull=false", "--force-rm", "-t", tag]
        cmd += [f"--label={k}={v}" for k, v in sorted(labels.items())]
        cmd += [f"--build-arg={k}={v}" for k, v in sorted(build_args.items())]
        if network:
            cmd += ["--network", network]
        cmd += self._limit_flags()
        cmd.append(str(context))
        start = time.monotonic()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "w", encoding="utf-8") as out:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False)
        seconds = time.monotonic() - start
        if proc.returncode == 0:
            return BuildResult(ok=True, seconds=seconds)
        log_end = _tail(log_path, lines=10_000, limit=16 * TAIL_BYTES)  # pip says why near the end
        return BuildResult(ok=False, seconds=seconds, error=build_error_line(log_end))

    def _limit_flags(self) -> list[str]:
        """Resource limits the engine must be told for its containers to start here (Docker: none)."""
        return []

    def _run_args(self, spec: RunSpec) -> list[str]:
        args = ["run", "--name", spec.name, "--init", *self._limit_flags()]
        args += [f"--label={k}={v}" for k, v in sorted({LABEL_MANAGED: "true", **spec.labels}.items())]
        args += [mount_option(m) for m in spec.mounts]
        args += [f"--mount={csv_record(('type=tmpfs', f'target={path}', 'tmpfs-size=4k', 'readonly'))}"
                 for path in spec.masks]
        args += [f"--env={k}={v}" for k, v in sorted(spec.env.items())]
        if spec.memory:
            args += ["--memory", spec.memory, "--memory-swap", spec.memory]
        if spec.pids_limit:
            args += ["--pids-limit", str(spec.pids_limit)]
        if spec.cpus:
            args += ["--cpus", f"{spec.cpus:g}"]
        if spec.network:
            args += ["--network", spec.network]
        if spec.user:
            args += ["--user", spec.user]
        if spec.workdir:
            args += ["--workdir", spec.workdir]
        if spec.sandbox:
            args += ["--read-only", "--tmpfs", "/tmp:rw,nosuid,nodev,size=2g", "--cap-drop", "ALL",
                     "--security-opt", "no-new-privileges"]
        if spec.runtime:
            args += ["--runtime", spec.runtime]
        return checked_arguments([*args, spec.image, *spec.command], spec)

    def run(self, spec: RunSpec, log_path: Path) -> RunResult:
        """Run attached, output to log_path; kill on timeout; inspect; remove the container on every path."""
        exe = self._exe()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        timed_out = False
        ended = False  # False while an exception (Ctrl-C, SIGTERM, an engine failure) is on its way out
        proc: subprocess.Popen[bytes] | None = None
        try:
            with open(log_path, "a", encoding="utf-8") as out:
                proc = subprocess.Popen(
                    [exe, *self._run_args(spec)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
                )
                try:
                    proc.wait(timeout=spec.timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    self._docker("kill", spec.name, timeout=60)
                    proc.wait(timeout=60)
            seconds = time.monotonic() - start
            state = self._state(spec.name)
            exit_code = state.get("ExitCode", proc.returncode)
            ended = True
        finally:
            self._discard(spec.name, proc, quiet=not ended)
        return RunResult(
            exit_code=None if timed_out or not isinstance(exit_code, int) else exit_code,
            seconds=seconds,
            timed_out=timed_out,
            oom_killed=bool(state.get("OOMKilled", False)),
            output_tail=_tail(log_path),
        )

    def _discard(self, name: str, proc: subprocess.Popen[bytes] | None, *, quiet: bool) -> None:
        """Remove the container (force: a running one is killed), then end and reap its attached client.

        Quiet while another exception is on its way out: a failing `docker rm` must not hide why the run stopped.
        """
        try:
            self._docker("rm", "-f", name, timeout=60)
        except EngineUnavailable as exc:
            if not quiet:
                raise
            log.warning("container %s may be left behind: %s", name, exc)
        finally:
            # Killing the client alone would leave the container running; it goes after `docker rm -f`.
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()

    def _state(self, name: str) -> dict[str, object]:
        proc = self._docker("inspect", "--format", "{{json .State}}", name)
        if proc.returncode != 0:
            return {}
        try:
            state = json.loads(proc.stdout)
        except json.JSONDecodeError:
            return {}
        return state if isinstance(state, dict) else {}

    def remove_containers(self, labels: Mapping[str, str]) -> int:
        """Remove every container carrying all the labels."""
        filters = [f"--filter=label={k}={v}" for k, v in sorted(labels.items())]
        proc = self._docker("ps", "-aq", *filters)
        ids = proc.stdout.split()
        if ids:
            self._docker("rm", "-f", *ids)
        return len(ids)


    # -- housekeeping and diagnosis (doctor, the stale-container sweep) --------
    def containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        """Every container (running or not) carrying all the labels (an empty value: any value)."""
        filters = [f"--filter=label={k}={v}" if v else f"--filter=label={k}" for k, v in sorted(labels.items())]
        ids = self._docker("ps", "-aq", "--no-trunc", *filters).stdout.split()
        if not ids:
            return []
        proc = self._docker("inspect", "--format", "{{json .}}", *ids)
        found = []
        for line in proc.stdout.splitlines():
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue
            state = data.get("State") or {}
            found.append(ContainerInfo(id=data["Id"], name=str(data.get("Name", "")).lstrip("/"),
                                       labels=(data.get("Config") or {}).get("Labels") or {},
                                       running=bool(state.get("Running")),
                                       finished=_timestamp(str(state.get("FinishedAt") or ""))))
        return found

    def remove_container_ids(self, ids: list[str]) -> int:
        """Remove these containers (force); return how many are gone."""
        if not ids:
            return 0
        self._docker("rm", "-f", *ids, timeout=300)
        left = self._docker("ps", "-aq", "--no-trunc", *(f"--filter=id={i}" for i in ids)).stdout.split()
        return len(ids) - len(left)

    def dangling_images(self, labels: Mapping[str, str]) -> list[str]:
        """Ids of untagged images carrying all the labels (an empty value: any value), older than BUILD_GRACE.

        A younger one may be a layer of a build still running: the builder's intermediate images are
        untagged and inherit the base image's labels (org.harness.base), so they are kept.
        """
        filters = [f"--filter=label={k}={v}" if v else f"--filter=label={k}" for k, v in sorted(labels.items())]
        ids = sorted(set(self._docker("images", "-q", "--no-trunc", "--filter=dangling=true", *filters).stdout.split()))
        if not ids:
            return []
        proc = self._docker("image", "inspect", "--format", "{{.Id}} {{.Created}}", *ids)
        cutoff = time.time() - BUILD_GRACE
        old = []
        for line in proc.stdout.splitlines():
            image, _, created = line.partition(" ")
            when = _timestamp(created)
            if when is not None and when < cutoff:
                old.append(image)
        return sorted(old)

    def containers_started(self, since: float, until: float, labels: Mapping[str, str]) -> int:
        """How many containers carrying all the labels started between two times (the engine's event log)."""
        filters = [f"--filter=label={k}={v}" for k, v in sorted(labels.items())]
        proc = self._docker("events", "--since", f"{since:.3f}", "--until", f"{until:.3f}", "--filter=event=start",
                            *filters, "--format", "{{.ID}}", timeout=300)
        return len(proc.stdout.split())

    def remove_images(self, ids: list[str]) -> list[str]:
        """Remove untagged images one by one (never forced: an image a container uses stays); the removed ids."""
        return [i for i in ids if self._docker("rmi", i, timeout=300).returncode == 0]

    def info(self) -> dict[str, object]:
        """`docker info` as a dict (DockerRootDir, Runtimes, ServerVersion, ...); {} when it cannot be read."""
        return self._info_json()

    def _info_json(self) -> dict[str, Any]:
        proc = self._docker("info", "--format", "{{json .}}", timeout=60)
        try:
            data = json.loads(proc.stdout) if proc.returncode == 0 else {}
        except json.JSONDecodeError:
            return {}
        return data if isinstance(data, dict) else {}

    def endpoint(self) -> str:
        """The engine the CLI talks to: DOCKER_HOST, else the current context's host."""
        proc = self._docker("context", "inspect", "--format", "{{.Endpoints.docker.Host}}", timeout=30)
        return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else "unknown"


class PodmanCLI(DockerCLI):
    """ContainerEngine implemented with `podman`: Docker's CLI, less a daemon, plus a few differences.

    - Short image names are not resolved through a search list: `python:3.11-slim` is pulled as
      docker.io/library/python:3.11-slim, as Docker would (podman would ask which registry).
    - Rootless podman maps the user's uid to root inside containers; --userns=keep-id keeps the
      container's --user the user's own, so files in the run directory stay theirs.
    - There is no daemon to ask for a server version, a root directory or runtimes: `podman info`
      answers instead, normalised to the keys doctor reads from `docker info`.
    - Podman sets its own open-files and processes rlimits in every container (up to 1048576), which a
      host with lower hard limits refuses ("error setting rlimit ... operation not permitted"); the
      harness asks for its own limits instead (processes at most the host's pid_max).
    - `--init` needs catatonit; where only tini is installed (Debian's docker.io brings it), that is used.
    - Its event log answers `--since` with `--stream=false` but stops early with `--until`, so the end
      is cut here.
    - Exit codes are Docker's: 125 the engine failed, else the container's own (137 when killed).
    """

    product = "Podman"

    def __init__(self, binary: str = "podman") -> None:
        super().__init__(binary)

    def ping(self) -> None:
        """Raise EngineUnavailable when `podman info` cannot open its storage or runtime."""
        proc = self._docker("info", "--format", "{{.Version.Version}}", timeout=60)
        if proc.returncode != 0:
            reason = (proc.stderr.strip().splitlines() or ["no answer"])[-1]
            raise EngineUnavailable(f"Podman unavailable: {reason}")

    def qualified(self, ref: str) -> str:
        """docker.io/library/NAME for a short name, as Docker would resolve it."""
        first, _, rest = ref.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            return ref
        return f"docker.io/{ref}" if rest else f"docker.io/library/{ref}"

    def _limit_flags(self) -> list[str]:
        files = resource.getrlimit(resource.RLIMIT_NOFILE)
        procs = [min(v, _pid_max()) if v != resource.RLIM_INFINITY else _pid_max()
                 for v in resource.getrlimit(resource.RLIMIT_NPROC)]
        return [f"--ulimit=nofile={files[0]}:{files[1]}", f"--ulimit=nproc={procs[0]}:{procs[1]}"]

    def rootless(self) -> bool:
        """Whether podman runs as an ordinary user (and so maps uids through a user namespace)."""
        return os.geteuid() != 0

    def _run_args(self, spec: RunSpec) -> list[str]:
        args = super()._run_args(spec)
        if spec.user and self.rootless():
            args.insert(1, "--userns=keep-id")
        init = _init_path()
        if init:
            args.insert(args.index("--init") + 1, f"--init-path={init}")
        return args

    def info(self) -> dict[str, object]:
        """`podman info`, under the keys of `docker info` that doctor reads."""
        data = self._info_json()
        host, store = data.get("host") or {}, data.get("store") or {}
        runtime = (host.get("ociRuntime") or {}).get("name") if isinstance(host, dict) else None
        return {"ServerVersion": (data.get("version") or {}).get("Version", "?"),
                "DockerRootDir": store.get("graphRoot", "") if isinstance(store, dict) else "",
                "Runtimes": {runtime: {}} if runtime else {}}

    def containers_started(self, since: float, until: float, labels: Mapping[str, str]) -> int:
        """Podman's event log read whole (--stream=false) and cut at `until` here: its --until ends the read early."""
        filters = [f"--filter=label={k}={v}" for k, v in sorted(labels.items())]
        proc = self._docker("events", "--stream=false", "--since", str(int(since)), "--filter=event=start", *filters,
                            "--format", "json", timeout=300)
        started = 0
        for line in proc.stdout.splitlines():
            try:
                when = _timestamp(str(json.loads(line).get("Time", "")))
            except (json.JSONDecodeError, AttributeError):
                continue
            started += when is not None and since <= when <= until
        return started

    def endpoint(self) -> str:
        """CONTAINER_HOST for a remote podman, else local (podman runs containers itself)."""
        return os.environ.get("CONTAINER_HOST") or "local"


def _timestamp(text: str) -> float | None:
    """Seconds since the epoch of an engine's RFC 3339 time (2026-12-01T03:50:12.123456789Z), or None."""
    found = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)", text.strip())
    if not found:
        return None
    zone = "+00:00" if found.group(2) == "Z" else found.group(2)
    return dt.datetime.fromisoformat(found.group(1) + zone).timestamp()


def _init_path() -> str | None:
    """Another init for --init where Podman's own (catatonit) is not installed but tini is (Docker's)."""
    if Path(CATATONIT).exists():
        return None
    return shutil.which("tini-static") or shutil.which("tini")


def _pid_max() -> int:
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text().strip())
    except (OSError, ValueError):
        return 32768  # the kernel's default


def engine_for(name: str | None) -> DockerCLI:
    """The engine client by name (--engine, else HARNESS_ENGINE, else docker)."""
    chosen = name or os.environ.get(ENGINE_VARIABLE) or "docker"
    if chosen not in ENGINES:
        raise UsageError(f"{ENGINE_VARIABLE}={chosen}: unknown container engine (have: {', '.join(ENGINES)})")
    return PodmanCLI() if chosen == "podman" else DockerCLI()


def run_host_command(argv: Sequence[str], log_path: Path, timeout: float | None = None) -> int:
    """Run a host tool (debootstrap, apt-get) with its output appended to log_path; its exit code (124: timeout)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as out:
        try:
            return subprocess.run(list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  timeout=timeout, check=False, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
                                  ).returncode
        except subprocess.TimeoutExpired:
            out.write(f"\n{argv[0]} did not finish within {timeout:.0f} s\n")
            return 124
        except FileNotFoundError:
            out.write(f"\n{argv[0]}: not installed\n")
            return 127


def host_output(argv: Sequence[str], cwd: Path, timeout: float = 60.0) -> tuple[int, bytes, str]:
    """Run a read-only host tool (git show, git ls-tree) in `cwd`: (exit code, stdout, stderr); 127 when the
    tool is not installed, 124 when it does not finish within `timeout` seconds."""
    try:
        proc = subprocess.run(list(argv), cwd=cwd, capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout,
                              check=False)
    except FileNotFoundError:
        return 127, b"", f"{argv[0]}: not installed"
    except subprocess.TimeoutExpired:
        return 124, b"", f"{argv[0]} did not finish within {timeout:.0f} s"
    return proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace")
