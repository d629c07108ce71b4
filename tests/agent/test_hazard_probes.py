"""Hazard probes through the agent's save and load steps, against the TensorFlow installed here (Keras 3)."""

from __future__ import annotations

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

pytestmark = [pytest.mark.agent,
              pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")]

NAMES = ("tf_op_lambda", "normalization_state", "optimizer_state", "serving_signature", "subclassed_weights")
MODELS = tuple(protocol.resolve_probe(name, tuple(protocol.FORMATS), tuple(protocol.LOADERS)) for name in NAMES)


def _agent(request: protocol.SaveRequest | protocol.LoadRequest, hash_seed: str) -> None:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    step = "save" if isinstance(request, protocol.SaveRequest) else "load"
    subprocess.run([sys.executable, "-m", "harness.agent", step, "--spec", request.to_json()], check=True,
                   timeout=900, env=env)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hazards")
    out = root / "artifacts" / "here"
    out.mkdir(parents=True)
    _agent(protocol.SaveRequest("here", MODELS, out=str(out), records=str(root / "save.jsonl")), hash_seed="0")
    _agent(protocol.LoadRequest("here", MODELS, timeout=120, artifacts=str(root / "artifacts"),
                                outputs=str(root / "outputs"), records=str(root / "load.jsonl")), hash_seed="1")
    return root


def _loads(run: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r["model"], r["format"], r["loader"]): r for r in read_records(str(run / "load.jsonl"))
            if r["kind"] == "load"}


def test_a_probe_keras3_cannot_build_is_unsupported_with_the_reason(run: Path) -> None:
    saves = [r for r in read_records(str(run / "save.jsonl")) if r["model"] == "tf_op_lambda"]
    assert saves and {r["status"] for r in saves} == {"unsupported"}
    assert all("Keras 3 cannot build it" in r["error"]["message"] for r in saves)
    manifest = json.loads((run / "artifacts" / "here" / "manifest.json").read_text())
    assert "tf_op_lambda" not in manifest["models"]


def test_state_is_compared_beside_evaluate(run: Path) -> None:
    manifest = json.loads((run / "artifacts" / "here" / "manifest.json").read_text())
    source = manifest["models"]["normalization_state"]["evaluate"]
    names = [k for k in source if k.startswith("state: ")]
    assert sorted(names) == ["state: denorm.mean", "state: denorm.variance", "state: norm.mean", "state: norm.variance"]
    loaded = _loads(run)[("normalization_state", "keras", "load_model")]
    assert loaded["status"] == "ok"
    for name in names:  # restored where saved and loaded by one Keras
        assert loaded["evaluate"][name] == pytest.approx(source[name], rel=1e-6)


def test_the_optimizer_step_after_a_load_matches_the_sources(run: Path) -> None:
    reference = np.load(run / "artifacts" / "here" / "optimizer_state" / "reference.npy")
    restored = np.load(run / "outputs" / "here" / "optimizer_state" / "keras" / "load_model.npy")
    assert np.allclose(restored, reference, rtol=1e-5, atol=1e-5)
    fresh = np.load(run / "outputs" / "here" / "optimizer_state" / "h5" / "rebuild.npy")  # weights only
    assert not np.allclose(fresh, reference, rtol=1e-5, atol=1e-5)


def test_serving_routes(run: Path) -> None:
    loads = _loads(run)
    assert "output_0" in loads[("serving_signature", "export", "serving")]["error"]["message"]
    assert loads[("serving_signature", "export", "saved_model")]["status"] == "ok"
    assert loads[("serving_signature", "export", "tflite")]["status"] == "ok"
    assert loads[("serving_signature", "export", "saved_model_call")]["status"] == "error"


def test_unbuilt_subclassed_model_gets_no_weights(run: Path) -> None:
    record = _loads(run)[("subclassed_weights", "weights_h5", "rebuild")]
    if record["status"] == "ok":  # some Keras 3 releases only warn: then the predictions are fresh
        reference = np.load(run / "artifacts" / "here" / "subclassed_weights" / "reference.npy")
        loaded = np.load(run / "outputs" / "here" / "subclassed_weights" / "weights_h5" / "rebuild.npy")
        assert not np.allclose(loaded, reference, rtol=1e-5, atol=1e-5)
    else:
        assert "built" in record["error"]["message"]
