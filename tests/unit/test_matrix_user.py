"""User models under `models:`: factories and existing artifacts, their defaults, and every bad input named by key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from harness.agent.protocol import RandomInputs, ReferenceEnv, routes
from harness.cli import main
from harness.matrix import Matrix, MatrixError, Tolerance, load_matrix, matrix_from_dict, matrix_to_dict

ENVS = """
environments:
  - {python: "3.11", tensorflow: "2.15.1"}
  - {python: "3.11", tensorflow: "2.16.2", keras: "3.3.3"}
"""
MODULE = '''
import tensorflow as tf

CUSTOM = {}


def build():
    return tf.keras.Sequential()


def predict(model, raw):
    return model(raw)
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's folder: code, inputs, an old .h5, its reference, a weights file and a SavedModel."""
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "mymodels.py").write_text(MODULE)
    np.save(tmp_path / "x.npy", np.zeros((4, 3), dtype="float32"))
    np.savez(tmp_path / "xy.npz", a=np.zeros((4, 3)), b=np.ones((4, 2)))
    np.save(tmp_path / "ref.npy", np.zeros((4, 1), dtype="float32"))
    (tmp_path / "old.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    (tmp_path / "w.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    (tmp_path / "arch.json").write_text("{}")
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"")
    (tmp_path / "pickled.npy").write_bytes(b"not numpy")
    return tmp_path


def _load(root: Path, models: str, extra: str = "") -> Matrix:
    path = root / "m.yaml"
    path.write_text(ENVS + "models:\n" + textwrap.indent(textwrap.dedent(models), "  ") + textwrap.dedent(extra))
    return load_matrix(path)


def _problems(root: Path, models: str, extra: str = "") -> list[str]:
    with pytest.raises(MatrixError) as info:
        _load(root, models, extra)
    return info.value.problems


def test_a_factory_beside_probes_with_defaults(project: Path) -> None:
    matrix = _load(project, """
        - dense
        - name: mine
          path: code
          factory: mymodels:build
          custom_objects: mymodels:CUSTOM
          inputs: {shape: [8, 3], dtype: float32, low: -1, high: 1}
          tolerance: {rtol: 1.0e-3}
        """, "formats: [h5, keras, seed]\nloaders: [load_model, rebuild, rebuild_from_seed]\n")
    dense, mine = matrix.models  # one list, in the order written
    assert (dense.name, dense.kind) == ("dense", "probe")
    assert mine.kind == "factory"
    assert mine.origin is not None and mine.origin.root == str(project / "code")
    assert mine.code.root == "/harness/user/mine" and mine.code.factory == "mymodels:build"
    assert mine.origin.random_inputs == RandomInputs(shape=(8, 3), dtype="float32", low=-1, high=1)
    assert mine.has_inputs and not mine.has_labels
    assert mine.tolerance == Tolerance(rtol=1e-3)
    assert mine.formats == ("h5", "keras")  # the matrix's, less the probes' seed
    assert mine.loaders == ("load_model", "rebuild", "load_model_nocompile")  # probe-only loaders dropped
    assert routes(mine) == [("h5", "load_model"), ("h5", "rebuild"), ("h5", "load_model_nocompile"),
                            ("keras", "load_model"), ("keras", "load_model_nocompile")]
    assert matrix_from_dict(matrix_to_dict(matrix)) == matrix  # survives run.json


@pytest.mark.parametrize(("artifact", "extra", "fmt"), [
    ("old.h5", "", "h5"),
    ("sm", "", "savedmodel"),
    ("w.weights.h5", "factory: mymodels:build\n  path: code\n", "weights_h5"),
    ("w.weights.h5", "architecture: arch.json\n", "json"),
    ("old.h5", "format: weights_h5\n  factory: mymodels:build\n  path: code\n", "weights_h5"),
])
def test_an_artifact_format_is_told_from_its_name_or_keys(project: Path, artifact: str, extra: str, fmt: str) -> None:
    matrix = _load(project, f"- name: old\n  artifact: {artifact}\n  inputs: x.npy\n  {extra}")
    (old,) = matrix.models
    assert (old.kind, old.artifact_format) == ("artifact", fmt)
    assert old.origin is not None
    assert old.origin.reference_env == ReferenceEnv(env="py3.11-tf2.15.1")  # default: the first environment
    assert old.formats == (fmt,)


def test_an_artifact_with_its_own_reference_and_an_expectation(project: Path) -> None:
    matrix = _load(project, "- {name: old, artifact: old.h5, inputs: xy.npz, reference: ref.npy}\n",
                   "expect:\n  - {source: user-old, model: old, status: error, reason: Keras 3}\n")
    (old,) = matrix.models
    assert old.origin is not None
    assert old.origin.reference == str(project / "ref.npy") and old.origin.reference_env is None
    assert matrix.expect[0].model == "old" and matrix.expect[0].source == (("id", "user-old"),)


@pytest.mark.parametrize(("models", "expected"), [
    ("- {name: m, factory: mymodels:build}", "models[0].path: required key missing; factory names a module"),
    ("- {name: m, path: nowhere, factory: mymodels:build}", "models[0].path: directory not found"),
    ("- {name: m, path: code, factory: othermod:build}", "models[0].factory: no module 'othermod' in"),
    ("- {name: m, path: code, factory: mymodels:biuld}",
     "models[0].factory: mymodels.py defines no 'biuld'; did you mean 'build'?"),
    ("- {name: m, path: code, factory: mymodels}", "models[0].factory: expected module:function"),
    ("- {name: m, path: code, factory: mymodels:build, custom_objects: 'my models'}",
     "models[0].custom_objects: expected module:attribute or module"),
    ("- {name: m, path: code, factory: mymodels:build, inputs: missing.npy}", "models[0].inputs: file not found"),
    ("- {name: m, path: code, factory: mymodels:build, inputs: pickled.npy}",
     "models[0].inputs: pickled.npy is not a readable NumPy file"),
    ("- {name: m, path: code, factory: mymodels:build, inputs: {shape: [0, 3]}}",
     "models[0].inputs.shape: expected a list of positive whole numbers"),
    ("- {name: m, path: code, factory: mymodels:build, inputs: {shape: [4], dtype: flaot32}}",
     "models[0].inputs.dtype: unknown dtype 'flaot32'; did you mean 'float32'?"),
    ("- {name: m, path: code, factory: mymodels:build, tolerance: {rtol: 1e-5}}",
     "models[0].tolerance.rtol: found the string '1e-5'"),
    ("- {name: m, path: code, factory: mymodels:build, formats: [h5, seed]}",
     "models[0].formats[1]: 'seed' is for probes only"),
    ("- {name: m, path: code, factory: mymodels:build, loaders: [load_modle]}",
     "models[0].loaders[0]: unknown loader 'load_modle'; did you mean 'load_model'?"),
    ("- {name: m, path: code, factory: mymodels:build, reference: ref.npy}",
     "models[0].reference: not for a factory model"),
    ("- {name: m, path: code, factory: mymodels:build, colour: red}", "models[0].colour: unknown key"),
    ("- {name: m}", "models[0]: give 'factory'"),
    ("- {path: code, factory: mymodels:build}", "models[0].name: required key missing"),
    ("- {name: dense, path: code, factory: mymodels:build}", "models[0].name: 'dense' is the name of a built-in probe"),
    ("- {name: m, artifact: gone.h5, inputs: x.npy}", "models[0].artifact: not found"),
    ("- {name: m, artifact: old.h5}", "models[0].inputs: required for an existing artifact"),
    ("- {name: m, artifact: code, inputs: x.npy}", "models[0].artifact: " ),
    ("- {name: m, artifact: x.npy, inputs: x.npy}", "models[0].artifact: cannot tell the format of 'x.npy'"),
    ("- {name: m, artifact: w.weights.h5, inputs: x.npy}", "models[0]: w.weights.h5 holds weights only"),
    ("- {name: m, artifact: old.h5, inputs: x.npy, loaders: [rebuild]}",
     "models[0].loaders: 'rebuild' needs a factory"),
    ("- {name: m, artifact: old.h5, inputs: x.npy, formats: [h5]}", "models[0].formats: an existing artifact"),
    ("- {name: m, artifact: old.h5, inputs: x.npy, reference: {env: py3.12-tf2.17}}",
     "models[0].reference.env: no environment 'py3.12-tf2.17' in this matrix"),
    ("- {name: m, artifact: old.h5, inputs: x.npy, reference: {env: py3.11-tf2.15.1, loader: tfsm_layer}}",
     "models[0].reference.loader: 'tfsm_layer' is not among the loaders"),
    ("- {name: m, artifact: old.h5, inputs: x.npy, loaders: [model_from_json]}",
     "models[0]: no loader of ['model_from_json'] reads the formats ['h5']"),
    ("- {name: m, artifact: old.h5, inputs: x.npy}\n- {name: m, artifact: old.h5, inputs: x.npy}",
     "models[1].name: model 'm' is listed twice"),
])
def test_bad_user_models_are_named_by_key_path(project: Path, models: str, expected: str) -> None:
    problems = _problems(project, models + "\n")
    assert any(p.startswith(expected) for p in problems), problems


def test_an_environment_may_not_take_a_pseudo_source_name(project: Path) -> None:
    path = project / "m.yaml"
    path.write_text('environments:\n  - {python: "3.11", tensorflow: "2.15.1", name: user-old}\n')
    with pytest.raises(MatrixError) as info:
        load_matrix(path)
    assert info.value.problems == ["environments[0].name: names starting with 'user-' are reserved for existing "
                                   "user artifacts"]


def test_an_expectation_may_name_a_user_model(project: Path) -> None:
    problems = _problems(project, "- {name: old, artifact: old.h5, inputs: x.npy}\n",
                         "expect:\n  - {model: olde, reason: typo}\n")
    assert problems == ["expect[0].model: unknown probe 'olde'; did you mean 'old'?"]


def test_validate_exits_2_naming_the_file_and_key_before_anything_is_built(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project / "m.yaml"
    path.write_text(ENVS + "models:\n  - {name: m, path: code, factory: mymodels:nope}\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: models[0].factory: mymodels.py defines no 'nope'" in err


def test_a_user_model_may_share_a_prefix_with_a_probe(project: Path) -> None:
    # Nothing dispatches on a model's name: only the exact probe names are taken.
    matrix = _load(project, "- {name: label_order_v2, path: code, factory: mymodels:build}\n"
                            "- {name: fault_tolerant, path: code, factory: mymodels:build}\n")
    assert [m.name for m in matrix.models] == ["label_order_v2", "fault_tolerant"]
    assert all(m.code.postprocess is None and m.kind == "factory" for m in matrix.models)
