"""report.sarif: valid SARIF 2.1.0, one result per breaking route, errors exactly where the exit code counts."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from fake_loads import RefusesInTargets
from fake_run import varied_run
from harness.cli import main
from harness.report.sarif import merge, render_empty
from harness.report.writers import write_reports
from harness.rundir import RunDir
from surfaces import SARIF_SCHEMA, sarif

SCHEMA = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))


def test_the_vendored_schema_is_sarif_210() -> None:
    assert SCHEMA["id"].endswith("/sarif-schema-2.1.0.json")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"version": "2.1.0", "runs": [{"results": []}]}, SCHEMA)  # a run needs its tool


def test_a_run_has_an_error_per_counted_cell_and_a_note_per_other_break(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    run = varied_run(tmp_path / "run")
    report = write_reports(RunDir(run.root))
    log = sarif(run.root)
    results = log["runs"][0]["results"]
    errors = [r for r in results if r["level"] == "error"]
    breaking = [c for c in report["cells"] if c["route_status"] == "breaks"]
    assert len(errors) == len(report["verdict"]["failing"]) + len(report["verdict"]["reasons"])
    assert len([r for r in results if r["ruleId"] != "run-problem"]) == len(
        {*(f"{c['source']} -> {c['target']} {c['model']}/{c['format']}/{c['loader']}" for c in breaking),
         *report["verdict"]["failing"]})
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert all(results[i]["ruleId"] == rules[results[i]["ruleIndex"]]["id"] for i in range(len(results)))
    assert any(r["id"] == "keras2-module-move" and "harness adapt" in r["help"]["text"] for r in rules)
    assert main(["report", str(run.root), "--format", "sarif"]) == 1
    assert json.loads(capsys.readouterr().out) == log


def test_a_check_locates_its_results_on_the_model_file_with_the_cause_and_fix(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_FAKE_BREAK_IN", "keras3.12.1")
    (tmp_path / ".git").mkdir()  # the repository's root: locations are relative to it
    (tmp_path / "m").mkdir()
    model = tmp_path / "m" / "model.keras"
    model.write_bytes(b"PK")
    np.save(tmp_path / "m" / "x.npy", np.zeros((2, 3), dtype="float32"))
    out = tmp_path / "check"
    code = main(["check", "--from", "2.16.2+keras3.12.0", "--to", "2.16.2+keras3.12.1", "--model", str(model),
                 "--inputs", str(tmp_path / "m" / "x.npy"), "--out", str(out), "-q", "--no-tf-keras"],
                engine=RefusesInTargets)
    log = sarif(out)
    results = log["runs"][0]["results"]
    assert code == 1 and [r["level"] for r in results].count("error") == 1
    mine = next(r for r in results if r["level"] == "error")
    assert mine["ruleId"] == "tfsm-layer-safe-mode"
    assert "keras / keras.models.load_model breaks in py3.11-tf2.16.2-keras3.12.1" in mine["message"]["text"]
    assert mine["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "m/model.keras",
                                                                           "uriBaseId": "%SRCROOT%"}
    rule = log["runs"][0]["tool"]["driver"]["rules"][mine["ruleIndex"]]
    assert rule["help"]["text"].startswith("safe_mode refuses TFSMLayer")
    assert log["runs"][0]["invocations"][0]["exitCode"] == 1


def test_merged_logs_stay_valid_and_keep_every_result(tmp_path: Path) -> None:
    run = varied_run(tmp_path / "run")
    write_reports(RunDir(run.root))
    one = sarif(run.root)
    merged = json.loads(merge([one, one]))
    jsonschema.validate(merged, SCHEMA)
    assert len(merged["runs"]) == 1 and len(merged["runs"][0]["results"]) == 2 * len(one["runs"][0]["results"])
    assert merged["runs"][0]["tool"]["driver"]["rules"] == one["runs"][0]["tool"]["driver"]["rules"]
    jsonschema.validate(json.loads(render_empty()), SCHEMA)
