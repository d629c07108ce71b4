"""The run directory: where every record, artifact and report of a run lives."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from harness.errors import RunDirError

RUN_JSON = "run.json"


def default_out(matrix_name: str, now: dt.datetime | None = None) -> Path:
    """runs/<matrix-name>-<UTC timestamp>/."""
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return Path("runs") / f"{re.sub(r'[^A-Za-z0-9._-]+', '-', matrix_name)}-{stamp}"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temporary file, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would hide reports from other users
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True, allow_nan=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
            for sub in ("artifacts", "records", "outputs", "envs", "logs"):
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
        write_json_atomic(self.run_json, data)

    def artifacts(self, env_id: str) -> Path:
        """artifacts/<env>/."""
        return self.path / "artifacts" / env_id

    def records(self, phase: str, env_id: str) -> Path:
        """records/<phase>-<env>.jsonl."""
        return self.path / "records" / f"{phase}-{env_id}.jsonl"

    def outputs(self, env_id: str) -> Path:
        """outputs/<target env>/: predictions written by the load phase."""
        return self.path / "outputs" / env_id

    def env_dir(self, env_id: str) -> Path:
        """envs/<env>/: build log, pip freeze."""
        return self.path / "envs" / env_id

    def phase_record(self, env_id: str, phase: str) -> Path:
        """envs/<env>/<phase>.json: what one phase (build, save, load) did for one environment."""
        return self.env_dir(env_id) / f"{phase}.json"

    def log(self, name: str) -> Path:
        """logs/<name>.log: a container's own output (never parsed)."""
        return self.path / "logs" / f"{name}.log"
