"""Shared fixtures; the unit tests' helpers (fake_run) and scripts/ (the browser setup) importable here."""

import importlib.util
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


@pytest.fixture(scope="module")
def browser_available() -> None:
    """Chromium and playwright for the browser tests: skipped without them, except in CI where that is a failure."""
    from screenshot_report import CHROMIUM

    missing = [what for what, ok in ((CHROMIUM, Path(CHROMIUM).is_file()),
                                     ("playwright", importlib.util.find_spec("playwright") is not None)) if not ok]
    if missing:
        message = f"the browser test needs {' and '.join(missing)} (apt-get install chromium; pip install playwright)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
