"""The hazard zoo's pure parts: the backend and env axes, which combinations exist, and the catalog's hazard probes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness.agent.catalog import DEFAULT_MODELS, FORMATS, HAZARD_PROBES, LOADERS, OPT_IN_LOADERS
from harness.agent.protocol import from_dict, to_dict
from harness.errors import MatrixError
from harness.matrix import Matrix, load_matrix, parse_matrix
from harness.matrix.model import matrix_from_dict, matrix_to_dict
from harness.plan import Limits, load_spec, plan_environments, save_spec
from harness.rundir import RunDir

ROOT = Path(__file__).resolve().parents[2]


def _parse(*envs: dict[str, object], **top: object) -> Matrix:
    return parse_matrix({"environments": list(envs), **top}, path="m.yaml", sha256="x")


def _problems(*envs: dict[str, object]) -> list[str]:
    with pytest.raises(MatrixError) as info:
        _parse(*envs)
    return info.value.problems


def test_backend_and_env_name_the_environment_and_reach_its_containers() -> None:
    (jax, onednn) = _parse(
        {"python": "3.13", "tensorflow": "2.20.0", "keras": "3.12.0", "backend": "jax"},
        {"python": "3.11", "tensorflow": "2.15.1", "env": {"TF_ENABLE_ONEDNN_OPTS": "0"}},
    ).environments
    assert jax.id == "py3.13-tf2.20.0-keras3.12.0-jax"
    assert jax.container_env() == {"KERAS_BACKEND": "jax"}
    assert "jax" in jax.requirements()
    assert onednn.id == "py3.11-tf2.15.1-TF_ENABLE_ONEDNN_OPTS0"
    assert onednn.container_env() == {"TF_ENABLE_ONEDNN_OPTS": "0"}
    assert "TF_ENABLE_ONEDNN_OPTS=0" in onednn.label()


def test_containers_get_the_backend_and_the_variables(tmp_path: Path) -> None:
    matrix = _parse({"python": "3.13", "tensorflow": "2.20.0", "keras": "3.12.0", "backend": "jax",
                     "env": {"TF_ENABLE_ONEDNN_OPTS": "0"}}, models=["dense"])
    plan = plan_environments(matrix, {})[0]
    for spec in (save_spec(matrix, plan, RunDir(tmp_path), "r", Limits()),
                 load_spec(matrix, plan, RunDir(tmp_path), "r", Limits())):
        assert spec.env["KERAS_BACKEND"] == "jax" and spec.env["TF_ENABLE_ONEDNN_OPTS"] == "0"
        assert spec.env["PYTHONHASHSEED"] in ("0", "1")  # the harness's own settings stay


def test_backend_and_env_are_matrix_axes() -> None:
    matrix = parse_matrix({"matrix": {"python": ["3.13"], "tensorflow": ["2.20.0"], "keras": ["3.12.0"],
                                      "backend": ["tensorflow", "jax"]}}, path="m.yaml", sha256="x")
    assert [e.backend for e in matrix.environments] == ["tensorflow", "jax"]
    assert matrix.environments[0].requirements() == ["tensorflow-cpu==2.20.0", "keras==3.12.0"]


def test_the_default_backend_adds_nothing() -> None:
    (env,) = _parse({"python": "3.13", "tensorflow": "2.20.0", "keras": "3.12.0", "backend": "tensorflow"}).environments
    assert env.id == "py3.13-tf2.20.0-keras3.12.0"
    assert env.container_env() == {"KERAS_BACKEND": "tensorflow"}


def test_env_and_backend_survive_run_json() -> None:
    matrix = _parse({"python": "3.11", "tensorflow": "2.15.1", "env": {"B": "2", "A": "1"}})
    import json

    again = matrix_from_dict(json.loads(json.dumps(matrix_to_dict(matrix))))
    assert again.environments == matrix.environments
    assert again.environments[0].env == (("A", "1"), ("B", "2"))


@pytest.mark.parametrize(("env", "fragment"), [
    ({"python": "3.13", "tensorflow": "2.12.1"}, "tensorflow 2.12 has wheels for Python 3.8 to 3.11 only"),
    ({"python": "3.9", "tensorflow": "2.21.0"}, "tensorflow 2.21 has wheels for Python 3.10 to 3.13 only"),
    ({"python": "3.9", "tensorflow": "2.20.0", "keras": "3.13.0"}, "keras 3.13 needs Python >= 3.11"),
    ({"python": "3.9", "tensorflow": "2.20.0", "keras": "3.12.0"}, "keras 3.12 needs Python >= 3.10"),
    ({"python": "3.11", "tensorflow": "2.15.1", "backend": "jax"}, "the jax backend needs Keras 3"),
    ({"python": "3.11", "tensorflow": "2.16.2", "keras": "tf-keras", "backend": "jax"}, "needs Keras 3"),
    ({"python": "3.11", "tensorflow": "2.16.2", "backend": "torch"}, "torch is not offered"),
    ({"python": "3.11", "tensorflow": "2.16.2", "backend": "jaxx"}, "did you mean 'jax'"),
    ({"python": "3.11", "tensorflow": "2.15.1", "env": {"PYTHONHASHSEED": "3"}}, "set by the harness itself"),
    ({"python": "3.11", "tensorflow": "2.15.1", "env": {"KERAS_BACKEND": "jax"}}, "(use backend:)"),
    ({"python": "3.11", "tensorflow": "2.15.1", "env": {"TF_ENABLE_ONEDNN_OPTS": 0}}, 'quote it ("0")'),
    ({"python": "3.11", "tensorflow": "2.15.1", "env": {"A-B": "1"}}, "not an environment variable name"),
    ({"python": "3.11", "tensorflow": "2.15.1", "env": ["A=1"]}, "expected a mapping of variable names"),
])
def test_combinations_that_cannot_exist_are_named_before_a_build(env: dict[str, object], fragment: str) -> None:
    problems = _problems(env)
    assert any(fragment in p for p in problems), problems


def test_combinations_that_exist_pass() -> None:
    envs = _parse({"python": "3.9", "tensorflow": "2.12.1"},
                  {"python": "3.13", "tensorflow": "2.20.0", "keras": "3.15.1"},
                  {"python": "3.11", "tensorflow": ">=2.16,<2.17", "backend": "jax"},  # unpinned: not judged
                  {"python": "3.11", "tensorflow": "2.16.2", "backend": "jax"}).environments
    assert len(envs) == 4


def test_the_hazard_matrix_validates_and_names_every_hazard_probe() -> None:
    matrix = load_matrix(ROOT / "matrices" / "hazards.yaml")
    assert set(HAZARD_PROBES) <= {m.name for m in matrix.models}
    assert any(e.backend == "jax" for e in matrix.environments)
    assert any(dict(e.env) for e in matrix.environments)
    # Every hazard probe keeps at least one route, and every opt-in loader a probe names is listed.
    for model in matrix.models:
        assert model.formats and model.loaders, model.name
    named = {loader for spec in HAZARD_PROBES.values() for loader in spec.loaders or ()}
    assert named & set(OPT_IN_LOADERS) <= set(matrix.loaders)


def test_hazard_probes_are_opt_in_and_well_formed() -> None:
    assert not set(HAZARD_PROBES) & set(DEFAULT_MODELS)
    for spec in HAZARD_PROBES.values():
        assert spec.hazards and spec.description, spec.name
        assert set(spec.formats or ()) <= set(FORMATS), spec.name
        assert set(spec.loaders or ()) <= set(LOADERS), spec.name
        assert not (set(spec.builds_on) - {2, 3}), spec.name
        assert from_dict(to_dict(spec)) == spec
    silent = [s.name for s in HAZARD_PROBES.values() if s.drift_hint]
    assert {"normalization_state", "optimizer_state", "nested_sublayers", "numeric_runtime"} <= set(silent)


def test_a_spec_restricted_to_one_generation_round_trips() -> None:
    spec = dataclasses.replace(HAZARD_PROBES["tf_op_lambda"], backends=("tensorflow",), min_keras="3.5")
    assert from_dict(to_dict(spec)) == spec
    assert HAZARD_PROBES["tf_op_lambda"].builds_on == (2,)
    assert "Keras 2" in HAZARD_PROBES["tf_op_lambda"].build_note
