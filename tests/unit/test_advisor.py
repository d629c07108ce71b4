"""check as an upgrade advisor, without Docker: the tf-keras environment beside a Keras 3 target, migration routes
(a matrix's `migrate:` model, saved again where the artifact works), several targets in one table, and
--migrate handing over only a verified file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from fake_engine import FakeEngine
from fake_loads import LoadHook
from harness import models
from harness.advisor import words
from harness.advisor.answer import SAFE, SAFE_ELSEWHERE, UNSAFE, answer_target, check_section
from harness.advisor.handover import best_migrated, snippet
from harness.advisor.question import check_environments, migration_entry, parse_spec
from harness.advisor.ranking import Route
from harness.advisor.screens import targets_table
from harness.agent.protocol import ORIGINS_MOUNT, Migration, SaveRequest, from_dict, origin_dir, to_dict
from harness.cells import CellPlan
from harness.cli import main
from harness.errors import MatrixError
from harness.matrix import parse_matrix
from harness.matrix.user_models import reference_loaders
from harness.plan import Limits, plan_environments, save_spec
from harness.rundir import RunDir
from surfaces import assert_one_answer, exit_codes

OLD_H5 = b"\x89HDF\r\n\x1a\n" + b'{"class_name": "Functional", "keras_version": "2.4.0", "backend": "tensorflow"}'
REFERENCE = np.linspace(0, 1, 8, dtype="float32").reshape(2, 4)  # what the fake engine's loads predict
K2, K3, LEGACY = "py3.11-tf2.15.1", "py3.11-tf2.20.0", "py3.11-tf2.20.0-tfkeras"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "old.h5").write_bytes(OLD_H5)
    np.save(tmp_path / "x.npy", np.zeros((2, 3), dtype="float32"))
    np.save(tmp_path / "ref.npy", REFERENCE)
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "mymodels.py").write_text("CUSTOM = {}\n\ndef build():\n    return None\n")
    return tmp_path


def _check(project: Path, *extra: str, engine: Any = FakeEngine) -> int:
    return main(["check", "--from", "2.15.1", "--to", "2.20.0", "--model", str(project / "old.h5"), "--inputs",
                 str(project / "x.npy"), "--reference", str(project / "ref.npy"), "--out", str(project / "run"),
                 "-q", *extra], engine=engine)


# ---------------------------------------------------------------------------- the environments of a check


@pytest.mark.parametrize(("spec", "beside"), [
    ("2.20.0", "tf-keras"), ("tf==2.16.2", "tf-keras"), ("2.16.2+keras3.3.3", "tf-keras"), ("2.20.*", "tf-keras"),
    ("2.15.1", None), ("2.16.2+tf-keras", None), ("tf>=2.16,<2.17", None), ("tf==2.20.0,keras==2.15.0", None),
])
def test_a_keras3_target_gets_its_tensorflow_with_tf_keras_beside_it(spec: str, beside: str | None) -> None:
    found = parse_spec(spec, "--to").tf_keras()
    assert (found.keras if found else None) == beside
    if found is not None:
        assert found.tensorflow == parse_spec(spec, "--to").tensorflow  # the same TensorFlow release


def test_environments_asked_for_twice_are_one_and_a_target_that_is_the_source_stays_for_the_matrix_to_refuse() -> None:
    source = parse_spec("2.15.1", "--from")
    envs = check_environments(source, [parse_spec("2.20.0", "--to"), parse_spec("tf==2.20.0,tf-keras", "--to")],
                              "3.11")
    assert [e.get("keras") for e in envs.entries] == [None, None, "tf-keras"]
    assert envs.targets == [(1, 2), (2, None)]  # the second --to is the first's tf-keras environment
    assert check_environments(source, [parse_spec("2.20.0", "--to")], "3.11", tf_keras=False).targets == [(1, None)]
    same = check_environments(source, [parse_spec("tf==2.15.1", "--to")], "3.11")
    assert len(same.entries) == 2 and same.targets == [(1, None)]
    legacy_home = check_environments(parse_spec("2.20.0+tf-keras", "--from"), [parse_spec("2.20.0", "--to")], "3.11")
    assert legacy_home.targets == [(1, None)]  # its tf-keras routes are the ones at home


# ---------------------------------------------------------------------------- a migrated model in a matrix


def _matrix(project: Path, *entries: dict[str, Any]) -> Any:
    data = {"environments": [{"python": "3.11", "tensorflow": "2.15.1"}, {"python": "3.11", "tensorflow": "2.20.0"}],
            "models": [{"name": "old", "artifact": "old.h5", "inputs": "x.npy", "path": "code",
                        "custom_objects": "mymodels:CUSTOM"}, *entries]}
    return parse_matrix(data, path=str(project / "m.yaml"), sha256="0" * 64)


def test_a_migration_names_an_earlier_artifact_and_takes_its_code_inputs_and_home(project: Path) -> None:
    matrix = _matrix(project, {"name": "old-migrated", "migrate": "old"})
    original, migrated = matrix.models
    assert migrated.kind == "migration" and migrated.migrates == Migration(
        model="old", env=K2, format="h5", loaders=("load_model", "load_model_nocompile"))
    assert migrated.code.custom_objects == "mymodels:CUSTOM" and migrated.code.root == "/harness/user/old-migrated"
    assert migrated.formats == ("h5", "keras", "savedmodel", "json", "export")  # weights alone need a factory
    assert migrated.loaders == original.loaders and migrated.evaluate is False
    assert from_dict(to_dict(migrated)) == migrated  # run.json round trip
    envs = [e.id for e in matrix.environments]
    assert list(migrated.homes(envs)) == [K2] and migrated.homes([K3]) == {}
    cells = [c for c in CellPlan.of(matrix).cells(envs) if c.model == "old-migrated"]
    assert {c.source for c in cells} == {K2} and {c.target for c in cells} == {K2, K3}


def test_only_the_home_environment_saves_a_migrated_model_and_it_sees_the_artifact_read_only(project: Path) -> None:
    matrix = _matrix(project, {"name": "old-migrated", "migrate": "old"})
    run = RunDir(project / "run")
    home, other = plan_environments(matrix, {})
    names = [[m.name for m in SaveRequest.from_json(save_spec(matrix, p, run, "r", Limits()).command[5]).models]
             for p in (home, other)]
    assert names == [["old-migrated"], []]  # the artifact is staged, never built
    mount = next(m for m in save_spec(matrix, home, run, "r", Limits()).mounts if m.container.startswith(ORIGINS_MOUNT))
    assert (mount.host, mount.container, mount.read_only) == (run.artifacts("user-old"), origin_dir("old"), True)


@pytest.mark.parametrize(("entry", "problem"), [
    ({"name": "m", "migrate": "gone"}, "models[1].migrate: no existing artifact 'gone' is listed before this entry"),
    ({"name": "m", "migrate": "old", "factory": "mymodels:build"},
     "models[1].factory: not for a migrated model: it takes its code, inputs and reference from the artifact"),
    ({"name": "m", "migrate": "old", "formts": ["h5"]}, "models[1].formts: unknown key; did you mean 'formats'?"),
    ({"name": "m", "migrate": "old", "formats": ["seed"]}, "models[1].formats[0]: 'seed' is for probes only"),
    ({"migrate": "old"}, "models[1].name: required key missing"),
])
def test_a_bad_migration_is_named_by_its_key(project: Path, entry: dict[str, Any], problem: str) -> None:
    with pytest.raises(MatrixError) as info:
        _matrix(project, entry)
    assert problem in str(info.value)


def test_only_an_existing_artifact_is_migrated(project: Path) -> None:
    data = {"environments": [{"python": "3.11", "tensorflow": "2.15.1"}],
            "models": [{"name": "mine", "path": "code", "factory": "mymodels:build"}, {"name": "m", "migrate": "mine"}]}
    with pytest.raises(MatrixError, match="'mine' is not an existing artifact"):
        parse_matrix(data, path=str(project / "m.yaml"), sha256="0" * 64)
    data["models"] = [{"name": "old", "artifact": str(project / "old.h5"), "inputs": str(project / "x.npy"),
                       "loaders": ["saved_model", "tfsm_layer"], "format": "savedmodel"},
                      {"name": "m", "migrate": "old"}]
    (project / "sm").mkdir()
    (project / "sm" / "saved_model.pb").write_bytes(b"")
    data["models"][0]["artifact"] = str(project / "sm")
    with pytest.raises(MatrixError, match="gives back a Keras model to save again"):
        parse_matrix(data, path=str(project / "m.yaml"), sha256="0" * 64)


def test_check_adds_the_migration_of_an_artifact_but_not_of_a_factory() -> None:
    assert migration_entry({"name": "old", "artifact": "/x/old.h5", "loaders": ["load_model", "tflite"]}) == {
        "name": "old-migrated", "migrate": "old", "loaders": ["load_model"]}  # serving routes stay the original's
    assert migration_entry({"name": "build", "factory": "m:build"}) is None


# ---------------------------------------------------------------------------- references


def test_an_artifacts_reference_falls_back_to_the_next_loader_that_works_at_home(project: Path) -> None:
    data = {"environments": [{"python": "3.11", "tensorflow": "2.15.1"}],
            "models": [{"name": "old", "artifact": "old.h5", "inputs": "x.npy"}]}
    matrix = parse_matrix(data, path=str(project / "m.yaml"), sha256="0" * 64)
    run = RunDir(project / "run")
    models.stage_models(matrix.models, run)
    output = json.loads((run.artifacts("user-old") / "manifest.json").read_text())["models"]["old"]["reference_output"]
    assert output["loader"] == "load_model" and output["then"][0] == "load_model_nocompile"
    named = {**data["models"][0], "reference": {"env": K2, "loader": "load_model"}}
    matrix = parse_matrix({**data, "models": [named]}, path=str(project / "m.yaml"), sha256="0" * 64)
    assert reference_loaders(matrix.models[0]) == ["load_model"]  # the loader the matrix names, and no other


class NoLoadModelAtHome(LoadHook):
    """load_model writes no predictions anywhere (its cells are errors): another loader's are the reference."""

    def change(self, target: str, record: dict[str, Any], output: Path) -> None:
        if record["loader"] == "load_model" and record["source"].startswith("user-"):
            self.fail_load(record, output, "ValueError", "File format not supported")


def test_your_route_is_what_works_at_home_and_its_reference_comes_from_there(project: Path) -> None:
    code = main(["check", "--from", "2.15.1", "--to", "2.20.0", "--model", str(project / "old.h5"), "--inputs",
                 str(project / "x.npy"), "--out", str(project / "run"), "-q"], engine=NoLoadModelAtHome)
    verdict = json.loads((project / "run" / "check.json").read_text())
    assert verdict["asked"] == ["h5", "load_model"] and verdict["route"] == ["h5", "load_model_nocompile"]
    assert (verdict["verdict"], code) == (SAFE, 0)
    report = json.loads((project / "run" / "report.json").read_text())
    home = {(c["loader"]): c["route_status"] for c in report["cells"]
            if c["source"] == "user-old" and c["target"] == K2}
    assert home["load_model"] == "never_works" and home["load_model_nocompile"] == "portable"


# ---------------------------------------------------------------------------- check, end to end with the fake engine


class BrokenInKeras3(LoadHook):
    """The user's file fails in the Keras 3 target (every loader), as a Keras 2 SavedModel with old optimizer slots
    does; migrated files and tf-keras load it. `drift_migrated` makes the migrated files predict other numbers."""

    drift_migrated = 0.0

    def change(self, target: str, record: dict[str, Any], output: Path) -> None:
        if target == K3 and record["source"].startswith("user-"):
            self.fail_load(record, output, "AttributeError", "'_UserObject' object has no attribute 'add_slot'")
        elif record["model"].endswith("-migrated") and record["source"] != target and self.drift_migrated:
            self.shift(output, self.drift_migrated)


class MigratedDrift(BrokenInKeras3):
    drift_migrated = 0.5


def test_a_file_keras3_cannot_read_is_not_safe_and_the_tf_keras_and_migrated_routes_are_named(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _check(project, "--migrate", str(project / "handed"), engine=BrokenInKeras3) == 1
    out = capsys.readouterr().out
    assert "verdict: NOT SAFE by your route, but another route works" in out
    assert f"with tf-keras in the same TensorFlow ({LEGACY}: pip install tf-keras, TF_USE_LEGACY_KERAS=1):" in out
    assert "    ok .h5 / keras.models.load_model: matches bit-exactly" in out
    assert f"migrated: loaded in {K2} and saved there again, then loaded in {K3}:" in out
    verdict = json.loads((project / "run" / "check.json").read_text())
    assert (verdict["verdict"], verdict["exit_code"], verdict["tf_keras"]) == (SAFE_ELSEWHERE, 1, LEGACY)
    kinds = {r["kind"] for r in verdict["works"]}
    assert kinds == {"migrated", "tf_keras", "migrated_tf_keras"}  # nothing works as it is in Keras 3
    assert verdict["migration"]["loader"] == "load_model" and verdict["migration"]["status"] == "made"
    assert [t["target"] for t in verdict["targets"]] == [K3]
    handed = verdict["migrated"]
    assert handed["route"]["kind"] == "migrated" and handed["route"]["env"] == K3  # loads in the target itself
    assert (project / "handed" / "load.py").is_file()
    manifest = json.loads((project / "handed" / "manifest.json").read_text())
    assert manifest["verified"]["env"] == K3 and manifest["verified"]["max_abs_diff"] == 0.0
    assert manifest["made"]["loader"] == "load_model" and manifest["made"]["env"] == K2
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((project / "handed" / name).read_bytes()).hexdigest() == digest
    assert manifest["file"] in manifest["files"]


def test_nothing_unverified_is_handed_over(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _check(project, "--migrate", str(project / "handed"), engine=MigratedDrift) == 1
    out = capsys.readouterr().out
    assert "migrated: nothing written to" in out and not (project / "handed").exists()
    verdict = json.loads((project / "run" / "check.json").read_text())
    assert {r["kind"] for r in verdict["works"]} == {"tf_keras"} and verdict["migrated"] is None
    report = json.loads((project / "run" / "report.json").read_text())
    (migration,) = report["migrations"]
    assert migration["verified"] == [] and migration["breaks"] > 0


def test_without_tf_keras_or_migration_nothing_survives(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    engine = MigratedDrift()
    assert _check(project, "--no-tf-keras", engine=lambda: engine) == 1
    assert len(engine.runs) == 2 * 2  # the source and the target only
    verdict = json.loads((project / "run" / "check.json").read_text())
    assert verdict["verdict"] == UNSAFE and verdict["tf_keras"] is None
    out = capsys.readouterr().out
    assert "no route that works at home survives" in out or "no known cause explains it" in out
    assert "retrain" not in out or "no known cause explains it" in out  # retraining only when nothing explains it


def test_migrate_refuses_a_folder_that_is_not_empty_before_anything_is_built(project: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    (project / "handed").mkdir()
    (project / "handed" / "mine.txt").write_text("")
    engine = FakeEngine()
    assert _check(project, "--migrate", str(project / "handed"), engine=lambda: engine) == 2
    assert "--migrate" in capsys.readouterr().err and not engine.runs and not (project / "run").exists()


def test_several_targets_are_one_run_and_one_table(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    engine = BrokenInKeras3()
    code = _check(project, "--to", "2.16.2+keras3.3.3", "--migrate", str(project / "handed"), engine=lambda: engine)
    assert code == 1
    out = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(out) if line.startswith("target"))
    rows = out[header:header + 3]
    assert rows[1].startswith(K3) and "NOT SAFE, another route works" in rows[1]
    assert rows[2].startswith("py3.11-tf2.16.2-keras3.3.3") and " SAFE " in rows[2] and rows[2].endswith("bit-exact")
    verdict = json.loads((project / "run" / "check.json").read_text())
    assert [t["target"] for t in verdict["targets"]] == [K3, "py3.11-tf2.16.2-keras3.3.3"]
    assert verdict["verdict"] == SAFE_ELSEWHERE and verdict["exit_code"] == 1  # the worst target decides
    assert sorted(p.name for p in (project / "handed").iterdir()) == sorted([K3, "py3.11-tf2.16.2-keras3.3.3"])
    envs = yaml.safe_load((project / "run" / "check.yaml").read_text())["environments"]
    assert len(envs) == 5  # the source, and each target with its tf-keras environment
    assert len(engine.runs) == 2 * 5  # one run: a save and a load container per environment


# ---------------------------------------------------------------------------- the verdict and the hand-over, pure


def _cell(where: str, model: str, route: str, outcome: str, diff: float = 0.0) -> dict[str, Any]:
    source, target = where.split(" -> ")
    fmt, loader = route.split("/")
    status, route_status = outcome.split(":")
    return {"source": source, "target": target, "model": model, "format": fmt, "loader": loader, "status": status,
            "route_status": route_status, "max_abs_diff": diff, "bit_exact": diff == 0.0, "error": None,
            "reason": None, "hint": None}


def _kind(route: Route) -> str:
    return route.kind


def test_the_answer_counts_tf_keras_and_migrated_routes_and_orders_them_by_how_much_they_change() -> None:
    cells = [
        _cell(f"user-m -> {K2}", "m", "h5/load_model", "pass:portable"),
        _cell(f"user-m -> {K3}", "m", "h5/load_model", "error:breaks"),
        _cell(f"user-m -> {LEGACY}", "m", "h5/load_model", "pass:portable"),
        _cell(f"{K2} -> {K3}", "m-migrated", "keras/load_model", "pass:portable", diff=1e-7),
        _cell(f"{K2} -> {K3}", "m-migrated", "h5/load_model", "pass:portable"),
        _cell(f"{K2} -> {LEGACY}", "m-migrated", "h5/load_model", "pass:portable"),
        _cell(f"{K2} -> {K3}", "m-migrated", "json/model_from_json", "error:breaks"),
    ]
    report = {"cells": cells, "paths": [], "migrations": [{"model": "m-migrated", "loader": "load_model_nocompile",
                                                           "env": K2}]}
    answer = answer_target(report, model="m", source="user-m", target=K3, home=K2, route=("h5", "load_model"),
                    tf_keras=LEGACY, migrated="m-migrated")
    assert answer.status == SAFE_ELSEWHERE and answer.tried == 1 + 5
    # The least change first: the same file with tf-keras, then a migrated file (Keras's own format first, even
    # when it is not bit-exact), then a migrated file that needs tf-keras too.
    assert [(_kind(r), r.format) for r in answer.works] == [("tf_keras", "h5"), ("migrated", "keras"),
                                                            ("migrated", "h5"), ("migrated_tf_keras", "h5")]
    made = answer.works[1]
    assert words.steps(made) == (f"load with load_model(compile=False) in {K2}, save as .keras, load with "
                                 f"keras.models.load_model in {K3}")
    question = {"model": "m", "source": "user-m", "home": K2, "route": ["h5", "load_model"], "migrated": "m-migrated",
                "targets": [{"env": K3, "tf_keras": LEGACY}]}
    section = check_section(report, question)
    assert best_migrated(section["targets"][0]) == made
    # A migrated file that loads only with tf-keras is handed over when none loads in the target itself.
    legacy_only = [c for c in cells if c["target"] != K3 or c["model"] == "m"]
    fallback = best_migrated(check_section({**report, "cells": legacy_only}, question)["targets"][0])
    assert fallback is not None and fallback.tf_keras and _kind(fallback) == "migrated_tf_keras"
    assert targets_table(section["targets"])[1].split()[:2] == [K3, "NOT"]


def test_the_handed_over_code_loads_the_file_as_it_was_verified() -> None:
    from harness.agent.protocol import Code, ModelSpec

    model = ModelSpec(name="m", kind="artifact", code=Code(custom_objects="mymodels:CUSTOM", factory="mymodels:build"))
    keras3 = {"python": "3.11.2", "tensorflow": "2.20.0", "keras": "3.15.1", "keras_major": 3}
    text = snippet(Route("keras", "load_model", "pass", 0.0, True, env=K3), "model.keras", model, keras3)
    assert "import keras\n" in text and "TF_USE_LEGACY_KERAS" not in text
    assert "from mymodels import CUSTOM as custom_objects" in text
    assert "model = keras.models.load_model(os.path.join(HERE, 'model.keras'), custom_objects=custom_objects)" in text
    compile(text, "load.py", "exec")
    legacy = snippet(Route("h5", "load_model_nocompile", "pass", 0.0, True, env=LEGACY, tf_keras=True), "model.h5",
                     model, {**keras3, "keras": "2.20.1", "keras_major": 2})
    assert legacy.index('os.environ["TF_USE_LEGACY_KERAS"] = "1"') < legacy.index("import tensorflow")
    assert "keras = tf.keras" in legacy and "compile=False)" in legacy
    rebuilt = snippet(Route("weights_h5", "rebuild", "pass", env=K3), "model.weights.h5", model, keras3)
    assert "from mymodels import build" in rebuilt and "model = build()" in rebuilt
    for route in (Route("json", "model_from_json", "pass", env=K3), Route("export", "saved_model", "pass", env=K3),
                  Route("export", "tfsm_layer", "pass", env=K3)):
        compile(snippet(route, "model.json" if route.format == "json" else "export", model, keras3), "load.py", "exec")


# ---------------------------------------------------------------------------- migrations[], and a manifest's fallbacks


def test_a_migration_that_could_not_be_made_says_why_and_one_never_saved_says_so() -> None:
    from harness.advisor.migrations import migration
    from harness.agent.protocol import Code, ModelSpec

    model = ModelSpec(name="m-migrated", kind="migration", formats=("keras", "h5"), code=Code(),
                      migrates=Migration(model="m", env=K2, format="h5", loaders=("load_model",)))
    failed = {f"{K2}/m-migrated/keras": {"status": "error", "stage": "build", "error": {
        "type": "MigrationFailed", "message": "no loader of ['load_model'] loaded m's h5 here (load_model: ...)"}}}
    entry = migration(model, {}, failed, [])
    assert (entry["status"], entry["loader"], entry["formats"], entry["verified"]) == ("failed", None, [], [])
    assert entry["error"].startswith("MigrationFailed: no loader of ['load_model']")
    assert migration(model, {}, {}, [])["status"] == "not_run"
    made = {K2: {"models": {"m-migrated": {"formats": {"h5": {}}, "made_by": {
        "loader": "load_model_nocompile", "tried": [{"loader": "load_model", "status": "error", "error": {
            "type": "ValueError", "message": "Argument(s) not recognized: {'lr': 0.0001}"}}, 42,
            {"loader": "load_model_nocompile", "status": "ok"}]}}}}}
    entry = migration(model, made, {}, [])
    assert entry["loader"] == "load_model_nocompile"  # what the container says, kept to its shape
    assert entry["tried"] == [{"loader": "load_model", "status": "error",
                               "error": "ValueError: Argument(s) not recognized: {'lr': 0.0001}"},
                              {"loader": "load_model_nocompile", "status": "ok", "error": None}]


def test_a_manifest_whose_reference_fallbacks_are_not_loader_names_is_refused() -> None:
    from harness.untrusted import manifest_problem

    entry = {"inputs": "m/inputs.npz", "labels": "m/labels.npy", "reference": "m/reference.npy", "formats": {},
             "reference_output": {"target": K2, "loader": "load_model", "then": ["load_model_nocompile"]}}
    assert manifest_problem({"models": {"m": entry}}) is None
    entry["reference_output"]["then"] = "saved_model"
    assert manifest_problem({"models": {"m": entry}}) == "models.m.reference_output.then is not a list of loaders"


# ---------------------------------------------------------------------------- one answer on every surface


class UnknownLayerEverywhere(LoadHook):
    """The user's file names a custom layer no environment knows (its --custom-objects were not given)."""

    def change(self, target: str, record: dict[str, Any], output: Path) -> None:
        if record["source"].startswith("user-"):
            self.fail_load(record, output, "ValueError", "Unknown layer: 'Scale'. Please ensure you are using a "
                                                         "`keras.utils.custom_object_scope`")


@pytest.mark.parametrize("engine, answer", [(UnknownLayerEverywhere, 1), (FakeEngine, 0), (BrokenInKeras3, 1)])
def test_every_surface_of_a_check_says_its_answer(project: Path, capsys: pytest.CaptureFixture[str], engine: Any,
                                                  answer: int) -> None:
    assert _check(project, engine=engine) == answer
    screen = capsys.readouterr().out
    assert set(exit_codes(project / "run").values()) == {answer}
    assert_one_answer(project / "run")  # a later report says the same, and prints the answer
    assert capsys.readouterr().out == screen


def test_a_custom_layer_unknown_at_home_names_the_flag_that_fixes_it_and_never_advises_retraining(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _check(project, engine=UnknownLayerEverywhere) == 1
    out = capsys.readouterr().out
    assert "verdict: UNTESTED" in out and "cause: custom-objects: ValueError: Unknown layer: 'Scale'" in out
    assert "fix:   run check again with --custom-objects FILE.py:DICT" in out
    assert "retrain" not in out and "load it with tf-keras" not in out
    answer = json.loads((project / "run" / "check.json").read_text())
    assert answer["home_cause"]["name"] == "custom-objects" and answer["home_cause"]["flag"].startswith(
        "--custom-objects")
    report = json.loads((project / "run" / "report.json").read_text())
    keras3 = {c["cause"] for c in report["cells"] if c["source"] == "user-old" and c["target"] == K3
              and c["status"] == "error"}
    assert keras3 == {"custom-objects"}  # a Keras 3 Unknown layer is the model's own code too


def test_when_safe_the_route_to_take_is_yours_and_alternatives_come_below(project: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert _check(project, engine=FakeEngine) == 0
    out = capsys.readouterr().out
    assert "route to take: yours, .h5 / keras.models.load_model" in out
    answer = json.loads((project / "run" / "check.json").read_text())
    assert (answer["use"]["format"], answer["use"]["loader"]) == ("h5", "load_model") == tuple(answer["route"])
    assert answer["works"][0] == answer["use"]
