"""The cell cache against the fake engine: a run with nothing changed starts no container and reproduces the report;
one environment replaced costs its save, its row and its column; what the cache holds is read back as untrusted."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from fake_engine import FakeEngine, planned_runner
from harness.agent.protocol import OUTPUTS_MOUNT
from harness.cellcache import (
    DEFAULT_MAX_BYTES,
    CellCache,
    agent_digest,
    cell_cache_bound,
    parse_size,
    tree_digest,
)
from harness.errors import UsageError
from harness.matrix import Matrix, parse_matrix
from harness.plan import Limits
from harness.rundir import RunDir
from harness.workflow import execute

ENVS = [
    {"python": "3.11", "tensorflow": "2.15.1"},
    {"python": "3.11", "tensorflow": "2.16.2", "keras": "3.3.3"},
    {"python": "3.13", "tensorflow": "2.21.0", "keras": "3.15.1"},
]
FORMATS = ["h5", "keras"]


def _matrix(envs: list[dict[str, str]] = ENVS) -> Matrix:
    return parse_matrix({"name": "cached", "environments": envs, "models": ["dense", "classifier"],
                         "formats": FORMATS, "loaders": ["load_model"]}, path="m.yaml", sha256="0" * 64)


def _run(engine: FakeEngine, out: Path, cache: CellCache | None, matrix: Matrix | None = None,
         limits: Limits | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    report = execute(planned_runner(engine, matrix or _matrix(), RunDir.prepare(out, resume=False),
                                    cell_cache=cache, limits=limits))
    assert report is not None
    return report, json.loads((out / "run.json").read_text())


def _cells(report: dict[str, Any]) -> list[dict[str, Any]]:
    return report["cells"]


def _steps(engine: FakeEngine) -> list[tuple[str, str]]:
    return sorted((s.command[3], json.loads(s.command[5])["env"]) for s in engine.runs)


PER_PAIR = 2 * len(FORMATS)  # models x formats, one loader


def test_a_run_with_nothing_changed_starts_no_container_and_reproduces_the_report(tmp_path: Path) -> None:
    engine, cache = FakeEngine(), CellCache(tmp_path / "cells")
    first, run = _run(engine, tmp_path / "a", cache)
    assert len(engine.runs) == 6
    assert run["cells"] == {"reused": 0, "computed": 9 * PER_PAIR}
    engine.runs.clear()
    second, again = _run(engine, tmp_path / "b", cache)
    assert engine.runs == [] and again["containers_started"] == 0
    assert again["cells"] == {"reused": 9 * PER_PAIR, "computed": 0}
    assert all(e["save_reused"] for e in again["environments"])
    assert _cells(second) == _cells(first)
    for key in ("paths", "causes", "summary", "verdict", "environments"):
        assert second[key] == first[key], key


def test_replacing_one_environment_recomputes_its_save_its_row_and_its_column(tmp_path: Path) -> None:
    engine, cache = FakeEngine(), CellCache(tmp_path / "cells")
    _run(engine, tmp_path / "a", cache)
    engine.runs.clear()
    newer = [*ENVS[:2], {"python": "3.13", "tensorflow": "2.21.0", "keras": "3.16.0"}]
    report, run = _run(engine, tmp_path / "b", cache, _matrix(newer))
    new = "py3.13-tf2.21.0-keras3.16.0"
    # its save, and a load in every target: its own column there, its row in the others
    assert _steps(engine) == sorted([("save", new), *(("load", e["id"]) for e in run["environments"])])
    computed = {e["id"]: e["cells"]["computed"] for e in run["environments"]}
    assert computed == {"py3.11-tf2.15.1": PER_PAIR, "py3.11-tf2.16.2-keras3.3.3": PER_PAIR, new: 3 * PER_PAIR}
    assert run["cells"] == {"reused": 4 * PER_PAIR, "computed": 5 * PER_PAIR}
    assert len(report["cells"]) == 9 * PER_PAIR and {c["status"] for c in report["cells"]} == {"pass"}


def test_no_cache_computes_everything_and_keeps_it(tmp_path: Path) -> None:
    engine = FakeEngine()
    _run(engine, tmp_path / "a", CellCache(tmp_path / "cells"))
    engine.runs.clear()
    _, run = _run(engine, tmp_path / "b", CellCache(tmp_path / "cells", reuse=False))
    assert len(engine.runs) == 6 and run["cells"] == {"reused": 0, "computed": 9 * PER_PAIR}
    engine.runs.clear()
    _run(engine, tmp_path / "c", CellCache(tmp_path / "cells"))
    assert engine.runs == []


def test_no_cache_replaces_a_save_so_the_cells_it_kept_are_found(tmp_path: Path) -> None:
    engine = FakeEngine()
    _run(engine, tmp_path / "a", CellCache(tmp_path / "cells"))
    engine.save_stamp = b" saved again, at another time"  # a real save is not byte for byte the same
    _run(engine, tmp_path / "b", CellCache(tmp_path / "cells", reuse=False))
    engine.runs.clear()
    _, run = _run(engine, tmp_path / "c", CellCache(tmp_path / "cells"))
    assert engine.runs == [] and run["cells"] == {"reused": 9 * PER_PAIR, "computed": 0}
    restored = (tmp_path / "c" / "artifacts" / "py3.11-tf2.15.1" / "dense" / "h5" / "model").read_bytes()
    assert restored.endswith(b"at another time")


def test_a_rebuilt_image_is_another_key(tmp_path: Path) -> None:
    engine, cache = FakeEngine(), CellCache(tmp_path / "cells")
    _run(engine, tmp_path / "a", cache)
    engine.runs.clear()
    rebuilt = next(tag for tag in engine.images if "keras3" not in tag and engine.images[tag].endswith(tag[-20:]))
    engine.images[rebuilt] += "-rebuilt"  # the same tag, built again: another image id
    _, run = _run(engine, tmp_path / "b", cache)
    assert run["cells"]["computed"] > 0 and any(step == "save" for step, _ in _steps(engine))


def test_under_artifact_isolation_only_the_new_artifacts_get_containers(tmp_path: Path) -> None:
    engine, cache, limits = FakeEngine(), CellCache(tmp_path / "cells"), Limits(isolation="artifact")
    _run(engine, tmp_path / "a", cache, _matrix(ENVS[:2]), limits)
    engine.runs.clear()
    _run(engine, tmp_path / "b", cache, _matrix(ENVS), limits)
    loads = [json.loads(s.command[5]) for s in engine.runs if s.command[3] == "load"]
    new = "py3.13-tf2.21.0-keras3.15.1"
    # every artifact loaded in the new target, and the new source's artifacts in the old targets
    assert all(r["env"] == new or r["only"]["source"] == new for r in loads)
    assert len(loads) == 3 * 2 * len(FORMATS) + 2 * 2 * len(FORMATS)


def test_the_files_a_load_wrote_beside_its_predictions_come_back_with_it(tmp_path: Path) -> None:
    class WritesBeside(FakeEngine):  # as an adapting loader leaves its copy and account beside its predictions
        def _load(self, request: Any, mounts: Any, records: Path) -> None:
            super()._load(request, mounts, records)
            for output in Path(mounts[OUTPUTS_MOUNT]).rglob("*.npy"):
                output.with_suffix("").mkdir(exist_ok=True)
                (output.with_suffix("") / "copy.keras").write_bytes(b"edited " + output.name.encode())

    engine, cache = WritesBeside(), CellCache(tmp_path / "cells")
    _run(engine, tmp_path / "a", cache)
    engine.runs.clear()
    _, run = _run(engine, tmp_path / "b", cache)
    assert engine.runs == [] and run["cells"]["computed"] == 0
    written = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a" / "outputs").rglob("copy.keras"))
    again = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b" / "outputs").rglob("copy.keras"))
    assert len(written) == 9 * PER_PAIR and again == written
    assert all((tmp_path / "b" / p).read_bytes() == (tmp_path / "a" / p).read_bytes() for p in written)


def test_a_damaged_entry_is_computed_again(tmp_path: Path) -> None:
    engine, cache = FakeEngine(), CellCache(tmp_path / "cells")
    first, _ = _run(engine, tmp_path / "a", cache)
    stored = sorted((tmp_path / "cells" / "loads").rglob("*.npy"))
    stored[0].unlink()
    stored[0].symlink_to("/etc/passwd")  # what a hostile hand could leave there: never followed
    (sorted((tmp_path / "cells" / "loads").rglob("*.json"))[1]).write_text("{not json")
    engine.runs.clear()
    second, run = _run(engine, tmp_path / "b", cache)
    assert run["cells"]["computed"] == 2 and run["cells"]["reused"] == 9 * PER_PAIR - 2
    assert _cells(second) == _cells(first)


def test_a_stored_record_of_the_wrong_shape_is_not_reused(tmp_path: Path) -> None:
    engine, cache = FakeEngine(), CellCache(tmp_path / "cells")
    _run(engine, tmp_path / "a", cache)
    entry = sorted((tmp_path / "cells" / "loads").rglob("*.json"))[0]
    data = json.loads(entry.read_text())
    entry.write_text(json.dumps({**data, "record": {**data["record"], "status": ["pass"]}}))
    engine.runs.clear()
    _, run = _run(engine, tmp_path / "b", cache)
    assert run["cells"]["computed"] == 1


@pytest.mark.parametrize(("ended", "kept"), [
    ({"status": "timeout"}, False), ({"status": "crash", "signal": "SIGKILL"}, False),
    ({"status": "crash", "exit_code": 1}, False), ({"status": "error", "stage": "startup"}, False),
    ({"status": "crash", "signal": "SIGSEGV"}, True),  # native code failing on the file: it will again
])
def test_how_a_process_happened_to_end_is_not_kept(tmp_path: Path, ended: dict[str, Any], kept: bool) -> None:
    class Ending(FakeEngine):
        def _load(self, request: Any, mounts: Any, records: Path) -> None:
            super()._load(request, mounts, records)
            lines = [json.loads(x) for x in records.read_text().splitlines()]
            records.write_text("".join(json.dumps({**r, **ended} if r.get("kind") == "load" else r) + "\n"
                                       for r in lines))

    cache = CellCache(tmp_path / "cells")
    _run(Ending(), tmp_path / "a", cache)
    assert bool(list((tmp_path / "cells" / "loads").rglob("*.json"))) is kept
    assert list((tmp_path / "cells" / "saves").iterdir())  # the saves were fine


def test_tree_digest_follows_nothing_and_sees_every_byte(tmp_path: Path) -> None:
    (tmp_path / "m" / "h5").mkdir(parents=True)
    (tmp_path / "m" / "h5" / "model.h5").write_bytes(b"a")
    first = tree_digest(tmp_path / "m")
    (tmp_path / "m" / "h5" / "model.h5").write_bytes(b"b")
    assert first is not None and tree_digest(tmp_path / "m") not in (None, first)
    (tmp_path / "m" / "link").symlink_to(tmp_path / "m" / "h5")
    assert tree_digest(tmp_path / "m") is None
    assert tree_digest(tmp_path / "absent") is None


def test_the_agents_code_is_in_every_key() -> None:
    assert len(agent_digest()) == 64


@pytest.mark.parametrize("change", ["tolerance", "timeout"])
def test_what_a_load_is_judged_by_is_in_its_key(tmp_path: Path, change: str) -> None:
    engine, cache = FakeEngine(), CellCache(tmp_path / "cells")
    _run(engine, tmp_path / "a", cache)
    engine.runs.clear()
    matrix, limits = _matrix(), Limits()
    if change == "tolerance":
        matrix = parse_matrix({"name": "cached", "environments": ENVS, "models": ["dense", "classifier"],
                               "formats": FORMATS, "loaders": ["load_model"], "tolerance": {"rtol": 1e-3}},
                              path="m.yaml", sha256="0" * 64)
    else:
        limits = Limits(cell_timeout=60.0)
    _, run = _run(engine, tmp_path / "b", cache, matrix, limits)
    assert run["cells"] == {"reused": 0, "computed": 9 * PER_PAIR}
    assert not any(step == "save" for step, _ in _steps(engine))  # the saves did not change


def _store_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and p.name != "usage.json")


def test_a_run_that_pushes_the_store_over_its_bound_removes_what_was_used_longest_ago(tmp_path: Path) -> None:
    first = CellCache(tmp_path / "cells", max_bytes=None)
    _run(FakeEngine(), tmp_path / "a", first)
    one_run = _store_size(tmp_path / "cells")
    entries = sorted((tmp_path / "cells" / "loads").rglob("[!.]*.json"))
    for path in entries:  # every entry of the first run used an hour ago ...
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    used = entries[: len(entries) // 2]
    for path in used:  # ... but half of them used again now
        os.utime(path)
    engine = FakeEngine()
    bounded = CellCache(tmp_path / "cells", max_bytes=int(one_run * 1.2))  # a new release's row and column: over
    _run(engine, tmp_path / "b", bounded, _matrix([ENVS[0], {"python": "3.11", "tensorflow": "2.17.1"}]))
    total = _store_size(tmp_path / "cells")
    assert total <= one_run * 1.2 * 0.8
    assert json.loads((tmp_path / "cells" / "usage.json").read_text())["bytes"] == total
    assert all(p.is_file() for p in used)  # used recently: kept
    assert [p for p in entries if p not in used and not p.exists()]  # used longest ago: the first to go
    assert not [p for p in entries if not p.exists() and p.with_suffix(".npy").exists()]  # a whole entry goes


def test_a_run_that_stores_nothing_reads_no_folder_to_keep_the_bound(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cache = CellCache(tmp_path / "cells", max_bytes=1 << 40)
    _run(FakeEngine(), tmp_path / "a", cache)
    assert json.loads((tmp_path / "cells" / "usage.json").read_text())["bytes"] == _store_size(tmp_path / "cells")

    def walked(self: CellCache) -> Any:
        raise AssertionError("the store was walked")

    monkeypatch.setattr(CellCache, "_entries", walked)
    again = CellCache(tmp_path / "cells", max_bytes=1 << 40)
    _run(FakeEngine(), tmp_path / "b", again)  # every cell reused, nothing stored
    assert again.trim().entries == 0


def test_reusing_an_entry_marks_it_used(tmp_path: Path) -> None:
    cache = CellCache(tmp_path / "cells")
    _run(FakeEngine(), tmp_path / "a", cache)
    entries = [*(tmp_path / "cells" / "loads").rglob("[!.]*.json"), *(tmp_path / "cells" / "saves").glob("*/done.json")]
    for path in entries:
        os.utime(path, (0, 0))
    _run(FakeEngine(), tmp_path / "b", CellCache(tmp_path / "cells"))
    assert entries and all(p.stat().st_mtime > 0 for p in entries)


@pytest.mark.parametrize(("text", "size"), [("10g", 10 << 30), ("500M", 500 << 20), ("2048", 2048), ("1tb", 1 << 40),
                                            ("0", None)])
def test_the_bound_is_a_size(text: str, size: int | None) -> None:
    assert parse_size(text) == size


def test_a_bound_that_is_not_a_size_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="HARNESS_CELL_CACHE_MAX: expected a size like 10g"):
        cell_cache_bound({"HARNESS_CELL_CACHE_MAX": "ten gigs"})
    assert cell_cache_bound({}) == DEFAULT_MAX_BYTES
