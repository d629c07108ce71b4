"""Unit tests for harness.hints: real load-failure messages map to the hint naming their cause."""

from __future__ import annotations

import re

import pytest

from harness.hints import RULES, hint_for, match


def _rule_hint(fragment: str) -> str:
    """The hint of the one rule whose text contains fragment (so tests survive rewording elsewhere)."""
    matches = [r.hint for r in RULES if fragment in r.hint]
    assert len(matches) == 1, f"expected exactly one rule mentioning {fragment!r}, found {matches}"
    return matches[0]


KERAS2_ENGINE = _rule_hint("keras.engine")
LAMBDA_BYTECODE = _rule_hint("bytecode")
CUSTOM_OBJECT = _rule_hint("custom_objects")
H5PY_DECODE = _rule_hint("h5py >= 3")
NATIVE_CRASH = _rule_hint("native code")
OOM = _rule_hint("out of memory")
WORKER_DIED = _rule_hint("see the container log")
SAFE_MODE = _rule_hint("safe_mode=False")
TIMEOUT = _rule_hint("per-load timeout")


@pytest.mark.parametrize(
    ("error_type", "message", "expected"),
    [
        pytest.param(
            "TypeError",
            "Could not deserialize class 'Functional' because its parent module keras.src.engine.functional "
            "cannot be imported. Full object config: {'module': 'keras.src.engine.functional', "
            "'class_name': 'Functional', 'config': {'name': 'model'}}",
            KERAS2_ENGINE,
            id="keras3-reads-keras2-keras-file",
        ),
        pytest.param("ModuleNotFoundError", "No module named 'keras.engine'", KERAS2_ENGINE, id="no-keras-engine"),
        pytest.param("ValueError", "bad marshal data (unknown type code)", LAMBDA_BYTECODE, id="lambda-marshal"),
        pytest.param("SystemError", "unknown opcode", LAMBDA_BYTECODE, id="lambda-opcode"),
        pytest.param(
            "ValueError",
            "Unknown layer: 'MyLayer'. Please ensure you are using a `keras.utils.custom_object_scope` and that "
            "this object is included in the scope.",
            CUSTOM_OBJECT,
            id="custom-layer",
        ),
        pytest.param(
            "TypeError",
            "Could not locate class 'MyLayer'. Make sure custom classes are decorated with "
            "`@keras.saving.register_keras_serializable()`.",
            CUSTOM_OBJECT,
            id="keras3-custom-class",
        ),
        pytest.param("AttributeError", "'str' object has no attribute 'decode'", H5PY_DECODE, id="h5py3-decode"),
        pytest.param("WorkerCrash", "worker killed by SIGSEGV", NATIVE_CRASH, id="sigsegv"),
        pytest.param("WorkerCrash", "worker killed by SIGABRT", NATIVE_CRASH, id="sigabrt"),
        pytest.param("WorkerCrash", "worker killed by SIGKILL (likely out of memory)", OOM, id="sigkill"),
        pytest.param("WorkerCrash", "worker exited with status 1", WORKER_DIED, id="exit-status"),
        pytest.param(
            "ValueError",
            "Requested the deserialization of a `lambda` object. This carries a potential risk of arbitrary code "
            "execution and thus it is disallowed by default. If you trust the source of the saved model, you can "
            "pass `safe_mode=False` to the loading function in order to allow `lambda` loading, or call "
            "`keras.config.enable_unsafe_deserialization()`.",
            SAFE_MODE,
            id="keras3-safe-mode",
        ),
        pytest.param("Timeout", "no result within 300 s", TIMEOUT, id="timeout"),
    ],
)
def test_known_errors_get_their_hint(error_type: str, message: str, expected: str) -> None:
    assert hint_for(error_type, message) == expected


def test_distinct_causes_get_distinct_hints() -> None:
    hints = {
        hint_for("TypeError", "parent module keras.src.engine.functional cannot be imported"),
        hint_for("ValueError", "bad marshal data (unknown type code)"),
        hint_for("ValueError", "Unknown layer: 'MyLayer'"),
        hint_for("AttributeError", "'str' object has no attribute 'decode'"),
        hint_for("WorkerCrash", "worker killed by SIGSEGV"),
    }
    assert None not in hints
    assert len(hints) == 5


def test_matching_ignores_case_and_spans_lines() -> None:
    assert hint_for("ValueError", "Error when loading:\nBAD MARSHAL DATA (unknown type code)") == LAMBDA_BYTECODE


@pytest.mark.parametrize(
    ("error_type", "message"),
    [
        ("RuntimeError", "something entirely unexpected happened"),
        ("ValueError", ""),
        ("", ""),
        ("KeyError", "'dense_1'"),
    ],
)
def test_unknown_errors_have_no_hint(error_type: str, message: str) -> None:
    assert hint_for(error_type, message) is None


def test_rules_are_not_shadowed() -> None:
    # Each rule must be the first match for some text, or an earlier rule would shadow it forever.
    samples = {
        LAMBDA_BYTECODE: ("ValueError", "bad marshal data"),
        SAFE_MODE: ("ValueError", "unsafe deserialization"),
        KERAS2_ENGINE: ("ImportError", "keras.engine"),
        CUSTOM_OBJECT: ("ValueError", "Unknown metric: foo"),
        H5PY_DECODE: ("AttributeError", "'str' object has no attribute 'decode'"),
        NATIVE_CRASH: ("WorkerCrash", "SIGBUS"),
        OOM: ("WorkerCrash", "SIGKILL"),
        WORKER_DIED: ("WorkerCrash", "exit 3"),
        TIMEOUT: ("Timeout", "x"),
        _rule_hint("use keras.layers.TFSMLayer"): (
            "ValueError", "File format not supported: filepath=x. Keras 3 only supports V3 .keras files and legacy "
                          "H5 format files (.h5 extension). Note that the legacy SavedModel format is not supported"),
        _rule_hint("model code changed"): ("ValueError", "Layer count mismatch when loading weights from file"),
        _rule_hint("newer Keras"): ("TypeError", "__init__() got an unexpected keyword argument 'groups'"),
        _rule_hint("missing or truncated"): ("OSError", "Unable to synchronously open file (truncated file)"),
    }
    assert set(samples) <= {r.hint for r in RULES}
    for hint, (etype, message) in samples.items():
        assert hint_for(etype, message) == hint, (etype, message)


def test_every_rule_has_a_unique_kebab_case_name() -> None:
    names = [r.name for r in RULES]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", n) for n in names), names


def test_match_returns_the_rule_and_hint_for_is_its_hint() -> None:
    rule = match("ValueError", "bad marshal data (unknown type code)")
    assert rule is not None and rule.name == "lambda-bytecode"
    assert hint_for("ValueError", "bad marshal data (unknown type code)") == rule.hint
    assert match("RuntimeError", "something entirely unexpected") is None
