"""A fresh host, for real: no base image built (nor, here, pullable), an empty wheel cache, Docker and Podman.

The base images are built under a name of their own (HARNESS_BASE_REPO), so this runs from nothing on any
machine without touching the harness-base images others use; everything built here is removed at the end.

- the README's command, `python -m harness run matrices/smoke.yaml`, with no flag and no HARNESS_BASE_IMAGE:
  it builds the base image it lacks, then the environments, and every cell runs;
- two environments sharing one TensorFlow release, built cold: tensorflow-cpu is downloaded once, and run.json
  says so;
- the same smoke matrix under Podman: the same cells, with the same statuses and figures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.report.schema import load_report

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "matrices" / "smoke.yaml"
SHARED_TF = """
name: shared-tf
environments:
  - {python: "3.11", tensorflow: "2.16.2", keras: "3.3.3"}
  - {python: "3.11", tensorflow: "2.16.2", keras: "tf-keras"}
models: [dense]
formats: [h5]
loaders: [load_model]
"""
MB = 1_000_000
TF_WHEEL_MB = 150  # tensorflow-cpu 2.16.2 for CPython 3.11 is about 215 MB


class Host:
    """The fresh host's settings, and what was built on it (removed at the end)."""

    def __init__(self, root: Path) -> None:
        self.repo = f"harness-base-it{os.getpid()}"
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if k not in ("HARNESS_BASE_IMAGE", "HARNESS_ENGINE")}
        self.env.update(HARNESS_BASE_REPO=self.repo, HARNESS_CACHE=str(root / "cache"))
        self.built: dict[str, set[str]] = {"docker": set(), "podman": set()}
        self.parents: set[str] = set()  # images others are built FROM

    def run(self, matrix: Path, out: Path, *extra: str, cache: Path,
            engine: str = "docker") -> subprocess.CompletedProcess[str]:
        """`python -m harness run MATRIX --out OUT` as a user types it, with this host's cache and base names."""
        env = dict(self.env, HARNESS_WHEEL_CACHE=str(cache))
        argv = [sys.executable, "-m", "harness", "--engine", engine, "run", str(matrix), "--out", str(out), *extra]
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env, timeout=3600, check=False)
        (out.parent / f"{out.name}.console.log").write_text(proc.stderr)  # the progress lines, timed, kept
        self.built[engine].add(f"{self.repo}:3.11")
        if (out / "run.json").is_file():
            for entry in load(out / "run.json")["environments"]:  # its image, and the TensorFlow image it is FROM
                parent = (entry.get("build") or {}).get("from")
                self.built[engine].update(i for i in (entry.get("image"), parent) if i)
                self.parents.update([parent] if parent else [])
        return proc

    def remove(self) -> None:
        for engine, images in self.built.items():
            if images and shutil.which(engine):  # children first: an image another is built FROM goes after them
                subprocess.run([engine, "rmi", *sorted(images, key=self._generation)], capture_output=True,
                               check=False, timeout=600)

    def _generation(self, image: str) -> tuple[int, str]:
        """Environments, then the TensorFlow images they are built FROM, then the base images."""
        return (2 if image.startswith(self.repo) else 1 if image in self.parents else 0), image


def load(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, docker: None) -> Iterator[Host]:
    fresh = Host(tmp_path_factory.mktemp("fresh-host"))
    yield fresh
    fresh.remove()


@pytest.fixture(scope="module")
def smoke(host: Host) -> Run:
    """The README's command on the fresh host (a clean checkout's working directory, run from the repo)."""
    out = host.root / "smoke-docker"
    return host.run(SMOKE, out, "--jobs", "1", cache=host.root / "wheels"), out


def _cells(report: dict[str, Any]) -> dict[tuple[str, ...], dict[str, Any]]:
    return {(c["source"], c["target"], c["model"], c["format"], c["loader"]): c for c in report["cells"]}


Run = tuple[subprocess.CompletedProcess[str], Path]


def test_the_smoke_matrix_runs_on_a_host_with_no_base_image(host: Host, smoke: Run) -> None:
    proc, out = smoke
    assert proc.returncode in (0, 1), proc.stderr  # 1: the Keras 2 -> 3 break the smoke matrix shows
    report = load_report(out / "report.json")
    assert report["cells"] and not [c for c in report["cells"] if c["status"] == "skipped"]
    assert {e["status"] for e in report["environments"]} == {"ok"}
    bases = {e["spec"]["base_image"] for e in load(out / "run.json")["environments"]}
    if bases == {"python:3.11-slim"}:
        pytest.skip("python:3.11-slim was pullable here: the base image was not needed")
    assert bases == {f"{host.repo}:3.11"}
    label = subprocess.run(["docker", "image", "inspect", "--format", '{{index .Config.Labels "org.harness.base"}}',
                            f"{host.repo}:3.11"], capture_output=True, text=True, check=True).stdout.strip()
    assert label == "debian-bookworm"
    assert f"{host.repo}:3.11: built in" in proc.stderr


def test_two_environments_sharing_tensorflow_download_its_wheel_once(host: Host, smoke: Run) -> None:
    matrix = host.root / "shared-tf.yaml"
    # A base of their own (the smoke run built the Keras 3 image on the fresh one): no layer of these images
    # exists, both builds are cold, as after `docker rmi` of both.
    base = f"{host.repo}-shared"
    made = subprocess.run(["docker", "build", "-q", "-t", f"{base}:3.11", "-"], capture_output=True, text=True,
                          input=f"FROM {_base_of(smoke)}\nLABEL org.harness.test=shared-tf\n", check=False)
    assert made.returncode == 0, made.stderr
    host.built["docker"].add(f"{base}:3.11")
    matrix.write_text(SHARED_TF + f'base_image: "{base}:{{python}}"\n')
    cache = host.root / "wheels-shared-tf"  # empty: the first build downloads, the second reuses
    out = host.root / "shared-tf"
    proc = host.run(matrix, out, "--phase", "build", "--jobs", "1", cache=cache)
    assert proc.returncode == 0, proc.stderr
    run = load(out / "run.json")
    first, second = (e["build"]["wheels"] for e in run["environments"])
    assert first["bytes_downloaded"] > TF_WHEEL_MB * MB and first["reused"] == 0
    assert second["bytes_downloaded"] < 20 * MB  # tf-keras and the Keras 3 wheel tf 2.16 also pulls in
    # The second builds FROM the TensorFlow image the first one built: it installs no TensorFlow at all.
    assert second["bytes_downloaded"] + second["bytes_reused"] < TF_WHEEL_MB * MB
    assert run["wheels"]["downloaded"] == first["downloaded"] + second["downloaded"]
    assert len(list((cache / "files").glob("tensorflow_cpu-2.16.2-*.whl"))) == 1


def test_podman_runs_the_smoke_matrix_with_the_same_cells(host: Host, smoke: Run) -> None:
    if not shutil.which("podman"):
        _unavailable("podman is not installed")
    info = subprocess.run(["podman", "info", "--format", "{{.Version.Version}}"], capture_output=True, text=True,
                          check=False, timeout=120)
    if info.returncode != 0:
        _unavailable(f"podman cannot start: {(info.stderr.strip().splitlines() or ['no output'])[-1]}")
    out = host.root / "smoke-podman"
    proc = host.run(SMOKE, out, "--jobs", "1", cache=host.root / "wheels", engine="podman")
    report = load_report(out / "report.json")
    why = _why(report, proc.stderr)
    assert {e["status"] for e in report["environments"]} == {"ok"}, why
    assert proc.returncode == smoke[0].returncode, why
    docker_cells, podman_cells = (_cells(load_report(o / "report.json")) for o in (smoke[1], out))
    assert podman_cells.keys() == docker_cells.keys()
    differ = {k: (_outcome(docker_cells[k]), _outcome(c), c.get("reason")) for k, c in podman_cells.items()
              if _outcome(c) != _outcome(docker_cells[k])}
    assert not differ, why
    assert load(out / "run.json")["wheels"]["downloaded"] == 0  # the Docker run's wheels, served again


def _why(report: dict[str, Any], console: str) -> str:
    """What a failed assertion shows of a run: each environment's status and error, and the console's end."""
    envs = [f"{e['id']}: {e['status']} {e.get('error') or ''}".strip() for e in report["environments"]]
    return "\n".join([*envs, *console.splitlines()[-40:]])


def _base_of(run: Run) -> str:
    """The base image a run's environments were built on."""
    return str(load(run[1] / "run.json")["environments"][0]["spec"]["base_image"])


def _outcome(cell: dict[str, Any]) -> tuple[Any, ...]:
    """What a cell found: status, figures, and the error's type and message."""
    error = cell.get("error") or {}
    return (cell["status"], cell.get("max_abs_diff"), cell.get("max_rel_diff"), cell.get("bit_exact"),
            error.get("type"), error.get("message"))


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"Podman must run in CI (.ci/run installs it): {reason}")
    pytest.skip(reason)
