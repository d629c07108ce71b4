"""The agent protocol's pure parts, on the host: model routes, load-task planning and JSONL records. No TensorFlow."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness.agent import protocol
from harness.agent.load import Integrity, needs_graph_worker, run_order
from harness.agent.protocol import (
    EXACT,
    RECORD_SCHEMA,
    CellKey,
    LoadRequest,
    LoadTask,
    ModelSpec,
    Only,
    RecordWriter,
    SaveRequest,
    Tolerance,
    done_cells,
    plan_tasks,
    read_records,
    resolve_probe,
    sha256_file,
)

ARTIFACTS = protocol.ARTIFACTS_MOUNT  # container paths, as load_spec mounts them
OUTPUTS = protocol.OUTPUTS_MOUNT
DENSE = resolve_probe("dense", ("h5", "keras"), ("load_model",))


def _manifest(env: str, models: dict[str, tuple[str, ...]]) -> protocol.Manifest:
    return protocol.manifest(env, {}, {
        model: protocol.manifest_entry(
            model, ["features"], {fmt: {"path": f"{model}/{fmt}/model.{fmt}", "files": {}} for fmt in fmts},
            evaluate={"loss": 0.5}, predict_call="model(x, training=False)")
        for model, fmts in models.items()})


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """artifacts/ as two finished saves and one that died before manifest.json."""
    root = tmp_path / "artifacts"
    saved: list[tuple[str, dict[str, tuple[str, ...]]]] = [
        ("env-b", {"dense": ("h5", "keras")}),
        ("env-a", {"dense": ("keras",), "gone": ("h5",)}),  # "gone": saved for another matrix
    ]
    for env, models in saved:
        (root / env).mkdir(parents=True)
        (root / env / protocol.MANIFEST).write_text(json.dumps(_manifest(env, models)))
    (root / "env-c" / "dense").mkdir(parents=True)  # save died: files but no manifest
    (root / "env-c" / "dense" / protocol.REFERENCE).write_bytes(b"")
    return root


def test_one_task_per_saved_format_and_loader_of_the_models_asked_for(artifacts: Path) -> None:
    tasks = plan_tasks(str(artifacts), OUTPUTS, [DENSE])
    assert [(t.source, t.model, t.format, t.loader) for t in tasks] == [
        ("env-a", "dense", "keras", "load_model"),
        ("env-b", "dense", "h5", "load_model"),
        ("env-b", "dense", "keras", "load_model"),
    ]
    assert "env-c" not in {t.source for t in tasks}


def test_task_paths_point_into_the_source_and_the_outputs(artifacts: Path) -> None:
    root = str(artifacts)
    task = next(t for t in plan_tasks(root, OUTPUTS, [DENSE]) if (t.source, t.format) == ("env-b", "h5"))
    assert task == LoadTask(
        source="env-b", model="dense", format="h5", loader="load_model",
        artifact=f"{root}/env-b/dense/h5/model.h5",
        files={},
        model_dir=f"{root}/env-b/dense",
        source_versions={},
        inputs=f"{root}/env-b/dense/inputs.npz",
        input_names=["features"],
        output_names=[],
        labels=f"{root}/env-b/dense/labels.npy",
        evaluate=True,
        graph_mode=False,
        timeout=None,
        output=f"{OUTPUTS}/env-b/dense/h5/load_model.npy",
        spec=DENSE.for_agent(),
        reference=f"{root}/env-b/dense/reference.npy",  # compared in place: a drifting load is repeated (noise)
        tolerance=Tolerance(),
    )
    assert LoadTask.from_json(task.to_json()) == task  # as the worker receives it
    exact = next(t for t in plan_tasks(root, OUTPUTS, [dataclasses.replace(DENSE, exact=True)], Tolerance(1e-3, 1e-3))
                 if (t.source, t.format) == ("env-b", "h5"))
    assert exact.tolerance == EXACT
    loose = next(t for t in plan_tasks(root, OUTPUTS, [DENSE], Tolerance(1e-3, 1e-3)))
    assert loose.tolerance == Tolerance(1e-3, 1e-3)  # the matrix's, for a model without its own


def test_the_report_reads_outputs_where_the_agent_writes_them(artifacts: Path, tmp_path: Path) -> None:
    from harness.rundir import RunDir

    run_dir = RunDir(tmp_path / "run")
    for task in plan_tasks(str(artifacts), str(run_dir.outputs("t")), [DENSE]):
        assert Path(task.output) == run_dir.output(task.cell("t"))


def test_loaders_that_do_not_apply_to_a_format_are_left_out(artifacts: Path) -> None:
    model = resolve_probe("dense", ("h5", "keras"), ("load_model", "rebuild", "model_from_json"))
    keys = [(t.source, t.format, t.loader) for t in plan_tasks(str(artifacts), OUTPUTS, [model])]
    assert keys == [  # rebuild reads h5 but not keras; model_from_json reads neither
        ("env-a", "keras", "load_model"),
        ("env-b", "h5", "load_model"),
        ("env-b", "h5", "rebuild"),
        ("env-b", "keras", "load_model"),
    ]


def test_no_manifests_no_tasks(tmp_path: Path) -> None:
    (tmp_path / "empty-env").mkdir()
    assert plan_tasks(str(tmp_path), OUTPUTS, [DENSE]) == []
    assert plan_tasks(str(tmp_path), OUTPUTS, []) == []


# ---------------------------------------------------------------------------- routes: quirks are fields


def test_a_probe_is_tried_with_the_matrix_formats_and_loaders_it_does_not_reserve() -> None:
    every = tuple(protocol.FORMATS)
    loaders = tuple(protocol.LOADERS)
    dense = resolve_probe("dense", every, loaders)
    assert "seed" not in (dense.formats or ())  # reserved for models naming it
    assert "tf1_session" not in (dense.loaders or ())
    assert "load_model_custom" in (dense.loaders or ()) and ("h5", "load_model_custom") not in protocol.routes(dense)
    tf1 = resolve_probe("tf1_init", every, loaders)
    # Its own loaders, and the adapting ones the matrix lists: they read any model's file.
    assert protocol.routes(tf1) == [("h5", "load_model"), ("h5", "tf1_session"), ("h5", "adapted"),
                                    ("h5", "adapted_keras")]
    seeded = resolve_probe("seeded", every, loaders)
    assert protocol.routes(seeded) == [("seed", "rebuild_from_seed")]


def test_custom_objects_make_load_model_custom_apply() -> None:
    custom = resolve_probe("custom_layer", ("h5",), ("load_model", "load_model_custom"))
    assert protocol.routes(custom) == [("h5", "load_model"), ("h5", "load_model_custom")]
    assert "load_model" in custom.withhold_custom_objects


def test_a_spec_survives_its_wire_form() -> None:
    spec = resolve_probe("label_order", ("h5",), ("load_model",))
    assert protocol.from_dict(json.loads(json.dumps(protocol.to_dict(spec.for_agent())))) == spec


def test_a_containers_request_never_holds_host_paths() -> None:
    user = ModelSpec(name="mine", kind="factory", origin=protocol.Origin(root="/home/me/models"))
    assert user.for_agent().origin is None
    for request in (SaveRequest("e", (user,)), LoadRequest("e", (user,))):
        assert "/home/me" not in request.to_json()  # whatever the host passes
        assert type(request).from_json(request.to_json()).models == (user.for_agent(),)


def test_a_load_request_survives_its_wire_form() -> None:
    request = LoadRequest("e", (DENSE,), timeout=60.0, isolation="artifact", only=Only("s", "dense", "h5"))
    assert LoadRequest.from_json(request.to_json()) == request


# ---------------------------------------------------------------------------- records


def test_record_writer_appends_with_schema(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text('{"kind": "load", "source": "old"}\n')  # resume: earlier records are kept
    writer = RecordWriter(str(path))
    writer.write({"kind": "load", "source": "a", "model": "dense", "format": "h5", "loader": "load_model"})
    writer.write({"kind": protocol.LOAD_DONE, "schema": 7})
    writer.close()
    records = list(read_records(str(path)))
    assert [r.get("source") for r in records] == ["old", "a", None]
    assert records[1]["schema"] == RECORD_SCHEMA
    assert records[2]["schema"] == 7  # an explicit schema is not overwritten
    assert len(path.read_text().splitlines()) == 3


def test_record_writer_does_not_mutate_the_caller_dict(tmp_path: Path) -> None:
    record = {"kind": "load"}
    writer = RecordWriter(str(tmp_path / "r.jsonl"))
    writer.write(record)
    writer.close()
    assert record == {"kind": "load"}


def test_read_records_skips_a_torn_last_line_and_non_objects(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text('{"kind": "load", "source": "a"}\n\n   \n[1, 2]\n{"kind": "load", "source": "b"}\n{"kind": "lo')
    assert [r["source"] for r in read_records(str(path))] == ["a", "b"]


def test_read_records_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert list(read_records(str(tmp_path / "missing.jsonl"))) == []
    assert done_cells(str(tmp_path / "missing.jsonl"), "t") == []
    assert not protocol.load_finished(str(tmp_path / "missing.jsonl"))


def test_done_cells_lists_the_loads_already_recorded(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    writer = RecordWriter(str(path))
    writer.write({"kind": "load", "source": "a", "model": "dense", "format": "h5", "loader": "load_model"})
    writer.write({"kind": "save", "source": "a", "model": "dense", "format": "keras", "loader": "load_model"})
    writer.write({"kind": "load", "source": "b", "model": "dense", "format": "keras", "loader": "load_model",
                  "status": "crash"})
    writer.close()
    assert not protocol.load_finished(str(path))
    writer = RecordWriter(str(path))
    writer.write({"kind": protocol.LOAD_DONE})
    writer.close()
    with path.open("a") as fh:
        fh.write('{"kind": "load", "source": "c", "model": "dense", "format": "h5", "loa')  # torn
    assert done_cells(str(path), "t") == [CellKey("a", "t", "dense", "h5", "load_model"),
                                          CellKey("b", "t", "dense", "keras", "load_model")]
    assert protocol.load_finished(str(path))


def test_a_task_is_skipped_on_resume_once_its_record_exists(artifacts: Path, tmp_path: Path) -> None:
    # run_load skips tasks whose cell is among done_cells: records written from a task must name that cell.
    path = tmp_path / "records.jsonl"
    tasks = plan_tasks(str(artifacts), OUTPUTS, [DENSE])
    writer = RecordWriter(str(path))
    cell = tasks[1].cell("t")
    writer.write({"kind": "load", "target": "t", "status": "ok", "source": cell.source, "model": cell.model,
                  "format": cell.format, "loader": cell.loader})
    writer.close()
    done = set(done_cells(str(path), "t"))
    assert [t.cell("t") in done for t in tasks] == [False, True, False]


def test_integrity_flags_a_changed_or_missing_file_once_per_artifact(artifacts: Path, tmp_path: Path) -> None:
    good = tmp_path / "model.h5"
    good.write_bytes(b"saved bytes")
    task = dataclasses.replace(plan_tasks(str(artifacts), OUTPUTS, [DENSE])[0], artifact=str(good),
                               files={str(good): sha256_file(str(good))})
    integrity = Integrity()
    assert integrity.problem(task) is None
    good.write_bytes(b"tampered")
    assert integrity.problem(task) is None  # verdicts are cached per artifact: hashed once per container
    assert "does not match its sha256" in (Integrity().problem(task) or "")
    good.unlink()
    assert "is missing" in (Integrity().problem(task) or "")


def test_write_json_atomic_leaves_no_temporary_file_and_respects_strictness(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "data.json"
    protocol.write_json_atomic(path, {"b": 1, "a": float("nan")})
    assert list(path.parent.iterdir()) == [path]
    assert json.loads(path.read_text())["b"] == 1
    with pytest.raises(ValueError):
        protocol.write_json_atomic(path, {"a": float("nan")}, strict=True)
    assert json.loads(path.read_text())["b"] == 1  # the old file is intact
    assert list(path.parent.iterdir()) == [path]


def test_a_model_that_hangs_by_design_carries_its_own_timeout(artifacts: Path) -> None:
    spec = dataclasses.replace(DENSE, cell_timeout=60.0)
    assert {t.timeout for t in plan_tasks(str(artifacts), OUTPUTS, [spec])} == {60.0}


class _Running:
    """A load worker that said hello with these versions (no process behind it)."""

    def __init__(self, keras_major: int | None) -> None:
        self.versions = None if keras_major is None else {"keras_major": keras_major}


def test_a_graph_mode_loader_gets_its_own_worker_only_where_its_keras_runs_it(artifacts: Path) -> None:
    plain = next(t for t in plan_tasks(str(artifacts), OUTPUTS, [DENSE]) if t.format == "h5")
    session = dataclasses.replace(plain, loader="tf1_session", graph_mode=protocol.LOADERS["tf1_session"].graph_mode)
    assert session.graph_mode and not plain.graph_mode
    assert needs_graph_worker(session, _Running(2))  # type: ignore[arg-type]
    assert not needs_graph_worker(session, _Running(3))  # type: ignore[arg-type]  # unsupported at once there
    assert needs_graph_worker(session, None)  # no worker has said which Keras it has yet
    assert needs_graph_worker(session, _Running(None))  # type: ignore[arg-type]
    assert not needs_graph_worker(plain, _Running(2))  # type: ignore[arg-type]


def test_loads_that_may_abort_their_worker_run_after_the_others_and_graph_mode_last(artifacts: Path) -> None:
    plain = next(t for t in plan_tasks(str(artifacts), OUTPUTS, [DENSE]) if t.format == "h5")
    tasks = [dataclasses.replace(plain, loader=name, graph_mode=protocol.LOADERS[name].graph_mode)
             for name in ("tf1_session", "tflite", "load_model", "saved_model")]
    assert [t.loader for t in sorted(tasks, key=run_order)] == ["load_model", "saved_model", "tflite", "tf1_session"]
