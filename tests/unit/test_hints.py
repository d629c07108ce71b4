"""Unit tests for harness.hints against error messages recorded from real runs (fixtures/hint_messages.json).

Each fixture is a real error in the cell it happened in and the rule it must get; the recorded ones
cover every kind of failing cell of two runs of the default matrix and one of the hazard zoo, the made
ones the causes those runs do not show, the negative ones cells where a rule must stay silent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.hints import RULES, HintContext, Rule, fits, hint_for, match

FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "hint_messages.json").read_text(encoding="utf-8"))
RECORDED: list[dict[str, Any]] = FIXTURES["recorded"]
CORPUS: list[dict[str, Any]] = FIXTURES["corpus"]  # real files' errors (corpus/manifest.yaml)
POSITIVE = RECORDED + FIXTURES["made"] + CORPUS
ALL = POSITIVE + FIXTURES["negative"]
NAMES = sorted({r.name for r in RULES})


def _matched(fixture: dict[str, Any]) -> Rule | None:
    return match(fixture["type"], fixture["message"], HintContext(**fixture["context"]))


def _id(fixture: dict[str, Any]) -> str:
    return f"{fixture['rule']}:{fixture['made_by'][:70]}"


@pytest.mark.parametrize("fixture", ALL, ids=[_id(f) for f in ALL])
def test_every_fixture_gets_its_rule(fixture: dict[str, Any]) -> None:
    rule = _matched(fixture)
    assert (rule.name if rule else None) == fixture["rule"]
    assert rule is None or rule.name not in fixture.get("not", [])


def test_every_rule_has_a_real_message_it_is_the_first_match_for() -> None:
    # The same test shows that no rule is shadowed by an earlier one.
    first = {id(r) for f in POSITIVE if (r := _matched(f)) is not None}
    assert [r.name for r in RULES if id(r) not in first] == []


def test_every_rule_has_a_negative_case() -> None:
    def negative_for(name: str, fixture: dict[str, Any]) -> bool:
        text = f"{fixture['type']}: {fixture['message']}"
        near = any(re.search(r.pattern, text, re.IGNORECASE | re.DOTALL) for r in RULES if r.name == name)
        return fixture["rule"] != name and (near or name in fixture.get("not", []))

    assert [n for n in NAMES if not any(negative_for(n, f) for f in ALL)] == []


def test_every_failing_cell_kind_of_the_recorded_runs_gets_a_rule() -> None:
    unknown = [f["made_by"] for f in RECORDED if f["rule"] is None and not f.get("why")]
    assert unknown == [], "a recorded kind with no rule: add one, or keep it as null with a reason ('why')"
    assert all(f["rule"] is None for f in RECORDED if "why" in f)
    assert sum(f["cells"] for f in RECORDED if not f["made_by"].startswith("hazards matrix: ")) > 3000
    assert sum(f["cells"] for f in RECORDED if f["made_by"].startswith("hazards matrix: ")) > 2000
    # Only messages that name no cause stay without a rule (each says why): a few dozen cells of thousands.
    assert sum(f["cells"] for f in RECORDED if f["rule"] is None) < 50


def test_rules_sharing_a_name_share_the_hint() -> None:
    for name in NAMES:
        assert len({r.hint for r in RULES if r.name == name}) == 1, name


def test_names_are_kebab_case() -> None:
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9.]+)*", n) for n in NAMES), NAMES


def _major(version: str | None) -> int | None:
    return int(version.split(".")[0]) if version else None


def _target(major: int) -> Callable[[HintContext], bool]:
    return lambda c: _major(c.target_keras) == major


def _source(major: int) -> Callable[[HintContext], bool]:
    return lambda c: _major(c.source_keras) == major


def _releases(c: HintContext) -> tuple[tuple[int, ...], tuple[int, ...]]:
    def release(v: str | None) -> tuple[int, ...]:
        return tuple(int(p) for p in (v or "0").split(".")[:2])

    return release(c.source_keras), release(c.target_keras)


# What a hint's words claim about the cell, judged from the cell alone (independently of the rules' conditions).
CLAIMS: dict[str, Callable[[HintContext], bool]] = {
    r"Keras 2 has no": _target(2),
    r"Keras 3 (load_model|load_weights) cannot|Keras 3 has no|do not deserialize in Keras 3|Keras 3 cannot": _target(3),
    r"Keras 3 (model\.save|save_weights) writes": _source(3),
    r"written by Keras 2|a Keras 2 file|a Keras 2 \.keras file": _source(2),
    r"written by Keras 3": _source(3),
    r"Keras 2 cannot read": _target(2),
    r"written by a newer Keras release": lambda c: _releases(c)[0] > _releases(c)[1] >= (_releases(c)[0][0], 0),
    r"another Python version": lambda c: (c.source_python or "")[:4] != (c.target_python or "")[:4],
    r"TensorFlow 2\.16 and later restore only with tf-keras": _target(3),
    r"Keras 2\.12's model\.export": lambda c: _releases(c)[0] == (2, 12) and c.format == "export",
    r"custom objects were not known": lambda c: c.custom_objects != "passed",
    r"^TFSMLayer ": lambda c: c.loader == "tfsm_layer",
    r"load_model cannot rebuild": lambda c: (c.loader or "").startswith("load_model"),
    r"between Keras 2\.12 and 2\.13": lambda c: min(_releases(c)) < (2, 13) <= max(_releases(c)),
    r"changed between save and load": lambda c: c.source_keras == c.target_keras,
    r"keras\.layers\.TFSMLayer or": _target(3),
    r"^Keras 2 writes|a Keras 2 \.h5 file|a Keras 2 functional model": _source(2),
    r"Keras 3 refuses|Keras 3 neither builds|added to a Keras 3|Keras 3's legacy \.h5 loader": _target(3),
    r"Keras 3\.0 to 3\.4 refuse": lambda c: (3, 0) <= _releases(c)[1] < (3, 5),
    r"Keras 3 before 3\.9 drops": lambda c: (3, 0) <= _releases(c)[1] < (3, 9),
    r"legacy \.h5 (files|loader)|not in the \.h5 file": lambda c: c.format == "h5",
    r"^model\.export\(\) names": lambda c: c.format == "export",
    r"TFLite converter aborted": lambda c: c.loader == "tflite" and c.status == "crash",
    r"restored object called with float64": lambda c: c.loader == "saved_model_call",
    r"loaded into a model that was never built": lambda c: c.loader == "rebuild",
}


@pytest.mark.parametrize("fixture", POSITIVE, ids=[_id(f) for f in POSITIVE])
def test_hints_claim_nothing_the_cell_contradicts(fixture: dict[str, Any]) -> None:
    rule, context = _matched(fixture), HintContext(**fixture["context"])
    if rule is None:
        return
    broken = [claim for claim, holds in CLAIMS.items() if re.search(claim, rule.hint) and not holds(context)]
    assert broken == [], rule.hint


def test_every_claim_is_made_by_some_hint() -> None:
    assert [c for c in CLAIMS if not any(re.search(c, r.hint) for r in RULES)] == []


# The wrong advice of earlier versions, each on its recorded message.
def _recorded(rule: str, made_by: str) -> dict[str, Any]:
    return next(f for f in POSITIVE if f["rule"] == rule and made_by in f["made_by"])


def test_an_unsupported_tfsmlayer_cell_says_what_keras2_lacks() -> None:
    fixture = _recorded("keras2-no-tfsmlayer", "tfsm_layer")
    hint = hint_for(fixture["type"], fixture["message"], HintContext(**fixture["context"]))
    assert hint is not None and hint.startswith("Keras 2 has no TFSMLayer") and "use keras.layers" not in hint


def test_a_keras_212_file_in_213_is_the_module_move_not_custom_objects() -> None:
    fixture = _recorded("keras2-module-move", "py3.9-tf2.12.1 -> py3.11-tf2.15.1 dense/keras/load_model")
    assert "keras.engine.functional cannot be imported" in fixture["message"]


def test_a_savedmodel_tf_saved_model_load_cannot_restore_needs_tf_keras() -> None:
    fixture = _recorded("savedmodel-needs-tf-keras", "tf.saved_model.load(path)")
    rule = _matched(fixture)
    assert rule is not None and "TF_USE_LEGACY_KERAS=1" in rule.hint and "load it with tf.saved_model" not in rule.hint


def test_cudnn_bias_of_twice_the_size_is_named() -> None:
    fixture = _recorded("cudnn-rnn-weights", "LSTM(8) model load_weights('LSTM.h5')")
    assert "value.shape=(64,)" in fixture["message"] or "shape (64,)" in fixture["message"]


def test_a_keras2_depthwise_groups_config_names_its_custom_objects_fix() -> None:
    rule = _matched(_recorded("depthwise-groups", "py3.11-tf2.15.1 -> py3.13-tf2.20.0-keras3.12.0 depthwise_groups"))
    assert rule is not None and "custom_objects={'DepthwiseConv2D'" in rule.hint


def test_a_newer_keras3_config_is_no_custom_objects_cause_where_they_were_withheld() -> None:
    # Keras 3.15's DepthwiseConv2D config (its initializer's input_axes) in 3.12: the fix objects do not matter.
    fixture = _recorded("newer-keras-config", "keras3.15.1 -> py3.13-tf2.20.0-keras3.12.0 depthwise_groups/h5/")
    assert fixture["context"]["custom_objects"] == "withheld" and "input_axes" in fixture["message"]
    assert fixture["not"] == ["custom-objects"]


def test_an_unbuilt_subclassed_model_in_keras2_is_no_changed_architecture() -> None:
    # Keras 2's words for it; weights-mismatch ("rebuild it exactly as it was saved") took it before.
    fixture = _recorded("unbuilt-model", "py3.11-tf2.15.1 -> py3.11-tf2.15.1 subclassed_weights/weights_h5/rebuild")
    rule = _matched(fixture)
    assert "expected 0 variables" in fixture["message"]
    assert rule is not None and "never built" in rule.hint and "architecture" not in rule.hint


def test_float64_inputs_of_a_restored_savedmodel_get_no_tfsmlayer_advice() -> None:
    rule = _matched(_recorded("float64-inputs", "py3.11-tf2.15.1 -> py3.11-tf2.15.1 serving_signature/export"))
    assert rule is not None and "TFSMLayer" not in rule.hint and "float32" in rule.hint


# Rules apply only where the context shows their advice holds.
def test_without_a_context_only_rules_that_need_none_fire() -> None:
    assert match("WorkerCrash", "worker killed by SIGSEGV") is not None
    assert match("TypeError", "Could not locate class 'Functional'.") is None
    assert match("ValueError", "bad marshal data (unknown type code)") is None


@pytest.mark.parametrize("error_type, message", [("RuntimeError", "something entirely unexpected happened"),
                                                 ("ValueError", ""), ("", ""), ("KeyError", "'dense_1'")])
def test_unknown_errors_have_no_hint(error_type: str, message: str) -> None:
    assert hint_for(error_type, message, HintContext(source_keras="2.15.0", target_keras="3.3.3")) is None


@pytest.mark.parametrize("version, spec, expected", [
    ("2.12.0", "2", True), ("2.12.0", "3", False), ("2.12.0", "<2.13", True), ("2.13.0", "<2.13", False),
    ("2.13.1", ">=2.13", True), ("3.3.3", ">=2.13", True), ("2.12.1", "2.12", True), ("2.1.0", "2.12", False),
    (None, "2", False), ("", ">=2.13", False),
])
def test_fits_reads_versions_and_specs(version: str | None, spec: str, expected: bool) -> None:
    assert fits(version, spec) is expected


def test_a_bad_spec_is_refused() -> None:
    with pytest.raises(ValueError, match="not a version spec"):
        fits("2.15.0", "~2")


def test_keras_3121_refusing_tfsmlayer_is_not_the_lambda_safe_mode() -> None:
    fixture = _recorded("tfsm-layer-safe-mode", "examples/tfsm_layer")
    rule = _matched(fixture)
    assert rule is not None and rule.hint.startswith("safe_mode refuses TFSMLayer")
    assert "re-export" in rule.hint and rule.flag is not None and rule.flag.startswith("--unsafe")
