"""doctor and the leftover sweep against a fake engine: stale containers, untagged images, every check."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
from test_base_images import FakeBootstrap

from fake_docker import FakeDocker
from harness.cli import main
from harness.doctor import Finding, diagnose, pip_findings, redact, render, runtime_findings
from harness.engine import LABEL_BASE, LABEL_HOST, LABEL_MANAGED, LABEL_PID, ContainerInfo
from harness.leftovers import is_stale, owner_labels, remove_stale_containers, stale_containers
from harness.matrix import Matrix, PipSettings, parse_matrix
from harness.plan import plan_environments

HOST = socket.gethostname()
DEAD_PID = "999999999"  # above any pid_max: no such process


def container(name: str, running: bool = False, **labels: str) -> ContainerInfo:
    return ContainerInfo(id=f"id-{name}", name=name, labels={LABEL_MANAGED: "true", **labels}, running=running)


def _matrix(base_image: str = "harness-base:{python}") -> Matrix:
    return parse_matrix({"environments": [{"python": "3.11", "tensorflow": "2.15.1"},
                                          {"python": "3.13", "tensorflow": "2.20.0"}]},
                        path="m.yaml", sha256="0" * 64, base_image=base_image)


def test_stale_means_the_owning_process_on_this_host_is_gone() -> None:
    assert is_stale(container("dead", running=True, **{LABEL_HOST: HOST, LABEL_PID: DEAD_PID}), HOST)
    assert not is_stale(container("alive", running=True, **{LABEL_HOST: HOST, LABEL_PID: str(os.getpid())}), HOST)
    assert not is_stale(container("elsewhere", **{LABEL_HOST: "other-host", LABEL_PID: DEAD_PID}), HOST)
    assert is_stale(container("old-stopped"), HOST)  # no owner labels: a live run removes what it stops
    assert not is_stale(container("old-running", running=True), HOST)


def test_owner_labels_name_this_process() -> None:
    assert owner_labels() == {LABEL_HOST: HOST, LABEL_PID: str(os.getpid())}


def test_sweep_removes_only_dead_runs_containers() -> None:
    engine = FakeDocker([container("dead", running=True, **{LABEL_HOST: HOST, LABEL_PID: DEAD_PID}),
                         container("mine", running=True, **owner_labels()),
                         ContainerInfo("id-build", "build", {LABEL_BASE: "debian-trixie"}, running=False,
                                       finished=time.time() - 7 * 3600),
                         # a build step that just ended: its layer is being committed, the build goes on
                         ContainerInfo("id-step", "step", {LABEL_BASE: "debian-trixie"}, running=False,
                                       finished=time.time() - 30)])
    assert remove_stale_containers(engine) == 1
    assert engine.removed_ids == ["id-dead"]
    assert [c.name for c in stale_containers(engine, builds=True)] == ["build"]  # doctor also takes failed builds


def test_doctor_reports_leftovers_and_cleanup_removes_them(tmp_path: Path) -> None:
    dead = container("dead", **{LABEL_HOST: HOST, LABEL_PID: DEAD_PID})
    engine = FakeDocker([dead], dangling={LABEL_MANAGED: ["sha256:a"], LABEL_BASE: ["sha256:b"]})
    checks = diagnose(engine, None, {}, out=tmp_path, runtime=None, cleanup=False,
                      bootstrap=FakeBootstrap())
    leftovers = next(c for c in checks if c.name == "leftovers")
    assert leftovers.level == "warn" and "1 container" in leftovers.detail and "2 untagged" in leftovers.detail
    assert engine.removed_ids == []
    checks = diagnose(engine, None, {}, out=tmp_path, runtime=None, cleanup=True,
                      bootstrap=FakeBootstrap())
    assert next(c for c in checks if c.name == "cleanup").detail.startswith("removed 1/1 container(s) and 2/2")
    assert engine.removed_ids == ["id-dead"] and engine.dangling == {LABEL_MANAGED: [], LABEL_BASE: []}


def test_missing_base_images_say_how_to_build_them(tmp_path: Path) -> None:
    engine = FakeDocker()
    engine.images["harness-base:3.11"] = "sha256:base"
    tag = plan_environments(_matrix(), {})[0].image.tag
    engine.images[tag] = "sha256:env"
    checks = {c.name: c for c in diagnose(engine, _matrix(), {}, out=tmp_path, runtime=None, cleanup=False,
                                          bootstrap=FakeBootstrap())}
    assert checks["base image harness-base:3.11"].level == "ok"
    assert checks["base image harness-base:3.13"].detail == ("missing; runs pull it, or build harness-base:3.13 from "
                                                             "Debian packages once (about a minute) when the "
                                                             "registry cannot be reached")
    assert checks["environment images"].detail.startswith("1/2 of ")
    assert "about 3.5 GB needed for the 1 image(s) still to build" in checks["disk (engine storage)"].detail
    pulled = {c.name: c for c in diagnose(engine, _matrix("python:{python}-slim"), {}, out=tmp_path, runtime=None,
                                          cleanup=False, bootstrap=FakeBootstrap())}
    assert "runs pull it" in pulled["base image python:3.13-slim"].detail


def test_remote_engine_warns_that_bind_mounts_need_shared_paths(tmp_path: Path) -> None:
    engine = FakeDocker(endpoint="ssh://ci@builder")
    checks = {c.name: c for c in diagnose(engine, None, {}, out=tmp_path, runtime=None, cleanup=False,
                                          bootstrap=FakeBootstrap())}
    assert checks["remote engine"].level == "warn" and "same paths" in checks["remote engine"].detail
    assert checks["disk (engine storage)"].detail.endswith("not checked (not on this machine)")
    assert checks["wheel cache"].level == "fail" and "HARNESS_WHEEL_CACHE=off" in checks["wheel cache"].detail


def test_runtime_must_be_installed() -> None:
    info: dict[str, object] = {"Runtimes": {"runc": {}}}
    assert runtime_findings(info, "runsc")[0].level == "fail"
    assert runtime_findings(info, None)[0].detail == "default runtime; available: runc"


def test_pip_settings_are_shown_without_credentials(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("pem")
    environ = {"PIP_INDEX_URL": "https://user:secret@mirror.example/simple", "PIP_EXTRA_INDEX_URL": "file:///opt/x",
               "REQUESTS_CA_BUNDLE": str(tmp_path / "gone.pem"), "SSL_CERT_FILE": str(ca)}
    checks = pip_findings(_matrix(), environ)
    text = "\n".join(c.detail for c in checks)
    assert "secret" not in text and "https://***@mirror.example/simple" in text
    assert f"{ca} (used on this host by the wheel cache; never copied into images)" in text
    direct = "\n".join(c.detail for c in pip_findings(_matrix(), {**environ, "HARNESS_WHEEL_CACHE": "off"}))
    assert f"{ca} (copied into images)" in direct
    assert "carries credentials" in direct and "carries credentials" not in text
    assert any(c.level == "warn" and "gone.pem" in c.detail for c in checks)
    assert "file:///opt/x" in text  # named as not passed into builds
    assert pip_findings(parse_matrix({"environments": [{"python": "3.11", "tensorflow": "2.15.1"}]}, path="m",
                                  sha256="0" * 64), {})[1].detail.startswith("none")
    assert redact("https://mirror.example/simple") == "https://mirror.example/simple"
    assert PipSettings().index_url is None


def test_render_exits_1_only_on_a_failed_check() -> None:
    lines: list[str] = []
    assert render([Finding("ok", "a", "fine"), Finding("warn", "b", "hm")], lines.append) == 0
    assert lines == ["ok    a: fine", "warn  b: hm", "verdict: ready, with 1 warning(s): b"]
    assert render([Finding("fail", "c", "no"), Finding("warn", "b", "hm")], lines.append) == 1
    assert lines[-1] == "verdict: NOT READY: 1 check(s) failed: c"
    render([Finding("ok", "a", "fine")], lines.append)
    assert lines[-1] == "verdict: ready"


def _default_like() -> Matrix:
    return _matrix("python:{python}-slim")


def test_local_base_images_and_the_images_built_on_them_are_recognised(tmp_path: Path) -> None:
    # A host without a registry: python:X-slim is absent, harness-base:X stands in, and the environment
    # images built FROM it count as built, although the matrix names python:X-slim.
    engine = FakeDocker()
    local = _matrix("harness-base:{python}")
    for python in ("3.11", "3.13"):
        engine.images[f"harness-base:{python}"] = "sha256:base"
    for plan in plan_environments(local, {}):
        engine.images[plan.image.tag] = "sha256:env"
    checks = {c.name: c for c in diagnose(engine, _default_like(), {}, out=tmp_path, runtime=None, cleanup=False,
                                          bootstrap=FakeBootstrap())}
    assert checks["base image python:3.11-slim"].level == "ok"
    assert "harness-base:3.11 (present)" in checks["base image python:3.11-slim"].detail
    assert checks["environment images"].detail == "2/2 of m built; nothing to build"
    assert checks["disk (engine storage)"].detail.endswith("; no image to build")


def test_a_base_image_that_cannot_be_built_here_names_the_command(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    checks = {c.name: c for c in diagnose(FakeDocker(), _default_like(), {}, out=tmp_path, runtime=None,
                                          cleanup=False, bootstrap=FakeBootstrap("building one needs root"))}
    finding = checks["base image python:3.13-slim"]
    assert finding.level == "warn"
    assert finding.detail.endswith("building one needs root: sudo python -m harness base-images 3.13")


def test_the_wheel_cache_is_described(tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a-1.0-py3-none-any.whl").write_bytes(b"x" * 10)
    (tmp_path / "files" / "a-1.0-py3-none-any.whl.json").write_text("{}")
    checks = {c.name: c for c in diagnose(FakeDocker(), None, {"HARNESS_WHEEL_CACHE": str(tmp_path)}, out=tmp_path,
                                          runtime=None, cleanup=False,
                                          bootstrap=FakeBootstrap())}
    assert checks["wheel cache"].detail.startswith(f"{tmp_path}: 1 file(s), 0.0 GB")
    off = {c.name: c for c in diagnose(FakeDocker(), None, {"HARNESS_WHEEL_CACHE": "off"}, out=tmp_path,
                                       runtime=None, cleanup=False,
                                          bootstrap=FakeBootstrap())}
    assert off["wheel cache"].detail.startswith("not used (HARNESS_WHEEL_CACHE=off)")


def test_the_cell_cache_is_described_with_its_bound(tmp_path: Path) -> None:
    def cell_cache(environ: dict[str, str]) -> str:
        found = {c.name: c for c in diagnose(FakeDocker(), None, {"HARNESS_CACHE": str(tmp_path), **environ},
                                             out=tmp_path, runtime=None, cleanup=False, bootstrap=FakeBootstrap())}
        return f"{found['cell cache'].level} {found['cell cache'].detail}"

    assert cell_cache({}) == (f"ok {tmp_path / 'cells'}: nothing counted yet, at most 10.0 GB "
                              "(HARNESS_CELL_CACHE_MAX); the entries used longest ago go first")
    (tmp_path / "cells").mkdir()
    (tmp_path / "cells" / "usage.json").write_text('{"bytes": 1610612736}')
    assert "1.5 GB, at most 20.0 GB" in cell_cache({"HARNESS_CELL_CACHE_MAX": "20g"})
    assert "no bound (HARNESS_CELL_CACHE_MAX=0)" in cell_cache({"HARNESS_CELL_CACHE_MAX": "0"})
    assert cell_cache({"HARNESS_CELL_CACHE_MAX": "lots"}).startswith("fail HARNESS_CELL_CACHE_MAX: expected a size")


def test_doctor_without_docker_is_exit_3_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert main(["doctor"]) == 3
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "docker" in err
