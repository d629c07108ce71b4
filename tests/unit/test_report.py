"""build_report / write_reports on a run directory written by hand (see fake_run.py)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from fake_run import ENV_A, ENV_B, ENV_C, EVALUATE, KERAS2_IN_KERAS3, FakeRun, append_jsonl, strict_json, varied_run
from fake_run import cell as _cell
from harness.hints import HintContext, hint_for
from harness.matrix import Tolerance
from harness.report.markdown import render_markdown
from harness.report.schema import CELL_DEFAULTS, expand
from harness.report.statuses import STATUS_ORDER, worst
from harness.report.writers import write_reports
from harness.rundir import RunDir

KEY_FIELDS = {"source", "target", "model", "format", "loader", "status"}


@pytest.fixture
def run(tmp_path: Path) -> FakeRun:
    return FakeRun(tmp_path / "run")


# ---------------------------------------------------------------------------- cells


def test_cell_count_is_envs_squared_times_models_formats_loaders(run: FakeRun) -> None:
    report = run.report()
    assert len(report["cells"]) == 2 * 2 * 1 * 2 * 1
    keys = {(c["source"], c["target"], c["model"], c["format"], c["loader"]) for c in report["cells"]}
    assert len(keys) == 8
    assert {k[0] for k in keys} == {k[1] for k in keys} == {ENV_A.id, ENV_B.id}


def test_unchanged_outputs_pass_bit_exact(run: FakeRun) -> None:
    report = run.report()
    assert [c["status"] for c in report["cells"]] == ["pass"] * 8
    cell = _cell(report, ENV_A.id, ENV_B.id, "h5")
    assert cell["bit_exact"] is True
    assert cell["max_ulp"] == 0
    assert cell["max_abs_diff"] == 0.0
    assert cell["argmax_agreement"] == 1.0
    assert cell["error"] is None
    assert cell["predict_call"] == "predict"
    assert cell["seconds"] == 0.3
    assert cell["evaluate"]["source"] == EVALUATE and cell["evaluate"]["target"] == EVALUATE
    assert cell["evaluate"]["max_abs_diff"] == 0.0
    assert report["verdict"] == {"exit_code": 0, "fail_on": "breaks", "unexpected": [], "regressions": [],
                                 "unused_expectations": [], "failing": [], "reasons": [], "spurious": []}
    assert {c["route_status"] for c in report["cells"]} == {"portable"}


def test_perturbed_output_drifts_by_exactly_the_perturbation(run: FakeRun) -> None:
    reference = run.references[ENV_A.id]
    output = reference.copy()
    output[2, 1] += np.float32(0.25)
    perturbation = float(output[2, 1]) - float(reference[2, 1])  # what float32 really stored
    run.load_ok(ENV_A.id, ENV_B.id, "keras", output)
    report = run.report()
    cell = _cell(report, ENV_A.id, ENV_B.id, "keras")
    assert cell["status"] == "drift"
    assert cell["max_abs_diff"] == perturbation
    assert cell["max_rel_diff"] == pytest.approx(perturbation / float(reference[2, 1]))
    assert cell["bit_exact"] is False
    assert cell["max_ulp"] > 0
    assert "max abs diff" in cell["reason"]
    assert _cell(report, ENV_A.id, ENV_B.id, "h5")["status"] == "pass"  # the neighbour is untouched
    assert (cell["stage"], cell["route_status"], cell["cause"]) == ("predict", "breaks", "predictions-drift")
    assert report["verdict"]["exit_code"] == 1
    assert report["verdict"]["unexpected"] == [f"{ENV_A.id} -> {ENV_B.id}: 1 route(s) break (predictions-drift)"]


def test_drift_within_a_looser_matrix_tolerance_passes(tmp_path: Path) -> None:
    run = FakeRun(tmp_path / "run", tolerance=Tolerance(rtol=0.0, atol=0.5))
    output = run.references[ENV_A.id].copy()
    output[0, 0] += np.float32(0.25)
    run.load_ok(ENV_A.id, ENV_B.id, "h5", output)
    report = run.report()
    cell = _cell(report, ENV_A.id, ENV_B.id, "h5")
    assert cell["status"] == "pass"
    assert cell["max_abs_diff"] > 0.2
    assert report["tolerance"] == {"rtol": 0.0, "atol": 0.5}


def test_argmax_flip_is_reported(run: FakeRun) -> None:
    output = run.references[ENV_B.id][:, ::-1].copy()  # reverses every row: most argmaxes move
    run.load_ok(ENV_B.id, ENV_A.id, "h5", output)
    cell = _cell(run.report(), ENV_B.id, ENV_A.id, "h5")
    expected = float(np.mean(output.argmax(axis=1) == run.references[ENV_B.id].argmax(axis=1)))
    assert cell["status"] == "drift"
    assert cell["argmax_agreement"] == expected
    assert expected < 1.0


def test_error_record_gives_error_cell_with_hint(run: FakeRun) -> None:
    run.load_failed(ENV_A.id, ENV_B.id, "keras", status="error", stage="load", seconds=0.4,
                    error={"type": "TypeError", "message": KERAS2_IN_KERAS3, "traceback": "Traceback ..."})
    cell = _cell(run.report(), ENV_A.id, ENV_B.id, "keras")
    assert cell["status"] == "error"
    assert cell["error"]["type"] == "TypeError"
    assert cell["error"]["message"] == KERAS2_IN_KERAS3
    report = run.report()
    tb = _cell(report, ENV_A.id, ENV_B.id, "keras")["error"]["traceback"]
    assert report["tracebacks"][tb] == "Traceback ..."  # stored once, by id
    assert cell["error"]["hint"] is not None
    context = HintContext(source_keras="2.15.0", target_keras="3.3.3", format="keras", loader="load_model",
                          status="error")
    assert cell["error"]["hint"] == hint_for("TypeError", KERAS2_IN_KERAS3, context)
    assert "tf-keras" in cell["error"]["hint"]
    assert cell["stage"] == "load" and cell["route_status"] == "breaks" and cell["cause"]
    assert cell["seconds"] == 0.4
    assert cell["max_abs_diff"] is None and cell["bit_exact"] is None


def test_error_without_known_cause_has_null_hint(run: FakeRun) -> None:
    run.load_failed(ENV_A.id, ENV_B.id, "h5", status="error", stage="predict",
                    error={"type": "RuntimeError", "message": "nothing we know"})
    cell = _cell(run.report(), ENV_A.id, ENV_B.id, "h5")
    assert cell["status"] == "error"
    assert cell["error"]["hint"] is None
    assert cell["error"]["traceback"] is None


def test_crash_record_gives_crash_cell(run: FakeRun) -> None:
    run.load_failed(ENV_B.id, ENV_A.id, "h5", status="crash", signal="SIGSEGV", exit_code=-11, seconds=2.5,
                    error={"type": "WorkerCrash", "message": "worker killed by SIGSEGV"})
    report = run.report()
    cell = _cell(report, ENV_B.id, ENV_A.id, "h5")
    assert cell["status"] == "crash"
    assert cell["signal"] == "SIGSEGV"
    assert cell["exit_code"] == -11
    assert cell["error"]["hint"] == hint_for("WorkerCrash", "worker killed by SIGSEGV")
    assert "native code" in cell["error"]["hint"]
    assert report["summary"]["counts"]["crash"] == 1
    assert report["verdict"]["exit_code"] == 1


def test_timeout_record_gives_timeout_cell(run: FakeRun) -> None:
    run.load_failed(ENV_B.id, ENV_B.id, "keras", status="timeout", seconds=300.0,
                    error={"type": "Timeout", "message": "no result within 300 s"})
    cell = _cell(run.report(), ENV_B.id, ENV_B.id, "keras")
    assert cell["status"] == "timeout"
    assert cell["error"]["hint"] == hint_for("Timeout", "no result within 300 s")


def test_missing_record_gives_skipped_cell(run: FakeRun) -> None:
    run.drop_records(ENV_B.id, ENV_A.id, "h5")
    report = run.report()
    cell = _cell(report, ENV_A.id, ENV_B.id, "h5")
    assert cell["status"] == "skipped"
    assert "did not reach this cell" in cell["reason"]
    assert cell["error"] is None
    assert report["summary"]["counts"]["skipped"] == 1
    assert report["summary"]["counts"]["pass"] == 7


def test_ok_record_without_output_file_is_an_error(run: FakeRun) -> None:
    run.output_path(ENV_A.id, ENV_A.id, "keras").unlink()
    cell = _cell(run.report(), ENV_A.id, ENV_A.id, "keras")
    assert cell["status"] == "error"
    assert cell["error"]["type"] == "MissingOutput"
    assert "load_model.npy" in cell["error"]["message"]


def test_source_without_manifest_skips_its_row(run: FakeRun) -> None:
    (run.root / "artifacts" / ENV_B.id / "manifest.json").unlink()
    report = run.report()
    for cell in report["cells"]:
        if cell["source"] == ENV_B.id:
            assert cell["status"] == "skipped"
            assert "did not finish saving" in cell["reason"]
        else:
            assert cell["status"] == "pass"


def test_format_the_source_could_not_save_is_skipped_with_the_save_error(run: FakeRun) -> None:
    manifest_path = run.root / "artifacts" / ENV_B.id / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["models"]["dense"]["formats"]["h5"]
    manifest_path.write_text(json.dumps(manifest))
    message = "invalid literal for int() with base 10: '/'"  # IntegerLookup.get_config of a vocabulary file
    append_jsonl(run.root / "records" / f"save-{ENV_B.id}.jsonl",
                 {"kind": "save", "env": ENV_B.id, "model": "dense", "format": "h5", "status": "error",
                  "error": {"type": "ValueError", "message": message}})
    report = run.report()
    hint = hint_for("ValueError", message, HintContext(source_keras="3.3.3", target_keras="3.3.3", status="skipped"))
    assert hint
    for target in (ENV_A.id, ENV_B.id):
        cell = _cell(report, ENV_B.id, target, "h5")
        assert cell["status"] == "skipped"
        assert cell["reason"] == f"{ENV_B.id} could not save dense/h5"
        assert cell["error"]["type"] == "ValueError"
        assert cell["error"]["hint"] == hint
        assert cell["cause"] == "vocabulary-file"  # why the route never works at home, said where it is
    home = next(p for p in report["paths"] if p["source"] == p["target"] == ENV_B.id)
    assert home["home_causes"] == ["vocabulary-file"]
    assert not any(c["name"] == "vocabulary-file" for c in report["causes"])  # a cell never run is in no count


def test_format_the_source_cannot_write_is_unsupported_not_a_failure(run: FakeRun) -> None:
    manifest_path = run.root / "artifacts" / ENV_B.id / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["models"]["dense"]["formats"]["h5"]
    manifest_path.write_text(json.dumps(manifest))
    append_jsonl(run.root / "records" / f"save-{ENV_B.id}.jsonl",
                 {"kind": "save", "env": ENV_B.id, "model": "dense", "format": "h5", "status": "unsupported",
                  "error": {"type": "Unsupported", "message": "Keras 3 cannot write this"}})
    report = run.report()
    for target in (ENV_A.id, ENV_B.id):
        cell = _cell(report, ENV_B.id, target, "h5")
        assert cell["status"] == "unsupported"
        assert cell["reason"] == f"{ENV_B.id} cannot write h5"
    assert report["verdict"]["exit_code"] == 0


def test_build_error_environment_skips_its_row_and_column(tmp_path: Path) -> None:
    run = FakeRun(tmp_path / "run", envs=(ENV_A, ENV_B, ENV_C), status={ENV_C.id: "build_error"})
    report = run.report()
    assert len(report["cells"]) == 3 * 3 * 2
    for cell in report["cells"]:
        if ENV_C.id in (cell["source"], cell["target"]):
            assert cell["status"] == "skipped", cell
            role = "source" if cell["source"] == ENV_C.id else "target"
            assert cell["reason"] == f"{role} environment {ENV_C.id}: build_error"
        else:
            assert cell["status"] == "pass", cell
    assert report["summary"]["counts"]["skipped"] == 3 * 3 * 2 - 2 * 2 * 2
    verdict = report["verdict"]
    assert verdict["exit_code"] == 1
    assert verdict["unexpected"] == [f"{ENV_C.id}: build_error"]
    env_c = next(e for e in report["environments"] if e["id"] == ENV_C.id)
    assert env_c["status"] == "build_error"
    assert env_c["error"].startswith("ERROR: No matching distribution")
    assert env_c["tensorflow"] == "==2.12.1"  # no env.json: falls back to the spec
    assert env_c["keras_major"] is None
    grid = report["summary"]["grid"]
    assert grid[ENV_C.id][ENV_A.id]["worst"] == "skipped"
    assert grid[ENV_A.id][ENV_C.id]["worst"] == "skipped"
    assert grid[ENV_A.id][ENV_B.id]["worst"] == "pass"


@pytest.mark.parametrize("what", ["load never reached", "save never finished"])
def test_cells_that_never_ran_fail_the_verdict(run: FakeRun, what: str) -> None:
    if what == "load never reached":
        (run.root / "records" / f"load-{ENV_B.id}.jsonl").write_text("")  # load container killed at once
    else:
        (run.root / "artifacts" / ENV_B.id / "manifest.json").unlink()
    report = run.report()
    assert report["summary"]["counts"]["skipped"] > 0
    assert report["verdict"]["exit_code"] == 1


def test_environment_versions_come_from_env_json(run: FakeRun) -> None:
    envs = {e["id"]: e for e in run.report()["environments"]}
    assert list(envs) == [ENV_A.id, ENV_B.id]
    assert envs[ENV_A.id]["tensorflow"] == "2.15.1"
    assert envs[ENV_A.id]["python"] == "3.11.9"
    assert envs[ENV_B.id]["keras"] == "3.3.3"
    assert envs[ENV_B.id]["keras_major"] == 3
    assert envs[ENV_B.id]["spec"] == json.loads(json.dumps(dataclasses.asdict(ENV_B)))
    assert envs[ENV_B.id]["status"] == "ok"


# ---------------------------------------------------------------------------- evaluate()


def test_evaluate_metric_name_mismatch_drifts(run: FakeRun) -> None:
    run.load_ok(ENV_A.id, ENV_B.id, "keras", run.references[ENV_A.id],
                evaluate={"accuracy": 0.75, "loss": 0.6931})
    cell = _cell(run.report(), ENV_A.id, ENV_B.id, "keras")
    assert cell["status"] == "drift"
    assert cell["bit_exact"] is True  # predictions identical: the drift is evaluate()'s alone
    assert "metric names differ" in cell["reason"]
    assert "accuracy" in cell["reason"] and "compile_metrics" in cell["reason"]


def test_evaluate_value_beyond_tolerance_drifts(run: FakeRun) -> None:
    run.load_ok(ENV_B.id, ENV_A.id, "h5", run.references[ENV_B.id],
                evaluate={"compile_metrics": 0.75, "loss": 0.75})
    cell = _cell(run.report(), ENV_B.id, ENV_A.id, "h5")
    assert cell["status"] == "drift"
    assert cell["reason"].startswith("evaluate() loss differs:")
    assert cell["evaluate"]["max_abs_diff"] == pytest.approx(0.75 - 0.6931)


def test_evaluate_that_raises_where_the_source_evaluated_is_an_error_at_stage_evaluate(run: FakeRun) -> None:
    # Identical predictions are never drift: the cell says evaluate() raised, and what to do.
    message = "Expected all entries in the `metrics` list to be metric objects. Received instead: metrics=[[...]]"
    run.load_failed(ENV_A.id, ENV_B.id, "h5", status="ok", predict_call="predict", seconds=0.1,
                    evaluate_error={"type": "ValueError", "message": message})
    cell = _cell(run.report(), ENV_A.id, ENV_B.id, "h5")
    assert (cell["status"], cell["stage"], cell["route_status"]) == ("error", "evaluate", "breaks")
    assert cell["bit_exact"] is True
    assert cell["reason"] == "predictions match; evaluate() raised in the target"
    assert cell["evaluate"]["target"] is None
    assert cell["evaluate"]["error"]["type"] == cell["error"]["type"] == "ValueError"
    assert "compile=False" in cell["error"]["hint"]


# ---------------------------------------------------------------------------- summary and grid


def test_summary_counts_add_up_and_grid_shows_the_worst(run: FakeRun) -> None:
    output = run.references[ENV_A.id].copy()
    output[0, 0] += np.float32(0.5)
    run.load_ok(ENV_A.id, ENV_B.id, "h5", output)  # drift
    run.load_failed(ENV_A.id, ENV_B.id, "keras", status="error", stage="load",
                    error={"type": "TypeError", "message": KERAS2_IN_KERAS3})
    run.load_failed(ENV_B.id, ENV_A.id, "keras", status="crash", signal="SIGSEGV", exit_code=-11,
                    error={"type": "WorkerCrash", "message": "worker killed by SIGSEGV"})
    run.drop_records(ENV_B.id, ENV_B.id, "h5")  # skipped: B's h5 at home never ran
    report = run.report()
    summary = report["summary"]
    assert summary["total"] == len(report["cells"]) == 8
    assert sum(summary["counts"].values()) == summary["total"]
    assert list(summary["counts"]) == list(STATUS_ORDER)
    assert summary["counts"] == {"pass": 4, "unsupported": 0, "skipped": 1, "drift": 1, "error": 1,
                                 "timeout": 0, "crash": 1}
    # B -> A's h5 passes, but whether that route works at B is unknown: skipped, not portable.
    assert summary["routes"] == {"portable": 3, "breaks": 3, "never_works": 0, "target_only": 0, "unsupported": 0,
                                 "hazard": 0, "skipped": 2}
    grid = summary["grid"]
    assert grid[ENV_A.id][ENV_B.id] == {"worst": "error", "counts": {"drift": 1, "error": 1}, "verdict": "broken",
                                        "expected": False}
    assert grid[ENV_B.id][ENV_A.id] == {"worst": "crash", "counts": {"crash": 1, "pass": 1}, "verdict": "broken",
                                        "expected": False}
    assert grid[ENV_A.id][ENV_A.id] == {"worst": "pass", "counts": {"pass": 2}, "verdict": "safe", "expected": False}
    assert grid[ENV_B.id][ENV_B.id] == {"worst": "skipped", "counts": {"pass": 1, "skipped": 1}, "verdict": "safe",
                                        "expected": False}
    # the grid agrees with the cells
    for source in (ENV_A.id, ENV_B.id):
        for target in (ENV_A.id, ENV_B.id):
            statuses = [c["status"] for c in report["cells"] if (c["source"], c["target"]) == (source, target)]
            assert grid[source][target]["worst"] == worst(statuses)
    assert report["verdict"]["exit_code"] == 1
    unexpected = report["verdict"]["unexpected"]
    assert f"{ENV_A.id} -> {ENV_B.id}: 1 route(s) break (predictions-drift)" in unexpected
    assert sum(u.startswith(f"{ENV_A.id} -> {ENV_B.id}: 1 route(s) break") for u in unexpected) == 2  # + the error
    assert any(u.startswith(f"{ENV_B.id} -> {ENV_A.id}: 1 route(s) break") for u in unexpected)  # the crash
    assert f"the load phase in {ENV_B.id} did not reach this cell" in unexpected  # never ran: never "as expected"


def test_worst_orders_statuses() -> None:
    assert worst([]) is None
    assert worst(["pass", "skipped"]) == "skipped"
    assert worst(["drift", "unsupported", "pass"]) == "drift"
    assert worst(["timeout", "error"]) == "timeout"
    assert worst(["crash", "timeout", "pass"]) == "crash"


def test_every_cell_has_the_same_keys(run: FakeRun) -> None:
    run.load_failed(ENV_A.id, ENV_B.id, "keras", status="error", stage="load",
                    error={"type": "TypeError", "message": KERAS2_IN_KERAS3})
    run.load_failed(ENV_B.id, ENV_A.id, "keras", status="crash", signal="SIGSEGV", exit_code=-11,
                    error={"type": "WorkerCrash", "message": "worker killed by SIGSEGV"})
    run.drop_records(ENV_A.id, ENV_A.id, "h5")
    cells = run.report()["cells"]
    assert {c["status"] for c in cells} == {"pass", "error", "crash", "skipped"}
    expected = set(CELL_DEFAULTS) | KEY_FIELDS
    for cell in cells:
        assert set(cell) == expected, cell["status"]


# ---------------------------------------------------------------------------- files and determinism


def test_write_reports_writes_strict_json_and_markdown(run: FakeRun) -> None:
    output = run.references[ENV_A.id].copy()
    output[1, :] = np.nan  # NaN on one side only: figures must become null, not NaN
    run.load_ok(ENV_A.id, ENV_B.id, "h5", output)
    returned = write_reports(RunDir(run.root))
    text = (run.root / "report.json").read_text(encoding="utf-8")
    parsed = expand(strict_json(text))  # the file is compact; expanded, it is what was returned
    assert parsed == strict_json(json.dumps(returned))
    cell = _cell(parsed, ENV_A.id, ENV_B.id, "h5")
    assert cell["status"] == "drift"
    assert cell["max_abs_diff"] is None and cell["max_rel_diff"] is None
    md = (run.root / "report.md").read_text(encoding="utf-8")
    assert md == render_markdown(returned)
    assert "| saved in \\ loaded in |" in md
    for env in (ENV_A, ENV_B):
        assert f"`{env.id}`" in md
    assert "# Compatibility report: fake" in md
    assert "**exit 1: 1 unexpected**" in md
    assert not list(run.root.glob("*.tmp")) and not list(run.root.glob(".*.tmp"))


def test_an_expected_cell_names_its_expectation_by_index_in_the_file(tmp_path: Path) -> None:
    run = varied_run(tmp_path)
    run.load_failed(ENV_A.id, ENV_A.id, "h5", status="error", error={"type": "OSError", "message": "truncated"},
                    preflight={"outcome": "pass", "why": ""})  # the scan foresaw nothing
    returned = write_reports(RunDir(run.root))
    on_disk = strict_json((run.root / "report.json").read_text(encoding="utf-8"))
    crash = _cell(on_disk, ENV_B.id, ENV_A.id, "h5")
    assert crash["expected"] is True and crash["expectation"] == 0  # the reason once, in "expectations"
    assert on_disk["expectations"] == [{"index": 0, "reason": "segfaults in h5py", "cells": 1}]
    assert not any((c.get("preflight") or {}).get("why") == "" for c in on_disk["cells"])  # an empty why is left out
    assert any(c["preflight"] == {"outcome": "pass", "why": ""} for c in returned["cells"])
    assert expand(on_disk) == strict_json(json.dumps(returned))

def test_report_json_is_strict_when_reference_has_zeros(run: FakeRun) -> None:
    reference = run.references[ENV_A.id].copy()
    reference[0, 0] = 0.0
    np.save(run.root / "artifacts" / ENV_A.id / "dense" / "reference.npy", reference)
    output = reference.copy()
    output[0, 0] = 0.5
    run.load_ok(ENV_A.id, ENV_B.id, "h5", output)
    write_reports(RunDir(run.root))
    strict_json((run.root / "report.json").read_text(encoding="utf-8"))


def test_nan_evaluate_result_is_drift_with_null_figures_andstrict_json(run: FakeRun) -> None:
    run.load_ok(ENV_A.id, ENV_B.id, "h5", run.references[ENV_A.id],
                evaluate={"compile_metrics": 0.75, "loss": float("nan")})
    report = write_reports(RunDir(run.root))
    cell = _cell(report, ENV_A.id, ENV_B.id, "h5")
    assert cell["status"] == "drift"  # this part holds today
    assert cell["evaluate"]["max_abs_diff"] is None
    strict_json((run.root / "report.json").read_text(encoding="utf-8"))


def test_report_is_deterministic(run: FakeRun) -> None:
    run.load_failed(ENV_A.id, ENV_B.id, "keras", status="error", stage="load",
                    error={"type": "TypeError", "message": KERAS2_IN_KERAS3})
    first = json.dumps(run.report(), sort_keys=True)
    second = json.dumps(run.report(), sort_keys=True)
    assert first == second
    write_reports(RunDir(run.root))
    on_disk = (run.root / "report.json").read_text()
    write_reports(RunDir(run.root))
    assert (run.root / "report.json").read_text() == on_disk
    assert strict_json(on_disk)["created"] == "2026-01-02T03:14:05+00:00"  # from run.json, not the clock


def test_torn_last_record_is_ignored(run: FakeRun) -> None:
    path = run.root / "records" / f"load-{ENV_B.id}.jsonl"
    with path.open("a") as fh:
        fh.write('{"kind": "load", "source": "' + ENV_A.id + '", "status": "err')  # killed mid-write
    report = run.report()
    assert [c["status"] for c in report["cells"]] == ["pass"] * 8
