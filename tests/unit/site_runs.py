"""Two nights of one matrix, written by hand (fake_run.py): everything passes the first night; the second, Keras
3.3.3 no longer reads the .keras file tf.keras 2.15 saved. What the site tests build a site from."""

from __future__ import annotations

import json
from pathlib import Path

from fake_run import ENV_A, ENV_B, KERAS2_IN_KERAS3, FakeRun
from harness.report.writers import write_reports
from harness.rundir import RunDir


def _night(root: Path, run_id: str, created: str) -> FakeRun:
    run = FakeRun(root)
    data = json.loads(run.run_dir.run_json.read_text())
    data.update(run_id=run_id, created=created, finished=created)
    run.run_dir.run_json.write_text(json.dumps(data))
    return run


def two_nights(root: Path) -> list[Path]:
    """The run directories of both nights, their reports written."""
    _night(root / "night1", "night1", "2026-03-01T03:17:00+00:00")
    second = _night(root / "night2", "night2", "2026-03-02T03:17:00+00:00")
    second.load_failed(ENV_A.id, ENV_B.id, "keras", status="error", stage="load",
                       error={"type": "TypeError", "message": KERAS2_IN_KERAS3})
    for night in ("night1", "night2"):
        write_reports(RunDir(root / night))
    return [root / "night1", root / "night2"]
