"""doctor against the real engine: leftovers of a dead run removed, a live run's kept; DOCKER_HOST honoured."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.engine import LABEL_HOST, LABEL_MANAGED, LABEL_PID, LABEL_RUN

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEAD_PID = "999999999"  # above any pid_max: no such process


def harness(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=600, check=False)


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True, timeout=120).stdout.strip()


@pytest.fixture(scope="module")
def small_image(docker: None) -> str:
    """A present base image to create containers from (no pull): the matrix default, else the local one."""
    templates = [os.environ.get("HARNESS_BASE_IMAGE") or "python:{python}-slim", "harness-base:{python}"]
    for image in (t.replace("{python}", "3.11") for t in templates):
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False).returncode == 0:
            return image
    pytest.skip("no Python 3.11 base image is present (python -m harness base-images 3.11 builds one)")


def _create(image: str, name: str, pid: str) -> str:
    return docker("create", "--name", name, f"--label={LABEL_MANAGED}=true", f"--label={LABEL_RUN}=doctor-test",
                  f"--label={LABEL_HOST}={socket.gethostname()}", f"--label={LABEL_PID}={pid}", image, "true")


def test_cleanup_removes_a_dead_runs_container_and_keeps_a_live_ones(small_image: str) -> None:
    suffix = os.urandom(3).hex()
    dead = _create(small_image, f"harness-doctor-dead-{suffix}", DEAD_PID)
    live = _create(small_image, f"harness-doctor-live-{suffix}", str(os.getpid()))
    try:
        report = harness("doctor")
        assert report.returncode in (0, 1), report.stderr
        assert "leftovers" in report.stdout
        assert docker("ps", "-aq", "--no-trunc", f"--filter=id={dead}") == dead  # doctor alone removes nothing
        proc = harness("doctor", "--cleanup")
        assert proc.returncode in (0, 1), proc.stderr
        assert "cleanup: removed" in proc.stdout
        assert docker("ps", "-aq", "--no-trunc", f"--filter=id={dead}") == ""
        assert docker("ps", "-aq", "--no-trunc", f"--filter=id={live}") == live
    finally:
        subprocess.run(["docker", "rm", "-f", dead, live], capture_output=True, check=False)


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            with contextlib.suppress(OSError):
                sock.shutdown(how)


def _bridge(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways between two sockets; close both once both directions have ended."""
    ended: list[int] = []
    lock = threading.Lock()

    def one_way(src: socket.socket, dst: socket.socket) -> None:
        _pipe(src, dst)
        with lock:
            ended.append(1)
            if len(ended) == 2:
                a.close()
                b.close()

    for src, dst in ((a, b), (b, a)):
        threading.Thread(target=one_way, args=(src, dst), daemon=True).start()


@pytest.fixture
def tcp_engine(docker: None) -> Iterator[tuple[str, list[int]]]:
    """DOCKER_HOST=tcp://127.0.0.1:PORT forwarding to the local engine's socket; counts connections."""
    endpoint = subprocess.run(["docker", "context", "inspect", "--format", "{{.Endpoints.docker.Host}}"],
                              capture_output=True, text=True, check=False).stdout.strip()
    if not endpoint.startswith("unix://"):
        pytest.skip(f"the engine is not on a local socket: {endpoint}")
    listener = socket.create_server(("127.0.0.1", 0))
    connections: list[int] = []
    opened: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(endpoint.removeprefix("unix://"))
            opened.extend((client, upstream))
            connections.append(1)
            _bridge(client, upstream)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}", connections
    finally:
        listener.close()
        server.join(timeout=10)
        for sock in opened:  # connections still open when the test ended
            sock.close()


def test_docker_host_is_honoured_end_to_end(tcp_engine: tuple[str, list[int]], tmp_path: Path) -> None:
    host, connections = tcp_engine
    proc = harness("doctor", env={"DOCKER_HOST": host})
    assert f"at {host}" in proc.stdout and "remote engine" in proc.stdout, proc.stderr
    out = tmp_path / "run"
    env_id = "py3.11-tf2.15.1"
    before = len(connections)
    proc = harness("run", "matrices/smoke.yaml", "--out", str(out), "--only", env_id, "--phase", "build",
                   "--phase", "save", env={"DOCKER_HOST": host})
    assert proc.returncode == 0, proc.stderr
    assert (out / "artifacts" / env_id / "manifest.json").is_file()  # the bind mount reached the same host
    assert len(connections) - before >= 3  # image inspect, run, inspect, rm: all through DOCKER_HOST
