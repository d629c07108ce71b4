"""A user's model is built and loaded in its own folder, as its project loads it; every other model where the agent
started."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.agent import models


def test_a_user_folder_is_the_working_directory_while_its_model_loads(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(models, "_STARTED_IN", str(tmp_path))
    (tmp_path / "project" / "serving").mkdir(parents=True)
    models.work_in(str(tmp_path / "project"))
    assert Path("serving").resolve() == (tmp_path / "project" / "serving").resolve()  # TFSMLayer("serving") finds it
    models.work_in(None)  # a probe
    assert Path.cwd() == tmp_path
    models.work_in(str(tmp_path / "gone"))
    assert Path.cwd() == tmp_path

    real = os.chdir

    def refuse(path: str) -> None:
        if path.endswith("project"):
            raise PermissionError(13, "Permission denied")
        real(path)

    monkeypatch.setattr(os, "chdir", refuse)
    models.work_in(str(tmp_path / "project"))  # a folder the container's user may not enter
    assert Path.cwd() == tmp_path
