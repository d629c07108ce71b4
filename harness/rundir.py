"""The run directory: where every record, artifact and report of a run lives."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.agent.protocol import (
    ARTIFACTS,
    OUTPUTS,
    RECORDS,
    USERDATA,
    CellKey,
    output_rel,
    records_name,
    write_json_atomic,
)
from harness.errors import RunDirError

if TYPE_CHECKING:
    from harness.matrix import Matrix

RUN_JSON = "run.json"
# The reports of a run, by --format name; report.json is the source of truth.
REPORT_FILES = {"json": "report.json", "md": "report.md", "html": "report.html", "junit": "junit.xml"}
ENVS = "envs"  # envs/<env>/: phase records, build logs, pip freeze
LOGS = "logs"  # logs/<container>.log: a container's own output (never parsed)
SUBDIRS = (ARTIFACTS, RECORDS, OUTPUTS, ENVS, LOGS)


def default_out(matrix_name: str, now: dt.datetime | None = None) -> Path:
    """runs/<matrix-name>-<UTC timestamp>/."""
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return Path("runs") / f"{re.sub(r'[^A-Za-z0-9._-]+', '-', matrix_name)}-{stamp}"


class RunDir:
    """Paths of one run directory (see README: 'The run directory')."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def open_existing(cls, path: Path) -> RunDir:
        """A run directory that must already hold run.json."""
        if not (path / RUN_JSON).is_file():
            raise RunDirError(f"{path}: not a run directory (no {RUN_JSON})")
        return cls(path)

    @classmethod
    def prepare(cls, path: Path, resume: bool, shared: bool = False) -> RunDir:
        """Create a fresh run directory, or reopen one to resume; check it is writable.

        A `shared` directory (phases run by separate jobs) may already hold other jobs' work.
        """
        has_run = (path / RUN_JSON).is_file()
        if resume and not has_run:
            raise RunDirError(f"--resume {path}: no earlier run there (no {RUN_JSON})")
        if not resume and not shared and path.exists() and any(path.iterdir()):
            raise RunDirError(f"--out {path}: directory exists and is not empty; pass --resume to continue it")
        try:
            for sub in SUBDIRS:
                (path / sub).mkdir(parents=True, exist_ok=True)
            probe = path / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise RunDirError(f"--out {path}: cannot write there ({exc.strerror or exc})") from exc
        return cls(path)

    @property
    def run_json(self) -> Path:
        """run.json."""
        return self.path / RUN_JSON

    def read_run(self) -> dict[str, Any]:
        """The parsed run.json."""
        try:
            data = json.loads(self.run_json.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RunDirError(f"{self.run_json}: unreadable ({exc})") from exc
        if not isinstance(data, dict):
            raise RunDirError(f"{self.run_json}: not a JSON object")
        return data

    def write_run(self, data: dict[str, Any]) -> None:
        """Replace run.json atomically."""
        write_json_atomic(self.run_json, data, strict=True)

    def matrix(self) -> Matrix:
        """The expanded matrix run.json records."""
        from harness.matrix.model import OldRunJson, matrix_from_dict

        try:
            return matrix_from_dict(self.read_run()["matrix"])
        except OldRunJson as exc:
            raise RunDirError(f"{self.run_json}: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise RunDirError(f"{self.run_json}: not a harness run.json ({exc!r})") from None

    def artifacts(self, env_id: str) -> Path:
        """artifacts/<env>/."""
        return self.path / ARTIFACTS / env_id

    @property
    def artifacts_root(self) -> Path:
        """artifacts/: every environment's saves, mounted read-only into load containers."""
        return self.path / ARTIFACTS

    def records(self, phase: str, env_id: str) -> Path:
        """records/<phase>-<env>.jsonl."""
        return self.path / RECORDS / records_name(phase, env_id)

    def outputs(self, env_id: str) -> Path:
        """outputs/<target env>/: predictions written by the load phase."""
        return self.path / OUTPUTS / env_id

    def output(self, cell: CellKey) -> Path:
        """The predictions of one load."""
        return self.outputs(cell.target) / output_rel(cell.source, cell.model, cell.format, cell.loader)

    @property
    def userdata(self) -> Path:
        """userdata/: inputs and labels the host prepared for users' models."""
        return self.path / USERDATA

    def env_dir(self, env_id: str) -> Path:
        """envs/<env>/: build log, pip freeze."""
        return self.path / ENVS / env_id

    def phase_record(self, env_id: str, phase: str) -> Path:
        """envs/<env>/<phase>.json: what one phase (build, save, load) did for one environment."""
        return self.env_dir(env_id) / f"{phase}.json"

    def log(self, name: str) -> Path:
        """logs/<name>.log: a container's own output (never parsed)."""
        return self.path / LOGS / f"{name}.log"
