"""What is new since the last night, against a fake engine and a fake index: keras latest moves from 3.15.1 to
3.16.0; the report opens with the release and the routes it broke, the baseline's cells follow the environment to
its new id (so they are regressions), and the cell cache recomputes only the new environment's row and column."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fake_engine import FakeEngine, planned_runner
from fake_index import FakeIndex
from harness.agent import protocol
from harness.cellcache import CellCache
from harness.console import summary_lines
from harness.matrix import Matrix, parse_matrix
from harness.report import releases
from harness.report.html import render_html
from harness.report.markdown import render_markdown
from harness.rundir import RunDir
from harness.selectors import Versions
from harness.workflow import execute

ENVS = [{"python": "3.11", "tensorflow": "2.15.1"}, {"python": "3.13", "tensorflow": "2.21.0", "keras": "latest"}]


class Releases(FakeEngine):
    """Saves say the versions their environment's id names; Keras 3.16 cannot read what Keras 2 wrote as h5."""

    def _save(self, request: protocol.SaveRequest, out: Path, records: Path) -> None:
        super()._save(request, out, records)
        keras = re.search(r"keras(\d[\w.]*)", request.env)
        versions = {"python": "3.11.2", "tensorflow": re.findall(r"tf([\d.]+)", request.env)[0],
                    "keras": keras.group(1) if keras else "2.15.0", "keras_major": 3 if keras else 2,
                    "keras_package": "keras"}
        protocol.write_json_atomic(out / protocol.ENV_JSON, versions)

    def _load(self, request: protocol.LoadRequest, mounts: Any, records: Path) -> None:
        super()._load(request, mounts, records)
        if "keras3.16" not in request.env:
            return
        lines = [json.loads(x) for x in records.read_text().splitlines()]
        broken = [{**r, "status": "error", "error": {"type": "ValueError", "message": "cannot read"}}
                  if r.get("source") == "py3.11-tf2.15.1" and r.get("format") == "h5" else r for r in lines]
        records.write_text("".join(json.dumps(r) + "\n" for r in broken))


def _matrix(index: FakeIndex, tmp_path: Path) -> Matrix:
    versions = Versions({}, tmp_path / "releases.json", index=lambda pip: index, machine="x86_64")
    return parse_matrix({"name": "nightly", "environments": ENVS, "models": ["dense"], "formats": ["h5", "keras"],
                         "loaders": ["load_model"]}, path="m.yaml", sha256="0" * 64, versions=versions)


def _night(engine: FakeEngine, matrix: Matrix, out: Path, cache: CellCache,
           baseline: Path | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    runner = planned_runner(engine, matrix, RunDir.prepare(out, resume=False), cell_cache=cache)
    if baseline is not None:
        runner.start(baseline=baseline)
    report = execute(runner)
    assert report is not None
    return report, json.loads((out / "run.json").read_text())


def test_a_new_release_opens_the_report_with_what_it_broke(tmp_path: Path) -> None:
    index, engine, cache = FakeIndex(), Releases(), CellCache(tmp_path / "cells")
    first, _ = _night(engine, _matrix(index, tmp_path), tmp_path / "night1", cache)
    assert first["releases"] is None
    index.keras("3.16.0", ">=3.11")
    engine.runs.clear()
    matrix = _matrix(index, tmp_path)
    new = "py3.13-tf2.21.0-keras3.16.0"
    assert [e.id for e in matrix.environments] == ["py3.11-tf2.15.1", new]
    report, run = _night(engine, matrix, tmp_path / "night2", cache, baseline=tmp_path / "night1" / "report.json")
    found = report["releases"]
    assert found["added"] == [] and found["removed"] == []
    [change] = found["changes"]
    assert (change["env"], change["was"], change["slot"]) == (new, "py3.13-tf2.21.0-keras3.15.1",
                                                              "py3.13-tf2.21.0-keraslatest")
    assert change["words"] == "keras 3.15.1 → 3.16.0"
    assert [(e["source"], e["target"], e["format"], e["old"], e["status"]) for e in change["regressed"]] == [
        ("py3.11-tf2.15.1", new, "h5", "pass", "error")]
    assert change["counts"]["regressed"] == 1 and change["counts"]["unchanged"] == 5
    # the baseline's cells followed the environment to its new id: a regression the gate sees
    assert [(r["source"], r["target"], r["kind"]) for r in report["verdict"]["regressions"]] == [
        ("py3.11-tf2.15.1", new, "stopped_passing")]
    assert report["environments"][1]["slot"] == "py3.13-tf2.21.0-keraslatest"
    assert report["environments"][1]["selectors"] == {"keras": "latest"}
    # it opens the report and the terminal summary
    markdown = render_markdown(report)
    assert markdown.index("## New since the baseline") < markdown.index("## Upgrade paths")
    assert "keras 3.15.1 → 3.16.0 in py3.13-tf2.21.0-keras3.16.0: 1 route(s) newly broken, 0 fixed, 0 spurious" in (
        markdown)
    assert "- `py3.11-tf2.15.1` → `py3.13-tf2.21.0-keras3.16.0` dense/h5/load_model: pass → error" in markdown
    page = render_html(report)
    assert page.index('id="releases"') < page.index("Upgrade paths") and "1 newly broken" in page
    assert summary_lines(report)[1].startswith("new since the baseline: keras 3.15.1 → 3.16.0")
    # and costs its save, its row and its column only
    steps = sorted((s.command[3], json.loads(s.command[5])["env"]) for s in engine.runs)
    assert steps == [("load", "py3.11-tf2.15.1"), ("load", new), ("save", new)]
    assert run["cells"] == {"reused": 2, "computed": 6}


def test_the_same_versions_say_so(tmp_path: Path) -> None:
    index, engine, cache = FakeIndex(), Releases(), CellCache(tmp_path / "cells")
    _night(engine, _matrix(index, tmp_path), tmp_path / "night1", cache)
    engine.runs.clear()
    report, run = _night(engine, _matrix(index, tmp_path), tmp_path / "night2", cache,
                         baseline=tmp_path / "night1" / "report.json")
    assert report["releases"]["changes"] == [] and engine.runs == [] and run["containers_started"] == 0
    assert "no release since the baseline" in render_markdown(report)


def test_environments_added_and_gone_are_named(tmp_path: Path) -> None:
    old = {"environments": [{"id": "a", "slot": "a"}, {"id": "b-1", "slot": "b"}], "cells": []}
    new = [{"id": "b-2", "slot": "b", "keras": "3.16.0"}, {"id": "c", "slot": "c"}]
    assert releases.renames(old, new) == {"b-1": "b-2"}
    found = releases.section(old, new, [], {"rtol": 0.0, "atol": 0.0})
    assert found is not None and (found["added"], found["removed"]) == (["c"], ["a"])
