"""The adapters (harness/agent/adapters.py) on the stored configs of real files (fixtures/adapter_configs.json).

Each fixture is a file's model config and compile config as the file holds them: probes saved by
Keras 2.12, 2.15 and 3.15 in the harness images, and public files of Keras 2.0 (fer, EmoPy). The
weight transform is checked against what Keras 2 itself did: fixtures/cudnn_weights.npz holds LSTM
and GRU weights and the CuDNNLSTM/CuDNNGRU weights Keras 2.15 converted them into.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.agent.adapters import (
    ADAPTERS,
    COMPILE,
    H5,
    KERAS,
    LAYOUTS,
    MODEL,
    WEIGHTS,
    WEIGHTS_H5,
    Saved,
    Weights,
    adapt,
    chain,
    cudnn_to_keras,
    fits,
    objects,
)
from harness.hints import RULES

FIXTURES = Path(__file__).parent / "fixtures"
FILES = {f["name"]: f for f in json.loads((FIXTURES / "adapter_configs.json").read_text(encoding="utf-8"))["files"]}
BY_NAME = {a.name: a for a in ADAPTERS}


class FakeWeights(Weights):
    """A legacy HDF5 file's weights in memory: layer -> (weight names, arrays), in the file's order."""

    def __init__(self, layers: dict[str, tuple[list[str], list[Any]]]) -> None:
        self.held = layers

    def layers(self) -> list[str]:
        return [name for name, (names, _) in self.held.items() if names]

    def get(self, layer: str) -> list[Any]:
        return list(self.held[layer][1])

    def set(self, layer: str, arrays: list[Any]) -> None:
        self.held[layer] = (self.held[layer][0], list(arrays))

    def give(self, layer: str, names: list[str], arrays: list[Any]) -> None:
        assert layer in self.held and not self.held[layer][0]
        self.held[layer] = (names, list(arrays))


def saved(name: str, weights: Weights | None = None, keras: str | None = None) -> Saved:
    f = copy.deepcopy(FILES[name])
    return Saved(f["layout"], keras or f["keras"], f["model"], f["compile"], weights)


def run(name: str, target: str, **kw: Any) -> tuple[Saved, dict[str, list[str]]]:
    file = saved(name, **kw)
    done = adapt(file, target)
    return file, {d["adapter"]: d["edits"] for d in done}


def layer(file: Saved, name: str) -> dict[str, Any]:
    return next(o for o in objects(file.model) if isinstance(o.get("config"), dict) and o["config"].get("name") == name)


# ---------------------------------------------------------------------------- the table


def test_every_adapter_answers_a_cause_the_hints_name_and_says_what_it_edits() -> None:
    rules = {r.name for r in RULES}
    assert [a.name for a in ADAPTERS if a.cause not in rules] == []
    assert len({a.name for a in ADAPTERS}) == len(ADAPTERS)
    for a in ADAPTERS:
        assert a.parts and set(a.parts) <= {MODEL, COMPILE, WEIGHTS}
        assert a.layouts and set(a.layouts) <= set(LAYOUTS)
        assert a.words and a.source and a.target


@pytest.mark.parametrize(("release", "spec", "fit"), [
    ("2.0.5", "<2.2", True), ("2.2.4-tf", "<2.2", False), ("2.15.0", "<3", True), ("3.15.1", ">=3.15", True),
    ("3.14.0", ">=3.15", False), ("3.12.0", "3,<3.13", True), ("2.16.0", "3,<3.13", False), (None, "<3", False),
    ("2.12.0", ">=2.13,<3", False), ("2.13.1", ">=2.13,<3", True),
])
def test_releases_fit_specs(release: str | None, spec: str, fit: bool) -> None:
    assert fits(release, spec) is fit


def test_a_chain_crosses_every_version_step_in_order_upwards_and_downwards() -> None:
    up = [a.name for a in chain("2.0.5", "3.15.1", H5)]
    assert up[:2] == ["sequential-list-config", "depthwise-groups"]
    assert up.index("rnn-time-major") < up.index("keras2-optimizer") < up.index("keras2-metric-wrappers")
    assert not {"initializer-axes", "quantization-config", "keras3-module-paths"} & set(up)
    down = [a.name for a in chain("3.15.1", "3.12.0", KERAS)]
    assert down == ["initializer-axes", "batchnorm-renorm", "quantization-config"]  # newest step first
    assert [a.name for a in chain("3.15.1", "3.14.0", H5)] == ["initializer-axes"]
    assert [a.name for a in chain("2.12.0", "2.15.0", KERAS)] == ["keras-2.13-module-paths",
                                                                  "keras-2.13-weights-layout"]
    assert chain("2.15.0", "2.15.0", H5) == [] and chain("3.15.1", "3.15.1", KERAS) == []
    assert chain(None, "3.15.1", H5) == []  # a file that does not say its Keras is never adapted by guess


# ---------------------------------------------------------------------------- each adapter on real files


def test_a_keras_2_0_list_sequential_becomes_a_mapping_and_its_first_layer_keeps_its_input() -> None:
    file, done = run("emopy-list-sequential", "3.15.1")
    assert file.model["config"]["name"] == "sequential" and len(file.model["config"]["layers"]) == 8
    assert done["sequential-list-config"] == ["Sequential sequential: its list of 8 layers became "
                                              "{'name': ..., 'layers': [...]}"]
    first = file.model["config"]["layers"][0]["config"]
    assert first["input_shape"] == [48, 48, 1] and "batch_input_shape" not in first
    assert file.compile["optimizer_config"] == {"class_name": "RMSprop", "config": {
        "learning_rate": 0.0010000000474974513, "epsilon": 1e-08, "rho": 0.8999999761581421}}


def test_an_old_adam_gets_learning_rate_and_loses_a_zero_decay() -> None:
    file, done = run("fer-old-adam", "3.15.1")
    assert file.compile["optimizer_config"]["config"] == {
        "learning_rate": 0.00010000000474974513, "beta_1": 0.8999999761581421, "epsilon": 1e-08,
        "beta_2": 0.9990000128746033}
    assert done["keras2-optimizer"] == [
        "optimizer Adam(lr=0.00010000000474974513, beta_1=0.8999999761581421, epsilon=1e-08, "
        "beta_2=0.9990000128746033, decay=0.0): lr=0.00010000000474974513 -> learning_rate; dropped decay=0.0"]


def test_a_legacy_decay_becomes_the_inverse_time_schedule_it_computed() -> None:
    file, _ = run("legacy-adam-decay-h5-2.15", "3.15.1")
    schedule = file.compile["optimizer_config"]["config"]["learning_rate"]
    assert schedule["class_name"] == "InverseTimeDecay"
    assert schedule["config"] == {"initial_learning_rate": 0.01, "decay_steps": 1, "decay_rate": 0.001,
                                  "staircase": False}


def test_keras_2_15_bookkeeping_keys_go_and_metric_wrappers_become_names() -> None:
    file, done = run("dense-h5-2.15", "3.15.1")
    optimizer = file.compile["optimizer_config"]
    assert optimizer["class_name"] == "Adam" and not {"jit_compile", "is_legacy_optimizer"} & set(optimizer["config"])
    assert file.compile["metrics"] == ["sparse_categorical_accuracy"]  # one output: one flat list
    assert done["keras2-metric-wrappers"][-1] == "metrics [['sparse_categorical_accuracy']] of the one output -> " \
                                                 "['sparse_categorical_accuracy']"
    assert done["keras2-optimizer"][0].endswith("dropped is_legacy_optimizer=False; dropped jit_compile=False; "
                                                 "class Custom>Adam -> Adam")


def test_an_optimizer_keras_3_lacks_drops_the_compile_config_and_says_so() -> None:
    file, done = run("loss-scale-optimizer-h5-2.15", "3.15.1")
    assert file.compile is None
    (words,) = done["keras2-optimizer"]
    assert words.startswith("dropped compile config: Keras 2 optimizer LossScaleOptimizerV3(inner_optimizer=Adam(")
    assert words.endswith("has no Keras 3 counterpart; compile again in code")


def test_depthwise_groups_of_one_are_dropped() -> None:
    file, done = run("depthwise-h5-2.15", "3.15.1")
    assert "groups" not in layer(file, "depthwise")["config"]
    assert done["depthwise-groups"] == ["depthwise (DepthwiseConv2D): dropped groups=1"]


def test_time_major_false_is_dropped_inside_wrappers_too_and_true_cannot_be_adapted() -> None:
    file, done = run("rnn-zoo-h5-2.15", "3.12.0")
    assert done["rnn-time-major"] == ["lstm (LSTM): dropped time_major=False", "gru (GRU): dropped time_major=False"]
    assert "time_major" not in json.dumps(file.model)
    _, done_true = run("time-major-true-h5-2.15", "3.15.1")
    assert done_true == {"rnn-time-major": []}
    last = adapt(saved("time-major-true-h5-2.15"), "3.15.1")[-1]
    assert last["cannot"] == "lstm (LSTM) has time_major=True: Keras 3's RNN layers take batch-major inputs only"


@pytest.mark.parametrize("name", ["mixed-precision-h5-2.15", "mixed-precision-keras-2.15"])
def test_a_mixed_precision_policy_becomes_its_name(name: str) -> None:
    file, done = run(name, "3.15.1")
    assert layer(file, "hidden")["config"]["dtype"] == "mixed_float16"
    assert done["mixed-precision-policy"] == ["hidden (Dense): dtype Policy('mixed_float16') -> 'mixed_float16' "
                                              "(a DTypePolicy)"]


def test_a_keras_2_15_archive_gets_keras_3_modules_a_single_axis_and_input_shapes() -> None:
    file, done = run("classifier-keras-2.15", "3.15.1")
    assert file.model["module"] == "keras.src.models.functional"
    assert layer(file, "bn")["config"]["axis"] == 3
    assert done["keras3-module-paths"] == ["module keras.src.engine.functional -> keras.src.models.functional"]
    text, text_done = run("text-rnn-keras-2.15", "3.15.1")
    assert layer(text, "embed")["config"]["input_shape"] == [None]
    assert list(text_done) == ["keras3-module-paths", "rnn-time-major", "batch-input-shape", "keras2-compile-options"]
    assert text.compile is not None and not {"steps_per_execution", "run_eagerly", "jit_compile"} & set(text.compile)
    assert text_done["keras2-compile-options"][0] == "dropped steps_per_execution=None (Keras 3's default instead)"


class FakeTree(Weights):
    """A weights file's groups, by path."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = set(paths)

    def groups(self, path: str) -> list[str]:
        prefix = f"{path}/" if path else ""
        return sorted({p[len(prefix):].split("/")[0] for p in self.paths if p.startswith(prefix) and p != path})

    def move(self, old: str, new: str) -> None:
        self.paths = {new + p[len(old):] if p == old or p.startswith(old + "/") else p for p in self.paths}


# The groups of the multi_input probe's .weights.h5 saved in the TF 2.12.1 image (Keras 2.12.0).
TREE_2_12 = ["_layer_checkpoint_dependencies", "_layer_checkpoint_dependencies/concatenate",
             "_layer_checkpoint_dependencies/concatenate/vars", "_layer_checkpoint_dependencies/dense",
             "_layer_checkpoint_dependencies/dense/vars", "_layer_checkpoint_dependencies/dense_2",
             "_layer_checkpoint_dependencies/dense_2/vars", "_layer_checkpoint_dependencies/dense_4",
             "_layer_checkpoint_dependencies/dense_4/vars", "_layer_checkpoint_dependencies/input_layer",
             "_layer_checkpoint_dependencies/input_layer/vars", "_layer_checkpoint_dependencies/input_layer_1",
             "_layer_checkpoint_dependencies/input_layer_1/vars", "metrics", "metrics/mean", "metrics/mean/vars",
             "optimizer", "optimizer/vars", "vars"]


def test_a_keras_2_12_archive_moves_to_the_module_paths_and_weights_layout_of_2_13() -> None:
    tree = FakeTree(TREE_2_12)
    file, done = run("tiny-keras-2.12", "2.15.0", weights=tree)
    assert file.model["module"] == "keras.src.engine.functional"
    assert list(done) == ["keras-2.13-module-paths", "keras-2.13-weights-layout"]
    # As the multi_input probe's .weights.h5 of TF 2.15.1 holds them: dense, dense_1, dense_2.
    assert tree.groups("layers") == ["concatenate", "dense", "dense_1", "dense_2", "input_layer", "input_layer_1"]
    assert "layers/dense_1/vars" in tree.paths and not any(p.startswith("_layer") for p in tree.paths)
    assert done["keras-2.13-weights-layout"] == ["weights: _layer_checkpoint_dependencies/ -> layers/, 2 group(s) "
                                                 "renumbered"]
    keras3, _ = run("tiny-keras-2.12", "3.15.1")
    assert keras3.model["module"] == "keras.src.models.functional"


def test_a_tf_keras_archive_names_the_modules_of_keras_2_13_to_2_15() -> None:
    file, done = run("dense-keras-tf-keras-2.16", "2.15.0")
    modules = {o["module"] for o in objects(file.model) if isinstance(o.get("module"), str)}
    assert not [m for m in modules if m.startswith("tf_keras")] and "keras.src.engine.functional" in modules
    assert list(done) == ["tf-keras-module-paths"]


@pytest.mark.parametrize(("name", "target", "adapter"), [("text-rnn-h5-3.12", "3.3.3", "orthogonal-name-3.4"),
                                                          ("rnn-zoo-h5-2.15", "3.3.3", "orthogonal-name")])
def test_the_orthogonal_initializer_gets_the_name_keras_3_0_to_3_3_know(name: str, target: str, adapter: str) -> None:
    file, done = run(name, target)
    assert "'Orthogonal'" not in str(file.model) and "OrthogonalInitializer" in str(file.model)
    if name.endswith("2.15"):  # a Keras 2 GRU's implementation=2 too
        assert done["gru-implementation"] == ["gru (GRU): dropped implementation=2"]
    assert done[adapter][0].endswith("initializer(s) Orthogonal -> OrthogonalInitializer")
    _, later = run(name, "3.12.0" if target == "3.3.3" and name.endswith("2.15") else "3.4.1")
    assert not {"orthogonal-name", "orthogonal-name-3.4"} & set(later)


def test_an_architecture_json_names_its_model_class_module() -> None:
    file, done = run("classifier-json-2.15", "3.15.1")
    assert (file.model["module"], file.model["registered_name"]) == ("keras.src.models.functional", "Functional")
    assert set(done) == {"model-class-module", "batchnorm-axis"}


def _tf_op_weights(file: Saved) -> FakeWeights:
    layers = [entry["name"] for entry in file.model["config"]["layers"]]
    held: dict[str, tuple[list[str], list[Any]]] = {name: ([], []) for name in layers}
    held["hidden"] = (["hidden/kernel:0", "hidden/bias:0"], [np.ones((16, 8)), np.zeros(8)])
    return FakeWeights(held)


def test_tf_op_lambda_layers_become_keras_layers_that_compute_the_same_numbers() -> None:
    file = saved("tf-op-lambda-h5-2.15")
    weights = _tf_op_weights(file)
    file.weights = weights
    done = {d["adapter"]: d["edits"] for d in adapt(file, "3.15.1")}
    kinds = {e["name"]: e["class_name"] for e in file.model["config"]["layers"]}
    assert kinds == {"features": "InputLayer", "hidden": "Dense", "tf.__operators__.getitem": "Dense",
                     "tf.__operators__.getitem_1": "Dense", "tf.__operators__.add": "Rescaling",
                     "tf.nn.relu": "Activation", "tf.concat": "Concatenate", "probs": "Dense"}
    x = np.arange(8.0)[None, :]
    low = x @ weights.get("tf.__operators__.getitem")[0]
    high = x @ weights.get("tf.__operators__.getitem_1")[0]
    assert low.tolist() == [[0.0, 1.0, 2.0, 3.0]] and high.tolist() == [[4.0, 5.0, 6.0, 7.0]]  # x[:, :4], x[:, 4:]
    assert layer(file, "tf.__operators__.add")["config"]["offset"] == 1.0
    assert layer(file, "tf.concat")["config"]["axis"] == 1
    assert layer(file, "tf.concat")["inbound_nodes"] == [[["tf.__operators__.add", 0, 0, {}], ["tf.nn.relu", 0, 0, {}]]]
    assert len(done["tf-op-lambda-layers"]) == 5


def test_a_tf_op_without_a_keras_layer_cannot_be_adapted() -> None:
    file = saved("tf-reduce-sum-h5-2.15")
    file.weights = _tf_op_weights(file)
    (last,) = [d for d in adapt(file, "3.15.1") if d.get("cannot")]
    assert last["adapter"] == "tf-op-lambda-layers"
    assert last["cannot"] == ("layer 'tf.math.reduce_sum' calls tf.math.reduce_sum(axis, keepdims): no Keras 3 layer "
                              "the adapter knows computes it")


def test_newer_keras_3_keys_holding_their_defaults_are_dropped_for_an_older_release() -> None:
    file, done = run("grown-configs-h5-3.15", "3.12.0")
    keys = {k for o in objects(file.model) if isinstance(o.get("config"), dict) for k in o["config"]}
    assert not {"input_axes", "output_axes", "renorm", "renorm_momentum", "quantization_config"} & keys
    assert list(done) == ["initializer-axes", "batchnorm-renorm", "quantization-config"]
    only_axes, done_314 = run("grown-configs-keras-3.15", "3.14.0")
    assert list(done_314) == ["initializer-axes"] and "renorm" in json.dumps(only_axes.model)


def test_a_newer_key_holding_something_else_cannot_be_adapted() -> None:
    file = saved("grown-configs-h5-3.15")
    layer(file, "bn")["config"]["renorm"] = True  # a model trained with batch renormalization
    (cannot,) = [d for d in adapt(file, "3.12.0") if d.get("cannot")]
    assert cannot["adapter"] == "batchnorm-renorm" and "renorm=True" in cannot["cannot"]


def test_cudnn_weights_become_exactly_what_keras_2_loaded_into_lstm_and_gru() -> None:
    with np.load(FIXTURES / "cudnn_weights.npz") as data:
        arrays = {k: data[k] for k in data.files}
    lstm = cudnn_to_keras([arrays[f"cudnn_{i}"] for i in range(3)])
    gru = cudnn_to_keras([arrays[f"cudnn_{i}"] for i in range(3, 6)])
    assert lstm is not None and gru is not None
    for i, got in enumerate([*lstm, *gru]):
        assert np.array_equal(got, arrays[f"plain_{i}"]), i
    assert cudnn_to_keras([arrays[f"plain_{i}"] for i in range(3)]) is None  # LSTM's own layout: nothing to do


def test_a_weights_file_in_cudnn_layout_is_converted_layer_by_layer() -> None:
    with np.load(FIXTURES / "cudnn_weights.npz") as data:
        held = {"l": (["l/kernel:0", "l/recurrent_kernel:0", "l/bias:0"], [data[f"cudnn_{i}"] for i in range(3)]),
                "g": (["g/kernel:0", "g/recurrent_kernel:0", "g/bias:0"], [data[f"cudnn_{i}"] for i in range(3, 6)])}
        weights = FakeWeights(held)
        done = adapt(Saved(WEIGHTS_H5, "2.1.5", None, weights=weights), "3.15.1")
        assert done[0]["edits"] == [
            "l: CuDNN-layout weights -> LSTM (kernels re-laid per gate, the two biases summed)",
            "g: CuDNN-layout weights -> GRU(reset_after=True) (kernels re-laid per gate, the biases as two rows)"]
        assert np.array_equal(weights.get("l")[2], data["plain_2"])


def test_nothing_is_edited_where_a_file_needs_nothing() -> None:
    file, done = run("grown-configs-h5-3.15", "3.15.1")
    assert done == {} and file.model == FILES["grown-configs-h5-3.15"]["model"]


def test_the_docs_list_every_adapter_with_its_cause() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "adapt.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip().strip("`"): line for line in doc.splitlines()
            if line.startswith("| `") and line.count("|") == 6}
    assert [a.name for a in ADAPTERS if a.name not in rows] == []
    assert [a.name for a in ADAPTERS if f"`{a.cause}`" not in rows[a.name]] == []


def test_a_keras_2_loss_object_loses_its_function_and_the_auto_reduction() -> None:
    file, done = run("normalization-loss-h5-2.15", "3.15.1")
    assert file.compile["loss"] == {"class_name": "MeanSquaredError", "config": {
        "reduction": "sum_over_batch_size", "name": "mean_squared_error"}}
    assert done["keras2-loss-objects"] == ["loss MeanSquaredError: dropped fn='mean_squared_error' (the class's own), "
                                           "reduction 'auto' -> 'sum_over_batch_size'"]


# Each adapter, a real file it changes, and the Keras that file is adapted for.
EVERY = {"sequential-list-config": ("emopy-list-sequential", "3.15.1"),
         "keras-2.13-module-paths": ("tiny-keras-2.12", "2.15.0"),
         "keras-2.13-weights-layout": ("tiny-keras-2.12", "2.15.0"),
         "orthogonal-name": ("rnn-zoo-h5-2.15", "3.3.3"), "gru-implementation": ("rnn-zoo-h5-2.15", "3.3.3"),
         "keras3-module-paths": ("classifier-keras-2.15", "3.15.1"),
         "depthwise-groups": ("depthwise-h5-2.15", "3.15.1"), "rnn-time-major": ("rnn-zoo-h5-2.15", "3.15.1"),
         "mixed-precision-policy": ("mixed-precision-h5-2.15", "3.15.1"),
         "model-class-module": ("classifier-json-2.15", "3.15.1"), "batchnorm-axis": ("classifier-json-2.15", "3.15.1"),
         "batch-input-shape": ("text-rnn-keras-2.15", "3.15.1"),
         "tf-op-lambda-layers": ("tf-op-lambda-h5-2.15", "3.15.1"),
         "cudnn-rnn-weights": (None, "3.15.1"), "keras2-optimizer": ("fer-old-adam", "3.15.1"),
         "keras2-compile-options": ("text-rnn-keras-2.15", "3.15.1"),
         "keras2-loss-objects": ("normalization-loss-h5-2.15", "3.15.1"),
         "keras2-metric-wrappers": ("dense-h5-2.15", "3.15.1"),
         "initializer-axes": ("grown-configs-h5-3.15", "3.12.0"),
         "batchnorm-renorm": ("grown-configs-h5-3.15", "3.12.0"),
         "quantization-config": ("grown-configs-h5-3.15", "3.12.0"),
         "orthogonal-name-3.4": ("text-rnn-h5-3.12", "3.3.3"),
         "tf-keras-module-paths": ("dense-keras-tf-keras-2.16", "2.15.0")}


def test_every_adapter_changes_a_real_file() -> None:
    assert set(EVERY) == {a.name for a in ADAPTERS}
    for name, (fixture, target) in EVERY.items():
        if fixture is None:  # weights only: test_a_weights_file_in_cudnn_layout_is_converted_layer_by_layer
            continue
        weights = FakeTree(TREE_2_12) if name.startswith("keras-2.13") else (
            _tf_op_weights(saved(fixture)) if name == "tf-op-lambda-layers" else None)
        _, done = run(fixture, target, weights=weights)
        assert done.get(name), name
