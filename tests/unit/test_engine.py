"""DockerCLI down to the process boundary: the exact `docker run` arguments, the container removed on every path,
and the engine's error paths.

FakeDocker stands in for subprocess.Popen as harness.engine sees it (subprocess.run starts its process through
Popen too), so DockerCLI runs unchanged; no container engine is ever started.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.engine import (
    BuildResult,
    DockerCLI,
    Mount,
    PodmanCLI,
    RunSpec,
    build_error_line,
    engine_for,
    run_host_command,
)
from harness.errors import EngineUnavailable, UsageError

NAME = "harness-r1-load-tf216"


@dataclass
class Reply:
    """A fixed answer to one docker command, given instead of the fake daemon's own."""

    returncode: int = 0
    stdout: str = ""
    stderr: str = ""
    hangs: bool = False  # never answers: communicate() and wait() time out until the process is killed


@dataclass
class Workload:
    """What the container started by `docker run` does."""

    output: str = "hello from the container\n"
    exit_code: int = 0
    runs_forever: bool = False  # only `docker kill` or `docker rm -f` ends it
    oom_killed: bool = False
    interrupted: bool = False  # Ctrl-C reaches the harness while it waits for the attached client
    client_hangs: bool = False  # the attached client outlives its container (its daemon connection hangs)


class FakeProcess:
    """The parts of subprocess.Popen that DockerCLI and subprocess.run use."""

    def __init__(self, docker: FakeDocker, args: list[str], reply: Reply, kwargs: dict[str, Any]) -> None:
        self.docker = docker
        self.args = args
        self.reply = reply
        self.returncode: int | None = None if reply.hangs else reply.returncode
        self.killed = False
        self.interrupt_next_wait = False
        self.text = bool(kwargs.get("text") or kwargs.get("universal_newlines"))
        self.piped = kwargs.get("stdout") == subprocess.PIPE
        sink = kwargs.get("stdout")
        if reply.stdout and hasattr(sink, "write"):  # a log file: what the real client writes to its stdout
            sink.write(reply.stdout)
            sink.flush()

    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple[Any, Any]:
        if self.returncode is None:
            assert timeout is not None, f"{self.args} would never return"
            raise subprocess.TimeoutExpired(self.args, timeout)
        if not self.piped:
            return None, None
        if self.text:
            return self.reply.stdout, self.reply.stderr
        return self.reply.stdout.encode(), self.reply.stderr.encode()

    def wait(self, timeout: float | None = None) -> int:
        if self.interrupt_next_wait:
            self.interrupt_next_wait = False
            raise KeyboardInterrupt
        if self.returncode is None:
            assert timeout is not None, f"{self.args} would wait forever"
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def poll(self) -> int | None:
        return self.returncode

    def kill(self) -> None:
        self.killed = True
        self.docker.events.append(f"SIGKILL {self.args[1]}")
        if self.returncode is None:
            self.returncode = -9

    def __enter__(self) -> FakeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class FakeDocker:
    """The docker client and daemon as far as DockerCLI can tell: answers the commands DockerCLI starts."""

    def __init__(self, exe: Path) -> None:
        self.exe = exe
        self.calls: list[list[str]] = []  # every command started, without the client's path
        self.events: list[str] = []  # commands and kills, in order
        self.processes: list[FakeProcess] = []
        self.replies: dict[str, Reply] = {}  # a command's first word ("version", "image", "inspect") -> answer
        self.workload = Workload()
        self.images: dict[str, str] = {}  # tag -> image id
        self.containers: dict[str, dict[str, Any]] = {}  # name -> State, as `docker inspect` shows it
        self.clients: dict[str, FakeProcess] = {}  # name -> its attached `docker run` client

    def uninstall(self) -> None:
        """No docker command on PATH any more."""
        self.exe.unlink()

    def __call__(self, args: list[str], **kwargs: Any) -> FakeProcess:
        """Stands in for subprocess.Popen."""
        assert args[0] == str(self.exe), f"DockerCLI starts the client found on PATH, not {args[0]}"
        command = list(args[1:])
        self.calls.append(command)
        self.events.append(" ".join(command))
        word = command[0]
        if word in self.replies:
            proc = FakeProcess(self, args, self.replies[word], kwargs)
        elif word == "run":
            proc = self._run(args, command, kwargs)
        else:
            proc = FakeProcess(self, args, self._answer(command), kwargs)
        self.processes.append(proc)
        return proc

    def _run(self, args: list[str], command: list[str], kwargs: dict[str, Any]) -> FakeProcess:
        name = command[command.index("--name") + 1]
        w = self.workload
        forever = w.runs_forever or w.interrupted
        proc = FakeProcess(self, args, Reply(w.exit_code, stdout=w.output, hangs=forever), kwargs)
        proc.interrupt_next_wait = w.interrupted
        self.containers[name] = {"Status": "running" if forever else "exited", "Running": forever,
                                 "ExitCode": 0 if forever else w.exit_code, "OOMKilled": w.oom_killed}
        self.clients[name] = proc
        return proc

    def _stop(self, name: str) -> None:
        state = self.containers[name]
        if state["Running"]:
            state.update(Status="exited", Running=False, ExitCode=137)
            client = self.clients[name]
            if client.returncode is None and not self.workload.client_hangs:
                client.returncode = 137

    def _answer(self, command: list[str]) -> Reply:
        answers = {"version": self._version, "image": self._image_id, "build": self._build, "kill": self._kill,
                   "inspect": self._inspect, "rm": self._rm}
        assert command[0] in answers, f"the fake docker does not know: {command}"
        return answers[command[0]](command[-1])  # the last word: the image, container or build context

    def _version(self, _: str) -> Reply:
        return Reply(stdout="27.3.1\n")

    def _image_id(self, tag: str) -> Reply:
        if tag in self.images:
            return Reply(stdout=self.images[tag] + "\n")
        return Reply(1, stderr=f"Error response from daemon: No such image: {tag}\n")

    def _build(self, _: str) -> Reply:
        return Reply(stdout="Successfully built 0123456789ab\n")

    def _kill(self, name: str) -> Reply:
        if not self.containers.get(name, {}).get("Running"):
            return Reply(1, stderr=f"Error response from daemon: cannot kill container: {name}: not running\n")
        self._stop(name)
        return Reply(stdout=name + "\n")

    def _inspect(self, name: str) -> Reply:
        if name not in self.containers:
            return Reply(1, stderr=f"Error: No such object: {name}\n")
        return Reply(stdout=json.dumps(self.containers[name]) + "\n")

    def _rm(self, name: str) -> Reply:
        if name in self.containers:
            self._stop(name)
            del self.containers[name]
        return Reply(stdout=name + "\n")


def docker_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `docker` command, alone on PATH; it is never executed."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "docker"
    exe.write_text("#!/bin/sh\nexit 99\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return exe


@pytest.fixture
def docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    """FakeDocker in subprocess.Popen's place: this test opts out of conftest's engine guard."""
    fake = FakeDocker(docker_on_path(tmp_path, monkeypatch))
    monkeypatch.setattr("harness.engine.subprocess.Popen", fake)
    return fake


def sandboxed_spec(tmp_path: Path) -> RunSpec:
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "out").mkdir(exist_ok=True)
    return RunSpec(
        image="harness/tf:2.16.2-py3.11",
        command=("python", "-m", "harness.agent", "load", "--spec", "{}"),
        name=NAME,
        mounts=(Mount(tmp_path / "src", "/opt/harness-src/harness"),
                Mount(tmp_path / "out", "/harness/outputs", read_only=False)),
        env={"PYTHONHASHSEED": "1", "HOME": "/tmp"},
        labels={"org.harness.run": "r1", "org.harness.pid": "4242"},
        timeout=3600.0,
        memory="6g",
        pids_limit=4096,
        network="none",
        user="1000:1000",
        workdir="/harness",
        runtime="runsc",
    )


def sandboxed_args(tmp_path: Path) -> list[str]:
    src, out = (tmp_path / "src").resolve(), (tmp_path / "out").resolve()
    return [
        "run", "--name", NAME, "--init",
        "--label=org.harness.managed=true", "--label=org.harness.pid=4242", "--label=org.harness.run=r1",
        f"--mount=type=bind,source={src},target=/opt/harness-src/harness,readonly",
        f"--mount=type=bind,source={out},target=/harness/outputs",
        "--env=HOME=/tmp", "--env=PYTHONHASHSEED=1",
        "--memory", "6g", "--memory-swap", "6g",
        "--pids-limit", "4096",
        "--network", "none",
        "--user", "1000:1000",
        "--workdir", "/harness",
        "--read-only", "--tmpfs", "/tmp:rw,nosuid,nodev,size=2g",
        "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
        "--runtime", "runsc",
        "harness/tf:2.16.2-py3.11", "python", "-m", "harness.agent", "load", "--spec", "{}",
    ]


# -- the `docker run` command line ------------------------------------------------

def test_run_args_of_a_sandboxed_spec_are_exactly_these(tmp_path: Path) -> None:
    assert DockerCLI()._run_args(sandboxed_spec(tmp_path)) == sandboxed_args(tmp_path)


def test_run_starts_the_client_on_path_with_exactly_these_args(tmp_path: Path, docker: FakeDocker) -> None:
    DockerCLI().run(sandboxed_spec(tmp_path), tmp_path / "logs" / "load.log")
    assert docker.processes[0].args == [str(docker.exe), *sandboxed_args(tmp_path)]


def test_run_args_without_sandbox_or_limits_are_the_bare_minimum() -> None:
    spec = RunSpec(image="busybox", command=("true",), name="plain", sandbox=False)
    assert DockerCLI()._run_args(spec) == ["run", "--name", "plain", "--init", "--label=org.harness.managed=true",
                                           "busybox", "true"]


# -- run(): the container is removed on every path ------------------------------------

def test_a_normal_exit_is_inspected_then_removed(tmp_path: Path, docker: FakeDocker) -> None:
    docker.workload = Workload(output="".join(f"line {i}\n" for i in range(30)), exit_code=3)
    log_path = tmp_path / "logs" / "load.log"
    result = DockerCLI().run(sandboxed_spec(tmp_path), log_path)
    assert (result.exit_code, result.timed_out, result.oom_killed) == (3, False, False)
    assert result.output_tail == "\n".join(f"line {i}" for i in range(10, 30))
    assert log_path.read_text().count("\n") == 30
    assert [c[0] for c in docker.calls] == ["run", "inspect", "rm"]
    assert docker.calls[-1] == ["rm", "-f", NAME]
    assert docker.containers == {}


def test_an_oom_kill_is_reported_from_inspect(tmp_path: Path, docker: FakeDocker) -> None:
    docker.workload = Workload(exit_code=137, oom_killed=True)
    result = DockerCLI().run(sandboxed_spec(tmp_path), tmp_path / "load.log")
    assert (result.exit_code, result.oom_killed) == (137, True)
    assert docker.containers == {}


def test_a_timeout_kills_then_removes_and_has_no_exit_code(tmp_path: Path, docker: FakeDocker) -> None:
    docker.workload = Workload(runs_forever=True)
    result = DockerCLI().run(sandboxed_spec(tmp_path), tmp_path / "load.log")
    assert (result.exit_code, result.timed_out) == (None, True)
    assert docker.events == [" ".join(sandboxed_args(tmp_path)), f"kill {NAME}",
                             f"inspect --format {{{{json .State}}}} {NAME}", f"rm -f {NAME}"]
    assert docker.containers == {}


def test_an_interrupt_while_waiting_removes_the_container_kills_the_client_and_is_raised(
        tmp_path: Path, docker: FakeDocker) -> None:
    docker.workload = Workload(interrupted=True, client_hangs=True)
    with pytest.raises(KeyboardInterrupt):
        DockerCLI().run(sandboxed_spec(tmp_path), tmp_path / "load.log")
    assert docker.events[1:] == [f"rm -f {NAME}", "SIGKILL run"]  # the container first: killing the client leaves it
    assert docker.clients[NAME].killed
    assert docker.containers == {}


def test_an_interrupt_is_raised_even_when_docker_rm_does_not_answer(
        tmp_path: Path, docker: FakeDocker, caplog: pytest.LogCaptureFixture) -> None:
    docker.workload = Workload(interrupted=True)
    docker.replies["rm"] = Reply(hangs=True)
    with caplog.at_level(logging.WARNING, logger="harness.engine"), pytest.raises(KeyboardInterrupt):
        DockerCLI().run(sandboxed_spec(tmp_path), tmp_path / "load.log")
    assert f"container {NAME} may be left behind" in caplog.text
    assert docker.clients[NAME].killed


def test_a_failed_inspect_falls_back_to_the_clients_exit_code_and_still_removes(
        tmp_path: Path, docker: FakeDocker) -> None:
    docker.workload = Workload(exit_code=3)
    docker.replies["inspect"] = Reply(1, stderr="Error response from daemon: i/o timeout\n")
    result = DockerCLI().run(sandboxed_spec(tmp_path), tmp_path / "load.log")
    assert (result.exit_code, result.oom_killed) == (3, False)
    assert docker.calls[-1] == ["rm", "-f", NAME]
    assert docker.containers == {}


def test_an_inspect_that_does_not_answer_is_an_engine_failure_and_still_removes(
        tmp_path: Path, docker: FakeDocker) -> None:
    docker.replies["inspect"] = Reply(hangs=True)
    with pytest.raises(EngineUnavailable, match="docker inspect did not answer"):
        DockerCLI().run(sandboxed_spec(tmp_path), tmp_path / "load.log")
    assert docker.calls[-1] == ["rm", "-f", NAME]
    assert docker.containers == {}


def test_a_kill_that_does_not_answer_is_an_engine_failure_and_still_removes(
        tmp_path: Path, docker: FakeDocker) -> None:
    docker.workload = Workload(runs_forever=True)
    docker.replies["kill"] = Reply(hangs=True)
    with pytest.raises(EngineUnavailable, match="docker kill did not answer"):
        DockerCLI().run(sandboxed_spec(tmp_path), tmp_path / "load.log")
    assert docker.calls[-1] == ["rm", "-f", NAME]
    assert docker.containers == {}
    assert docker.clients[NAME].returncode is not None


def test_a_failing_rm_after_a_normal_exit_is_an_engine_failure(tmp_path: Path, docker: FakeDocker) -> None:
    docker.replies["rm"] = Reply(hangs=True)
    with pytest.raises(EngineUnavailable, match="docker rm did not answer"):
        DockerCLI().run(sandboxed_spec(tmp_path), tmp_path / "load.log")


def test_run_without_a_docker_command_starts_nothing(tmp_path: Path, docker: FakeDocker) -> None:
    docker.uninstall()
    with pytest.raises(EngineUnavailable, match="'docker' command is not installed"):
        DockerCLI().run(sandboxed_spec(tmp_path), tmp_path / "load.log")
    assert docker.calls == []


# -- ping, image_id, build ---------------------------------------------------------------

def test_ping_asks_the_server_version(docker: FakeDocker) -> None:
    DockerCLI().ping()
    assert docker.calls == [["version", "--format", "{{.Server.Version}}"]]


def test_ping_without_a_docker_command_is_engine_unavailable(docker: FakeDocker) -> None:
    docker.uninstall()
    with pytest.raises(EngineUnavailable, match="'docker' command is not installed; install Docker first"):
        DockerCLI().ping()
    assert docker.calls == []


def test_ping_names_the_daemons_own_reason(docker: FakeDocker) -> None:
    docker.replies["version"] = Reply(1, stderr="Client: Docker Engine\nCannot connect to the Docker daemon at "
                                                "unix:///var/run/docker.sock. Is the docker daemon running?\n")
    with pytest.raises(EngineUnavailable) as err:
        DockerCLI().ping()
    assert str(err.value) == ("Docker engine unavailable: Cannot connect to the Docker daemon at "
                              "unix:///var/run/docker.sock. Is the docker daemon running?")


def test_ping_when_the_daemon_does_not_answer_is_engine_unavailable(docker: FakeDocker) -> None:
    docker.replies["version"] = Reply(hangs=True)
    with pytest.raises(EngineUnavailable) as err:
        DockerCLI().ping()
    assert str(err.value) == "docker version did not answer within 30 s"
    assert docker.processes[0].killed


def test_image_id_of_a_known_and_an_unknown_tag(docker: FakeDocker) -> None:
    docker.images["harness/tf:1"] = "sha256:abc"
    assert DockerCLI().image_id("harness/tf:1") == "sha256:abc"
    assert DockerCLI().image_id("harness/tf:2") is None
    assert docker.calls[-1] == ["image", "inspect", "--format", "{{.Id}}", "harness/tf:2"]


def test_image_id_when_the_daemon_does_not_answer_is_engine_unavailable(docker: FakeDocker) -> None:
    docker.replies["image"] = Reply(hangs=True)
    with pytest.raises(EngineUnavailable, match="docker image did not answer within 120 s"):
        DockerCLI().image_id("harness/tf:1")


def test_image_id_without_a_docker_command_is_engine_unavailable(docker: FakeDocker) -> None:
    docker.uninstall()
    with pytest.raises(EngineUnavailable, match="not installed"):
        DockerCLI().image_id("harness/tf:1")


def test_build_args_and_log(tmp_path: Path, docker: FakeDocker) -> None:
    log_path = tmp_path / "logs" / "build.log"
    result = DockerCLI().build(tmp_path / "ctx", "harness/tf:1", {"org.harness.env": "tf216", "a": "1"},
                               {"PY": "3.11"}, log_path)
    assert result == BuildResult(ok=True, seconds=result.seconds)
    assert docker.calls == [["build", "--pull=false", "--force-rm", "-t", "harness/tf:1", "--label=a=1",
                             "--label=org.harness.env=tf216", "--build-arg=PY=3.11", str(tmp_path / "ctx")]]
    assert log_path.read_text() == "Successfully built 0123456789ab\n"


BUILDKIT_PIP_FAILURE = """\
#7 [3/4] RUN pip install tensorflow-cpu==9.9
#7 1.894 ERROR: Could not find a version that satisfies the requirement tensorflow-cpu==9.9 (from versions: 2.16.2)
#7 1.895 ERROR: No matching distribution found for tensorflow-cpu==9.9
#7 ERROR: process "/bin/sh -c pip install tensorflow-cpu==9.9" did not complete successfully: exit code: 1
------
 > [3/4] RUN pip install tensorflow-cpu==9.9:
1.895 ERROR: No matching distribution found for tensorflow-cpu==9.9
"""


def test_a_failed_build_names_pips_error_and_keeps_the_whole_log(tmp_path: Path, docker: FakeDocker) -> None:
    docker.replies["build"] = Reply(1, stdout=BUILDKIT_PIP_FAILURE)
    log_path = tmp_path / "build.log"
    result = DockerCLI().build(tmp_path, "harness/tf:1", {}, {}, log_path)
    assert (result.ok, result.error) == (False, "ERROR: No matching distribution found for tensorflow-cpu==9.9")
    assert log_path.read_text() == BUILDKIT_PIP_FAILURE


def test_build_without_a_docker_command_is_engine_unavailable(tmp_path: Path, docker: FakeDocker) -> None:
    docker.uninstall()
    with pytest.raises(EngineUnavailable, match="not installed"):
        DockerCLI().build(tmp_path, "harness/tf:1", {}, {}, tmp_path / "build.log")
    assert docker.calls == []


@pytest.mark.parametrize(("log_text", "expected"), [
    (BUILDKIT_PIP_FAILURE, "ERROR: No matching distribution found for tensorflow-cpu==9.9"),
    ("Step 3/4 : RUN pip install h5py==0.0\n\x1b[91mERROR: Could not find a version that satisfies the "
     "requirement h5py==0.0\n\x1b[0m\x1b[91mERROR: No matching distribution found for h5py==0.0\n\x1b[0m",
     "ERROR: No matching distribution found for h5py==0.0"),
    ("Step 2/4 : RUN pip install numpy\n\x1b[91mERROR: Could not find a version that satisfies the "
     "requirement numpy\n\x1b[0m", "ERROR: Could not find a version that satisfies the requirement numpy"),
    ("#5 ERROR: failed to solve: python:3.99-slim: not found\n",
     "ERROR: failed to solve: python:3.99-slim: not found"),
    ("step 1\ngcc: error: no such file\nsomething else failed\nfatal error: Python.h missing\ndone\n",
     "fatal error: Python.h missing"),
    ("step 1\nstep 2 went wrong\n", "step 2 went wrong"),
    ("", "build failed with no output"),
])
def test_build_error_line_picks_the_line_that_says_why(log_text: str, expected: str) -> None:
    assert build_error_line(log_text) == expected


# -- conftest's guard: no unit test starts a container engine --------------------------

@pytest.mark.parametrize("command", [["docker", "version"], ["/usr/bin/podman", "ps", "-a"], ["docker.exe", "ps"]])
def test_the_guard_refuses_to_start_a_container_engine(command: list[str]) -> None:
    with pytest.raises(AssertionError, match=re.escape(repr(command))):
        subprocess.run(command, check=False)


def test_the_guard_refuses_a_shell_line_and_an_executable_override() -> None:
    with pytest.raises(AssertionError, match="'docker ps'"):
        subprocess.run("docker ps", shell=True, check=False)
    with pytest.raises(AssertionError, match="tried to start the container engine"):
        subprocess.Popen(["ps"], executable="/usr/local/bin/podman")


def test_the_guard_lets_every_other_command_run() -> None:
    proc = subprocess.run([sys.executable, "-c", "print('ok')"], capture_output=True, text=True, check=True)
    assert proc.stdout == "ok\n"


def test_docker_cli_without_a_fake_stops_at_the_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = docker_on_path(tmp_path, monkeypatch)
    with pytest.raises(AssertionError, match=re.escape(f"[{str(exe)!r}, 'version', ")):
        DockerCLI().ping()


# -- pulls, host-network builds, and Podman's differences ------------------------------

def test_pull_is_none_when_it_worked_and_the_engines_own_line_when_not(docker: FakeDocker) -> None:
    docker.replies["pull"] = Reply(stdout="docker.io/library/python:3.11-slim\n")
    assert DockerCLI().pull("python:3.11-slim") is None
    docker.replies["pull"] = Reply(1, stderr='Error response from daemon: Get "https://registry-1.docker.io/v2/": '
                                   "dial tcp: lookup registry-1.docker.io: no such host\n")
    assert DockerCLI().pull("python:3.11-slim") == ('Error response from daemon: Get "https://registry-1.docker.io/'
                                                    'v2/": dial tcp: lookup registry-1.docker.io: no such host')
    assert docker.calls == [["pull", "--quiet", "python:3.11-slim"]] * 2  # Docker resolves short names itself


def test_a_build_that_uses_the_wheel_cache_runs_on_the_host_network(tmp_path: Path, docker: FakeDocker) -> None:
    DockerCLI().build(tmp_path / "ctx", "harness-env:1", {}, {"PIP_INDEX_URL": "http://127.0.0.1:9/b1/simple/"},
                      tmp_path / "build.log", network="host")
    assert docker.calls == [["build", "--pull=false", "--force-rm", "-t", "harness-env:1",
                             "--build-arg=PIP_INDEX_URL=http://127.0.0.1:9/b1/simple/", "--network", "host",
                             str(tmp_path / "ctx")]]


@pytest.fixture
def podman(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    """FakeDocker answering as `podman`, alone on PATH."""
    exe = docker_on_path(tmp_path, monkeypatch).rename(tmp_path / "bin" / "podman")
    fake = FakeDocker(exe)
    monkeypatch.setattr("harness.engine.subprocess.Popen", fake)
    return fake


@pytest.mark.parametrize(("ref", "qualified"), [
    ("python:3.11-slim", "docker.io/library/python:3.11-slim"),
    ("someone/image:1", "docker.io/someone/image:1"),
    ("registry.example/team/py:3.11", "registry.example/team/py:3.11"),
    ("localhost:5000/py:3.11", "localhost:5000/py:3.11"),
    ("localhost/harness-base:3.11", "localhost/harness-base:3.11"),
])
def test_podman_pulls_short_names_from_docker_hub_as_docker_would(podman: FakeDocker, ref: str,
                                                                  qualified: str) -> None:
    podman.replies["pull"] = Reply(stdout="sha256:1\n")
    assert PodmanCLI().pull(ref) is None
    assert podman.calls == [["pull", "--quiet", qualified]]


LIMITS = ["--ulimit=nofile=20000:20000", "--ulimit=nproc=32768:32768"]


@pytest.fixture
def host_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host whose hard limits are below Podman's own defaults: 20000 files, 96365 processes, pid_max 32768."""
    limits = {resource.RLIMIT_NOFILE: (20000, 20000), resource.RLIMIT_NPROC: (96365, 96365)}
    monkeypatch.setattr("harness.engine.resource.getrlimit", limits.__getitem__)
    monkeypatch.setattr("harness.engine._pid_max", lambda: 32768)
    monkeypatch.setattr("harness.engine._init_path", lambda: None)  # catatonit installed


@pytest.mark.usefixtures("host_limits")
def test_podman_containers_get_the_hosts_limits_and_rootless_ones_keep_the_users_uid(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = sandboxed_spec(tmp_path)
    docker_args = sandboxed_args(tmp_path)
    rootful = [*docker_args[:4], *LIMITS, *docker_args[4:]]  # after --init; otherwise Docker's flags
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert PodmanCLI()._run_args(spec) == rootful
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert PodmanCLI()._run_args(spec) == ["run", "--userns=keep-id", *rootful[1:]]
    assert DockerCLI()._run_args(spec) == docker_args  # Docker is told none of it


def test_without_catatonit_podman_uses_tini(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("harness.engine.CATATONIT", str(tmp_path / "no-catatonit"))
    tini = tmp_path / "bin" / "tini-static"
    tini.parent.mkdir()
    tini.write_text("")
    tini.chmod(0o755)
    monkeypatch.setenv("PATH", str(tini.parent))
    args = PodmanCLI()._run_args(sandboxed_spec(tmp_path))
    assert args[args.index("--init") + 1] == f"--init-path={tini}"
    monkeypatch.setattr("harness.engine.CATATONIT", str(tini))
    assert not any(a.startswith("--init-path") for a in PodmanCLI()._run_args(sandboxed_spec(tmp_path)))


@pytest.mark.usefixtures("host_limits")
def test_podman_builds_get_the_hosts_limits(tmp_path: Path, podman: FakeDocker) -> None:
    PodmanCLI().build(tmp_path / "ctx", "harness-env:1", {}, {}, tmp_path / "build.log", network="host")
    assert podman.calls == [["build", "--pull=false", "--force-rm", "-t", "harness-env:1", "--network", "host",
                             *LIMITS, str(tmp_path / "ctx")]]


def test_podman_ping_info_and_endpoint(podman: FakeDocker, monkeypatch: pytest.MonkeyPatch) -> None:
    podman.replies["info"] = Reply(stdout="4.3.1\n")
    PodmanCLI().ping()
    assert podman.calls[-1] == ["info", "--format", "{{.Version.Version}}"]
    podman.replies["info"] = Reply(stdout=json.dumps({"version": {"Version": "4.3.1"},
                                                      "store": {"graphRoot": "/var/lib/containers/storage"},
                                                      "host": {"ociRuntime": {"name": "crun"}}}))
    assert PodmanCLI().info() == {"ServerVersion": "4.3.1", "DockerRootDir": "/var/lib/containers/storage",
                                  "Runtimes": {"crun": {}}}
    monkeypatch.delenv("CONTAINER_HOST", raising=False)
    assert PodmanCLI().endpoint() == "local"
    podman.replies["info"] = Reply(125, stderr="Error: cannot open storage: permission denied\n")
    with pytest.raises(EngineUnavailable, match=r"^Podman unavailable: Error: cannot open storage"):
        PodmanCLI().ping()


def test_without_podman_installed_it_says_so(podman: FakeDocker) -> None:
    podman.uninstall()
    with pytest.raises(EngineUnavailable, match=r"^the 'podman' command is not installed; install Podman first$"):
        PodmanCLI().ping()


def test_the_engine_is_chosen_by_flag_then_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert type(engine_for(None)) is DockerCLI
    assert type(engine_for("podman")) is PodmanCLI
    monkeypatch.setenv("HARNESS_ENGINE", "podman")
    assert type(engine_for(None)) is PodmanCLI
    assert type(engine_for("docker")) is DockerCLI
    monkeypatch.setenv("HARNESS_ENGINE", "lxc")
    with pytest.raises(UsageError, match=r"^HARNESS_ENGINE=lxc: unknown container engine \(have: docker, podman\)$"):
        engine_for(None)


def test_host_commands_append_their_output_and_return_their_code(tmp_path: Path) -> None:
    log_path = tmp_path / "logs" / "tool.log"
    assert run_host_command([sys.executable, "-c", "print('made it')"], log_path) == 0
    assert run_host_command([sys.executable, "-c", "raise SystemExit(3)"], log_path) == 3
    assert run_host_command(["no-such-tool-here"], log_path) == 127
    assert log_path.read_text().startswith("made it\n") and "no-such-tool-here: not installed" in log_path.read_text()


def test_untagged_images_of_a_build_still_running_are_not_leftovers(docker: FakeDocker) -> None:
    # The classic builder's intermediate images are untagged and inherit the base's org.harness.base label.
    old = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.123456789Z")
    new = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.5Z")
    docker.replies["images"] = Reply(stdout="sha256:old\nsha256:new\nsha256:old\n")
    docker.replies["image"] = Reply(stdout=f"sha256:new {new}\nsha256:old {old}\nsha256:odd not-a-time\n")
    assert DockerCLI().dangling_images({"org.harness.base": ""}) == ["sha256:old"]
    assert docker.calls == [["images", "-q", "--no-trunc", "--filter=dangling=true", "--filter=label=org.harness.base"],
                            ["image", "inspect", "--format", "{{.Id}} {{.Created}}", "sha256:new", "sha256:old"]]


def test_containers_started_come_from_the_event_log(docker: FakeDocker) -> None:
    docker.replies["events"] = Reply(stdout="c1\nc2\nc3\n")
    assert DockerCLI().containers_started(100.0, 200.5, {"org.harness.managed": "true"}) == 3
    assert docker.calls == [["events", "--since", "100.000", "--until", "200.500", "--filter=event=start",
                             "--filter=label=org.harness.managed=true", "--format", "{{.ID}}"]]


def test_podmans_event_log_is_read_whole_and_cut_at_until(podman: FakeDocker) -> None:
    # podman 4.3 ends `events --until` before the events it should list: the end is cut by the harness.
    def event(second: int) -> str:
        return json.dumps({"ID": f"c{second}", "Status": "start", "Time": f"2026-12-01T03:00:{second:02d}.5Z"})

    start = dt.datetime(2026, 12, 1, 3, 0, 10, tzinfo=dt.timezone.utc).timestamp()
    podman.replies["events"] = Reply(stdout="\n".join([event(5), event(12), event(20), event(40), "not json"]) + "\n")
    assert PodmanCLI().containers_started(start, start + 20, {"org.harness.managed": "true"}) == 2
    assert podman.calls == [["events", "--stream=false", "--since", str(int(start)), "--filter=event=start",
                             "--filter=label=org.harness.managed=true", "--format", "json"]]
