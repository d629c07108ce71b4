"""build_report / write_reports on a run directory written by hand, exactly as the runner and agent leave it.

Layout (see runner.py, agent/save.py, agent/load.py, agent/worker.py):

    run.json                                   matrix (matrix_to_dict), environments [{id, spec, image, status, ...}]
    artifacts/<env>/env.json, manifest.json    versions; models.dense.{inputs,labels,reference,evaluate,formats}
    artifacts/<env>/dense/{reference,inputs,labels}.npy
    records/save-<env>.jsonl                   kind "save" records
    records/load-<target>.jsonl                kind "load" records, then a "load-done" record
    outputs/<target>/<source>/dense/<fmt>/load_model.npy
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.agent.records import RECORD_SCHEMA
from harness.hints import hint_for
from harness.matrix_types import Environment, Matrix, Tolerance, matrix_to_dict
from harness.report.build import CELL_DEFAULTS, STATUS_ORDER, build_report, worst
from harness.report.markdown import render_markdown
from harness.report.writers import write_reports
from harness.rundir import RunDir

ENV_A = Environment(id="py3.11-tf2.15.1", python="3.11", tensorflow="==2.15.1", base_image="python:3.11-slim")
ENV_B = Environment(id="py3.11-tf2.16.2-keras3.3.3", python="3.11", tensorflow="==2.16.2", keras="==3.3.3",
                    base_image="python:3.11-slim")
ENV_C = Environment(id="py3.13-tf2.12.1", python="3.13", tensorflow="==2.12.1", base_image="python:3.13-slim")
VERSIONS = {
    ENV_A.id: {"python": "3.11.9", "tensorflow": "2.15.1", "keras": "2.15.0", "keras_package": "keras",
               "keras_major": 2},
    ENV_B.id: {"python": "3.11.9", "tensorflow": "2.16.2", "keras": "3.3.3", "keras_package": "keras",
               "keras_major": 3},
    ENV_C.id: {"python": "3.13.1", "tensorflow": "2.12.1", "keras": "2.12.0", "keras_package": "keras",
               "keras_major": 2},
}
FORMATS = ("h5", "keras")
EVALUATE = {"compile_metrics": 0.75, "loss": 0.6931}
KEY_FIELDS = {"source", "target", "model", "format", "loader", "status"}
KERAS2_IN_KERAS3 = ("Could not deserialize class 'Functional' because its parent module "
                    "keras.src.engine.functional cannot be imported. Full object config: {...}")


def _append_jsonl(path: Path, *records: dict[str, Any]) -> None:
    """Append records in RecordWriter's format (sorted keys, schema 1), without its per-record fsync."""
    with path.open("a", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps({"schema": RECORD_SCHEMA, **record}, sort_keys=True) + "\n")


def _strict_json(text: str) -> Any:
    def reject(constant: str) -> Any:
        raise ValueError(f"non-standard JSON constant {constant}")
    return json.loads(text, parse_constant=reject)


class FakeRun:
    """A run directory as a finished `harness run` leaves it; every load passes until a test changes it."""

    def __init__(self, root: Path, envs: tuple[Environment, ...] = (ENV_A, ENV_B),
                 status: dict[str, str] | None = None, tolerance: Tolerance | None = None) -> None:
        self.root = root
        self.envs = envs
        self.status = {e.id: "ok" for e in envs} | (status or {})
        self.matrix = Matrix(name="fake", path="matrices/fake.yaml", sha256="ab" * 32, environments=envs,
                             models=("dense",), formats=FORMATS, loaders=("load_model",),
                             tolerance=tolerance or Tolerance())
        self.references: dict[str, np.ndarray] = {}
        for sub in ("artifacts", "records", "outputs", "envs", "logs"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self._write_run_json()
        ok = [e.id for e in envs if self.status[e.id] == "ok"]
        for i, env_id in enumerate(ok):
            self._save(env_id, seed=i)
        for target in ok:
            for source in ok:
                for fmt in FORMATS:
                    self.load_ok(source, target, fmt, self.references[source])
        for target in ok:
            self.load_done(target)

    # -- writing, as the runner and the agent do
    def _write_run_json(self) -> None:
        environments = []
        for env in self.envs:
            entry: dict[str, Any] = {"id": env.id, "spec": dataclasses.asdict(env),
                                     "image": f"harness-env:{env.id[:8]}", "status": self.status[env.id]}
            if self.status[env.id] == "ok":
                entry.update(error=None, image_id="sha256:" + "0" * 64, build={"built": True, "seconds": 1.0})
            else:
                entry.update(error="ERROR: No matching distribution found for tensorflow-cpu==2.12.1",
                             image_id=None, build={"built": True, "seconds": 3.0})
            environments.append(entry)
        run = {"harness_version": "0.1.0", "run_id": "abc123", "created": "2026-01-02T03:04:05+00:00",
               "finished": "2026-01-02T03:14:05+00:00", "status": "complete",
               "matrix": matrix_to_dict(self.matrix), "environments": environments,
               "containers_started": 4, "timings": {"build": 1.0}}
        (self.root / "run.json").write_text(json.dumps(run, indent=2, sort_keys=True))

    def _save(self, env_id: str, seed: int) -> None:
        art = self.root / "artifacts" / env_id
        (art / "dense").mkdir(parents=True)
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(8, 4)).astype(np.float32)
        y = rng.integers(0, 3, size=8)
        logits = rng.random((8, 3)) + 0.05
        reference = (logits / logits.sum(axis=1, keepdims=True)).astype(np.float32)
        self.references[env_id] = reference
        np.save(art / "dense" / "inputs.npy", x)
        np.save(art / "dense" / "labels.npy", y)
        np.save(art / "dense" / "reference.npy", reference)
        (art / "env.json").write_text(json.dumps(VERSIONS[env_id]))
        save_records = []
        formats = {}
        for fmt in FORMATS:
            path = "dense/h5/model.h5" if fmt == "h5" else "dense/keras/model.keras"
            (art / path).parent.mkdir(parents=True, exist_ok=True)
            (art / path).write_bytes(b"fake model")
            formats[fmt] = {"path": path, "files": {f"{fmt}/{Path(path).name}": "0" * 64}}
            save_records.append({"kind": "save", "env": env_id, "versions": VERSIONS[env_id], "model": "dense",
                                 "format": fmt, "status": "ok", "path": f"{fmt}/{Path(path).name}", "seconds": 0.1})
        _append_jsonl(self.root / "records" / f"save-{env_id}.jsonl", *save_records)
        manifest = {"schema": 1, "env": env_id, "versions": VERSIONS[env_id], "models": {"dense": {
            "inputs": "dense/inputs.npy", "labels": "dense/labels.npy", "reference": "dense/reference.npy",
            "predict_call": "predict", "evaluate": dict(EVALUATE), "build_seconds": 0.5, "formats": formats}}}
        (art / "manifest.json").write_text(json.dumps(manifest, indent=2))

    def _append(self, target: str, record: dict[str, Any]) -> None:
        _append_jsonl(self.root / "records" / f"load-{target}.jsonl", record)

    def output_path(self, source: str, target: str, fmt: str) -> Path:
        return self.root / "outputs" / target / source / "dense" / fmt / "load_model.npy"

    def load_ok(self, source: str, target: str, fmt: str, output: np.ndarray,
                evaluate: dict[str, float] | None = None) -> None:
        path = self.output_path(source, target, fmt)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, output)
        self._append(target, {"kind": "load", "target": target, "source": source, "model": "dense", "format": fmt,
                              "loader": "load_model", "status": "ok", "predict_call": "predict",
                              "load_seconds": 0.2, "seconds": 0.3,
                              "evaluate": dict(EVALUATE) if evaluate is None else evaluate,
                              "versions": VERSIONS[target]})

    def load_failed(self, source: str, target: str, fmt: str, **result: Any) -> None:
        """A non-ok record appended later: it wins over the earlier one (as on resume)."""
        self._append(target, {"kind": "load", "target": target, "source": source, "model": "dense",
                              "format": fmt, "loader": "load_model", **result})

    def load_done(self, target: str) -> None:
        self._append(target, {"kind": "load-done", "target": target})

    def drop_records(self, target: str, source: str, fmt: str) -> None:
        path = self.root / "records" / f"load-{target}.jsonl"
        kept = [ln for ln in path.read_text().splitlines()
                if not (json.loads(ln).get("source") == source and json.loads(ln).get("format") == fmt)]
        path.write_text("".join(ln + "\n" for ln in kept))

    def report(self) -> dict[str, Any]:
        report: dict[str, Any] = build_report(RunDir(self.root))
        return report


def _cell(report: dict[str, Any], source: str, target: str, fmt: str) -> dict[str, Any]:
    found = [c for c in report["cells"] if (c["source"], c["target"], c["format"]) == (source, target, fmt)]
    assert len(found) == 1, found
    cell: dict[str, Any] = found[0]
    return cell


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
    assert report["verdict"] == {"exit_code": 0, "unexpected": [], "regressions": []}


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
    assert report["verdict"]["exit_code"] == 1
    assert report["verdict"]["unexpected"] == [f"{ENV_A.id} -> {ENV_B.id}: dense/keras/load_model drift"]


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
    assert cell["error"]["traceback"] == "Traceback ..."
    assert cell["error"]["hint"] is not None
    assert cell["error"]["hint"] == hint_for("TypeError", KERAS2_IN_KERAS3)
    assert "tf-keras" in cell["error"]["hint"]
    assert cell["reason"] == "load"
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
    manifest_path = run.root / "artifacts" / ENV_A.id / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["models"]["dense"]["formats"]["h5"]
    manifest_path.write_text(json.dumps(manifest))
    _append_jsonl(run.root / "records" / f"save-{ENV_A.id}.jsonl",
                  {"kind": "save", "env": ENV_A.id, "model": "dense", "format": "h5", "status": "error",
                   "error": {"type": "AttributeError", "message": "'str' object has no attribute 'decode'"}})
    report = run.report()
    for target in (ENV_A.id, ENV_B.id):
        cell = _cell(report, ENV_A.id, target, "h5")
        assert cell["status"] == "skipped"
        assert cell["reason"] == f"{ENV_A.id} could not save dense/h5"
        assert cell["error"]["type"] == "AttributeError"
        assert cell["error"]["hint"] == hint_for("AttributeError", "'str' object has no attribute 'decode'")


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


def test_evaluate_error_is_kept_but_does_not_fail_the_cell(run: FakeRun) -> None:
    run.load_failed(ENV_A.id, ENV_A.id, "h5", status="ok", predict_call="predict", seconds=0.1,
                    evaluate_error={"type": "RuntimeError", "message": "You must compile your model"})
    cell = _cell(run.report(), ENV_A.id, ENV_A.id, "h5")
    assert cell["status"] == "pass"
    assert cell["evaluate"]["target"] is None
    assert cell["evaluate"]["error"]["type"] == "RuntimeError"


# ---------------------------------------------------------------------------- summary and grid


def test_summary_counts_add_up_and_grid_shows_the_worst(run: FakeRun) -> None:
    output = run.references[ENV_A.id].copy()
    output[0, 0] += np.float32(0.5)
    run.load_ok(ENV_A.id, ENV_B.id, "h5", output)  # drift
    run.load_failed(ENV_A.id, ENV_B.id, "keras", status="error", stage="load",
                    error={"type": "TypeError", "message": KERAS2_IN_KERAS3})
    run.load_failed(ENV_B.id, ENV_A.id, "keras", status="crash", signal="SIGSEGV", exit_code=-11,
                    error={"type": "WorkerCrash", "message": "worker killed by SIGSEGV"})
    run.drop_records(ENV_A.id, ENV_A.id, "h5")  # skipped
    report = run.report()
    summary = report["summary"]
    assert summary["total"] == len(report["cells"]) == 8
    assert sum(summary["counts"].values()) == summary["total"]
    assert list(summary["counts"]) == list(STATUS_ORDER)
    assert summary["counts"] == {"pass": 4, "unsupported": 0, "skipped": 1, "drift": 1, "error": 1,
                                 "timeout": 0, "crash": 1}
    grid = summary["grid"]
    assert grid[ENV_A.id][ENV_B.id] == {"worst": "error", "counts": {"drift": 1, "error": 1}}
    assert grid[ENV_B.id][ENV_A.id] == {"worst": "crash", "counts": {"crash": 1, "pass": 1}}
    assert grid[ENV_A.id][ENV_A.id] == {"worst": "skipped", "counts": {"pass": 1, "skipped": 1}}
    assert grid[ENV_B.id][ENV_B.id] == {"worst": "pass", "counts": {"pass": 2}}
    # the grid agrees with the cells
    for source in (ENV_A.id, ENV_B.id):
        for target in (ENV_A.id, ENV_B.id):
            statuses = [c["status"] for c in report["cells"] if (c["source"], c["target"]) == (source, target)]
            assert grid[source][target]["worst"] == worst(statuses)
    assert report["verdict"]["exit_code"] == 1
    unexpected = report["verdict"]["unexpected"]
    for source, target, fmt, status in ((ENV_A.id, ENV_B.id, "h5", "drift"), (ENV_A.id, ENV_B.id, "keras", "error"),
                                        (ENV_B.id, ENV_A.id, "keras", "crash")):
        assert f"{source} -> {target}: dense/{fmt}/load_model {status}" in unexpected


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
    parsed = _strict_json(text)
    assert parsed == _strict_json(json.dumps(returned))
    cell = _cell(parsed, ENV_A.id, ENV_B.id, "h5")
    assert cell["status"] == "drift"
    assert cell["max_abs_diff"] is None and cell["max_rel_diff"] is None
    md = (run.root / "report.md").read_text(encoding="utf-8")
    assert md == render_markdown(returned)
    assert "| saved in \\ loaded in |" in md
    for env in (ENV_A, ENV_B):
        assert f"`{env.id}`" in md
    assert "# Compatibility report: fake" in md
    assert "1 unexpected failure(s)" in md
    assert not list(run.root.glob("*.tmp")) and not list(run.root.glob(".*.tmp"))


def test_report_json_is_strict_when_reference_has_zeros(run: FakeRun) -> None:
    reference = run.references[ENV_A.id].copy()
    reference[0, 0] = 0.0
    np.save(run.root / "artifacts" / ENV_A.id / "dense" / "reference.npy", reference)
    output = reference.copy()
    output[0, 0] = 0.5
    run.load_ok(ENV_A.id, ENV_B.id, "h5", output)
    write_reports(RunDir(run.root))
    _strict_json((run.root / "report.json").read_text(encoding="utf-8"))


def test_nan_evaluate_result_is_drift_with_null_figures_and_strict_json(run: FakeRun) -> None:
    run.load_ok(ENV_A.id, ENV_B.id, "h5", run.references[ENV_A.id],
                evaluate={"compile_metrics": 0.75, "loss": float("nan")})
    report = write_reports(RunDir(run.root))
    cell = _cell(report, ENV_A.id, ENV_B.id, "h5")
    assert cell["status"] == "drift"  # this part holds today
    assert cell["evaluate"]["max_abs_diff"] is None
    _strict_json((run.root / "report.json").read_text(encoding="utf-8"))


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
    assert _strict_json(on_disk)["created"] == "2026-01-02T03:14:05+00:00"  # from run.json, not the clock


def test_torn_last_record_is_ignored(run: FakeRun) -> None:
    path = run.root / "records" / f"load-{ENV_B.id}.jsonl"
    with path.open("a") as fh:
        fh.write('{"kind": "load", "source": "' + ENV_A.id + '", "status": "err')  # killed mid-write
    report = run.report()
    assert [c["status"] for c in report["cells"]] == ["pass"] * 8
