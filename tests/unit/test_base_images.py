"""Base images that resolve themselves: pulled, else the local equivalent, else built once from Debian packages.

Against FakeEngine (with and without a registry) and a fake debootstrap; nothing is pulled, built or run.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fake_engine import FakeEngine
from harness.base_images import (
    LOCAL_REPO,
    SUITES,
    BaseBuilds,
    Debootstrap,
    build_base,
    debian_mirror,
    resolve_base_images,
)
from harness.cli import main
from harness.console import Console
from harness.engine import LABEL_BASE
from harness.errors import EXIT_ENGINE, EXIT_USAGE, BaseImageUnavailable, UsageError
from harness.matrix import Environment, Matrix, parse_matrix
from harness.workflow import RunRequest, build, prepare_run_dir, resolve_images

SMOKE = Path(__file__).resolve().parents[2] / "matrices" / "smoke.yaml"
NO_REGISTRY = 'Error response from daemon: Get "https://registry-1.docker.io/v2/": no such host'


class FakeBootstrap:
    """debootstrap as far as the harness can tell: writes a root filesystem, or cannot run here."""

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason
        self.suites: list[str] = []

    def unavailable(self) -> str | None:
        return self.reason

    def build(self, suite: str, root: Path, log_path: Path) -> None:
        self.suites.append(suite)
        (root / "usr" / "bin").mkdir(parents=True)
        (root / "usr" / "bin" / "python3").write_text("")


def _matrix(*envs: Environment) -> Matrix:
    return Matrix(name="m", path="m.yaml", sha256="0" * 64, environments=envs)


def _env(env_id: str, python: str = "3.11", base: str | None = None) -> Environment:
    return Environment(id=env_id, python=python, tensorflow="==2.16.2", base_image=base or f"python:{python}-slim")


def _bases(matrix: Matrix) -> list[str]:
    return [e.base_image for e in matrix.environments]


def test_a_pullable_base_image_is_pulled_and_kept() -> None:
    engine = FakeEngine()
    matrix = _matrix(_env("a"), _env("b"))
    assert resolve_base_images(matrix, engine, FakeBootstrap(), print) is matrix
    assert engine.pulls == ["python:3.11-slim"]  # once for both environments


def test_a_present_base_image_is_neither_pulled_nor_replaced() -> None:
    engine = FakeEngine(registry=False)
    engine.images["python:3.11-slim"] = "sha256:1"
    matrix = _matrix(_env("a"))
    assert resolve_base_images(matrix, engine, FakeBootstrap(), print) is matrix
    assert engine.pulls == []


def test_without_a_registry_the_local_equivalent_stands_in(capsys: pytest.CaptureFixture[str]) -> None:
    engine = FakeEngine(registry=False)
    engine.images[f"{LOCAL_REPO}:3.11"] = "sha256:local"
    bootstrap = FakeBootstrap()
    resolved = resolve_base_images(_matrix(_env("a"), _env("b")), engine, bootstrap, print)
    assert _bases(resolved) == ["harness-base:3.11", "harness-base:3.11"]
    assert bootstrap.suites == []  # it exists: nothing is built
    assert "python:3.11-slim cannot be pulled (Error response from daemon" in capsys.readouterr().out


def test_without_a_registry_or_a_local_image_it_is_built_once_from_the_debian_release_of_that_python() -> None:
    engine = FakeEngine(registry=False)
    bootstrap = FakeBootstrap()
    steps: list[str] = []
    matrix = _matrix(_env("a", "3.9"), _env("b", "3.13"), _env("c", "3.13"))
    resolved = resolve_base_images(matrix, engine, bootstrap, steps.append)
    assert _bases(resolved) == ["harness-base:3.9", "harness-base:3.13", "harness-base:3.13"]
    assert bootstrap.suites == ["bullseye", "trixie"]
    assert [tag for tag, _ in engine.imported] == ["harness-base:3.9", "harness-base:3.13"]
    assert f"LABEL {LABEL_BASE}=debian-trixie" in engine.imported[1][1]
    assert any("building from Debian trixie packages" in s for s in steps)
    assert any(s.startswith("base image harness-base:3.13: built in") for s in steps)
    # once per host: the next run finds them
    again = FakeBootstrap()
    assert _bases(resolve_base_images(matrix, engine, again, steps.append)) == _bases(resolved)
    assert again.suites == []


def test_when_it_cannot_be_built_here_the_error_names_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    engine = FakeEngine(registry=False)
    with pytest.raises(BaseImageUnavailable) as raised:
        resolve_base_images(_matrix(_env("a")), engine, FakeBootstrap("building one needs root (debootstrap)"),
                            print)
    assert str(raised.value) == ("harness-base:3.11 does not exist and building one needs root (debootstrap): run "
                                 "`sudo python -m harness base-images 3.11` once")
    assert raised.value.exit_code == EXIT_ENGINE
    engine.binary = "podman"
    with pytest.raises(BaseImageUnavailable, match=r"`sudo python -m harness --engine podman base-images 3.11`"):
        resolve_base_images(_matrix(_env("a")), engine, FakeBootstrap("needs root"), print)


def test_a_users_own_base_that_cannot_be_pulled_is_not_replaced() -> None:
    engine = FakeEngine(registry=False)
    with pytest.raises(BaseImageUnavailable, match=r"^base image registry.example/py:3.11 cannot be pulled: Error"):
        resolve_base_images(_matrix(_env("a", base="registry.example/py:3.11")), engine, FakeBootstrap(), print)


def test_a_python_no_debian_release_ships_says_so() -> None:
    with pytest.raises(BaseImageUnavailable, match=r"no Debian release ships Python 3\.12 to build harness-base:3\.12"):
        resolve_base_images(_matrix(_env("a", "3.12")), FakeEngine(registry=False), FakeBootstrap(), print)
    with pytest.raises(UsageError, match=r"^3.12: no Debian release ships Python 3.12 \(have 3.9, 3.11, 3.13\)"):
        build_base("3.12", FakeEngine(), FakeBootstrap(), print)


def test_only_the_selected_environments_are_resolved() -> None:
    engine = FakeEngine(registry=False)
    bootstrap = FakeBootstrap()
    resolved = resolve_base_images(_matrix(_env("a", "3.9"), _env("b", "3.11")), engine, bootstrap, print, ["b"])
    assert _bases(resolved) == ["python:3.9-slim", "harness-base:3.11"]
    assert bootstrap.suites == ["bookworm"]


def test_rebuild_builds_an_existing_image_again() -> None:
    engine = FakeEngine()
    engine.images["harness-base:3.11"] = "sha256:old"
    bootstrap = FakeBootstrap()
    assert not build_base("3.11", engine, bootstrap, print).built
    assert build_base("3.11", engine, bootstrap, print, rebuild=True).built
    assert bootstrap.suites == ["bookworm"]


@pytest.mark.parametrize(("files", "expected"), [
    ({"sources.list.d/debian.sources": "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n"},
     "http://mirror.example/debian"),
    ({"sources.list": "# comment\ndeb [arch=amd64] https://m.example/debian/ bookworm main\n"},
     "https://m.example/debian"),
    ({"sources.list": "deb http://security.example/debian-security bookworm-security main\n"},
     "http://deb.debian.org/debian"),
    ({}, "http://deb.debian.org/debian"),
])
def test_the_debian_mirror_is_the_one_apt_uses(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert debian_mirror({}, tmp_path) == expected
    assert debian_mirror({"DEBIAN_MIRROR": "http://override/debian"}, tmp_path) == "http://override/debian"


def test_debootstrap_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert Debootstrap("http://m/debian").unavailable() == "building one needs root (debootstrap)"


# -- through the command line ----------------------------------------------------------------

def test_base_images_command_builds_what_is_missing_and_keeps_the_rest(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    bootstrap = FakeBootstrap()
    monkeypatch.setattr("harness.cli.base_images.Debootstrap", lambda: bootstrap)
    engine = FakeEngine(registry=False)
    engine.images["harness-base:3.9"] = "sha256:kept"
    assert main(["base-images", "3.9", "3.11"], engine=lambda: engine) == 0
    out = capsys.readouterr().out
    assert "base image harness-base:3.9: present, kept" in out
    assert "base image harness-base:3.11: built in" in out
    assert bootstrap.suites == ["bookworm"]


def test_base_images_command_refuses_an_unknown_python_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    engine = FakeEngine()
    assert main(["base-images", "3.11", "3.12"], engine=lambda: engine) == EXIT_USAGE
    assert capsys.readouterr().err == ("harness: error: 3.12: no Debian release ships Python 3.12 (have 3.9, 3.11, "
                                       "3.13); give the matrix a base_image for it\n")
    assert engine.imported == []


def test_a_run_on_a_host_without_a_registry_builds_the_base_and_then_its_images(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bootstrap = FakeBootstrap()
    monkeypatch.setattr("harness.workflow.Debootstrap", lambda: bootstrap)
    engine = FakeEngine(registry=False)
    assert main(["run", str(SMOKE), "--out", str(tmp_path / "run"), "--jobs", "1", "-q"], engine=lambda: engine) == 0
    assert bootstrap.suites == ["bookworm"]
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert {e["spec"]["base_image"] for e in run["environments"]} == {"harness-base:3.11"}
    assert [b["tag"] for b in run["base_images"]] == ["harness-base:3.11"]  # built meanwhile, and how long it took
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert {c["status"] for c in report["cells"]} == {"pass"}


def test_a_run_that_cannot_get_a_base_image_is_exit_3_before_anything_is_built(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("harness.workflow.Debootstrap", lambda: FakeBootstrap("building one needs root"))
    engine = FakeEngine(registry=False)
    assert main(["run", str(SMOKE), "--out", str(tmp_path / "run"), "-q"], engine=lambda: engine) == EXIT_ENGINE
    err = capsys.readouterr().err
    assert err.startswith("harness: error: harness-base:3.11 does not exist and building one needs root: run `")
    assert err.count("\n") == 1
    assert engine.builds == [] and engine.runs == []


def test_an_environment_keeps_its_id_when_its_base_is_replaced() -> None:
    env = _env("py3.11-tf2.16.2")
    assert dataclasses.replace(env, base_image="harness-base:3.11").id == env.id


# -- built in the background, all at once --------------------------------------------------------

class GatedBootstrap(FakeBootstrap):
    """debootstrap that waits, per suite, until the test lets it finish; or fails."""

    def __init__(self, failing: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.gates: dict[str, threading.Event] = {suite: threading.Event() for suite in SUITES.values()}
        self.failing = failing
        self.running: set[str] = set()
        self.most_at_once = 0
        self._lock = threading.Lock()

    def build(self, suite: str, root: Path, log_path: Path) -> None:
        with self._lock:
            self.running.add(suite)
            self.most_at_once = max(self.most_at_once, len(self.running))
        assert self.gates[suite].wait(10), f"{suite} was never let through"
        with self._lock:
            self.running.discard(suite)
        if suite in self.failing:
            raise BaseImageUnavailable(f"debootstrap {suite} failed")
        super().build(suite, root, log_path)


def _until(condition: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.01)


def test_missing_base_images_are_built_at_once_not_one_after_another() -> None:
    bootstrap = GatedBootstrap()
    builds = BaseBuilds(FakeEngine(registry=False), bootstrap, print)
    matrix = _matrix(_env("a", "3.9"), _env("b", "3.11"), _env("c", "3.13"))
    resolved = resolve_base_images(matrix, builds.engine, bootstrap, print, builds=builds)
    assert _bases(resolved) == ["harness-base:3.9", "harness-base:3.11", "harness-base:3.13"]
    _until(lambda: len(bootstrap.running) == 3)
    for gate in bootstrap.gates.values():
        gate.set()
    builds.close()
    assert bootstrap.most_at_once == 3 and sorted(b.python for b in builds.built()) == ["3.11", "3.13", "3.9"]


def test_an_environment_whose_base_exists_builds_and_saves_while_another_base_is_built(tmp_path: Path) -> None:
    bootstrap = GatedBootstrap()
    engine = FakeEngine(registry=False)
    engine.images["harness-base:3.11"] = "sha256:kept"
    builds = BaseBuilds(engine, bootstrap, print)
    matrix = parse_matrix({"name": "m", "environments": [{"python": "3.11", "tensorflow": "2.15.1"},
                                                         {"python": "3.13", "tensorflow": "2.20.0"}],
                           "models": ["dense"]}, path="m.yaml", sha256="0" * 64)
    request = RunRequest(out=tmp_path / "run", jobs=2)
    quiet = Console(quiet=True)
    resolved, envs = resolve_images(matrix, request, engine, console=quiet, environ={}, bases=builds)
    runner = prepare_run_dir(resolved, envs, request, engine, console=quiet, environ={}, bases=builds)
    step = threading.Thread(target=build, args=(runner,))
    step.start()
    first, second = (p.env.id for p in envs)
    _until(lambda: first in runner.saved)  # built and saved while Python 3.13's base is still being made
    assert bootstrap.running == {"trixie"} and len(engine.builds) == 1
    bootstrap.gates["trixie"].set()
    step.join(10)
    builds.close()
    assert runner.saved == {first, second} and len(engine.builds) == 2


def test_a_base_image_that_fails_meanwhile_stops_the_run_resumably(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    bootstrap = GatedBootstrap(failing=("bookworm",))
    for gate in bootstrap.gates.values():
        gate.set()
    monkeypatch.setattr("harness.workflow.Debootstrap", lambda: bootstrap)
    engine = FakeEngine(registry=False)
    out = tmp_path / "run"
    assert main(["run", str(SMOKE), "--out", str(out), "--jobs", "2", "-q"], engine=lambda: engine) == EXIT_ENGINE
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted" and engine.runs == []
