"""Shared fixtures; the unit tests' helpers (fake_run) and scripts/ (the browser setup) importable here."""

import os
import sys
from pathlib import Path

import pytest

from harness.engine import DockerCLI
from harness.errors import EngineUnavailable

ROOT = Path(__file__).resolve().parents[2]
for folder in (ROOT / "tests" / "unit", ROOT / "scripts"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


@pytest.fixture(scope="session")
def docker() -> None:
    """A reachable Docker engine: skipped without one, except in CI where that is a failure."""
    try:
        DockerCLI().ping()
    except EngineUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"integration tests need Docker in CI: {exc}")
        pytest.skip(str(exc))
