"""--resume (and phase jobs sharing a run directory) continue only a run of the same matrix, and retry failed builds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fake_engine import FakeEngine
from harness.cli import main
from harness.matrix import load_matrix
from harness.plan import plan_environments

ENVS = [{"python": "3.11", "tensorflow": "2.15.1"}, {"python": "3.11", "tensorflow": "2.16.2", "keras": "3.3.3"}]
MATRIX = {"name": "m", "environments": ENVS, "models": ["dense"], "formats": ["h5"], "loaders": ["load_model"]}


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_BASE_IMAGE", raising=False)


def _write(tmp_path: Path, **changes: object) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({**MATRIX, **changes}))
    return path


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("changes", "said"), [
    ({"environments": [*ENVS, {"python": "3.11", "tensorflow": "2.17.0"}]}, "environments added: py3.11-tf2.17.0"),
    ({"environments": ENVS[:1]}, "environments removed: py3.11-tf2.16.2-keras3.3.3"),
    ({"environments": [ENVS[0], {**ENVS[1], "packages": ["h5py==3.11.0"]}]},
     "environments changed: py3.11-tf2.16.2-keras3.3.3"),
    ({"models": ["dense", "lambda"]}, "models added: lambda"),
    ({"formats": ["h5", "keras"]}, "formats h5 became h5, keras"),
])
@pytest.mark.parametrize("how", ["resume", "phase"])
def test_a_changed_matrix_is_not_continued(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           changes: dict[str, object], said: str, how: str) -> None:
    out = tmp_path / "run"
    assert main(["run", str(_write(tmp_path)), "--out", str(out), "-q"], engine=FakeEngine) == 0
    before = _files(out)
    engine = FakeEngine()
    again = ["--resume"] if how == "resume" else ["--phase", "load"]
    assert main(["run", str(_write(tmp_path, **changes)), "--out", str(out), "-q", *again],
                engine=lambda: engine) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "the matrix changed since this run began" in err and said in err, err
    assert not engine.runs and not engine.builds
    assert _files(out) == before


def test_tolerance_and_expectations_may_change_on_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["run", str(_write(tmp_path)), "--out", str(out), "-q"], engine=FakeEngine) == 0
    path = _write(tmp_path, tolerance={"rtol": 0.1, "atol": 0.1},
                  expect=[{"model": "dense", "status": "drift", "reason": "known"}])
    assert main(["run", str(path), "--out", str(out), "-q", "--resume"], engine=FakeEngine) == 0
    assert json.loads((out / "report.json").read_text())["tolerance"] == {"rtol": 0.1, "atol": 0.1}


def test_resume_retries_a_build_that_failed(tmp_path: Path) -> None:
    path, out = _write(tmp_path), tmp_path / "run"
    failing = plan_environments(load_matrix(path), {})[1].image.tag
    assert main(["run", str(path), "--out", str(out), "-q"],
                engine=lambda: FakeEngine(failing_tags=frozenset({failing}))) == 1
    engine = FakeEngine()
    assert main(["run", str(path), "--out", str(out), "-q", "--resume"], engine=lambda: engine) == 0
    assert failing in engine.builds
    report = json.loads((out / "report.json").read_text())
    assert {e["status"] for e in report["environments"]} == {"ok"}
    assert {c["status"] for c in report["cells"]} == {"pass"}
