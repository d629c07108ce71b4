"""Models through plan, staging, the fake engine and the report; the agent's model code, without TensorFlow."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fake_engine import FakeEngine, planned_runner
from harness import models
from harness.agent.models import Loaded, ModelCode
from harness.agent.protocol import (
    OUTPUTS_MOUNT,
    USER_MOUNT,
    USERDATA_MOUNT,
    CellKey,
    Code,
    LoadTask,
    ModelSpec,
    SaveRequest,
    plan_tasks,
    random_array,
)
from harness.cells import CellPlan
from harness.matrix import Matrix, parse_matrix
from harness.models import sniff_versions
from harness.plan import EnvPlan, Limits, load_spec, plan_environments, save_spec
from harness.rundir import RunDir
from harness.workflow import execute

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
    report = execute(planned_runner(engine, matrix, run_dir, run_id="t"))
    assert report is not None
    assert len(engine.runs) == 2 * 2  # no container for the pseudo-source
    source = report["environments"][-1]
    assert (source["id"], source["keras"], source["keras_major"], source["image"]) == ("user-old", "2.4.0", 2, None)
    cells = {(c["source"], c["target"], c["model"]): c for c in report["cells"]}
    envs = ("py3.11-tf2.15.1", "py3.11-tf2.16.2-keras3.3.3")
    for target in envs:
        assert cells[("user-old", target, "old")]["status"] == "pass"  # its own tolerance: atol 0.01
    assert cells[(envs[0], envs[1], "dense")]["status"] == "drift"  # the matrix's: 1e-5
    assert report["models"][-1] == {"name": "old", "kind": "user", "hazards": [], "shows_hazard": False,
                                    "home": envs[0],
                                    "description": "existing h5 artifact old.h5, loaded in every environment"}
    # The artifact's routes are judged from its home, the environment whose load is its reference.
    assert cells[("user-old", envs[1], "old")]["route_status"] == "portable"
    assert report["summary"]["grid"]["user-old"]["py3.11-tf2.15.1"]["worst"] == "pass"
    manifest = json.loads((project / "run" / "artifacts" / "user-old" / "manifest.json").read_text())
    digest = hashlib.sha256(OLD_H5).hexdigest()
    assert manifest["models"]["old"]["formats"]["h5"]["files"] == {"h5/old.h5": digest}
    assert manifest["versions"]["sha256"] == digest


def test_staging_is_idempotent_and_the_load_phase_plans_the_artifact_with_the_users_code(project: Path) -> None:
    matrix = _matrix(project, ARTIFACT, FACTORY)
    run = RunDir(project / "run")
    models.stage_models(matrix.models, run)
    first = (run.artifacts("user-old") / "manifest.json").read_bytes()
    models.stage_models(matrix.models, run)
    assert (run.artifacts("user-old") / "manifest.json").read_bytes() == first
    assert not list(run.artifacts_root.glob(".*"))  # no temporary folder left
    (task,) = plan_tasks(str(run.artifacts_root), "/out", [matrix.model("old")])
    assert (task.source, task.model, task.format, task.loader) == ("user-old", "old", "h5", "load_model")
    spec = LoadTask.from_json(task.to_json()).spec  # as the worker receives it
    assert spec.code == Code(root=f"{USER_MOUNT}/old", custom_objects="mymodels:CUSTOM") and spec.origin is None
    assert task.input_names == ["input"]
    with np.load(run.userdata / "mine" / "inputs.npz") as data:  # a factory's generated inputs
        assert data["input"].shape == (4, 3) and data["input"].dtype == np.float32


def test_an_environments_predictions_can_be_the_reference(project: Path) -> None:
    matrix = _matrix(project, {**ARTIFACT, "reference": {"env": "py3.11-tf2.16.2-keras3.3.3"}})
    run = RunDir(project / "run")
    models.stage_models(matrix.models, run)
    manifest = json.loads((run.artifacts("user-old") / "manifest.json").read_text())
    output = manifest["models"]["old"]["reference_output"]
    assert output == {"target": "py3.11-tf2.16.2-keras3.3.3", "loader": "load_model", "then": []}


def test_cells_mounts_and_agent_specs_of_user_models(project: Path) -> None:
    matrix = _matrix(project, ARTIFACT, FACTORY)
    envs = [e.id for e in matrix.environments]
    cells = CellPlan.of(matrix).cells(envs)
    assert len(cells) == 4 + 2 + 4 * 2  # dense, the artifact, the factory (2 loaders)
    assert cells[-2:] == [CellKey("user-old", envs[0], "old", "h5", "load_model"),
                          CellKey("user-old", envs[1], "old", "h5", "load_model")]
    plan: EnvPlan = plan_environments(matrix, {})[0]
    run = RunDir(project / "run")
    save = save_spec(matrix, plan, run, "r", Limits())
    specs = SaveRequest.from_json(save.command[5]).models
    assert [m.name for m in specs] == ["dense", "mine"]  # an existing artifact is never built
    mine = specs[1]
    assert (mine.formats, mine.loaders) == (("h5",), ("load_model", "load_model_nocompile"))
    assert mine.code == Code(root=f"{USER_MOUNT}/mine", factory="mymodels:build") and mine.has_inputs
    mounts = {m.container: m for m in save.mounts}
    assert mounts[f"{USER_MOUNT}/mine"].host == project / "code" and mounts[f"{USER_MOUNT}/mine"].read_only
    assert mounts[USERDATA_MOUNT].read_only and mounts[USERDATA_MOUNT].host == run.userdata
    load = {m.container: m for m in load_spec(matrix, plan, run, "r", Limits()).mounts}
    assert load[f"{USER_MOUNT}/old"].read_only and load[OUTPUTS_MOUNT].read_only is False


def test_versions_are_read_from_the_file_without_h5py(tmp_path: Path) -> None:
    heap = tmp_path / "heap.h5"  # Keras 2.0 wrote its version into the HDF5 global heap
    heap.write_bytes(b"keras_version\x00\x00\x19\x01" + b"\x00" * 40 + b"GCOL\x01\x00\x00\x00" + b"\x00" * 16
                     + b"2.0.5\x00\x00\x00")
    assert sniff_versions(heap, "h5")["keras"] == "2.0.5"
    full = tmp_path / "full.h5"  # a string of exactly eight bytes has no padding: the next object's header follows
    full.write_bytes(b"GCOL\x01\x00\x00\x00" + b"\x00" * 16 + b"\x08" + b"\x00" * 7 + b"2.2.4-tf\x02\x00\x00\x00")
    assert sniff_versions(full, "h5")["keras"] == "2.2.4-tf"
    unknown = tmp_path / "plain.h5"
    unknown.write_bytes(b"\x89HDF nothing here")
    assert sniff_versions(unknown, "h5")["keras_major"] is None


# ---------------------------------------------------------------------------- the agent's side, no TensorFlow


def test_random_inputs_are_the_same_everywhere() -> None:
    a = random_array([4, 3], "float32", seed=1)
    assert a.dtype == np.float32 and np.array_equal(a, random_array([4, 3], "float32", seed=1))
    ints = random_array([100], "int32", low=5, high=9)
    assert ints.min() >= 5 and ints.max() <= 8
    assert random_array([3], "bool").dtype == np.bool_


def _code(root: Path, **refs: str) -> ModelCode:
    return ModelCode(ModelSpec(name="m", kind="factory", code=Code(root=str(root), **refs)), keras=None)


def test_custom_objects_from_a_dict_a_function_or_a_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "objs_mod.py").write_text(
        "import json\nOBJECTS = {'A': 1}\n\ndef make():\n    return {'B': 2}\n\nclass Layer:\n    pass\n\n"
        "def loss(a, b):\n    return a\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert _code(tmp_path, custom_objects="objs_mod:OBJECTS").custom_objects() == {"A": 1}
    assert _code(tmp_path, custom_objects="objs_mod:make").custom_objects() == {"B": 2}
    assert sorted(_code(tmp_path, custom_objects="objs_mod").custom_objects()) == ["Layer", "loss", "make"]
    assert _code(tmp_path).custom_objects() == {}
    sys.modules.pop("objs_mod", None)


def test_a_probe_withholds_its_custom_objects_from_the_plain_loaders() -> None:
    from harness.agent.protocol import resolve_probe

    code = ModelCode(resolve_probe("custom_layer", ("h5",), ("load_model", "load_model_custom")), keras=None)
    assert code.withholds("load_model") and code.custom_objects("load_model") == {}
    assert not code.withholds("load_model_custom")


def test_a_predict_hook_sees_raw_inputs_and_must_return_numbers(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "hook_mod.py").write_text("def predict(model, raw):\n    return model(raw['b']) * 2\n\n"
                                          "def labels(model, raw):\n    return ['cat'] * len(raw['a'])\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    served = Loaded(lambda arrays: np.asarray(arrays[0]) + 1.0, "signature")  # no Keras model: called as one
    hooked = _code(tmp_path, predict="hook_mod:predict").serve(served, ["a", "b"], str(tmp_path))
    assert hooked.predict([np.zeros(2), np.ones(2)]).tolist() == [4.0, 4.0]
    assert hooked.call == "hook_mod:predict(model, raw) over signature"
    strings = _code(tmp_path, predict="hook_mod:labels").serve(served, ["a", "b"], str(tmp_path))
    with pytest.raises(TypeError, match="return numbers"):
        strings.predict([np.zeros(2), np.ones(2)])
    sys.modules.pop("hook_mod", None)


def test_a_postprocess_function_gets_the_saved_models_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.agent.protocol import resolve_probe

    (tmp_path / "classes.json").write_text('["hen", "gnu", "fox", "eel", "dog", "cat", "bee", "ant"]')
    code = ModelCode(resolve_probe("label_order_sorted", ("h5",), ("load_model",)), keras=None)
    outputs = np.tile(np.arange(8, dtype="float32"), (2, 1))
    served = code.serve(Loaded(lambda arrays: outputs, "model(x)"), ["features"], str(tmp_path))
    assert served.predict([np.zeros(2)])[0].tolist() == [7, 6, 5, 4, 3, 2, 1, 0]  # columns by stored class order
