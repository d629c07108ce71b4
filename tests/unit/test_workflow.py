"""The command-line flows end to end against the fake engine: run, check and an interrupt, through main(argv)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fake_engine import FakeEngine
from harness.cli import main
from harness.engine import LABEL_RUN, RunResult, RunSpec
from harness.errors import EXIT_INTERRUPTED

SMOKE = Path(__file__).resolve().parents[2] / "matrices" / "smoke.yaml"
FACTORY = "import tensorflow as tf\n\ndef build():\n    return tf.keras.Sequential()\n"


def test_run_goes_through_every_phase_and_exits_with_the_reports_code(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    engine = FakeEngine()
    assert main(["run", str(SMOKE), "--out", str(tmp_path / "run"), "--jobs", "1", "-q"], engine=lambda: engine) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert {c["status"] for c in report["cells"]} == {"pass"}
    assert sorted(s.command[3] for s in engine.runs) == ["load", "load", "save", "save"]
    out = capsys.readouterr().out
    assert out.startswith("smoke: 2 environment(s), 8 cell(s)\nupgrade paths (1; downgrades: 1 safe, in report.md):")
    assert out.rstrip().endswith("8 cells: 8 pass\nexit 0: nothing new breaks (fail on breaks)")


def test_a_drifting_run_exits_1(tmp_path: Path) -> None:
    code = main(["run", str(SMOKE), "--out", str(tmp_path / "run"), "--jobs", "1", "-q"],
                engine=lambda: FakeEngine(drift=0.5))
    assert code == 1


class InterruptedEngine(FakeEngine):
    """An engine whose second container never finishes: Ctrl-C arrives while it runs."""

    def run(self, spec: RunSpec, log_path: Path) -> RunResult:
        if len(self.runs) == 1:
            self.runs.append(spec)
            raise KeyboardInterrupt
        return super().run(spec, log_path)


def test_an_interrupt_removes_the_runs_containers_and_resume_finishes_it(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    engine = InterruptedEngine()
    assert main(["run", str(SMOKE), "--out", str(out), "--jobs", "1", "-q"], engine=lambda: engine) == EXIT_INTERRUPTED
    run_id = json.loads((out / "run.json").read_text())["run_id"]
    assert engine.removed == [{LABEL_RUN: run_id}]
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    assert "--resume --out" in capsys.readouterr().err
    fresh = FakeEngine()
    fresh.images = engine.images  # the images built before the interrupt are reused
    assert main(["run", str(SMOKE), "--out", str(out), "--resume", "-q"], engine=lambda: fresh) == 0
    assert len(fresh.runs) == 3  # the save that finished is not redone: the other save and two loads
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def test_check_runs_the_same_workflow_and_prints_its_verdict(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mods.py").write_text(FACTORY)
    engine = FakeEngine()
    code = main(["check", "--from", "2.15.1", "--to", "2.16.2+keras3.3.3", "--model", f"{tmp_path / 'mods.py'}:build",
                 "--inputs", "4x3", "--out", str(tmp_path / "check"), "-q"], engine=lambda: engine)
    assert code == 0
    # The source, the target, and the target's TensorFlow with tf-keras: a save and a load container each.
    assert len(engine.runs) == 6
    verdict = json.loads((tmp_path / "check" / "check.json").read_text())
    assert (verdict["verdict"], verdict["route"]) == ("safe", ["keras", "load_model"])
    assert (tmp_path / "check" / "check.yaml").is_file() and (tmp_path / "check" / "report.json").is_file()
    assert "SAFE: your route works in the target" in capsys.readouterr().out


def test_check_says_unsafe_when_the_target_drifts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mods.py").write_text(FACTORY)
    code = main(["check", "--from", "2.15.1", "--to", "2.16.2+keras3.3.3", "--model", f"{tmp_path / 'mods.py'}:build",
                 "--inputs", "4x3", "--out", str(tmp_path / "check"), "-q"], engine=lambda: FakeEngine(drift=0.5))
    assert code == 1
    assert "UNSAFE" in capsys.readouterr().out
