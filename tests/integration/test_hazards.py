"""The hazard zoo for real, on a small matrix: Keras 2 files in Keras 3, serving routes, and the jax backend.

Three environments: TF 2.15 (Keras 2), TF 2.20 + Keras 3.12 on the TensorFlow backend, and the same
on jax. The full zoo across its environments is matrices/hazards.yaml (for users and the nightly run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.report.schema import load_report

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
K2, K3, JAX = "py3.11-tf2.15.1", "py3.13-tf2.20.0-keras3.12.0", "py3.13-tf2.20.0-keras3.12.0-jax"
MATRIX = """
name: hazards-small
environments:
  - {python: "3.11", tensorflow: "2.15.1"}
  - {python: "3.13", tensorflow: "2.20.0", keras: "3.12.0"}
  - {python: "3.13", tensorflow: "2.20.0", keras: "3.12.0", backend: jax}
models: [dense, depthwise_groups, tf_op_lambda, subclassed_weights, optimizer_state, serving_signature]
formats: [h5, keras, weights_h5, tf_checkpoint, savedmodel, export]
loaders: [load_model, load_model_custom, rebuild, saved_model, serving, saved_model_call, tflite]
"""
Cells = dict[tuple[str, str, str, str, str], dict[str, Any]]


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory, docker: None) -> Path:
    root = tmp_path_factory.mktemp("hazards")
    (root / "matrix.yaml").write_text(MATRIX)
    out = root / "run"
    proc = subprocess.run([sys.executable, "-m", "harness", "run", str(root / "matrix.yaml"), "--out", str(out),
                           "--jobs", "2"], capture_output=True, text=True, cwd=ROOT, env=dict(os.environ),
                          timeout=3600, check=False)
    assert proc.returncode == 1, proc.stderr[-3000:]  # the hazards are failures, by design
    return out


@pytest.fixture(scope="module")
def cells(out: Path) -> Cells:
    report = load_report(out / "report.json")
    return {(c["source"], c["target"], c["model"], c["format"], c["loader"]): c for c in report["cells"]}


def _message(cell: dict[str, Any]) -> str:
    return str((cell.get("error") or {}).get("message") or "")


def test_depthwise_groups_breaks_keras3_and_the_given_fix_loads_it(cells: Cells) -> None:
    broken = cells[(K2, K3, "depthwise_groups", "h5", "load_model")]
    assert broken["status"] == "error" and "DepthwiseConv2D" in _message(broken)
    assert cells[(K2, K3, "depthwise_groups", "h5", "load_model_custom")]["status"] == "pass"  # subclass pops it
    assert cells[(K2, K2, "depthwise_groups", "h5", "load_model")]["status"] == "pass"


def test_tf_op_lambda_is_unsupported_where_it_cannot_be_built(cells: Cells, out: Path) -> None:
    assert "OpLambda" in _message(cells[(K2, K3, "tf_op_lambda", "h5", "load_model")])
    rebuilt = cells[(K2, K3, "tf_op_lambda", "weights_h5", "rebuild")]
    assert rebuilt["status"] == "error" and "KerasTensor cannot be used as input" in _message(rebuilt)
    assert cells[(K3, K3, "tf_op_lambda", "h5", "load_model")]["status"] == "unsupported"
    saves = [json.loads(line) for line in (out / "records" / f"save-{K3}.jsonl").read_text().splitlines()]
    reasons = {r["error"]["message"] for r in saves if r.get("model") == "tf_op_lambda"}
    assert len(reasons) == 1 and "Keras 3 cannot build it" in reasons.pop()
    assert cells[(K2, K2, "tf_op_lambda", "h5", "load_model")]["status"] == "pass"


def test_unbuilt_subclassed_weights(cells: Cells) -> None:
    k3 = cells[(K3, K3, "subclassed_weights", "weights_h5", "rebuild")]
    assert k3["status"] == "error" and "not yet been built" in _message(k3)
    assert cells[(K2, K2, "subclassed_weights", "tf_checkpoint", "rebuild")]["status"] == "pass"  # deferred restore


def test_optimizer_state_is_compared_after_one_training_step(cells: Cells) -> None:
    assert cells[(K2, K2, "optimizer_state", "keras", "load_model")]["status"] == "pass"  # moments restored
    assert cells[(K3, K3, "optimizer_state", "keras", "load_model")]["status"] == "pass"
    # Weights alone carry no optimizer: the step after rebuild starts from fresh moments, silently.
    fresh = cells[(K3, K3, "optimizer_state", "h5", "rebuild")]
    assert fresh["status"] == "drift" and "optimizer state" in fresh["hint"]


def test_serving_routes(cells: Cells) -> None:
    assert cells[(K2, K3, "serving_signature", "savedmodel", "serving")]["status"] == "pass"
    exported = cells[(K3, K3, "serving_signature", "export", "serving")]
    assert exported["status"] == "error" and "output_0" in _message(exported)
    wide = cells[(K2, K2, "serving_signature", "savedmodel", "saved_model_call")]
    assert wide["status"] == "error" and "Could not find matching concrete function" in _message(wide)
    assert cells[(K3, K3, "serving_signature", "export", "tflite")]["status"] == "pass"  # export + from_saved_model


def test_a_keras_file_crosses_backends_both_ways(cells: Cells) -> None:
    for source, target in ((JAX, K3), (K3, JAX), (JAX, JAX)):
        cell = cells[(source, target, "dense", "keras", "load_model")]
        assert cell["status"] == "pass", (source, target, cell.get("error"), cell.get("reason"))
    assert cells[(JAX, JAX, "depthwise_groups", "keras", "load_model")]["status"] == "pass"
