"""The agent's pure parts, on the host: load-task planning and JSONL records. No TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.agent import catalog
from harness.agent.load import plan_tasks
from harness.agent.records import RECORD_SCHEMA, RecordWriter, cell_key, done_keys, read_records

ARTIFACTS = "/harness/artifacts"  # container paths, as load_spec mounts them
OUTPUTS = "/harness/outputs"


def _manifest(env: str, models: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    return {"schema": 1, "env": env, "models": {
        model: {
            "inputs": f"{model}/inputs.npz", "input_names": ["features"], "labels": f"{model}/labels.npy",
            "reference": f"{model}/reference.npy", "evaluate": {"loss": 0.5},
            "formats": {fmt: {"path": f"{model}/{fmt}/model.{fmt}", "files": {}} for fmt in fmts},
        } for model, fmts in models.items()}}


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """artifacts/ as two finished saves and one that died before manifest.json."""
    root = tmp_path / "artifacts"
    saved: list[tuple[str, dict[str, tuple[str, ...]]]] = [
        ("env-b", {"dense": ("h5", "keras")}),
        ("env-a", {"dense": ("keras",)}),
    ]
    for env, models in saved:
        (root / env).mkdir(parents=True)
        (root / env / "manifest.json").write_text(json.dumps(_manifest(env, models)))
    (root / "env-c" / "dense").mkdir(parents=True)  # save died: files but no manifest
    (root / "env-c" / "dense" / "reference.npy").write_bytes(b"")
    return root


def test_one_task_per_saved_format_and_loader(artifacts: Path) -> None:
    tasks = plan_tasks(str(artifacts), OUTPUTS, ["load_model"])
    assert [(t["source"], t["model"], t["format"], t["loader"]) for t in tasks] == [
        ("env-a", "dense", "keras", "load_model"),
        ("env-b", "dense", "h5", "load_model"),
        ("env-b", "dense", "keras", "load_model"),
    ]
    assert "env-c" not in {t["source"] for t in tasks}


def test_task_paths_point_into_the_source_and_the_outputs(artifacts: Path) -> None:
    root = str(artifacts)
    task = next(t for t in plan_tasks(root, OUTPUTS, ["load_model"]) if (t["source"], t["format"]) == ("env-b", "h5"))
    assert task == {
        "source": "env-b", "model": "dense", "format": "h5", "loader": "load_model",
        "artifact": f"{root}/env-b/dense/h5/model.h5",
        "files": {},
        "model_dir": f"{root}/env-b/dense",
        "source_versions": {},
        "inputs": f"{root}/env-b/dense/inputs.npz",
        "input_names": ["features"],
        "user": None,
        "labels": f"{root}/env-b/dense/labels.npy",
        "evaluate": True,
        "isolated": False,
        "output": f"{OUTPUTS}/env-b/dense/h5/load_model.npy",
    }


def test_output_layout_matches_what_the_report_reads(artifacts: Path) -> None:
    # report/build.py reads outputs/<target>/<source>/<model>/<format>/<loader>.npy
    for task in plan_tasks(str(artifacts), OUTPUTS, ["load_model"]):
        rel = Path(task["output"]).relative_to(OUTPUTS)
        assert rel.parts == (task["source"], task["model"], task["format"], f"{task['loader']}.npy")


def test_loaders_that_do_not_apply_to_a_format_are_left_out(
    artifacts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(catalog.LOADERS, "h5_only", ("h5",))
    tasks = plan_tasks(str(artifacts), OUTPUTS, ["load_model", "h5_only", "unknown_loader"])
    keys = [(t["source"], t["format"], t["loader"]) for t in tasks]
    assert keys == [
        ("env-a", "keras", "load_model"),
        ("env-b", "h5", "load_model"),
        ("env-b", "h5", "h5_only"),
        ("env-b", "keras", "load_model"),
    ]


def test_no_manifests_no_tasks(tmp_path: Path) -> None:
    (tmp_path / "empty-env").mkdir()
    assert plan_tasks(str(tmp_path), OUTPUTS, ["load_model"]) == []
    assert plan_tasks(str(tmp_path), OUTPUTS, []) == []


# ---------------------------------------------------------------------------- records


def test_record_writer_appends_with_schema(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text('{"kind": "load", "source": "old"}\n')  # resume: earlier records are kept
    writer = RecordWriter(str(path))
    writer.write({"kind": "load", "source": "a", "model": "dense", "format": "h5", "loader": "load_model"})
    writer.write({"kind": "load-done", "schema": 7})
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
    assert done_keys(str(tmp_path / "missing.jsonl"), "load") == []


def test_done_keys_lists_cells_of_one_kind(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    writer = RecordWriter(str(path))
    writer.write({"kind": "load", "source": "a", "model": "dense", "format": "h5", "loader": "load_model"})
    writer.write({"kind": "save", "source": "a", "model": "dense", "format": "keras", "loader": "load_model"})
    writer.write({"kind": "load", "source": "b", "model": "dense", "format": "keras", "loader": "load_model",
                  "status": "crash"})
    writer.write({"kind": "load-done"})
    writer.close()
    with path.open("a") as fh:
        fh.write('{"kind": "load", "source": "c", "model": "dense", "format": "h5", "loa')  # torn
    assert done_keys(str(path), "load") == ["a/dense/h5/load_model", "b/dense/keras/load_model"]
    assert done_keys(str(path), "save") == ["a/dense/keras/load_model"]


def test_cell_key_of_a_task_matches_its_record(artifacts: Path) -> None:
    # run_load skips tasks whose cell_key is already among done_keys: the two must agree.
    task = plan_tasks(str(artifacts), OUTPUTS, ["load_model"])[0]
    record = {"kind": "load", "target": "t", "status": "ok",
              **{k: task[k] for k in ("source", "model", "format", "loader")}}
    assert cell_key(task) == cell_key(record) == "env-a/dense/keras/load_model"


def test_integrity_flags_a_changed_or_missing_file_once_per_artifact(tmp_path: Path) -> None:
    from harness.agent.common import sha256_file
    from harness.agent.load import Integrity

    good = tmp_path / "model.h5"
    good.write_bytes(b"saved bytes")
    task = {"artifact": str(good), "files": {str(good): sha256_file(str(good))}}
    check = Integrity()
    assert check.problem(task) is None
    good.write_bytes(b"tampered")
    assert check.problem(task) is None  # verdicts are cached per artifact: hashed once per container
    assert "does not match its sha256" in (Integrity().problem(task) or "")
    good.unlink()
    assert "is missing" in (Integrity().problem(task) or "")
