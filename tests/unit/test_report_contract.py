"""CONTRACT: the shape of report.json (schema_version 2).

Consumers (CI dashboards, diff tools) read these keys. A change here is a schema change: bump
SCHEMA_VERSION and update this file on purpose, never as a side effect.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness import __version__
from harness.agent.protocol import resolve_probe
from harness.matrix import Environment, Expectation, Matrix, matrix_to_dict
from harness.report.diff import regressions
from harness.report.schema import CELL_DEFAULTS, SCHEMA_VERSION, dump, expand, load_report
from harness.report.writers import write_reports
from harness.rundir import RunDir

TOP_LEVEL_KEYS = {
    "schema_version", "harness_version", "matrix", "created", "run_id", "isolation", "tolerance", "environments",
    "models", "paths", "causes", "hazards", "cells", "tracebacks", "artifacts", "references", "summary", "verdict",
    "migrations", "bisect", "expectations", "check", "corpus", "releases",
}
# releases: null without a baseline; else the environments whose releases moved since it, by slot (the id as written).
RELEASES_KEYS = {"baseline", "changes", "added", "removed"}
RELEASE_CHANGE_KEYS = {"env", "slot", "was", "moves", "words", "counts", "regressed", "fixed", "spurious"}
# check: null, or a check run's answer (harness/advisor/answer.py); check.json holds the same, with what it handed over.
CHECK_KEYS = {"model", "source", "home", "asked", "migrated_model", "verdict", "exit_code", "targets", "dependencies"}
CHECK_TARGET_KEYS = {"target", "spec", "tf_keras", "verdict", "path_verdict", "exit_code", "route", "asked", "current",
                     "at_home", "use", "tried", "works", "breaks", "never_works", "home_cause", "adapted"}
CHECK_ROUTE_KEYS = {"format", "loader", "status", "kind", "change", "env", "tf_keras", "made_with", "made_in",
                    "max_abs_diff", "bit_exact", "detail", "hint", "cause", "route_status", "adapters", "edits",
                    "words", "short", "step"}
# migrations[]: a migrated model (an existing file loaded where it works, saved there again); null-free lists.
MIGRATION_KEYS = {"model", "from", "env", "status", "loader", "tried", "error", "formats", "at_home", "verified",
                  "breaks"}
MIGRATION_FROM_KEYS = {"model", "source", "format"}
MIGRATION_TRIED_KEYS = {"loader", "status", "error"}
MIGRATION_VERIFIED_KEYS = {"target", "format", "loader", "bit_exact", "max_abs_diff"}
MIGRATION_STATUSES = ["made", "failed", "not_run"]
# bisect: null, or what `harness bisect` found (run.json holds the same).
BISECT_KEYS = {"axis", "package", "index", "from", "to", "releases", "skipped", "environments", "probed", "unbuilt",
               "budget", "home_works", "routes", "seconds"}
BISECT_ROUTE_KEYS = {"format", "loader", "yours", "asked", "history", "monotone", "last_good", "first_bad",
                     "adjacent", "cause", "error", "root", "hint", "note"}
ENVIRONMENT_KEYS = {
    "id", "python", "tensorflow", "keras", "keras_package", "keras_major", "spec", "image", "image_id", "status",
    "error", "slot", "selectors",
}
CELL_KEYS = {
    "source", "target", "model", "format", "loader", "status", "stage", "route_status", "cause",
    "max_abs_diff", "max_rel_diff", "max_ulp", "bit_exact", "argmax_agreement", "evaluate", "error", "reason",
    "seconds", "predict_call", "signal", "exit_code", "expected", "expectation", "hint", "loader_options", "preflight",
    "noise",
}
# The file leaves every other field out when it is null.
FILE_CELL_KEYS = {"source", "target", "model", "format", "loader", "status", "route_status", "expected"}
ERROR_KEYS = {"type", "message", "hint", "traceback"}
MODEL_KEYS = {"name", "kind", "hazards", "description", "shows_hazard", "home"}
PATH_KEYS = {"source", "target", "verdict", "routes_portable", "routes_breaks", "routes_never_works",
             "routes_unsupported", "routes_hazard", "routes_skipped", "breaks_unexpected", "causes", "home_causes",
             "works", "works_by_route", "models", "models_portable", "models_broken", "routes_target_only", "table",
             "formats"}
# paths[].table[]: per format and loader, the models that survive of those it works for at home.
PATH_TABLE_KEYS = {"format", "loader", "works", "of", "target_only", "change", "bit_exact", "max_abs_diff", "causes"}
PATH_FORMAT_KEYS = {"format", "models", "survive", "loader", "loader_models", "causes"}
CAUSE_KEYS = {"name", "fix", "cells", "breaks", "breaks_unexpected", "never_works", "expected", "statuses", "pairs",
              "models", "example", "message", "flag"}
ROUTE_STATUSES = ["portable", "breaks", "never_works", "target_only", "unsupported", "hazard", "skipped"]
VERDICTS = ["safe", "partial", "broken", "untested"]
VERDICT_KEYS = {"exit_code", "fail_on", "unexpected", "regressions", "unused_expectations", "failing", "reasons",
                "spurious"}
REGRESSION_KEYS = {"source", "target", "model", "format", "loader", "kind", "old", "new"}
REGRESSION_KINDS = {"stopped_passing", "drift_grown", "new_error_type"}
SUMMARY_KEYS = {"total", "counts", "routes", "paths", "grid", "preflight"}
STATUSES = ["pass", "unsupported", "skipped", "drift", "error", "timeout", "crash"]

OK = Environment(id="ok-env", python="3.11", tensorflow="==2.15.1", base_image="python:3.11-slim")
BROKEN = Environment(id="broken-env", python="3.13", tensorflow="==2.12.1", base_image="python:3.13-slim")


def _jsonl(path: Path, *records: dict[str, Any]) -> None:
    path.write_text("".join(json.dumps({"schema": 1, **r}, sort_keys=True) + "\n" for r in records))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """report.json of a run with a pass, an error, a skipped (unsaved format) and build_error cells."""
    root = tmp_path_factory.mktemp("run")
    matrix = Matrix(name="contract", path="m.yaml", sha256="0" * 64, environments=(OK, BROKEN),
                    models=(resolve_probe("dense", ("h5", "keras"), ("load_model",)),), formats=("h5", "keras"),
                    expect=(Expectation(reason="h5 crashes", format="h5", status=("crash",)),))
    run = {
        "run_id": "r1", "created": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T00:10:00+00:00",
        "matrix": matrix_to_dict(matrix),
        "environments": [
            {"id": OK.id, "spec": dataclasses.asdict(OK), "image": "harness-env:1", "image_id": "sha256:1",
             "status": "ok", "error": None},
            {"id": BROKEN.id, "spec": dataclasses.asdict(BROKEN), "image": "harness-env:2", "image_id": None,
             "status": "build_error", "error": "ERROR: No matching distribution found for tensorflow-cpu==2.12.1"},
        ],
    }
    (root / "run.json").write_text(json.dumps(run))
    art = root / "artifacts" / OK.id
    (art / "dense").mkdir(parents=True)
    reference = np.array([[0.2, 0.8], [0.6, 0.4]], dtype=np.float32)
    np.save(art / "dense" / "reference.npy", reference)
    manifest = {"schema": 1, "env": OK.id, "models": {"dense": {
        "inputs": "dense/inputs.npy", "labels": "dense/labels.npy", "reference": "dense/reference.npy",
        "evaluate": {"loss": 0.5}, "formats": {"h5": {"path": "dense/h5/model.h5", "files": {}}}}}}
    (art / "manifest.json").write_text(json.dumps(manifest))
    (art / "env.json").write_text(json.dumps({"python": "3.11.9", "tensorflow": "2.15.1", "keras": "2.15.0",
                                              "keras_package": "keras", "keras_major": 2}))
    (root / "records").mkdir()
    _jsonl(root / "records" / f"save-{OK.id}.jsonl",
           {"kind": "save", "env": OK.id, "model": "dense", "format": "keras", "status": "error",
            "error": {"type": "ValueError", "message": "cannot save"}})
    out = root / "outputs" / OK.id / OK.id / "dense" / "h5"
    out.mkdir(parents=True)
    np.save(out / "load_model.npy", reference)
    _jsonl(root / "records" / f"load-{OK.id}.jsonl",
           {"kind": "load", "target": OK.id, "source": OK.id, "model": "dense", "format": "h5",
            "loader": "load_model", "status": "ok", "predict_call": "predict", "seconds": 0.1,
            "evaluate": {"loss": 0.5}},
           {"kind": "load-done", "target": OK.id})
    write_reports(RunDir(root))
    return load_report(root / "report.json")  # as a baseline or `diff` reads it back


@pytest.fixture(scope="module")
def on_disk(report: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same report as its file holds it."""
    text = dump(report)
    assert text.count("\n") >= len(report["cells"])  # one cell per line
    data: dict[str, Any] = json.loads(text)
    return data


def test_top_level_keys(report: dict[str, Any]) -> None:
    assert set(report) == TOP_LEVEL_KEYS


def test_schema_and_harness_version(report: dict[str, Any]) -> None:
    assert report["schema_version"] == 2 == SCHEMA_VERSION
    assert report["harness_version"] == __version__
    assert report["run_id"] == "r1"
    assert report["created"] == "2026-01-01T00:10:00+00:00"


def test_matrix_and_tolerance(report: dict[str, Any]) -> None:
    assert report["matrix"] == {"name": "contract", "path": "m.yaml", "sha256": "0" * 64}
    assert set(report["tolerance"]) == {"rtol", "atol"}
    assert all(isinstance(v, float) for v in report["tolerance"].values())


def test_environment_keys(report: dict[str, Any]) -> None:
    assert [e["id"] for e in report["environments"]] == [OK.id, BROKEN.id]
    for env in report["environments"]:
        assert set(env) == ENVIRONMENT_KEYS
    assert [e["status"] for e in report["environments"]] == ["ok", "build_error"]


def test_models_entries(report: dict[str, Any]) -> None:
    assert [m["name"] for m in report["models"]] == ["dense"]
    for model in report["models"]:
        assert set(model) == MODEL_KEYS


def test_cell_keys_are_the_full_set_for_every_status(report: dict[str, Any]) -> None:
    assert set(CELL_DEFAULTS) | {"source", "target", "model", "format", "loader", "status"} == CELL_KEYS
    assert {c["route_status"] for c in report["cells"]} <= set(ROUTE_STATUSES)
    cells = report["cells"]
    assert len(cells) == 2 * 2 * 1 * 2 * 1
    assert {c["status"] for c in cells} == {"pass", "skipped"}
    for cell in cells:
        assert set(cell) == CELL_KEYS
        if cell["error"] is not None:
            assert set(cell["error"]) == ERROR_KEYS
    passed = [c for c in cells if c["status"] == "pass"]
    assert len(passed) == 1
    assert set(passed[0]["evaluate"]) == {"source", "target", "max_abs_diff"}
    unsaved = [c for c in cells if c["source"] == OK.id == c["target"] and c["format"] == "keras"]
    assert unsaved[0]["error"]["type"] == "ValueError"


def test_summary_shape(report: dict[str, Any]) -> None:
    summary = report["summary"]
    assert set(summary) == SUMMARY_KEYS
    assert set(summary["counts"]) == set(STATUSES)  # report.json is written with sorted keys
    assert set(summary["grid"]) == {OK.id, BROKEN.id}
    for row in summary["grid"].values():
        assert set(row) == {OK.id, BROKEN.id}
        for entry in row.values():
            assert entry is None or set(entry) == {"worst", "counts", "verdict", "expected"}
    assert set(summary["routes"]) == set(ROUTE_STATUSES) and set(summary["paths"]) == set(VERDICTS)


def test_verdict_keys(report: dict[str, Any]) -> None:
    verdict = report["verdict"]
    assert set(verdict) == VERDICT_KEYS
    assert verdict["exit_code"] == 1
    assert verdict["fail_on"] == "breaks"
    assert verdict["unexpected"] == [f"{BROKEN.id}: build_error"]  # the unsaved keras never works at home
    assert verdict["failing"] == [] and verdict["reasons"] == [f"{BROKEN.id}: build_error"]
    assert verdict["regressions"] == []
    assert verdict["unused_expectations"] == [{"index": 0, "reason": "h5 crashes"}]
    assert report["expectations"] == [{"index": 0, "reason": "h5 crashes", "cells": 0}]


def test_expected_is_null_false_or_true(report: dict[str, Any]) -> None:
    flags = {(c["source"], c["target"], c["format"]): (c["status"], c["expected"], c["expectation"])
             for c in report["cells"]}
    assert flags[(OK.id, OK.id, "h5")] == ("pass", None, None)
    assert flags[(OK.id, OK.id, "keras")] == ("skipped", False, None)  # never checked: counts against the verdict
    assert flags[(OK.id, BROKEN.id, "h5")] == ("skipped", None, None)  # the failed build is counted instead


def test_regression_entry_keys(report: dict[str, Any]) -> None:
    baseline = {**report, "cells": [{**c, "status": "pass"} for c in report["cells"]]}
    found = regressions(baseline, report)
    assert found
    for entry in found:
        assert set(entry) == REGRESSION_KEYS
        assert entry["kind"] in REGRESSION_KINDS


def test_paths_causes_and_hazards(report: dict[str, Any]) -> None:
    pairs = [(p["source"], p["target"]) for p in report["paths"]]
    assert pairs == [(OK.id, OK.id), (OK.id, BROKEN.id), (BROKEN.id, OK.id), (BROKEN.id, BROKEN.id)]
    for path in report["paths"]:
        assert set(path) == PATH_KEYS
        assert path["verdict"] in VERDICTS
        for entry in path["table"]:
            assert set(entry) == PATH_TABLE_KEYS
        for entry in path["formats"]:
            assert set(entry) == PATH_FORMAT_KEYS
    assert report["paths"][0]["table"] and report["paths"][0]["formats"]
    assert [p["verdict"] for p in report["paths"]] == ["safe", "untested", "untested", "untested"]
    for cause in report["causes"]:
        assert set(cause) == CAUSE_KEYS
    assert report["hazards"] == []
    assert all(k.startswith("tb-") for k in report["tracebacks"])


def test_the_file_leaves_out_nulls_and_repeats_and_reads_back_whole(report: dict[str, Any],
                                                                     on_disk: dict[str, Any]) -> None:
    for cell in on_disk["cells"]:
        assert FILE_CELL_KEYS <= set(cell) <= CELL_KEYS
        assert all(value is not None for key, value in cell.items() if key not in FILE_CELL_KEYS)
    assert expand(on_disk)["cells"] == report["cells"]


def test_a_plain_run_has_no_migrations_and_no_bisect(report: dict[str, Any], on_disk: dict[str, Any]) -> None:
    assert report["migrations"] == [] and report["bisect"] is None
    assert on_disk["migrations"] == [] and on_disk["bisect"] is None


def test_migration_entry_keys(tmp_path: Path) -> None:
    from fake_engine import FakeEngine
    from harness.advisor.migrations import STATUSES
    from harness.cli import main

    (tmp_path / "old.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    np.save(tmp_path / "x.npy", np.zeros((2, 3), dtype="float32"))
    main(["check", "--from", "2.15.1", "--to", "2.20.0", "--model", str(tmp_path / "old.h5"), "--inputs",
          str(tmp_path / "x.npy"), "--out", str(tmp_path / "run"), "-q"], engine=FakeEngine)
    (entry,) = load_report(tmp_path / "run" / "report.json")["migrations"]
    assert set(entry) == MIGRATION_KEYS and set(entry["from"]) == MIGRATION_FROM_KEYS
    assert list(STATUSES) == MIGRATION_STATUSES and entry["status"] in MIGRATION_STATUSES
    assert entry["tried"] and all(set(t) == MIGRATION_TRIED_KEYS for t in entry["tried"])
    assert entry["verified"] and all(set(v) == MIGRATION_VERIFIED_KEYS for v in entry["verified"])
    assert all(set(h) == {"format", "loader"} for h in entry["at_home"])
    check = load_report(tmp_path / "run" / "report.json")["check"]
    assert set(check) == CHECK_KEYS
    (target,) = check["targets"]
    assert set(target) == CHECK_TARGET_KEYS and target["works"]
    routes = [*target["works"], *target["breaks"], *target["never_works"], target["use"], target["current"]]
    assert all(set(r) == CHECK_ROUTE_KEYS for r in routes if r is not None)
    on_disk = json.loads((tmp_path / "run" / "check.json").read_text())
    assert on_disk["targets"][0]["verdict"] == target["verdict"] and on_disk["exit_code"] == check["exit_code"]


def test_bisect_keys() -> None:
    from harness.advisor.bisect import Walk, _result
    from harness.advisor.question import EnvRequest
    from harness.advisor.search import Bisection, search

    bisection = Bisection(walk=["3.15.1", "3.10.0", "3.0.5"])
    route = ("keras", "load_model")
    bisection.record(0, {route: {"status": "pass"}}, True)
    bisection.record(2, {route: {"status": "error", "cause": "c", "error": {"type": "T", "message": "m"}}}, True)
    found = search(bisection, [(route, True)], lambda i: bisection.record(i, {route: {"status": "pass"}}, True), 2)
    steps = Walk("keras", "keras", ("3.15.1", "3.10.0", "3.0.5"), (EnvRequest("2.16.2"),) * 3, (), "https://x")
    result = _result(steps, bisection, found, ids=["a", "b", "c"], limit=4, home_works=True, seconds=1.0)
    assert set(result) == BISECT_KEYS
    (entry,) = result["routes"]
    assert set(entry) == BISECT_ROUTE_KEYS
    assert (entry["last_good"], entry["first_bad"], entry["adjacent"]) == ("3.10.0", "3.0.5", True)
