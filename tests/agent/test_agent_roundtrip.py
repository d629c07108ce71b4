"""The agent's save and load steps against the TensorFlow installed in this environment (Keras 3)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.agent import protocol
from harness.agent.protocol import read_records

# TensorFlow runs in the agent's own processes; found, not imported here (its import warnings are its own).
pytestmark = [pytest.mark.agent,
              pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")]

# Every probe with every format and loader, the opt-in ones included, and two fault self-tests.
MODELS = tuple(protocol.resolve_probe(name, tuple(protocol.FORMATS), tuple(protocol.LOADERS))
               for name in (*protocol.DEFAULT_MODELS, "fault_segfault", "fault_hang"))


def _agent(request: protocol.SaveRequest | protocol.LoadRequest, hash_seed: str) -> None:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    step = "save" if isinstance(request, protocol.SaveRequest) else "load"
    subprocess.run([sys.executable, "-m", "harness.agent", step, "--spec", request.to_json()], check=True,
                   timeout=900, env=env)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Save every probe in every format, then load everything with every loader."""
    root = tmp_path_factory.mktemp("run")
    out = root / "artifacts" / "here"
    out.mkdir(parents=True)
    _agent(protocol.SaveRequest("here", MODELS, out=str(out), records=str(root / "save.jsonl")), hash_seed="0")
    _agent(protocol.LoadRequest("here", MODELS, timeout=20, artifacts=str(root / "artifacts"),
                                outputs=str(root / "outputs"), records=str(root / "load.jsonl")), hash_seed="1")
    return root


def _dense(loaders: tuple[str, ...]) -> protocol.ModelSpec:
    return protocol.resolve_probe("dense", tuple(protocol.FORMATS), loaders)


def _loads(run: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r["model"], r["format"], r["loader"]): r for r in read_records(str(run / "load.jsonl"))
            if r["kind"] == "load"}


def _diff(run: Path, model: str, fmt: str, loader: str) -> float:
    reference = np.load(run / "artifacts" / "here" / model / "reference.npy")
    loaded = np.load(run / "outputs" / "here" / model / fmt / f"{loader}.npy")
    return float(np.abs(reference - loaded).max())


def test_save_writes_every_format_keras3_can(run: Path) -> None:
    saves = {(r["model"], r["format"]): r["status"] for r in read_records(str(run / "save.jsonl"))}
    assert saves[("dense", "keras")] == "ok"
    assert saves[("dense", "export")] == "ok"
    assert saves[("dense", "savedmodel")] == "unsupported"  # Keras 3: export replaced it
    assert saves[("dense", "tf_checkpoint")] == "unsupported"
    assert saves[("seeded", "seed")] == "ok"
    manifest = json.loads((run / "artifacts" / "here" / "manifest.json").read_text())
    assert manifest["versions"]["keras_major"] == 3
    assert manifest["models"]["multi_input"]["input_names"] == ["a", "b"]
    for entry in manifest["models"].values():
        for fmt in entry["formats"].values():
            for rel in fmt["files"]:
                assert (run / "artifacts" / "here" / entry["reference"]).parent.joinpath(rel).exists()


def test_same_environment_round_trips_are_exact(run: Path) -> None:
    loads = _loads(run)
    for key in [("dense", "keras", "load_model"), ("text_rnn", "h5", "load_model"),
                ("multi_input", "weights_h5", "rebuild"), ("custom_layer", "keras", "load_model_custom"),
                ("classifier", "export", "tfsm_layer"), ("dense", "json", "model_from_json")]:
        assert loads[key]["status"] == "ok", (key, loads[key].get("error"))
        assert _diff(run, *key) == 0.0, key


def test_known_breaks_are_errors_with_the_cause_in_the_message(run: Path) -> None:
    loads = _loads(run)
    assert "Lambda" in loads[("lambda", "keras", "load_model")]["error"]["message"]  # safe_mode refusal
    assert loads[("lambda", "keras", "load_model_unsafe")]["status"] == "ok"
    assert loads[("custom_layer", "keras", "load_model")]["status"] == "error"
    assert "not supported" in loads[("dense", "export", "load_model")]["error"]["message"]
    assert loads[("tf1_init", "h5", "tf1_session")]["status"] == "unsupported"


def test_label_order_from_a_set_drifts_and_the_stored_map_fixes_it(run: Path) -> None:
    assert _diff(run, "label_order", "keras", "load_model") > 0.01
    assert _diff(run, "label_order_sorted", "keras", "load_model") == 0.0


def test_a_seeded_rebuild_in_a_fresh_process_is_bit_identical(run: Path) -> None:
    assert _loads(run)[("seeded", "seed", "rebuild_from_seed")]["status"] == "ok"
    assert _diff(run, "seeded", "seed", "rebuild_from_seed") == 0.0


def test_faults_become_records_and_the_next_cells_still_run(run: Path) -> None:
    loads = _loads(run)
    crash = loads[("fault_segfault", "keras", "load_model_custom")]
    assert crash["status"] == "crash" and crash["signal"] == "SIGSEGV"
    hang = loads[("fault_hang", "keras", "load_model_custom")]
    assert hang["status"] == "timeout"
    assert loads[("label_order", "keras", "load_model")]["status"] == "ok"  # sorted after the faults


def test_load_resumes_without_redoing_cells(run: Path) -> None:
    before = len(list(read_records(str(run / "load.jsonl"))))
    _agent(protocol.LoadRequest("here", MODELS, timeout=20, artifacts=str(run / "artifacts"),
                                outputs=str(run / "outputs"), records=str(run / "load.jsonl")), hash_seed="1")
    after = list(read_records(str(run / "load.jsonl")))
    assert len(after) == before + 1  # only a second load-done marker
    assert after[-1]["kind"] == "load-done"


def test_a_broken_artifact_is_an_error_record_not_a_crash(run: Path, tmp_path: Path) -> None:
    src = run / "artifacts" / "here"
    broken = tmp_path / "artifacts" / "broken"
    (broken / "dense" / "h5").mkdir(parents=True)
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["models"] = {"dense": {**manifest["models"]["dense"],
                                    "formats": {"h5": manifest["models"]["dense"]["formats"]["h5"]}}}
    (broken / "manifest.json").write_text(json.dumps(manifest))
    for name in ("inputs.npz", "labels.npy", "reference.npy"):
        (broken / "dense" / name).write_bytes((src / "dense" / name).read_bytes())
    (broken / "dense" / "h5" / "model.h5").write_bytes(b"not an hdf5 file")
    records = tmp_path / "load.jsonl"
    _agent(protocol.LoadRequest("t", (_dense(("load_model",)),), timeout=300, artifacts=str(tmp_path / "artifacts"),
                                outputs=str(tmp_path / "out"), records=str(records)), hash_seed="1")
    (record,) = [r for r in read_records(str(records)) if r["kind"] == "load"]
    assert record["status"] == "error"
    assert record["error"]["type"] and record["error"]["message"]


def test_isolation_artifact_gives_every_load_a_fresh_worker(run: Path, tmp_path: Path) -> None:
    # Only the dense probe, to keep one TensorFlow import per load affordable here.
    src = run / "artifacts" / "here"
    only = tmp_path / "artifacts" / "here"
    only.mkdir(parents=True)
    (only / "dense").symlink_to(src / "dense")
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["models"] = {"dense": manifest["models"]["dense"]}
    (only / "manifest.json").write_text(json.dumps(manifest))
    request = protocol.LoadRequest("here", (_dense(("load_model",)),), timeout=60,
                                   artifacts=str(tmp_path / "artifacts"), outputs=str(tmp_path / "out"))
    _agent(dataclasses.replace(request, isolation="artifact", records=str(tmp_path / "isolated.jsonl")), hash_seed="1")
    _agent(dataclasses.replace(request, records=str(tmp_path / "shared.jsonl")), hash_seed="1")
    isolated = [r for r in read_records(str(tmp_path / "isolated.jsonl")) if r["kind"] == "load"]
    shared = [r for r in read_records(str(tmp_path / "shared.jsonl")) if r["kind"] == "load"]
    assert len(isolated) >= 3 and len({r["worker"] for r in isolated}) == len(isolated)
    assert len({r["worker"] for r in shared}) == 1
    assert [r["status"] for r in isolated] == [r["status"] for r in shared]


def test_a_drifting_load_is_repeated_and_its_noise_recorded(run: Path, tmp_path: Path) -> None:
    # The source's own predictions moved: every load of dense now drifts, and is loaded twice more in its worker
    # to measure how much its own predictions vary (a Keras load is deterministic: 0.0). Hazard probes drift on
    # purpose and are never repeated; loads within tolerance have nothing to measure.
    import shutil

    artifacts = tmp_path / "artifacts"
    shutil.copytree(run / "artifacts", artifacts, symlinks=True)
    reference = artifacts / "here" / "dense" / "reference.npy"
    np.save(reference, np.load(reference) + np.float32(0.5))
    models = tuple(m for m in MODELS if m.name in ("dense", "label_order", "classifier_explicit"))
    _agent(protocol.LoadRequest("here", models, timeout=60, artifacts=str(artifacts), outputs=str(tmp_path / "out"),
                                records=str(tmp_path / "load.jsonl")), hash_seed="1")
    records = [r for r in read_records(str(tmp_path / "load.jsonl")) if r["kind"] == "load" and r["status"] == "ok"]
    dense = [r for r in records if r["model"] == "dense"]
    assert dense and all(r.get("noise") == 0.0 for r in dense)
    assert not any("noise" in r for r in records if r["model"] != "dense")


REBUILT = """
import numpy as np, tensorflow as tf
from harness.agent.models import ModelCode
from harness.agent.protocol import resolve_probe
code = ModelCode(resolve_probe("classifier", ("h5",), ("rebuild",)), tf.keras)
seeded = [code.fresh().get_weights() for _ in range(2)]
rebuilt = [code.rebuilt().get_weights() for _ in range(3)]
same = all(len(w) == len(seeded[0]) and all(np.array_equal(a, b) for a, b in zip(w, seeded[0]))
           for w in [*seeded, *rebuilt])
print("SAME" if same else "DIFFERENT")
"""


def test_a_rebuild_starts_from_the_seeded_weights_however_often_it_runs() -> None:
    # After the first, rebuilds copy the first seeded build's weights instead of seeding again (seeding clears
    # TensorFlow's kernel cache): weights a file leaves alone are the seeded ones every time.
    found = subprocess.run([sys.executable, "-c", REBUILT], capture_output=True, text=True, timeout=300, check=True)
    assert found.stdout.strip().splitlines()[-1] == "SAME"
