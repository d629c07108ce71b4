"""The agent's save and load steps against the TensorFlow installed in this environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.agent.records import read_records

pytestmark = pytest.mark.agent
pytest.importorskip("tensorflow")


def _agent(step: str, spec: dict[str, object]) -> None:
    subprocess.run([sys.executable, "-m", "harness.agent", step, "--spec", json.dumps(spec)], check=True,
                   timeout=600)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("run")
    out = root / "artifacts" / "here"
    out.mkdir(parents=True)
    _agent("save", {"env": "here", "models": ["dense"], "formats": ["h5", "keras"], "out": str(out),
                    "records": str(root / "save.jsonl")})
    return root


def test_save_writes_manifest_references_and_records(saved: Path) -> None:
    out = saved / "artifacts" / "here"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["versions"]["keras_major"] in (2, 3)
    entry = manifest["models"]["dense"]
    assert set(entry["formats"]) == {"h5", "keras"}
    for fmt in entry["formats"].values():
        for rel in fmt["files"]:
            assert (out / "dense" / rel).is_file()
    reference = np.load(out / entry["reference"])
    assert reference.shape == (32, 4)
    assert np.allclose(reference.sum(axis=1), 1.0, atol=1e-5)  # softmax rows
    records = list(read_records(str(saved / "save.jsonl")))
    assert [r["status"] for r in records] == ["ok", "ok"]
    assert "sparse_categorical_accuracy" in entry["evaluate"]


def test_load_reproduces_the_reference_and_resumes(saved: Path) -> None:
    outputs = saved / "outputs"
    records = saved / "load.jsonl"
    spec = {"env": "here", "loaders": ["load_model"], "artifacts": str(saved / "artifacts"),
            "outputs": str(outputs), "records": str(records), "timeout": 300}
    _agent("load", spec)
    loads = [r for r in read_records(str(records)) if r["kind"] == "load"]
    assert {(r["format"], r["status"]) for r in loads} == {("h5", "ok"), ("keras", "ok")}
    reference = np.load(saved / "artifacts" / "here" / "dense" / "reference.npy")
    for fmt in ("h5", "keras"):
        loaded = np.load(outputs / "here" / "dense" / fmt / "load_model.npy")
        np.testing.assert_array_equal(loaded, reference)
    _agent("load", spec)  # a second pass finds every cell done
    again = [r for r in read_records(str(records)) if r["kind"] == "load"]
    assert len(again) == len(loads)


def test_a_broken_artifact_is_an_error_record_not_a_crash(saved: Path, tmp_path: Path) -> None:
    src = saved / "artifacts" / "here"
    broken = tmp_path / "artifacts" / "broken"
    (broken / "dense" / "h5").mkdir(parents=True)
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["models"]["dense"]["formats"] = {"h5": manifest["models"]["dense"]["formats"]["h5"]}
    (broken / "manifest.json").write_text(json.dumps(manifest))
    for name in ("inputs.npy", "labels.npy", "reference.npy"):
        (broken / "dense" / name).write_bytes((src / "dense" / name).read_bytes())
    (broken / "dense" / "h5" / "model.h5").write_bytes(b"not an hdf5 file")
    records = tmp_path / "load.jsonl"
    _agent("load", {"env": "t", "loaders": ["load_model"], "artifacts": str(tmp_path / "artifacts"),
                    "outputs": str(tmp_path / "out"), "records": str(records), "timeout": 300})
    (record,) = [r for r in read_records(str(records)) if r["kind"] == "load"]
    assert record["status"] == "error"
    assert record["error"]["type"] and record["error"]["message"]
