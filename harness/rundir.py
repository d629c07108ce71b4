"""The run directory: where every record, artifact and report of a run lives."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy.typing as npt

from harness import untrusted
from harness.agent.protocol import (
    ARTIFACTS,
    ENV_JSON,
    MANIFEST,
    OUTPUTS,
    RECORDS,
    USERDATA,
    CellKey,
    LoadRecord,
    Manifest,
    SaveRecord,
    Versions,
    output_rel,
    records_name,
    write_json_atomic,
)
from harness.errors import RunDirError

if TYPE_CHECKING:
    from harness.matrix import Matrix

log = logging.getLogger(__name__)
RUN_JSON = "run.json"
# The reports of a run, by --format name; report.json is the source of truth.
REPORT_FILES = {"json": "report.json", "md": "report.md", "html": "report.html", "junit": "junit.xml",
                "sarif": "report.sarif"}
ENVS = "envs"  # envs/<env>/: phase records, build logs, pip freeze
LOGS = "logs"  # logs/<container>.log: a container's own output (never parsed)
SUBDIRS = (ARTIFACTS, RECORDS, OUTPUTS, ENVS, LOGS)


def default_out(matrix_name: str, now: dt.datetime | None = None) -> Path:
    """runs/<matrix-name>-<UTC timestamp>/."""
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return Path("runs") / f"{re.sub(r'[^A-Za-z0-9._-]+', '-', matrix_name)}-{stamp}"


def _no_problem(data: dict[str, Any]) -> str | None:
    return None


class RunDir:
    """Paths of one run directory (see docs/run-directory.md)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def open_existing(cls, path: Path) -> RunDir:
        """A run directory that must already hold run.json."""
        if not (path / RUN_JSON).is_file() and not (path / RUN_JSON).is_symlink():
            if (path / RUN_JSON).exists():
                raise RunDirError(f"{path / RUN_JSON}: {untrusted.kind((path / RUN_JSON).stat().st_mode)}, not a file")
            raise RunDirError(f"{path}: not a run directory (no {RUN_JSON})")
        return cls(path)

    @classmethod
    def prepare(cls, path: Path, resume: bool, shared: bool = False) -> RunDir:
        """Create a fresh run directory, or reopen one to resume; check it is writable.

        A `shared` directory (phases run by separate jobs) may already hold other jobs' work.
        """
        try:
            has_run = (path / RUN_JSON).is_file()
            if resume and not has_run:
                raise RunDirError(f"--resume {path}: no earlier run there (no {RUN_JSON})")
            if not resume and not shared and path.exists() and any(path.iterdir()):
                raise RunDirError(f"--out {path}: directory exists and is not empty; pass --resume to continue it")
            for sub in SUBDIRS:
                (path / sub).mkdir(parents=True, exist_ok=True)
            # A uniquely named probe: a fixed name left as a link in a run directory would be written through.
            fd, probe = tempfile.mkstemp(dir=path, prefix=".write-test.")
            os.close(fd)
            Path(probe).unlink()
        except OSError as exc:
            raise RunDirError(f"--out {path}: cannot write there ({exc.strerror or exc})") from exc
        return cls(path)

    @property
    def run_json(self) -> Path:
        """run.json."""
        return self.path / RUN_JSON

    def read_run(self) -> dict[str, Any]:
        """The parsed run.json, its shape checked: RunDirError naming what is wrong."""
        try:
            data = untrusted.read_json(self.path, self.run_json)
        except (OSError, untrusted.UnsafeFile) as exc:
            raise RunDirError(f"{self.run_json}: unreadable ({getattr(exc, 'strerror', None) or exc})") from None
        problem = run_json_problem(data)
        if problem:
            raise RunDirError(f"{self.run_json}: not a harness run.json: {problem}")
        return dict(data)

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
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
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

    def artifact_records(self, target: str, source: str, model: str, fmt: str) -> Path:
        """records/load-<target>/<source>/<model>/<format>.jsonl: what one artifact's container wrote (--isolation
        artifact), before the host keeps its own cells' records in records/load-<target>.jsonl."""
        return self.path / RECORDS / f"load-{target}" / source / model / f"{fmt}.jsonl"

    def artifact_outputs(self, target: str, source: str, model: str, fmt: str) -> Path:
        """outputs/<target>/<source>/<model>/<format>/: the predictions of one artifact's loads in a target."""
        return self.outputs(target) / source / model / fmt

    def outputs(self, env_id: str) -> Path:
        """outputs/<target env>/: predictions written by the load phase."""
        return self.path / OUTPUTS / env_id

    def output(self, cell: CellKey) -> Path:
        """The predictions of one load."""
        return self.outputs(cell.target) / output_rel(cell.source, cell.model, cell.format, cell.loader)

    def adapted(self, cell: CellKey) -> Path:
        """The folder an adapting loader wrote its adapted copy and account into: beside the load's predictions."""
        return self.output(cell).with_suffix("")

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

    # -- reading what containers wrote (or a copy from elsewhere): see harness/untrusted.py
    def read_object(self, path: Path, problem: Callable[[dict[str, Any]], str | None] = _no_problem,
                    ) -> dict[str, Any] | None:
        """A JSON object in the run directory, or None when absent; one that is damaged, refused or of the wrong
        shape (`problem` says what is wrong with it) is None too, and says so in a warning."""
        try:
            data = untrusted.read_json(self.path, path)
        except FileNotFoundError:
            return None
        except (OSError, untrusted.UnsafeFile) as exc:
            log.warning("%s: %s; ignored", path, getattr(exc, "strerror", None) or exc)
            return None
        why = "not a JSON object" if not isinstance(data, dict) else problem(data)
        if why:
            log.warning("%s: %s; ignored", path, why)
            return None
        return dict(data)

    def read_manifest(self, env_id: str) -> Manifest | None:
        """artifacts/<env>/manifest.json, or None: the save did not finish (or its manifest is damaged)."""
        return cast("Manifest | None", self.read_object(self.artifacts(env_id) / MANIFEST, untrusted.manifest_problem))

    def read_versions(self, env_id: str) -> Versions | None:
        """artifacts/<env>/env.json: the versions of the environment that saved."""
        return cast("Versions | None", self.read_object(self.artifacts(env_id) / ENV_JSON, untrusted.versions_problem))

    def read_text(self, path: Path) -> str | None:
        """A text file in the run directory (a pip freeze), or None when absent; a refused one is None too, with a
        warning. Bytes that are not UTF-8 are replaced."""
        try:
            return untrusted.read_bytes(self.path, path, untrusted.MAX_TEXT).decode("utf-8", errors="replace")
        except FileNotFoundError:
            return None
        except (OSError, untrusted.UnsafeFile) as exc:
            log.warning("%s: %s; ignored", path, getattr(exc, "strerror", None) or exc)
            return None

    def load_array(self, path: Path) -> npt.NDArray[Any]:
        """A .npy file in the run directory: FileNotFoundError when absent, UnsafeFile when refused or damaged."""
        return untrusted.load_array(self.path, path)

    def read_records(self, phase: str, env_id: str) -> list[dict[str, Any]]:
        """The records of records/<phase>-<env>.jsonl, typed (harness/untrusted.py: checked_record)."""
        return self.read_records_at(self.records(phase, env_id))

    def read_loads(self, target: str, path: Path | None = None) -> list[LoadRecord]:
        """The checked records of records/load-<target>.jsonl, or of `path` (one artifact's, --isolation artifact)."""
        return cast("list[LoadRecord]", self.read_records_at(path or self.records("load", target)))

    def read_saves(self, env_id: str) -> list[SaveRecord]:
        """The checked records of records/save-<env>.jsonl."""
        return cast("list[SaveRecord]", self.read_records("save", env_id))

    def read_records_at(self, path: Path) -> list[dict[str, Any]]:
        """The typed records of a JSON Lines file in the run directory (none when it is absent).

        UnsafeFile when the file cannot be read (a link, a special file, too large, not readable): a container
        may leave its own record file so, and the cells it holds are then errors, never the whole run's.
        """
        try:
            return list(untrusted.records(self.path, path))
        except OSError as exc:
            raise untrusted.UnsafeFile(f"{path}: unreadable ({exc.strerror or exc})") from None


def run_json_problem(data: object) -> str | None:
    """What is wrong with the shape of run.json's content, or None."""
    if not isinstance(data, dict):
        return "not a JSON object"
    wrong = [f"{key} is not a {'list' if kind is list else 'mapping'}"
             for key, kind in (("matrix", dict), ("environments", list), ("timings", dict))
             if key in data and not isinstance(data[key], kind)]
    wrong += [f"{key} is not a string" for key in ("status", "run_id", "created", "finished", "baseline")
              if data.get(key) is not None and not isinstance(data[key], str)]
    wrong += [f"environments[{i}]{problem}" for i, env in enumerate(data.get("environments") or ())
              if (problem := _environment_problem(env))]
    timings: dict[str, Any] = data["timings"] if isinstance(data.get("timings"), dict) else {}
    wrong += [f"timings.{k} is not a number" for k, v in timings.items()
              if isinstance(v, bool) or not isinstance(v, (int, float))]
    wrong += [p for p in (untrusted.number_problem(data), untrusted.range_problem(data)) if p]
    return wrong[0] if wrong else _baseline_problem(data.get("baseline"))


def _environment_problem(env: object) -> str | None:
    if not isinstance(env, dict) or not isinstance(env.get("id"), str) or not isinstance(env.get("spec"), dict):
        return " is not a mapping with an id and a spec"
    if not all(isinstance(env["spec"].get(k), str) for k in ("python", "tensorflow")):
        return ".spec has no python and tensorflow versions"
    if any(env.get(k) is not None and not isinstance(env[k], str) for k in ("status", "error", "image")):
        return ": status, error and image must be strings"
    return None


def _baseline_problem(baseline: str | None) -> str | None:
    """A recorded baseline that is not a regular file (checked with stat only: a FIFO is never opened)."""
    try:
        report = None if baseline is None else Path(baseline)
        report = report / REPORT_FILES["json"] if report and report.is_dir() else report
        if report is not None and report.exists() and not report.is_file():
            return f"baseline {report} is not a regular file"
    except (OSError, ValueError):
        return "baseline is not a usable path"
    return None
