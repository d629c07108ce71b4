"""Versions that follow the index and cells computed once, for real: two environments on one TensorFlow image
(keras: latest resolved against the real index, and tf-keras), run three times: the first computes every cell,
the second (nothing changed) starts no container and reproduces the report, the third (one environment replaced)
recomputes that environment's save, its row and its column only."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.base_images import cache_dir

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MATRIX = """
name: releases
environments:
  - {{python: "3.13", tensorflow: "2.21.0", keras: "tf-keras"}}
  - {{python: "3.13", tensorflow: "2.21.0", keras: {keras}}}
models: [dense]
formats: [keras, h5]
loaders: [load_model]
"""
CELLS = 2 * 2 * 2  # sources x targets x formats
LEGACY = "py3.13-tf2.21.0-tfkeras"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A cell cache of this test's own; the host's wheel cache (the TensorFlow wheel is downloaded once per host)."""
    return {"HARNESS_CACHE": str(tmp_path_factory.mktemp("cache")),
            "HARNESS_WHEEL_CACHE": os.environ.get("HARNESS_WHEEL_CACHE") or str(cache_dir() / "wheels")}


def harness(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **env}, timeout=3600, check=False)


def run(root: Path, name: str, keras: str, env: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    (root / f"{name}.yaml").write_text(MATRIX.format(keras=keras))
    proc = harness(env, "run", str(root / f"{name}.yaml"), "--out", str(root / name), "--jobs", "1")
    assert proc.returncode in (0, 1), proc.stderr
    return (json.loads((root / name / "run.json").read_text()),
            json.loads((root / name / "report.json").read_text()))


def test_latest_resolves_and_unchanged_cells_are_computed_once(tmp_path: Path, docker: None,
                                                                cache: dict[str, str]) -> None:
    (tmp_path / "check.yaml").write_text(MATRIX.format(keras="latest"))
    checked = harness(cache, "validate", str(tmp_path / "check.yaml"))
    assert checked.returncode == 0, checked.stderr
    found = re.search(r"version: keras latest -> (\S+) \(Python 3\.13\)", checked.stdout)
    assert found, checked.stdout
    latest = found.group(1)
    newest = f"py3.13-tf2.21.0-keras{latest}"
    assert newest in checked.stdout and re.search(r"harness-env:[0-9a-f]{20}", checked.stdout)

    first_run, first = run(tmp_path, "first", "latest", cache)
    envs = {e["id"]: e for e in first_run["environments"]}
    assert envs[newest]["spec"]["keras"] == f"=={latest}"
    assert envs[newest]["spec"]["selectors"] == [["keras", "latest"]]
    assert {e["id"]: e["keras"] for e in first["environments"]}[newest] == latest  # what the container installed
    assert first_run["cells"] == {"reused": 0, "computed": CELLS}

    again_run, again = run(tmp_path, "again", "latest", cache)
    assert again_run["containers_started"] == 0 and again_run["cells"] == {"reused": CELLS, "computed": 0}
    assert again["cells"] == first["cells"] and again["paths"] == first["paths"]

    older = "3.15.0"
    other_run, _ = run(tmp_path, "other", f'"{older}"', cache)
    replaced = f"py3.13-tf2.21.0-keras{older}"
    per_env = {e["id"]: e for e in other_run["environments"]}
    assert per_env[LEGACY]["save_reused"] is True and per_env[replaced]["save_reused"] is False
    assert other_run["containers_started"] == 3  # its save, and a load in each target
    assert per_env[LEGACY]["cells"] == {"reused": 2, "computed": 2}  # its own column reused, the new row computed
    assert per_env[replaced]["cells"] == {"reused": 0, "computed": 4}


def _stored(cache: dict[str, str]) -> int:
    cells = Path(cache["HARNESS_CACHE"]) / "cells"
    return sum(p.stat().st_size for p in cells.rglob("*") if p.is_file() and p.name != "usage.json")


def test_a_bounded_cell_cache_keeps_what_was_used_last(tmp_path: Path, docker: None, cache: dict[str, str]) -> None:
    (tmp_path / "m.yaml").write_text(MATRIX.format(keras='"3.15.0"'))
    run(tmp_path, "older", "latest", cache)  # entries of another matrix, used before this one's
    _, first = run(tmp_path, "fill", '"3.15.0"', cache)  # the store holds this matrix's cells (and more)
    held = _stored(cache)
    bound = {**cache, "HARNESS_CELL_CACHE_MAX": str(held)}  # the store as it is: what the next run adds is too much
    proc = harness(bound, "run", str(tmp_path / "m.yaml"), "--out", str(tmp_path / "again"), "--jobs", "1",
                   "--no-cache")  # every save and cell computed and stored again (the saves' files differ)
    assert proc.returncode in (0, 1), proc.stderr
    assert re.search(r"cell cache: removed \d+ entries used longest ago", proc.stderr), proc.stderr
    left = _stored(cache)
    assert left <= held * 0.8
    usage = json.loads((Path(cache["HARNESS_CACHE"]) / "cells" / "usage.json").read_text())
    assert usage["bytes"] == left
    doctor = harness(bound, "doctor")
    assert f"cell cache: {Path(cache['HARNESS_CACHE']) / 'cells'}: {left / 2**30:.1f} GB, at most " in doctor.stdout
    later_run, later = run(tmp_path, "later", '"3.15.0"', bound)  # what was stored last is all there
    assert later_run["containers_started"] == 0 and later_run["cells"] == {"reused": CELLS, "computed": 0}
    assert [(c["status"], c.get("bit_exact")) for c in later["cells"]] == [(c["status"], c.get("bit_exact"))
                                                                          for c in first["cells"]]
