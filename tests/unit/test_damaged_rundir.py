"""A damaged or hostile run directory: links, FIFOs, truncated and wrongly typed files never hang the report, never
make it read a file outside the run directory, and never end in a traceback. Each becomes an error on its cell, or
one line and exit 2 for the whole run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deadline import within
from fake_engine import FakeEngine, planned_runner
from fake_run import ENV_A, ENV_B, FakeRun, append_jsonl
from fake_run import cell as _cell
from harness.agent.protocol import SaveRequest
from harness.cli import main
from harness.matrix import parse_matrix
from harness.report.writers import write_reports
from harness.rundir import RunDir
from harness.workflow import execute

SECRET = "host-secret-7f3a"


@pytest.fixture
def run(tmp_path: Path) -> FakeRun:
    return FakeRun(tmp_path / "run")


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A host file outside the run directory that nothing may read into a report."""
    path = tmp_path / "secret.txt"
    path.write_text(SECRET + "\n")
    return path


def _manifest(run: FakeRun, env_id: str) -> tuple[Path, dict[str, Any]]:
    path = run.run_dir.artifacts(env_id) / "manifest.json"
    return path, json.loads(path.read_text())


def test_a_fifo_as_predictions_is_an_error_on_its_cell_not_a_hang(run: FakeRun) -> None:
    output = run.output_path(ENV_A.id, ENV_B.id, "h5")
    output.unlink()
    os.mkfifo(output)
    cell = _cell(within(10, run.report), ENV_A.id, ENV_B.id, "h5")
    assert (cell["status"], cell["error"]["type"]) == ("error", "UnreadableFile")
    assert "a FIFO" in cell["error"]["message"]
    assert _cell(run.report(), ENV_A.id, ENV_B.id, "keras")["status"] == "pass"


def test_a_truncated_or_foreign_npy_is_an_error_on_its_cell(run: FakeRun) -> None:
    output = run.output_path(ENV_A.id, ENV_B.id, "h5")
    output.write_bytes(output.read_bytes()[:-7])
    other = run.output_path(ENV_B.id, ENV_A.id, "keras")
    other.write_bytes(b"\x93NUMPY garbage")
    report = run.report()
    truncated, garbage = _cell(report, ENV_A.id, ENV_B.id, "h5"), _cell(report, ENV_B.id, ENV_A.id, "keras")
    assert "truncated or damaged" in truncated["error"]["message"]
    assert garbage["error"]["type"] == "UnreadableFile" and "not a NumPy .npy file" in garbage["error"]["message"]


def test_a_huge_header_over_a_small_file_is_never_allocated(run: FakeRun) -> None:
    output = run.output_path(ENV_A.id, ENV_B.id, "h5")
    with output.open("wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": (1 << 45,)})
    message = _cell(run.report(), ENV_A.id, ENV_B.id, "h5")["error"]["message"]
    assert "more than the" in message


def test_a_pickled_npy_is_not_loaded(run: FakeRun) -> None:
    output = run.output_path(ENV_A.id, ENV_B.id, "h5")
    np.save(output, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    assert "Python objects" in _cell(run.report(), ENV_A.id, ENV_B.id, "h5")["error"]["message"]


@pytest.mark.parametrize("where", ["reference", "outputs folder"])
def test_a_link_to_a_host_file_is_never_followed(run: FakeRun, tmp_path: Path, where: str) -> None:
    outside = tmp_path / "outside.npy"
    np.save(outside, run.references[ENV_A.id])  # a file that would even make the cell pass
    if where == "reference":
        link = run.run_dir.artifacts(ENV_A.id) / "dense" / "reference.npy"
        link.unlink()
        link.symlink_to(outside)
    else:
        folder = run.output_path(ENV_A.id, ENV_B.id, "h5").parent  # outputs/<B>/<A>/dense/h5/
        for child in folder.iterdir():
            child.unlink()
        folder.rmdir()
        folder.symlink_to(tmp_path)
        (tmp_path / "load_model.npy").write_bytes(outside.read_bytes())
    cell = _cell(run.report(), ENV_A.id, ENV_B.id, "h5")
    assert (cell["status"], cell["error"]["type"]) == ("error", "UnreadableFile")
    assert "a symbolic link" in cell["error"]["message"]


@pytest.mark.parametrize("reference", ["../../../secret.txt", "/etc/passwd", "SECRET"])
def test_a_manifest_reference_can_name_no_file_outside_the_run_directory(
        run: FakeRun, secret: Path, reference: str) -> None:
    path, manifest = _manifest(run, ENV_A.id)
    manifest["models"]["dense"]["reference"] = str(secret) if reference == "SECRET" else reference
    path.write_text(json.dumps(manifest))
    cell = _cell(run.report(), ENV_A.id, ENV_B.id, "h5")
    assert cell["status"] == "error" and "outside" in cell["error"]["message"], cell
    assert SECRET not in json.dumps(run.report())


def test_a_reference_output_naming_another_folder_is_refused(run: FakeRun) -> None:
    path, manifest = _manifest(run, ENV_A.id)
    manifest["models"]["dense"]["reference_output"] = {"target": "../../..", "loader": "x"}
    path.write_text(json.dumps(manifest))
    assert "outside" in _cell(run.report(), ENV_A.id, ENV_B.id, "h5")["error"]["message"]


@pytest.mark.parametrize(("fields", "problem"), [
    ({"status": 5}, "status '5' is none of"),
    ({"status": "pass"}, "status 'pass' is none of"),
    ({"status": "error", "error": "boom"}, "error is str, expected dict"),
    ({"status": "error", "error": {"type": ["x"], "message": "m"}}, "error has no text type and message"),
    ({"status": "ok", "evaluate": [1, 2]}, "evaluate is list, expected dict"),
    ({"status": "ok", "evaluate": {"loss": "low"}}, "evaluate holds values that are not numbers"),
    ({"status": "crash", "signal": 11}, "signal is int, expected str"),
    ({"status": "ok", "preflight": "pass"}, "preflight is str, expected dict"),
])
def test_a_wrongly_typed_load_record_is_an_error_on_its_cell(run: FakeRun, fields: dict[str, Any],
                                                             problem: str) -> None:
    run.load_failed(ENV_A.id, ENV_B.id, "h5", **fields)
    cell = _cell(run.report(), ENV_A.id, ENV_B.id, "h5")
    assert (cell["status"], cell["error"]["type"]) == ("error", "MalformedRecord")
    assert problem in cell["error"]["message"]


def test_records_that_name_no_cell_or_are_not_utf8_are_skipped(run: FakeRun) -> None:
    records = run.run_dir.records("load", ENV_B.id)
    append_jsonl(records, {"kind": "load", "source": ["x"], "model": "dense", "format": "h5", "loader": 1,
                           "status": "ok"})
    with records.open("ab") as fh:
        fh.write(b'{"kind": "load", "source": "\xff\xfe", "status": "ok"}\n' + b"[" * 100000 + b"\n")
    report = run.report()
    assert {c["status"] for c in report["cells"]} == {"pass"}


def test_a_damaged_save_record_is_an_error_on_the_cells_it_skips(run: FakeRun) -> None:
    _, manifest = _manifest(run, ENV_A.id)
    del manifest["models"]["dense"]["formats"]["h5"]
    (run.run_dir.artifacts(ENV_A.id) / "manifest.json").write_text(json.dumps(manifest))
    append_jsonl(run.run_dir.records("save", ENV_A.id),
                 {"kind": "save", "model": "dense", "format": "h5", "status": "error", "error": 42})
    cell = _cell(run.report(), ENV_A.id, ENV_B.id, "h5")
    assert cell["status"] == "skipped" and cell["error"]["type"] == "MalformedRecord"


@pytest.mark.parametrize("damage", ["not json", "models is a list", "a FIFO", "a link"])
def test_a_damaged_manifest_skips_its_source_with_a_warning(run: FakeRun, secret: Path, damage: str,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    path, manifest = _manifest(run, ENV_A.id)
    path.unlink()
    if damage == "a FIFO":
        os.mkfifo(path)
    elif damage == "a link":
        path.symlink_to(secret)
    else:
        path.write_text("{" if damage == "not json" else json.dumps({**manifest, "models": []}))
    report = within(10, run.report)
    assert {c["status"] for c in report["cells"] if c["source"] == ENV_A.id} == {"skipped"}
    assert {c["status"] for c in report["cells"] if c["source"] == ENV_B.id} == {"pass"}
    assert f"{path}: " in caplog.text


def test_a_pip_freeze_linked_to_a_host_file_is_not_embedded(run: FakeRun, secret: Path) -> None:
    packages = run.run_dir.env_dir(ENV_A.id) / "packages.txt"
    packages.unlink()
    packages.symlink_to(secret)
    fifo = run.run_dir.env_dir(ENV_B.id) / "packages.txt"
    fifo.unlink()
    os.mkfifo(fifo)
    within(10, lambda: write_reports(run.run_dir))
    html = (run.root / "report.html").read_text()
    assert SECRET not in html


@pytest.mark.parametrize(("damage", "said"), [
    ("not json", "not JSON"),
    ("a list", "not a JSON object"),
    ("environments is a mapping", "environments is not a list"),
    ("an environment without a spec", "environments[0] is not a mapping with an id and a spec"),
    ("a numeric status", "status is not a string"),
    ("a FIFO baseline", "is not a regular file"),
    ("a link", "a symbolic link"),
    ("a FIFO", "a FIFO"),
])
def test_a_damaged_run_json_is_one_line_and_exit_2(
        run: FakeRun, damage: str, said: str, secret: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = run.run_dir.run_json
    data = json.loads(path.read_text())
    if damage in ("a link", "a FIFO"):
        path.unlink()
        path.symlink_to(secret) if damage == "a link" else os.mkfifo(path)
    else:
        if damage == "a FIFO baseline":
            os.mkfifo(run.root / "baseline.json")
        changed = {"not json": None, "a list": [data], "environments is a mapping": {**data, "environments": {}},
                   "an environment without a spec": {**data, "environments": [{"id": ENV_A.id}]},
                   "a numeric status": {**data, "status": 3},
                   "a FIFO baseline": {**data, "baseline": str(run.root / "baseline.json")}}[damage]
        path.write_text("{" if changed is None else json.dumps(changed))
    assert within(10, lambda: main(["report", str(run.root)])) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("harness: error: ") and said in err, err
    assert SECRET not in err


@pytest.mark.parametrize("command", ["report", "diff"])
def test_a_fifo_named_as_a_baseline_or_report_is_exit_2_not_a_hang(run: FakeRun, command: str,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fifo = run.root.parent / "old.json"
    os.mkfifo(fifo)
    argv = ["report", str(run.root), "--baseline", str(fifo)] if command == "report" else ["diff", str(fifo), str(fifo)]
    assert within(10, lambda: main(argv)) == 2
    assert f"{fifo}: not a regular file" in capsys.readouterr().err


def test_the_report_reads_only_what_belongs_to_the_run(run: FakeRun) -> None:
    # The same run directory, undamaged, still reports every cell: the checks refuse nothing legitimate.
    report = RunDir(run.root)
    assert {c["status"] for c in write_reports(report)["cells"]} == {"pass"}


class LinkingEngine(FakeEngine):
    """A save container that leaves its pip freeze as a link to a host file."""

    def __init__(self, target: Path) -> None:
        super().__init__()
        self.target = target

    def _save(self, request: SaveRequest, out: Path, records: Path) -> None:
        super()._save(request, out, records)
        (out / "packages.txt").symlink_to(self.target)


def test_a_pip_freeze_a_save_container_left_as_a_link_is_not_copied(tmp_path: Path, secret: Path) -> None:
    matrix = parse_matrix({"environments": [{"python": "3.11", "tensorflow": "2.15.1"}], "models": ["dense"],
                           "formats": ["h5"], "loaders": ["load_model"]}, path="m.yaml", sha256="0" * 64)
    run_dir = RunDir.prepare(tmp_path / "run", resume=False)
    runner = planned_runner(LinkingEngine(secret), matrix, run_dir)
    execute(runner)
    env_id = matrix.environments[0].id
    assert not (run_dir.env_dir(env_id) / "packages.txt").exists()
    assert "a symbolic link" in json.loads(run_dir.phase_record(env_id, "save").read_text())["refused"]
    assert any("a symbolic link" in failure for failure in runner.failures)
    assert SECRET not in (run_dir.path / "report.html").read_text()
