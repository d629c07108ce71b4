"""Make the test helpers beside this file importable (fake_engine, fake_run); keep tests out of CI job summaries."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _no_job_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reports written by tests never reach the job summary of the CI run executing them."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
