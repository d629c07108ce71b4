"""Isolation levels against a fake engine whose load of one artifact is hostile: under --isolation target it can
rewrite its target's other cells (the default level says so in run.json and report.json); under --isolation artifact
its forgeries are refused. Containers never run as root, and get their writable mounts only while they run."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fake_engine import FakeEngine, _host, artifacts_seen, planned_runner
from harness.agent import models as agent_models
from harness.agent import protocol
from harness.agent.worker import save_atomic
from harness.engine import RunResult, RunSpec
from harness.matrix import parse_matrix
from harness.plan import ISOLATION_PROMISES, Limits
from harness.rundir import RunDir
from harness.workflow import execute

MATRIX = {"environments": [{"python": "3.11", "tensorflow": "2.15.1"},
                           {"python": "3.11", "tensorflow": "2.16.2", "keras": "3.3.3"}],
          "models": ["dense", "lambda"], "formats": ["h5"], "loaders": ["load_model"]}
HOSTILE = "lambda"


class HostileEngine(FakeEngine):
    """Loads drift across environments; loading the hostile model also forges every other cell of its target:
    an 'ok' record, and predictions equal to the source's reference, so they would pass."""

    def __init__(self) -> None:
        super().__init__(drift=0.5)
        self.forged_outputs = 0

    def _load(self, request: protocol.LoadRequest, mounts: Mapping[str, Path], records: Path) -> None:
        super()._load(request, mounts, records)
        if not any(m.name == HOSTILE for m in request.models):
            return
        if request.only is not None and request.only.model != HOSTILE:
            return
        # Every cell it can guess the name of: in its own container it sees only its source's artifacts.
        specs = [protocol.resolve_probe(name, ("h5",), ("load_model",)) for name in ("dense", HOSTILE)]
        writer: protocol.RecordWriter[protocol.LoadRecord] = protocol.RecordWriter(str(records))
        for task in protocol.plan_tasks(str(artifacts_seen(request, mounts)), protocol.OUTPUTS_MOUNT, specs):
            if task.model == HOSTILE:
                continue
            try:
                output = _host(mounts, task.output)
            except ValueError:  # not mounted in this container: the read-only root refuses the write
                output = None
            if output is not None:
                output.parent.mkdir(parents=True, exist_ok=True)
                np.save(output, np.load(Path(task.model_dir) / protocol.REFERENCE))
                self.forged_outputs += 1
            writer.write({"kind": "load", "target": request.env, "status": "ok", "evaluate": {"loss": 0.5},
                          "source": task.source, "model": task.model, "format": task.format, "loader": task.loader})
        writer.close()


def _run(engine: FakeEngine, out: Path, isolation: str) -> dict[str, Any]:
    matrix = parse_matrix(MATRIX, path="m.yaml", sha256="0" * 64)
    report = execute(planned_runner(engine, matrix, RunDir.prepare(out, resume=False),
                                    limits=Limits(isolation=isolation)))
    assert report is not None
    return report


def _statuses(report: dict[str, Any], model: str) -> set[str]:
    return {c["status"] for c in report["cells"] if c["model"] == model and c["source"] != c["target"]}


def test_under_target_isolation_a_hostile_file_rewrites_its_targets_other_cells_and_the_run_says_so(
        tmp_path: Path) -> None:
    report = _run(HostileEngine(), tmp_path / "run", "target")
    assert _statuses(report, "dense") == {"pass"}  # forged: every honest load drifted
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["isolation"] == {"level": "target", "promise": ISOLATION_PROMISES["target"]}
    assert "rewrite the records and predictions of every cell of its target's column" in run["isolation"]["promise"]


def test_under_artifact_isolation_a_hostile_file_cannot_touch_another_files_cells(tmp_path: Path) -> None:
    engine = HostileEngine()
    report = _run(engine, tmp_path / "run", "artifact")
    assert _statuses(report, "dense") == {"drift"}  # what the honest loads found
    assert engine.forged_outputs == 0
    loads = [s for s in engine.runs if s.command[3] == "load"]
    assert len(loads) == 2 * 2 * 2  # a container per (target, source, model) artifact: one format here
    for target in ("py3.11-tf2.15.1", "py3.11-tf2.16.2-keras3.3.3"):
        phase = json.loads((tmp_path / "run" / "envs" / target / "load.json").read_text())
        assert phase["refused_records"] == 2 * 2  # each hostile container forged the dense cells of both sources
    assert not list((tmp_path / "run" / "records").glob("load-*/**/*.jsonl"))
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["isolation"]["level"] == "artifact"


def test_artifact_isolation_resumes_only_unfinished_artifacts(tmp_path: Path) -> None:
    engine = FakeEngine()
    report = _run(engine, tmp_path / "run", "artifact")
    assert {c["status"] for c in report["cells"]} == {"pass"}
    records = tmp_path / "run" / "records" / "load-py3.11-tf2.15.1.jsonl"
    lines = records.read_text().splitlines()
    records.write_text("\n".join(lines[:1]) + "\n")  # killed after its first artifact
    matrix = parse_matrix(MATRIX, path="m.yaml", sha256="0" * 64)
    again = FakeEngine()
    report = execute(planned_runner(again, matrix, RunDir.prepare(tmp_path / "run", resume=True),
                                    limits=Limits(isolation="artifact"), run_id="again", resume=True))
    assert report is not None and {c["status"] for c in report["cells"]} == {"pass"}
    assert len(again.runs) == 3  # the three artifacts that target had not recorded


class OwnershipEngine(FakeEngine):
    """Notes, for every container, who owned its writable mounts while it ran (from the chown calls made so far)."""

    def __init__(self, owners: dict[Path, tuple[int, int]]) -> None:
        super().__init__()
        self.owners = owners
        self.seen: list[tuple[str, dict[Path, tuple[int, int]]]] = []

    def run(self, spec: RunSpec, log_path: Path) -> RunResult:
        writable = [m.host for m in spec.mounts if not m.read_only]
        self.seen.append((spec.user or "", {p: self.owners.get(p, (0, 0)) for p in writable}))
        return super().run(spec, log_path)


def test_a_root_harness_lends_its_containers_their_writable_mounts_and_takes_them_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    owners: dict[Path, tuple[int, int]] = {}
    monkeypatch.setattr(os, "getuid", lambda: 0)
    monkeypatch.setattr(os, "getgid", lambda: 0)
    monkeypatch.setattr(os, "chown", lambda path, uid, gid, **_: owners.__setitem__(Path(path), (uid, gid)))
    engine = OwnershipEngine(owners)
    _run(engine, tmp_path / "run", "target")
    assert engine.seen and all(user == "65534:65534" for user, _ in engine.seen)
    assert all(set(during.values()) == {(65534, 65534)} for _, during in engine.seen)
    lent = {path for _, during in engine.seen for path in during}
    assert {owners[path] for path in lent} == {(0, 0)}  # given back


# ---------------------------------------------------------------------------- within one worker process


def test_two_users_modules_of_one_name_each_load_their_own_code(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent_models, "USER_MOUNT", str(tmp_path))
    for user, answer in (("alice", 1), ("bob", 2)):
        (tmp_path / user).mkdir()
        (tmp_path / user / "mymodels.py").write_text(f"ANSWER = {answer}\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    assert [agent_models.import_code(str(tmp_path / user), "mymodels:ANSWER")
            for user in ("alice", "bob", "alice")] == [1, 2, 1]


@pytest.mark.parametrize("order", [("alice", "bob", "alice"), ("bob", "alice", "bob")])
def test_a_namespace_package_never_gets_another_users_regular_package_of_its_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, order: tuple[str, ...]) -> None:
    monkeypatch.setattr(agent_models, "USER_MOUNT", str(tmp_path))
    (tmp_path / "alice" / "mypkg").mkdir(parents=True)  # a namespace package: no __init__.py
    (tmp_path / "alice" / "mypkg" / "mod.py").write_text("ANSWER = 'alice'\n")
    (tmp_path / "bob" / "mypkg").mkdir(parents=True)
    (tmp_path / "bob" / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "bob" / "mypkg" / "mod.py").write_text("ANSWER = 'bob'\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    assert [agent_models.import_code(str(tmp_path / user), "mypkg.mod:ANSWER") for user in order] == list(order)


def test_predictions_are_written_whole_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "outputs" / "a" / "load_model.npy"
    save_atomic(str(path), np.arange(6.0).reshape(2, 3))
    assert np.load(path).tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]

    def dies(*_: object, **__: object) -> None:
        raise OSError("killed while writing")

    monkeypatch.setattr(np, "save", dies)
    with pytest.raises(OSError, match="killed"):
        save_atomic(str(path), np.zeros(3))
    assert np.load(path).shape == (2, 3)  # the earlier whole file, never a torn one
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_the_report_says_what_the_isolation_level_promises(tmp_path: Path) -> None:
    for level in ("target", "artifact"):
        report = _run(FakeEngine(), tmp_path / level, level)
        assert report["isolation"] == {"level": level, "promise": ISOLATION_PROMISES[level]}
        assert json.loads((tmp_path / level / "report.json").read_text())["isolation"]["level"] == level
        assert f"Isolation `{level}`: {ISOLATION_PROMISES[level][:40]}" in (tmp_path / level / "report.md").read_text()
