"""User models through plan, staging, the fake engine and the report; the agent's pure helpers, without TensorFlow."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fake_engine import FakeEngine
from harness.agent import user
from harness.agent.formats import Loaded
from harness.agent.load import plan_tasks
from harness.console import Console
from harness.matrix import Matrix, parse_matrix
from harness.plan import EnvPlan, Limits, expected_cells, load_spec, plan_environments, save_spec
from harness.rundir import RunDir
from harness.runner import Runner, RunOptions
from harness.usermodels import DATA_MOUNT, USER_MOUNT, user_cells
from harness.userstage import sniff_versions, stage_user_models

ENVS = [{"python": "3.11", "tensorflow": "2.15.1"}, {"python": "3.11", "tensorflow": "2.16.2", "keras": "3.3.3"}]
OLD_H5 = b"\x89HDF\r\n\x1a\n" + b'{"class_name": "Functional", "keras_version": "2.4.0", "backend": "tensorflow"}'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "mymodels.py").write_text("CUSTOM = {'Scale': int}\n\ndef build():\n    return None\n")
    (tmp_path / "old.h5").write_bytes(OLD_H5)
    np.save(tmp_path / "x.npy", np.arange(6, dtype="float32").reshape(2, 3))
    np.save(tmp_path / "ref.npy", np.linspace(0, 1, 8, dtype="float32").reshape(2, 4))
    return tmp_path


def _matrix(root: Path, *models: dict[str, Any], tolerance: dict[str, float] | None = None) -> Matrix:
    data: dict[str, Any] = {"environments": ENVS, "models": ["dense", *models], "formats": ["h5"],
                            "loaders": ["load_model"]}
    if tolerance:
        data["tolerance"] = tolerance
    return parse_matrix(data, path=str(root / "m.yaml"), sha256="0" * 64)


ARTIFACT = {"name": "old", "artifact": "old.h5", "inputs": "x.npy", "reference": "ref.npy", "path": "code",
            "custom_objects": "mymodels:CUSTOM", "loaders": ["load_model"], "tolerance": {"atol": 0.01}}
FACTORY = {"name": "mine", "path": "code", "factory": "mymodels:build", "inputs": {"shape": [4, 3]}}


def test_an_existing_artifact_is_one_more_source_every_target_loads(project: Path) -> None:
    matrix = _matrix(project, ARTIFACT)
    engine = FakeEngine(drift=1e-3)
    run_dir = RunDir.prepare(project / "run", resume=False)
    runner = Runner(engine, matrix, plan_environments(matrix, {}), run_dir=run_dir, console=Console(quiet=True),
                    options=RunOptions(), run_id="t")
    report = runner.execute()
    assert report is not None
    assert len(engine.runs) == 2 * 2  # no container for the pseudo-source
    source = report["environments"][-1]
    assert (source["id"], source["keras"], source["keras_major"], source["image"]) == ("user-old", "2.4.0", 2, None)
    cells = {(c["source"], c["target"], c["model"]): c for c in report["cells"]}
    for target in ("py3.11-tf2.15.1", "py3.11-tf2.16.2-keras3.3.3"):
        assert cells[("user-old", target, "old")]["status"] == "pass"  # its own tolerance: atol 0.01
        assert cells[(target, target, "dense")]["status"] == "drift"  # the matrix's: 1e-5
    assert report["models"][-1] == {"name": "old", "kind": "user", "hazards": [],
                                    "description": "existing h5 artifact old.h5, loaded in every environment"}
    assert report["summary"]["grid"]["user-old"]["py3.11-tf2.15.1"]["worst"] == "pass"
    manifest = json.loads((project / "run" / "artifacts" / "user-old" / "manifest.json").read_text())
    digest = hashlib.sha256(OLD_H5).hexdigest()
    assert manifest["models"]["old"]["formats"]["h5"]["files"] == {"h5/old.h5": digest}
    assert manifest["versions"]["sha256"] == digest


def test_staging_is_idempotent_and_the_load_phase_plans_the_artifact_with_the_users_code(project: Path) -> None:
    matrix = _matrix(project, ARTIFACT, FACTORY)
    run = project / "run"
    stage_user_models(matrix, run)
    first = (run / "artifacts" / "user-old" / "manifest.json").read_bytes()
    stage_user_models(matrix, run)
    assert (run / "artifacts" / "user-old" / "manifest.json").read_bytes() == first
    assert not list((run / "artifacts").glob(".*"))  # no temporary folder left
    (task,) = plan_tasks(str(run / "artifacts"), "/out", ["load_model", "rebuild"])
    assert (task["source"], task["model"], task["format"], task["loader"]) == ("user-old", "old", "h5", "load_model")
    assert task["user"] == {"root": f"{USER_MOUNT}/old", "custom_objects": "mymodels:CUSTOM", "seed": 1234}
    assert task["input_names"] == ["input"]
    with np.load(run / "userdata" / "mine" / "inputs.npz") as data:  # a factory's generated inputs
        assert data["input"].shape == (4, 3) and data["input"].dtype == np.float32


def test_an_environments_predictions_can_be_the_reference(project: Path) -> None:
    matrix = _matrix(project, {**ARTIFACT, "reference": {"env": "py3.11-tf2.16.2-keras3.3.3"}})
    stage_user_models(matrix, project / "run")
    manifest = json.loads((project / "run" / "artifacts" / "user-old" / "manifest.json").read_text())
    reference = manifest["models"]["old"]["reference"]
    assert reference == "../../outputs/py3.11-tf2.16.2-keras3.3.3/user-old/old/h5/load_model.npy"


def test_cells_mounts_and_agent_specs_of_user_models(project: Path) -> None:
    matrix = _matrix(project, ARTIFACT, FACTORY)
    envs = [e.id for e in matrix.environments]
    assert user_cells(matrix, envs)[:2] == [("user-old", envs[0], "old", "h5", "load_model"),
                                            ("user-old", envs[1], "old", "h5", "load_model")]
    assert len(expected_cells(matrix, envs)) == 4 + 2 + 4 * 2  # dense, the artifact, the factory (2 loaders)
    plan: EnvPlan = plan_environments(matrix, {})[0]
    save = save_spec(matrix, plan, project / "run", "r", Limits())
    (spec,) = json.loads(save.command[5])["user_models"]
    assert spec == {"name": "mine", "formats": ["h5"], "loaders": ["load_model", "load_model_nocompile"],
                    "root": f"{USER_MOUNT}/mine", "factory": "mymodels:build", "seed": 1234,
                    "inputs": f"{DATA_MOUNT}/mine/inputs.npz", "labels": None}
    mounts = {m.container: m for m in save.mounts}
    assert mounts[f"{USER_MOUNT}/mine"].host == project / "code" and mounts[f"{USER_MOUNT}/mine"].read_only
    assert mounts[DATA_MOUNT].read_only
    load = {m.container: m for m in load_spec(matrix, plan, project / "run", "r", Limits()).mounts}
    assert load[f"{USER_MOUNT}/old"].read_only and load["/harness/outputs"].read_only is False


def test_versions_are_read_from_the_file_without_h5py(tmp_path: Path) -> None:
    heap = tmp_path / "heap.h5"  # Keras 2.0 wrote its version into the HDF5 global heap
    heap.write_bytes(b"keras_version\x00\x00\x19\x01" + b"\x00" * 40 + b"GCOL\x01\x00\x00\x00" + b"\x00" * 16
                     + b"2.0.5\x00\x00\x00")
    assert sniff_versions(heap, "h5")["keras"] == "2.0.5"
    unknown = tmp_path / "plain.h5"
    unknown.write_bytes(b"\x89HDF nothing here")
    assert sniff_versions(unknown, "h5")["keras_major"] is None


# ---------------------------------------------------------------------------- the agent's side, no TensorFlow


def test_random_inputs_are_the_same_everywhere() -> None:
    a = user.random_array([4, 3], "float32", seed=1)
    assert a.dtype == np.float32 and np.array_equal(a, user.random_array([4, 3], "float32", seed=1))
    ints = user.random_array([100], "int32", low=5, high=9)
    assert ints.min() >= 5 and ints.max() <= 8
    assert user.random_array([3], "bool").dtype == np.bool_


def test_custom_objects_from_a_dict_a_function_or_a_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "objs_mod.py").write_text(
        "import json\nOBJECTS = {'A': 1}\n\ndef make():\n    return {'B': 2}\n\nclass Layer:\n    pass\n\n"
        "def loss(a, b):\n    return a\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    root = str(tmp_path)
    assert user.custom_objects({"root": root, "custom_objects": "objs_mod:OBJECTS"}) == {"A": 1}
    assert user.custom_objects({"root": root, "custom_objects": "objs_mod:make"}) == {"B": 2}
    assert sorted(user.custom_objects({"root": root, "custom_objects": "objs_mod"})) == ["Layer", "loss", "make"]
    assert user.custom_objects({}) == {}
    sys.modules.pop("objs_mod", None)


def test_a_predict_hook_sees_raw_inputs_and_must_return_numbers(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "hook_mod.py").write_text("def predict(model, raw):\n    return model(raw['b']) * 2\n\n"
                                          "def labels(model, raw):\n    return ['cat'] * len(raw['a'])\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    served = Loaded(lambda arrays: np.asarray(arrays[0]) + 1.0, "signature")  # no Keras model: called as one
    hooked = user._with_hook(served, {"root": str(tmp_path), "predict": "hook_mod:predict"}, ["a", "b"])
    assert hooked.predict([np.zeros(2), np.ones(2)]).tolist() == [4.0, 4.0]
    assert hooked.call == "hook_mod:predict(model, raw) over signature"
    strings = user._with_hook(served, {"root": str(tmp_path), "predict": "hook_mod:labels"}, ["a", "b"])
    with pytest.raises(TypeError, match="return numbers"):
        strings.predict([np.zeros(2), np.ones(2)])
    sys.modules.pop("hook_mod", None)
