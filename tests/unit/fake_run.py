"""A run directory written by hand, as the runner and agent leave it: reports are built from it.

Paths, manifests and records come from the agent's protocol module (and RunDir), as the real agent
writes them, so a change of layout or wire format breaks this fake too:

    run.json                                   matrix (matrix_to_dict), environments [{id, spec, image, status, ...}]
    envs/<env>/packages.txt                    pip freeze
    artifacts/<env>/env.json, manifest.json    versions; models.dense.{inputs,labels,reference,evaluate,formats}
    artifacts/<env>/dense/inputs.npz, labels.npy, reference.npy
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

from harness.agent import protocol
from harness.agent.protocol import RECORD_SCHEMA
from harness.matrix import Environment, Expectation, Matrix, Tolerance, matrix_to_dict
from harness.report.build import build_report
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
KERAS2_IN_KERAS3 = ("Could not deserialize class 'Functional' because its parent module "
                    "keras.src.engine.functional cannot be imported. Full object config: {...}")


def append_jsonl(path: Path, *records: dict[str, Any]) -> None:
    """Append records in RecordWriter's format (sorted keys, schema 1), without its per-record fsync."""
    with path.open("a", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps({"schema": RECORD_SCHEMA, **record}, sort_keys=True) + "\n")


def strict_json(text: str) -> Any:
    def reject(constant: str) -> Any:
        raise ValueError(f"non-standard JSON constant {constant}")
    return json.loads(text, parse_constant=reject)


class FakeRun:
    """A run directory as a finished `harness run` leaves it; every load passes until a test changes it."""

    def __init__(self, root: Path, envs: tuple[Environment, ...] = (ENV_A, ENV_B),
                 status: dict[str, str] | None = None, tolerance: Tolerance | None = None,
                 expect: tuple[Expectation, ...] = ()) -> None:
        self.root = root
        self.envs = envs
        self.status = {e.id: "ok" for e in envs} | (status or {})
        self.matrix = Matrix(name="fake", path="matrices/fake.yaml", sha256="ab" * 32, environments=envs,
                             models=(protocol.resolve_probe("dense", FORMATS, ("load_model",)),), formats=FORMATS,
                             loaders=("load_model",), tolerance=tolerance or Tolerance(), expect=expect)
        self.run_dir = RunDir(root)
        self.references: dict[str, np.ndarray] = {}
        RunDir.prepare(root, resume=False, shared=True)
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

    def versions(self, env_id: str) -> dict[str, Any]:
        """What an environment's env.json says: the known ones above, else read off its spec."""
        if env_id in VERSIONS:
            return VERSIONS[env_id]
        env = next(e for e in self.envs if e.id == env_id)
        keras = (env.keras or "==2.15.0").lstrip("=")
        return {"python": env.python + ".9", "tensorflow": env.tensorflow.lstrip("="), "keras": keras,
                "keras_package": "keras", "keras_major": int(keras.split(".")[0])}

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
        self.run_dir.run_json.write_text(json.dumps(run, indent=2, sort_keys=True))

    def _save(self, env_id: str, seed: int) -> None:
        art = self.run_dir.artifacts(env_id)
        (art / "dense").mkdir(parents=True)
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(8, 4)).astype(np.float32)
        y = rng.integers(0, 3, size=8)
        logits = rng.random((8, 3)) + 0.05
        reference = (logits / logits.sum(axis=1, keepdims=True)).astype(np.float32)
        self.references[env_id] = reference
        np.savez(art / "dense" / protocol.INPUTS, features=x)
        np.save(art / "dense" / protocol.LABELS, y)
        np.save(art / "dense" / protocol.REFERENCE, reference)
        (art / protocol.ENV_JSON).write_text(json.dumps(self.versions(env_id)))
        self.run_dir.env_dir(env_id).mkdir(parents=True, exist_ok=True)
        (self.run_dir.env_dir(env_id) / protocol.PACKAGES).write_text(
            f"numpy==1.26.4\ntensorflow-cpu=={self.versions(env_id)['tensorflow']}\n")
        save_records = []
        formats = {}
        for fmt in FORMATS:
            path = "dense/h5/model.h5" if fmt == "h5" else "dense/keras/model.keras"
            (art / path).parent.mkdir(parents=True, exist_ok=True)
            (art / path).write_bytes(b"fake model")
            formats[fmt] = {"path": path, "files": {f"{fmt}/{Path(path).name}": "0" * 64}}
            save_records.append({"kind": "save", "env": env_id, "versions": self.versions(env_id), "model": "dense",
                                 "format": fmt, "status": "ok", "path": f"{fmt}/{Path(path).name}", "seconds": 0.1})
        append_jsonl(self.run_dir.records("save", env_id), *save_records)
        entry = protocol.manifest_entry("dense", ["features"], formats, evaluate=dict(EVALUATE), predict_call="predict",
                                        build_seconds=0.5)
        manifest = protocol.manifest(env_id, self.versions(env_id), {"dense": entry})
        (art / protocol.MANIFEST).write_text(json.dumps(manifest, indent=2))

    def _append(self, target: str, record: dict[str, Any]) -> None:
        append_jsonl(self.run_dir.records("load", target), record)

    def output_path(self, source: str, target: str, fmt: str) -> Path:
        return self.run_dir.output(protocol.CellKey(source, target, "dense", fmt, "load_model"))

    def load_ok(self, source: str, target: str, fmt: str, output: np.ndarray,
                evaluate: dict[str, float] | None = None) -> None:
        path = self.output_path(source, target, fmt)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, output)
        self._append(target, {"kind": "load", "target": target, "source": source, "model": "dense", "format": fmt,
                              "loader": "load_model", "status": "ok", "predict_call": "predict",
                              "load_seconds": 0.2, "seconds": 0.3,
                              "evaluate": dict(EVALUATE) if evaluate is None else evaluate,
                              "versions": self.versions(target)})

    def load_failed(self, source: str, target: str, fmt: str, **result: Any) -> None:
        """A non-ok record appended later: it wins over the earlier one (as on resume)."""
        self._append(target, {"kind": "load", "target": target, "source": source, "model": "dense",
                              "format": fmt, "loader": "load_model", **result})

    def load_done(self, target: str) -> None:
        self._append(target, {"kind": protocol.LOAD_DONE, "target": target})

    def drop_records(self, target: str, source: str, fmt: str) -> None:
        path = self.run_dir.records("load", target)
        kept = [ln for ln in path.read_text().splitlines()
                if not (json.loads(ln).get("source") == source and json.loads(ln).get("format") == fmt)]
        path.write_text("".join(ln + "\n" for ln in kept))

    def report(self, fail_on: str = "breaks") -> dict[str, Any]:
        report: dict[str, Any] = build_report(RunDir(self.root), fail_on=fail_on)
        return report


def cell(report: dict[str, Any], source: str, target: str, fmt: str) -> dict[str, Any]:
    found = [c for c in report["cells"] if (c["source"], c["target"], c["format"]) == (source, target, fmt)]
    assert len(found) == 1, found
    cell: dict[str, Any] = found[0]
    return cell


def varied_run(root: Path) -> FakeRun:
    """Every kind of outcome: pass, drift, error (with control characters), an expected crash, a cell never
    reached, and an environment (ENV_C) whose image did not build."""
    run = FakeRun(root, envs=(ENV_A, ENV_B, ENV_C), status={ENV_C.id: "build_error"},
                  expect=(Expectation(reason="segfaults in h5py", status=("crash",)),))
    output = run.references[ENV_A.id].copy()
    output[0, 0] += np.float32(0.5)
    run.load_ok(ENV_A.id, ENV_B.id, "h5", output)
    run.load_failed(ENV_A.id, ENV_B.id, "keras", status="error", stage="load",
                    error={"type": "TypeError", "message": KERAS2_IN_KERAS3 + "\x1b[31m\x00",
                           "traceback": "Traceback (most recent call last):\n  ...\x07"})
    run.load_failed(ENV_B.id, ENV_A.id, "h5", status="crash", signal="SIGSEGV", exit_code=-11,
                    error={"type": "WorkerCrash", "message": "worker killed by SIGSEGV"})
    run.drop_records(ENV_A.id, ENV_A.id, "keras")
    return run
