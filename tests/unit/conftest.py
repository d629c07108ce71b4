"""Make the test helpers beside this file importable (fake_engine, fake_run); keep tests out of CI job summaries;
keep unit tests away from any real container engine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

ENGINE_COMMANDS = frozenset({"docker", "podman"})


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness's host cache (wheels, base-image logs) goes to a temporary folder, never the user's home."""
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path_factory.mktemp("harness-cache")))
    monkeypatch.delenv("HARNESS_WHEEL_CACHE", raising=False)
    monkeypatch.delenv("HARNESS_ENGINE", raising=False)


@pytest.fixture(autouse=True)
def _no_job_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reports written by tests never reach the job summary of the CI run executing them."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def _program(args: Any, executable: Any, shell: bool) -> str:
    """The base name of the program a Popen call would start."""
    if executable is not None:
        first: Any = executable
    elif isinstance(args, (str, bytes, os.PathLike)):
        text = os.fsdecode(args)
        first = (text.split() or [""])[0] if shell else text
    else:
        first = next(iter(args), "")
    name = Path(os.fsdecode(first)).name
    return name[:-4] if name.lower().endswith(".exe") else name


class EngineGuardPopen(subprocess.Popen[Any]):
    """subprocess.Popen that refuses to start docker or podman; every other command starts as usual."""

    def __new__(cls, args: Any, *rest: Any, **kwargs: Any) -> EngineGuardPopen:
        # Refused before an instance exists: no half-built Popen to finalize or show in the traceback.
        executable = kwargs.get("executable", rest[1] if len(rest) > 1 else None)
        program = _program(args, executable, bool(kwargs.get("shell", rest[7] if len(rest) > 7 else False)))
        if program in ENGINE_COMMANDS:
            shown = args if isinstance(args, (str, bytes, os.PathLike)) else list(args)
            raise AssertionError(f"a unit test tried to start the container engine: {shown!r}; unit tests never "
                                 "run a real engine (replace subprocess.Popen with a fake, as test_engine.py does)")
        return super().__new__(cls)


@pytest.fixture(autouse=True)
def _no_container_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to start docker or podman fails the test (subprocess.run goes through Popen too).

    A test that drives DockerCLI against a fake replaces subprocess.Popen itself, after this guard.
    """
    monkeypatch.setattr(subprocess, "Popen", EngineGuardPopen)


@pytest.fixture(autouse=True)
def _no_package_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """Version selectors ask a package index from memory (fake_index.py), never a real one; on x86_64 wheels."""
    from fake_index import FakeIndex

    index = FakeIndex()
    monkeypatch.setattr("harness.selectors.Upstream", lambda pip: index)
    monkeypatch.setattr("harness.advisor.releases.platform.machine", lambda: "x86_64")
