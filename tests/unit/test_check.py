"""harness check without Docker: the SPEC syntax, the generated matrix, bad input (exit 2), and the verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from fake_engine import FakeEngine
from harness.advisor.answer import SAFE, SAFE_ELSEWHERE, UNSAFE, UNTESTED, answer_target, check_section
from harness.advisor.question import EnvRequest, add_routes, current_route, parse_inputs, parse_spec, user_model_entry
from harness.advisor.screens import check_screen
from harness.agent.protocol import LOADERS
from harness.cli import main
from harness.errors import UsageError
from harness.report import routes


@pytest.mark.parametrize(("spec", "expected"), [
    ("2.15.1", EnvRequest(tensorflow="2.15.1")),
    ("tf==2.15.1", EnvRequest(tensorflow="==2.15.1")),
    ("tensorflow==2.15.1", EnvRequest(tensorflow="==2.15.1")),
    ("tf=2.15.1", EnvRequest(tensorflow="==2.15.1")),
    ("tensorflow==2.16.2,keras==3.3.3", EnvRequest(tensorflow="==2.16.2", keras="==3.3.3")),
    ("2.16.2+keras3.3.3", EnvRequest(tensorflow="2.16.2", keras="==3.3.3")),
    ("2.16.2+keras==3.3.3", EnvRequest(tensorflow="2.16.2", keras="==3.3.3")),
    ("2.16.2+tf-keras", EnvRequest(tensorflow="2.16.2", keras="tf-keras")),
    ("2.16.2+tf-keras2.16.0", EnvRequest(tensorflow="2.16.2", keras="tf-keras==2.16.0")),
    ("tf==2.16.2, tf-keras", EnvRequest(tensorflow="==2.16.2", keras="tf-keras")),
    ("tf==2.16.2,tf-keras==2.16.0", EnvRequest(tensorflow="==2.16.2", keras="tf-keras==2.16.0")),
    ("tf>=2.16,<2.17", EnvRequest(tensorflow=">=2.16,<2.17")),
    ("2.12.1,python==3.9", EnvRequest(tensorflow="2.12.1", python="3.9")),
    ("py3.9,2.12.1", EnvRequest(tensorflow="2.12.1", python="3.9")),
])
def test_spec_syntax(spec: str, expected: EnvRequest) -> None:
    assert parse_spec(spec, "--to") == expected


@pytest.mark.parametrize(("spec", "message"), [
    ("", "--from: empty environment SPEC"),
    ("keras==3.3.3", "no TensorFlow version"),
    ("torch==2.1", "cannot read 'torch==2.1'"),
    ("tf==2.15.1,tensorflow==2.16.2", "tensorflow is given twice"),
    ("2.16.2+jax", "cannot read the Keras part of '2.16.2+jax'"),
    ("python>=3.9,tf==2.15.1", "cannot read 'python>=3.9'"),
    ("what?", "cannot read 'what?'"),
])
def test_bad_specs_name_the_flag(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match="--from") as info:
        parse_spec(spec, "--from")
    assert message in str(info.value)


def test_spec_becomes_a_matrix_environment() -> None:
    assert parse_spec("2.16.2+tf-keras", "--to").entry("3.11") == {"python": "3.11", "tensorflow": "2.16.2",
                                                                  "keras": "tf-keras"}
    assert parse_spec("2.12.1,py3.9", "--to").entry("3.11")["python"] == "3.9"


def test_inputs_are_a_file_or_a_shape(tmp_path: Path) -> None:
    assert parse_inputs("8x64x64x1:float32") == {"shape": [8, 64, 64, 1], "dtype": "float32"}
    assert parse_inputs("4x16") == {"shape": [4, 16], "dtype": "float32"}
    np.save(tmp_path / "x.npy", np.zeros(3))
    assert parse_inputs(str(tmp_path / "x.npy")) == str(tmp_path / "x.npy")


def test_model_is_an_artifact_or_a_factory(tmp_path: Path) -> None:
    (tmp_path / "m.h5").write_bytes(b"")
    (tmp_path / "mods.py").write_text("def build():\n    pass\n")
    artifact = user_model_entry(str(tmp_path / "m.h5"), custom_objects=str(tmp_path / "mods.py"),
                                factory=f"{tmp_path / 'mods.py'}:build", inputs="2x3", reference=None)
    assert artifact == {"factory": "mods:build", "custom_objects": "mods", "path": str(tmp_path), "name": "m",
                        "artifact": str(tmp_path / "m.h5"), "inputs": {"shape": [2, 3], "dtype": "float32"}}
    factory = user_model_entry(f"{tmp_path / 'mods.py'}:build", custom_objects=None, factory=None, inputs=None,
                               reference=None)
    assert factory == {"factory": "mods:build", "path": str(tmp_path), "name": "build"}
    with pytest.raises(UsageError, match="no such file"):
        user_model_entry(str(tmp_path / "gone.h5"), custom_objects=None, factory=None, inputs=None, reference=None)
    with pytest.raises(UsageError, match="one directory"):
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "objs.py").write_text("")
        user_model_entry(f"{tmp_path / 'mods.py'}:build", custom_objects=str(tmp_path / "sub" / "objs.py"),
                         factory=None, inputs=None, reference=None)


def test_the_unsafe_loader_runs_only_when_asked_and_says_it_runs_the_files_code(tmp_path: Path) -> None:
    (tmp_path / "mods.py").write_text("def build():\n    pass\n")
    for unsafe in (False, True):
        entry = user_model_entry(f"{tmp_path / 'mods.py'}:build", custom_objects=None, factory=None, inputs=None,
                                 reference=None)
        add_routes(entry, None, unsafe=unsafe)
        assert ("load_model_unsafe" in entry["loaders"]) is unsafe
        assert "load_model" in entry["loaders"]
    assert LOADERS["load_model_unsafe"].words == "load_model(safe_mode=False), which runs the file's code"


@pytest.mark.parametrize("unsafe", [False, True])
def test_check_tries_safe_mode_false_only_with_unsafe(tmp_path: Path, unsafe: bool) -> None:
    (tmp_path / "mods.py").write_text("def build():\n    pass\n")
    argv = ["check", "--from", "2.15.1", "--to", "2.16.2+keras3.3.3", "--model", f"{tmp_path / 'mods.py'}:build",
            "--inputs", "4x3", "--out", str(tmp_path / "check"), "-q", *(["--unsafe"] if unsafe else [])]
    main(argv, engine=FakeEngine)
    loaders = yaml.safe_load((tmp_path / "check" / "check.yaml").read_text())["models"][0]["loaders"]
    report = json.loads((tmp_path / "check" / "report.json").read_text())
    assert ("load_model_unsafe" in loaders) is unsafe
    assert any(c["loader"] == "load_model_unsafe" for c in report["cells"]) is unsafe


def test_a_module_found_from_a_home_directory_is_not_mounted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mods.py").write_text("def build():\n    pass\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert main(["check", "--from", "2.15.1", "--to", "2.16.2", "--model", "mods:build", "--inputs", "4x3",
                 "--out", str(tmp_path / "run")], engine=FakeEngine) == 2
    err = capsys.readouterr().err
    assert f"the module is looked up in the current directory {tmp_path}, which is your home directory" in err
    assert not (tmp_path / "run").exists()
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "mods.py").write_text("def build():\n    pass\n")
    monkeypatch.chdir(tmp_path / "project")
    entry = user_model_entry("mods:build", custom_objects=None, factory=None, inputs=None, reference=None)
    assert entry["path"] == str(tmp_path / "project")


def test_the_current_route_is_the_artifacts_format_else_keras() -> None:
    assert current_route("h5", None, has_factory=False) == ("h5", "load_model")
    assert current_route(None, None, has_factory=True) == ("keras", "load_model")
    assert current_route(None, "export", has_factory=True) == ("export", "saved_model")
    assert current_route("weights_h5", None, has_factory=True) == ("weights_h5", "rebuild")
    with pytest.raises(UsageError, match="--factory"):
        current_route("weights_h5", None, has_factory=False)


@pytest.mark.parametrize(("argv", "message"), [
    (["--from", "tf==2.15.1", "--to", "2.15.1"], "--to: duplicate environment id 'py3.11-tf2.15.1' (same as --from)"),
    (["--from", "2.15.1+keras3.3.3", "--to", "2.16.2"], "--from.keras: keras 3 needs tensorflow >= 2.16"),
    (["--from", "tf==2.15.1", "--to", "2.16.2", "--inputs", "4x3:flaot32"], "--inputs.dtype: unknown dtype"),
    (["--from", "tf==2.15.1", "--to", "2.16.2", "--format", "onnx"], "--format 'onnx': expected one of"),
    (["--from", "tf==2.15.1", "--to", "2.16.2", "--reference", "r.npy"], "--reference is for an existing artifact"),
])
def test_bad_check_input_exits_2_before_anything_is_built(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        argv: list[str], message: str) -> None:
    (tmp_path / "mods.py").write_text("def build():\n    pass\n")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")  # would be exit 3 if it got that far
    assert main(["check", "--model", f"{tmp_path / 'mods.py'}:build", "--out", str(tmp_path / "run"), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------- the verdict: the report's path verdict


def _cell(fmt: str, loader: str, status: str, *, source: str = "old", target: str = "new", **extra: Any) -> dict[
        str, Any]:
    return {"source": source, "target": target, "model": "m", "format": fmt, "loader": loader, "status": status,
            "max_abs_diff": extra.get("diff"), "bit_exact": extra.get("exact"), "error": extra.get("error"),
            "reason": extra.get("reason"), "hint": None, "stage": extra.get("stage")}


KERAS_ERROR = {"type": "TypeError", "message": "Could not deserialize class 'Functional'", "hint": "written by Keras 2"}


def _report(cells: list[dict[str, Any]], home: dict[tuple[str, str], str] | None = None) -> dict[str, Any]:
    """The cells of old -> new, each route's cell at home (pass unless `home` says), route statuses as reports set."""
    at_home = [_cell(c["format"], c["loader"], (home or {}).get((c["format"], c["loader"]), "pass"), target="old",
                     exact=True, diff=0.0) for c in cells if c["target"] == "new"]
    everything = cells + at_home
    routes.annotate(everything, {}, set())
    return {"cells": everything, "paths": routes.paths(everything, ["old"], ["old", "new"], {})}


def _decide(cells: list[dict[str, Any]], route: tuple[str, str] = ("keras", "load_model"),
            home: dict[tuple[str, str], str] | None = None) -> Any:
    return answer_target(_report(cells, home), model="m", source="old", target="new", home="old", route=route)


def test_safe_when_the_current_route_passes() -> None:
    verdict = _decide([_cell("keras", "load_model", "pass", exact=True, diff=0.0),
                       _cell("h5", "load_model", "error", error=KERAS_ERROR)])
    assert (verdict.status, verdict.exit_code, verdict.path) == (SAFE, 0, "partial")
    assert [r.format for r in verdict.breaks] == ["h5"]


def test_safe_via_another_route_lists_the_working_routes_best_first() -> None:
    verdict = _decide([
        _cell("keras", "load_model", "error", error=KERAS_ERROR),
        _cell("savedmodel", "tfsm_layer", "pass", diff=8e-8, exact=False),
        _cell("weights_h5", "rebuild", "pass", diff=0.0, exact=True),
        _cell("h5", "load_model", "pass", diff=0.0, exact=True),
        _cell("keras", "load_model", "pass", source="new", target="old"),  # another pair: ignored
    ])
    assert (verdict.status, verdict.exit_code) == (SAFE_ELSEWHERE, 1)
    assert [(r.format, r.loader) for r in verdict.works] == [("h5", "load_model"), ("weights_h5", "rebuild"),
                                                             ("savedmodel", "tfsm_layer")]
    assert verdict.route is not None and verdict.route.status == "error"
    assert verdict.at_home is not None and verdict.at_home.status == "pass"


def test_unsafe_when_nothing_passes_and_drift_counts_as_breaking() -> None:
    verdict = _decide([_cell("keras", "load_model", "drift", diff=0.3, reason="max abs diff 0.3"),
                       _cell("keras", "tfsm_layer", "unsupported")])
    assert (verdict.status, verdict.exit_code, verdict.path) == (UNSAFE, 1, "broken")
    assert [r.status for r in verdict.breaks] == ["drift"]


def test_a_route_that_never_works_at_home_is_not_your_route() -> None:
    # The file loads only with tf.saved_model.load where it comes from: that is the user's route, and
    # load_model failing in the target too is not the upgrade's doing.
    verdict = _decide([_cell("savedmodel", "load_model", "error", error=KERAS_ERROR),
                       _cell("savedmodel", "saved_model", "pass", exact=True, diff=0.0)],
                      route=("savedmodel", "load_model"), home={("savedmodel", "load_model"): "error"})
    assert verdict.status == SAFE and verdict.current == ("savedmodel", "saved_model")
    assert verdict.asked == ("savedmodel", "load_model") and [r.loader for r in verdict.never] == ["load_model"]
    assert verdict.breaks == []


def test_nothing_working_at_home_is_untested() -> None:
    verdict = _decide([_cell("h5", "load_model", "error", error=KERAS_ERROR)], route=("h5", "load_model"),
                      home={("h5", "load_model"): "error"})
    assert (verdict.status, verdict.path, verdict.exit_code) == (UNTESTED, "untested", 1)


def _screen(cells: list[dict[str, Any]], report: dict[str, Any], tmp_path: Path) -> str:
    full = {**report, **_report(cells), "causes": []}
    full["check"] = check_section(full, {"model": "m", "source": "old", "home": "old", "route": ["keras", "load_model"],
                                         "targets": [{"env": "new", "tf_keras": None}]})
    return check_screen(full, tmp_path)


def test_the_screen_names_the_verdict_what_breaks_and_what_works(tmp_path: Path) -> None:
    cells = [_cell("keras", "load_model", "error", error=KERAS_ERROR),
             _cell("h5", "load_model", "pass", exact=True, diff=0.0),
             _cell("savedmodel", "tfsm_layer", "pass", exact=False, diff=3e-7)]
    report = {"environments": [
        {"id": "old", "python": "3.11.2", "tensorflow": "2.15.1", "keras": "2.15.0", "image": "i", "spec": {}},
        {"id": "new", "python": "3.11.2", "tensorflow": "2.16.2", "keras": "3.3.3", "image": "j", "spec": {}}],
        "models": [{"name": "m", "description": "built by mods:build in every environment"}],
        "tolerance": {"rtol": 1e-5, "atol": 1e-5}}
    text = _screen(cells, report, tmp_path)
    assert "verdict: NOT SAFE by your route, but another route works (path partial; 3 routes tried)" in text
    assert "x .keras / keras.models.load_model: error: TypeError: Could not deserialize" in text
    assert "hint: written by Keras 2" in text
    assert "ok .h5 / keras.models.load_model: matches bit-exactly" in text
    assert "ok SavedModel / keras.layers.TFSMLayer: matches within 3e-07 (atol 1e-05 + rtol 1e-05)" in text
    assert "route to take: .h5 / keras.models.load_model (matches bit-exactly)" in text
    assert len(text.splitlines()) < 25
    report["environments"][1].update(status="build_error", error="ERROR: No matching distribution")
    text = _screen([], report, tmp_path)
    assert "verdict: UNTESTED" in text and "note: new has no image (build_error): ERROR: No matching" in text
