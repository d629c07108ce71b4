"""Containers run once per host: check's home environment and its saves are copied from an earlier run when
everything that decides them is the same. Against FakeEngine; the store is the test's HARNESS_CACHE."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fake_engine import FakeEngine
from harness.agent.protocol import ARTIFACTS_MOUNT, LOAD_DONE
from harness.cli import main
from harness.engine import Mount, RunSpec
from harness.reuse import Kept, Reuse, container_key, tree_digest

OLD_H5 = b"\x89HDF\r\n\x1a\n" + b'{"class_name": "Functional", "keras_version": "2.4.0", "backend": "tensorflow"}'
HOME = "py3.11-tf2.15.1"


def _spec(tmp_path: Path, *, command: str = "load", code: str = "a = 1\n") -> RunSpec:
    (tmp_path / "code").mkdir(exist_ok=True)
    (tmp_path / "code" / "m.py").write_text(code)
    for source in ("home", "other"):
        if not (tmp_path / "artifacts" / source).is_dir():
            (tmp_path / "artifacts" / source).mkdir(parents=True)
            (tmp_path / "artifacts" / source / "f").write_text(source)
    return RunSpec(image="harness-env:x", name="c", command=("python", "-m", "harness.agent", command), mounts=(
        Mount(tmp_path / "src", "/opt/harness-src/harness"), Mount(tmp_path / "code", "/harness/user/m"),
        Mount(tmp_path / "artifacts", ARTIFACTS_MOUNT), Mount(tmp_path / "out", "/harness/outputs", read_only=False),
        Mount(tmp_path / "records.jsonl", "/harness/records.jsonl", read_only=False)))


def test_the_key_follows_the_image_command_and_what_is_read_but_not_other_sources(tmp_path: Path) -> None:
    home = [tmp_path / "artifacts" / "home"]
    key = container_key(_spec(tmp_path), "sha256:a", home)
    assert key == container_key(_spec(tmp_path), "sha256:a", home)
    assert key != container_key(_spec(tmp_path), "sha256:b", home)
    assert key != container_key(_spec(tmp_path, command="save"), "sha256:a", home)
    assert key != container_key(_spec(tmp_path, code="a = 2\n"), "sha256:a", home)
    (tmp_path / "artifacts" / "other" / "f").write_text("changed")  # a source this container's cells never read
    assert key == container_key(_spec(tmp_path), "sha256:a", home)
    (tmp_path / "artifacts" / "home" / "f").write_text("changed")
    assert key != container_key(_spec(tmp_path), "sha256:a", home)


def test_a_link_in_what_a_container_reads_means_no_reuse(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    (tmp_path / "code" / "elsewhere").symlink_to("/etc/passwd")
    assert tree_digest(tmp_path / "code") is None
    assert container_key(spec, "sha256:a") is None


def _written(tmp_path: Path, records: list[dict[str, object]]) -> Kept:
    kept = Kept(records=tmp_path / "run" / "load.jsonl", folder=tmp_path / "run" / "outputs")
    kept.folder.mkdir(parents=True)
    np.save(kept.folder / "x.npy", np.ones(3))
    kept.records.write_text("".join(json.dumps(r) + "\n" for r in records))
    return kept


def test_a_finished_load_is_kept_and_restored_whole(tmp_path: Path) -> None:
    store = Reuse(tmp_path / "store")
    kept = _written(tmp_path, [{"kind": "load", "status": "error"}, {"kind": LOAD_DONE}])
    assert store.keep("k", kept, load=True)
    into = Kept(records=tmp_path / "again" / "load.jsonl", folder=tmp_path / "again" / "outputs")
    into.records.parent.mkdir()
    assert store.restore("k", into) and not store.restore("other", into)
    assert into.records.read_text() == kept.records.read_text()
    assert np.array_equal(np.load(into.folder / "x.npy"), np.ones(3))


@pytest.mark.parametrize("records", [
    [{"kind": "load", "status": "ok"}],  # never finished
    [{"kind": "load", "status": "crash"}, {"kind": LOAD_DONE}],  # how a process ended, not what a file does
    [{"kind": "load", "status": "timeout"}, {"kind": LOAD_DONE}],
])
def test_an_unfinished_or_crashed_load_is_not_kept(tmp_path: Path, records: list[dict[str, object]]) -> None:
    store = Reuse(tmp_path / "store")
    assert not store.keep("k", _written(tmp_path, records), load=True)
    assert not (tmp_path / "store" / "k").exists()


def _check(tmp_path: Path, engine: FakeEngine, out: str) -> int:
    (tmp_path / "old.h5").write_bytes(OLD_H5)
    np.save(tmp_path / "x.npy", np.zeros((2, 3), dtype="float32"))
    return main(["check", "--from", "2.15.1", "--to", "2.20.0", "--model", str(tmp_path / "old.h5"), "--inputs",
                 str(tmp_path / "x.npy"), "--out", str(tmp_path / out), "-q"], engine=lambda: engine)


def _started(engine: FakeEngine) -> list[tuple[str, str]]:
    return sorted((s.command[3], json.loads(s.command[5])["env"]) for s in engine.runs)


def test_a_second_check_of_a_file_runs_only_the_targets_loads(tmp_path: Path) -> None:
    engine = FakeEngine()
    first = _check(tmp_path, engine, "first")
    everything = _started(engine)
    engine.runs.clear()
    assert _check(tmp_path, engine, "second") == first
    targets = sorted({("load", env) for _, env in everything if env != HOME})
    assert _started(engine) == targets and ("load", HOME) in everything
    first_report = json.loads((tmp_path / "first" / "report.json").read_text())
    second_report = json.loads((tmp_path / "second" / "report.json").read_text())
    statuses = [[(c["source"], c["target"], c["model"], c["format"], c["loader"], c["status"]) for c in r["cells"]]
                for r in (first_report, second_report)]
    assert statuses[0] == statuses[1]
    run = json.loads((tmp_path / "second" / "run.json").read_text())
    assert run["containers_started"] == len(targets) and "prepare" in run["timings"]
