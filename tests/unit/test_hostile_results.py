"""A load container that damages its own files (records, predictions) or a save container its environment's files:
the damage costs only the cells those files hold, never the run, never the report. Under --isolation artifact every
other artifact's cells stay as they were; under the default level the run and its report survive.

Numbers read back are finite and in range (NaN seconds once made report.json impossible to write), every records
file is read bounded and without following links, and every path the host writes or deletes below the run
directory is walked without following a link a container left.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from fake_engine import FakeEngine, _host, artifacts_seen, planned_runner
from fake_run import ENV_A, ENV_B, FakeRun, append_jsonl, strict_json
from fake_run import cell as _cell
from harness import untrusted
from harness.agent import protocol
from harness.cli import main
from harness.engine import _tail as engine_tail
from harness.matrix import parse_matrix
from harness.plan import Limits
from harness.report.writers import write_reports
from harness.rundir import RunDir
from harness.workflow import execute

MATRIX = {"environments": [{"python": "3.11", "tensorflow": "2.15.1"}], "models": ["dense", "classifier", "lambda"],
          "formats": ["h5"], "loaders": ["load_model"]}
HOSTILE = "lambda"
SECRET = "host-secret-91b2"
Damage = Callable[[Path, list[protocol.LoadTask], Mapping[str, Path]], None]


def _append(records: Path, tasks: list[protocol.LoadTask], **fields: Any) -> None:
    """Records of its own cells, as the last word (a later record wins), in JSON with NaN and Infinity."""
    with records.open("a", encoding="utf-8") as fh:
        for task in tasks:
            cell = {k: getattr(task, k) for k in protocol.CellKey._fields if k != "target"}
            fh.write(json.dumps({"kind": "load", "status": "ok", **cell, **fields}) + "\n")


def _npy(tasks: list[protocol.LoadTask], mounts: Mapping[str, Path], header: dict[str, Any]) -> None:
    for task in tasks:
        with _host(mounts, task.output).open("wb") as fh:
            np.lib.format.write_array_header_1_0(fh, header)


def _linked_output(tasks: list[protocol.LoadTask], mounts: Mapping[str, Path], secret: Path) -> None:
    for task in tasks:
        output = _host(mounts, task.output)
        output.unlink()
        np.save(secret.with_suffix(".npy"), np.zeros((2, 4), dtype="float32"))
        output.symlink_to(secret.with_suffix(".npy"))


# Each damages what its container may write: its own record file and its own predictions.
DAMAGES: dict[str, Damage] = {
    "NaN seconds": lambda records, tasks, _: _append(records, tasks, seconds=math.nan),
    "infinite load seconds": lambda records, tasks, _: _append(records, tasks, load_seconds=math.inf),
    "negative seconds": lambda records, tasks, _: _append(records, tasks, seconds=-1.0),
    "a 31-digit exit code": lambda records, tasks, _: _append(records, tasks, status="crash", exit_code=10**30),
    "NaN deep in loader options": lambda records, tasks, _: _append(records, tasks, loader_options={"a": [math.nan]}),
    "records past 512 MiB (sparse)": lambda records, tasks, _: os.truncate(records, 600 << 20),
    "truncated records": lambda records, tasks, _: os.truncate(records, records.stat().st_size // 2),
    "records replaced by a FIFO": lambda records, tasks, _: (records.unlink(), os.mkfifo(records)),
    "a zero-size .npy of a huge shape": lambda records, tasks, mounts: _npy(
        tasks, mounts, {"descr": "<f4", "fortran_order": False, "shape": (0, 1 << 62)}),
    "a .npy of 65 dimensions": lambda records, tasks, mounts: _npy(
        tasks, mounts, {"descr": "<f4", "fortran_order": False, "shape": (1,) * 65}),
}


class DamagingEngine(FakeEngine):
    """Loads as FakeEngine does, then the container that loads the hostile model damages its own files."""

    def __init__(self, damage: Damage) -> None:
        super().__init__()
        self.damage = damage

    def _load(self, request: protocol.LoadRequest, mounts: Mapping[str, Path], records: Path) -> None:
        super()._load(request, mounts, records)
        if request.only is not None and request.only.model != HOSTILE:
            return
        tasks = [t for t in protocol.plan_tasks(str(artifacts_seen(request, mounts)), protocol.OUTPUTS_MOUNT,
                                                request.models)
                 if t.model == HOSTILE and (request.only is None or request.only.covers(t))]
        self.damage(records, tasks, mounts)


def _run(engine: FakeEngine, out: Path, isolation: str, resume: bool = False) -> dict[str, Any]:
    matrix = parse_matrix(MATRIX, path="m.yaml", sha256="0" * 64)
    runner = planned_runner(engine, matrix, RunDir.prepare(out, resume=resume), limits=Limits(isolation=isolation),
                            resume=resume)
    report = execute(runner)
    assert report is not None
    return report


def _by_model(report: dict[str, Any]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for c in report["cells"]:
        found.setdefault(c["model"], set()).add(c["status"])
    return found


def _whole(out: Path) -> dict[str, Any]:
    """report.json is standard JSON (no NaN), every view was written, and `harness report` renders it again."""
    report: dict[str, Any] = strict_json((out / "report.json").read_text())
    for name in ("report.md", "report.html", "junit.xml"):
        assert (out / name).stat().st_size > 0, name
    assert main(["report", str(out)]) in (0, 1)
    return report


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_under_artifact_isolation_an_artifact_that_damages_its_own_files_costs_only_its_cells(
        tmp_path: Path, damage: str) -> None:
    report = _run(DamagingEngine(DAMAGES[damage]), tmp_path / "run", "artifact")
    statuses = _by_model(_whole(tmp_path / "run"))
    assert statuses["dense"] == statuses["classifier"] == {"pass"}  # every other artifact's cells, as they were
    assert statuses[HOSTILE] <= {"error", "crash", "timeout"}, statuses
    assert _by_model(report) == statuses


def test_an_output_left_as_a_link_to_a_host_file_is_an_error_on_its_cell(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    damage: Damage = lambda records, tasks, mounts: _linked_output(tasks, mounts, secret)  # noqa: E731
    _run(DamagingEngine(damage), tmp_path / "run", "artifact")
    report = _whole(tmp_path / "run")
    hostile = [c for c in report["cells"] if c["model"] == HOSTILE]
    assert {(c["status"], c["error"]["type"]) for c in hostile} == {("error", "UnreadableFile")}
    assert _by_model(report)["dense"] == {"pass"}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_under_target_isolation_the_run_and_its_report_survive_the_same_damage(tmp_path: Path, damage: str) -> None:
    _run(DamagingEngine(DAMAGES[damage]), tmp_path / "run", "target")
    statuses = _by_model(_whole(tmp_path / "run"))
    assert statuses[HOSTILE] <= {"error", "crash", "timeout", "skipped"}, statuses


def test_records_that_cannot_be_opened_cost_only_their_cells(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreadable record file (made so by its container on a host that is not root): a PermissionError."""
    real = untrusted.read_bytes

    def denied(root: Path, path: Path, limit: int) -> bytes:
        if path.suffix == ".jsonl" and HOSTILE in path.parts:
            raise PermissionError(13, "Permission denied", str(path))
        return real(root, path, limit)

    monkeypatch.setattr(untrusted, "read_bytes", denied)
    _run(FakeEngine(), tmp_path / "run", "artifact")
    statuses = _by_model(_whole(tmp_path / "run"))
    assert statuses["dense"] == {"pass"} and statuses[HOSTILE] == {"error"}


# ---------------------------------------------------------------------------- reading a run directory back


@pytest.fixture
def run(tmp_path: Path) -> FakeRun:
    return FakeRun(tmp_path / "run")


@pytest.mark.parametrize(("fields", "said"), [
    ({"seconds": math.nan}, "seconds is nan"),
    ({"seconds": math.inf}, "seconds is inf"),
    ({"load_seconds": -math.inf}, "load_seconds is -inf"),
    ({"seconds": -3}, "seconds -3 is not a number from 0"),
    ({"worker": -1}, "worker -1 is not a number from 0"),
    ({"exit_code": 10**30}, "exit_code is an integer of 31 digits"),
    ({"preflight": {"findings": {"n": [math.inf]}}}, "preflight.findings.n[0] is inf"),
    ({"versions": {"keras_major": math.nan}}, "versions.keras_major is nan"),
])
def test_a_record_with_a_number_the_host_cannot_use_is_an_error_on_its_cell(run: FakeRun, fields: dict[str, Any],
                                                                           said: str) -> None:
    run.load_failed(ENV_A.id, ENV_B.id, "h5", status="ok", **fields)
    write_reports(run.run_dir)
    report = strict_json((run.root / "report.json").read_text())
    cell = _cell(report, ENV_A.id, ENV_B.id, "h5")
    assert (cell["status"], cell["error"]["type"]) == ("error", "MalformedRecord")
    assert said in cell["error"]["message"], cell["error"]["message"]
    assert _cell(report, ENV_B.id, ENV_A.id, "keras")["status"] == "pass"


def test_a_loss_that_is_nan_is_a_figure_not_a_malformed_record(run: FakeRun) -> None:
    run.load_ok(ENV_A.id, ENV_B.id, "h5", run.references[ENV_A.id], evaluate={"loss": math.nan,
                                                                             "compile_metrics": 0.75})
    write_reports(run.run_dir)
    cell = _cell(strict_json((run.root / "report.json").read_text()), ENV_A.id, ENV_B.id, "h5")
    assert cell["status"] == "drift" and cell["evaluate"]["target"]["loss"] is None


@pytest.mark.parametrize("damage", ["a FIFO", "a link to a host file", "past 512 MiB (sparse)"])
def test_a_load_records_file_that_cannot_be_read_costs_its_targets_column_not_the_report(
        run: FakeRun, tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]) -> None:
    records = run.run_dir.records("load", ENV_B.id)
    if damage == "past 512 MiB (sparse)":
        os.truncate(records, 600 << 20)
    else:
        records.unlink()
        if damage == "a FIFO":
            os.mkfifo(records)
        else:
            (tmp_path / "secret.jsonl").write_text(SECRET)
            records.symlink_to(tmp_path / "secret.jsonl")
    assert main(["report", str(run.root)]) in (0, 1)
    report = strict_json((run.root / "report.json").read_text())
    column = [c for c in report["cells"] if c["target"] == ENV_B.id]
    assert {(c["status"], c["error"]["type"]) for c in column} == {("error", "UnreadableFile")}
    assert {c["status"] for c in report["cells"] if c["target"] == ENV_A.id} == {"pass"}
    assert SECRET not in (run.root / "report.html").read_text()


@pytest.mark.parametrize(("versions", "said"), [
    ({"keras_major": math.nan}, "keras_major"),
    ({"keras": "1" * 5000 + ".0"}, "not a version"),
    ({"keras": "٣.٣.٣"}, "not a version"),
    ({"keras": ["3.3.3"]}, "not a version"),
    ({"python": {"a": {"b": 1}}}, "not a version"),
    ({"tensorflow": math.inf}, "tensorflow is inf"),
])
def test_an_env_json_with_odd_versions_is_ignored_and_the_report_is_whole(
        run: FakeRun, versions: dict[str, Any], said: str, caplog: pytest.LogCaptureFixture) -> None:
    path = run.run_dir.artifacts(ENV_A.id) / protocol.ENV_JSON
    path.write_text(json.dumps({**json.loads(path.read_text()), **versions}))
    report = write_reports(run.run_dir)
    strict_json((run.root / "report.json").read_text())
    assert said in caplog.text
    env = next(e for e in report["environments"] if e["id"] == ENV_A.id)
    assert env["python"] == ENV_A.python and env["keras_major"] is None  # from its spec, not the damaged file
    assert {c["status"] for c in report["cells"]} == {"pass"}


def test_a_manifest_with_a_non_finite_number_outside_evaluate_skips_its_source(
        run: FakeRun, caplog: pytest.LogCaptureFixture) -> None:
    path = run.run_dir.artifacts(ENV_A.id) / protocol.MANIFEST
    manifest = json.loads(path.read_text())
    manifest["models"]["dense"]["build_seconds"] = math.nan
    path.write_text(json.dumps(manifest))
    report = write_reports(run.run_dir)
    strict_json((run.root / "report.json").read_text())
    assert {c["status"] for c in report["cells"] if c["source"] == ENV_A.id} == {"skipped"}
    assert {c["status"] for c in report["cells"] if c["source"] == ENV_B.id} == {"pass"}
    assert "models.dense.build_seconds is nan" in caplog.text


@pytest.mark.parametrize(("phase", "change", "said"), [
    ("save", {"seconds": math.nan}, "seconds is nan"),
    ("save", {"containers_started": -4}, "containers_started -4"),
    ("load", {"container": {"exit_code": 10**40}}, "container.exit_code"),
    ("build", {"seconds": "long"}, "seconds is str"),
])
def test_a_damaged_phase_record_is_ignored_and_the_report_is_whole(
        run: FakeRun, phase: str, change: dict[str, Any], said: str, caplog: pytest.LogCaptureFixture) -> None:
    record = {"schema": 1, "env": ENV_A.id, "phase": phase, "run_id": "abc", "started": "2026-01-02T03:04:05+00:00",
              "finished": "2026-01-02T03:05:05+00:00", "seconds": 60.0, "containers_started": 1, **change}
    run.run_dir.phase_record(ENV_A.id, phase).parent.mkdir(parents=True, exist_ok=True)
    run.run_dir.phase_record(ENV_A.id, phase).write_text(json.dumps(record))
    assert main(["report", str(run.root)]) in (0, 1)
    strict_json((run.root / "report.json").read_text())
    strict_json((run.root / "run.json").read_text())
    assert said in caplog.text


@pytest.mark.parametrize(("change", "said"), [
    ({"timings": {"build": math.nan}}, "timings.build is nan"),
    ({"timings": {"build": "slow"}}, "timings.build is not a number"),
    ({"containers_started": math.inf}, "containers_started is inf"),
    ({"containers_started": "4"}, "containers_started 4 is not a number"),
    ({"finished": math.nan}, "finished is not a string"),
    ({"environments": [{"id": "x", "spec": {"python": "3.11", "tensorflow": "2.15.1"}, "build": {"s": -math.inf}}]},
     "environments[0].build.s is -inf"),
])
def test_a_run_json_with_wrong_types_or_non_finite_numbers_is_one_line_and_exit_2(
        run: FakeRun, change: dict[str, Any], said: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = run.run_dir.run_json
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    assert main(["report", str(run.root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("harness: error: ") and said in err, err


# ---------------------------------------------------------------------------- what the host writes and deletes


class LinkingEngine(FakeEngine):
    """A load container of the default level that replaces a folder of its own column with a link to a folder
    outside the run directory, then ends before it finished (an interrupt, a crash)."""

    def __init__(self, outside: Path) -> None:
        super().__init__()
        self.outside = outside

    def _load(self, args: dict[str, Any], mounts: Mapping[str, Path], records: Path) -> None:
        super()._load(args, mounts, records)
        folder = mounts[protocol.OUTPUTS_MOUNT] / MATRIX_SOURCE / "dense"
        for child in sorted(folder.rglob("*"), reverse=True):
            child.rmdir() if child.is_dir() else child.unlink()
        folder.rmdir()
        folder.symlink_to(self.outside, target_is_directory=True)
        lines = records.read_text().splitlines()
        records.write_text("".join(line + "\n" for line in lines if "dense" not in line and "load-done" not in line))


MATRIX_SOURCE = "py3.11-tf2.15.1"


def test_resume_at_another_isolation_level_never_follows_a_link_a_container_left(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "h5").mkdir(parents=True)
    (outside / "h5" / "keep.txt").write_text("not the run's")
    _run(LinkingEngine(outside), tmp_path / "run", "target")
    engine = FakeEngine()
    report = _run(engine, tmp_path / "run", "artifact", resume=True)
    assert (outside / "h5" / "keep.txt").read_text() == "not the run's"  # never deleted through the link
    assert sorted(p.name for p in outside.rglob("*")) == ["h5", "keep.txt"]  # nor written into
    sources = [m.host.resolve() for spec in engine.runs for m in spec.mounts if not m.read_only]
    assert sources and all(s.is_relative_to((tmp_path / "run").resolve()) for s in sources), sources
    assert {c["status"] for c in report["cells"] if c["model"] == "dense"} == {"pass"}


@pytest.mark.parametrize("name", [".report.html.tmp", ".report.json.tmp", ".junit.xml.tmp", ".report.md.tmp"])
def test_a_planted_temporary_report_file_is_never_written_through(run: FakeRun, tmp_path: Path, name: str) -> None:
    target = tmp_path / "victim.txt"
    target.write_text("untouched")
    (run.root / name).symlink_to(target)
    write_reports(run.run_dir)
    assert target.read_text() == "untouched"
    assert json.loads((run.root / "report.json").read_text())["schema_version"] == 2


def test_a_planted_write_test_file_is_never_written_through(tmp_path: Path) -> None:
    target = tmp_path / "victim.txt"
    target.write_text("untouched")
    out = tmp_path / "run"
    RunDir.prepare(out, resume=False)
    (out / "run.json").write_text("{}")
    (out / ".write-test").symlink_to(target)
    RunDir.prepare(out, resume=True)
    assert target.read_text() == "untouched"


def test_a_planted_pip_freeze_temporary_file_is_never_written_through(tmp_path: Path) -> None:
    target = tmp_path / "victim.txt"
    target.write_text("untouched")
    run_dir = RunDir.prepare(tmp_path / "run", resume=False)
    (run_dir.artifacts("e")).mkdir(parents=True)
    (run_dir.artifacts("e") / "packages.txt").write_text("numpy==1.26.4\n")
    dest = run_dir.env_dir("e") / "packages.txt"
    dest.parent.mkdir(parents=True)
    (dest.parent / f".packages.txt.{os.getpid()}.tmp").symlink_to(target)
    untrusted.copy_file(run_dir.path, run_dir.artifacts("e") / "packages.txt", dest, untrusted.MAX_TEXT)
    assert target.read_text() == "untouched" and dest.read_text() == "numpy==1.26.4\n"


def test_the_records_a_save_or_load_container_mounts_are_never_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside.jsonl"
    outside.write_text("untouched\n")
    out = tmp_path / "run"
    _run(FakeEngine(), out, "target")
    for path in (out / "records" / f"save-{MATRIX_SOURCE}.jsonl", out / "records" / f"load-{MATRIX_SOURCE}.jsonl"):
        path.unlink()
        path.symlink_to(outside)
    (out / "artifacts" / MATRIX_SOURCE / "manifest.json").unlink()  # the save runs again
    engine = FakeEngine()
    _run(engine, out, "target", resume=True)
    assert outside.read_text() == "untouched\n"
    assert not any(m.host.is_symlink() for spec in engine.runs for m in spec.mounts)


def test_markdown_in_an_error_message_is_shown_as_written_in_report_md(run: FakeRun) -> None:
    message = ("boom <img src=x onerror=alert(1)> ![t](http://tracker.example/p.png) [click](http://evil.example) "
               "**loud** _it_ ~~gone~~ `code` | a cell <!-- hidden --> &amp;\nsecond line")
    run.load_failed(ENV_A.id, ENV_B.id, "h5", status="error", stage="load",
                    error={"type": "Value`Error|**x**", "message": message, "traceback": None})
    write_reports(run.run_dir)
    text = (run.root / "report.md").read_text()
    html = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(text)
    for rendered in ("<img", "<a href", "<strong>loud", "<em>it", "<s>gone", "<code>code", "<!--"):
        assert rendered not in html.split("</h1>", 1)[1], rendered
    assert "**loud** _it_ ~~gone~~" in html and "&amp;amp;" in html  # shown as written: the entity too
    cells, header = [], None  # every row of a table has its header's columns: no '|' of a message splits one
    for line in text.splitlines():
        header = (header or line) if line.startswith("|") else None
        if header is not None:
            cells.append((len(re.findall(r"(?<!\\)\|", line)), len(re.findall(r"(?<!\\)\|", header)), line))
    assert any("Value" in line for _, _, line in cells)
    assert all(found == wanted for found, wanted, _ in cells), [line for f, w, line in cells if f != w]


def test_a_container_that_prints_gigabytes_costs_the_host_only_the_end_of_its_log(tmp_path: Path) -> None:
    log = tmp_path / "load.log"
    with log.open("wb") as fh:
        fh.truncate(3 << 30)  # sparse: three GiB of output, no disk used
        fh.seek(0, os.SEEK_END)
        fh.write(b"\n".join(b"line %d" % i for i in range(30)) + b"\n")
    assert engine_tail(log) == "\n".join(f"line {i}" for i in range(10, 30))


# ---------------------------------------------------------------------------- fuzzed: any JSON a container may write

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**400), max_value=10**400),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
                         st.sampled_from(["ok", "error", "crash", "load", "h5", "٣.٣.٣", "3" * 500, "\x00\x1b[31m"]))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8) | st.sampled_from(
        ["type", "message", "traceback", "findings", "outcome", "loss", "keras_major", "python"]), inner,
        max_size=3)), max_leaves=12)
RECORD_FIELDS = ["seconds", "load_seconds", "exit_code", "worker", "status", "stage", "signal", "predict_call",
                 "loader_options", "preflight", "versions", "evaluate", "evaluate_error", "error", "target", "x"]
FILES = ["load record", "env.json", "manifest entry", "save phase record"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return FakeRun(tmp_path_factory.mktemp("pristine") / "run").root


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(where=st.sampled_from(FILES), field=st.sampled_from(RECORD_FIELDS),
       value=st.sampled_from([math.nan, math.inf, -math.inf, 10**30, -1, [math.nan], {"a": math.inf}]) | json_values)
def test_any_json_a_container_writes_costs_at_most_its_own_cells(
        pristine: Path, tmp_path_factory: pytest.TempPathFactory, where: str, field: str, value: Any) -> None:
    root = tmp_path_factory.mktemp("fuzz") / "run"
    shutil.copytree(pristine, root)
    run_dir = RunDir(root)
    if where == "load record":
        append_jsonl(run_dir.records("load", ENV_B.id), {
            "kind": "load", "target": ENV_B.id, "source": ENV_A.id, "model": "dense", "format": "h5",
            "loader": "load_model", "status": "ok", field: value})
    else:
        path = {"env.json": run_dir.artifacts(ENV_A.id) / protocol.ENV_JSON,
                "manifest entry": run_dir.artifacts(ENV_A.id) / protocol.MANIFEST,
                "save phase record": run_dir.phase_record(ENV_A.id, "save")}[where]
        data = json.loads(path.read_text()) if path.exists() else {"phase": "save", "env": ENV_A.id}
        (data["models"]["dense"] if where == "manifest entry" else data)[field] = value
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))
    report = write_reports(run_dir)
    strict_json((root / "report.json").read_text())
    assert {c["status"] for c in report["cells"] if c["source"] == ENV_B.id} == {"pass"}  # never touched
    shutil.rmtree(root)
