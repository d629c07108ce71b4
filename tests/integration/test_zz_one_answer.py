"""CONTRACT, in real runs: every run and check the integration tests made gives one answer on every surface.

This file runs last (pytest collects files by name): it reads back every run directory the other
integration tests left under this session's temporary folder and holds report.json, `harness report`,
junit.xml, report.html, report.md and check.json together, path by path.
"""

from __future__ import annotations

import pytest

from surfaces import assert_one_answer, run_directories

pytestmark = pytest.mark.integration


def test_every_run_directory_of_this_session_gives_one_answer(tmp_path_factory: pytest.TempPathFactory) -> None:
    runs = run_directories(tmp_path_factory.getbasetemp())
    if not runs:
        pytest.skip("no run directory was made in this session (the other integration tests did not run)")
    checks = [r for r in runs if (r / "check.json").is_file()]
    for run in runs:
        assert_one_answer(run)
    assert len(runs) >= 2 and (checks or len(runs) >= 2)
