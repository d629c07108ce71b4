"""Execute a plan through the container engine: build, save, load, report. Resumable."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from harness import __version__
from harness.console import Console
from harness.engine import ContainerEngine, RunResult, RunSpec
from harness.images import ensure_image
from harness.matrix_types import Matrix, matrix_to_dict
from harness.plan import EnvPlan, Limits, load_spec, save_spec
from harness.report.writers import write_reports
from harness.rundir import RunDir


@dataclass(frozen=True)
class RunOptions:
    """How to run: parallelism, resumption, per-load timeout."""

    jobs: int = 1
    resume: bool = False
    limits: Limits = field(default_factory=Limits)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _container_outcome(result: RunResult) -> dict[str, Any]:
    return {"exit_code": result.exit_code, "seconds": round(result.seconds, 2), "timed_out": result.timed_out,
            "oom_killed": result.oom_killed}


class Runner:
    """Runs one matrix into one run directory."""

    def __init__(self, engine: ContainerEngine, matrix: Matrix, plans: Sequence[EnvPlan], *, run_dir: RunDir,
                 console: Console, options: RunOptions, run_id: str) -> None:
        self.engine = engine
        self.matrix = matrix
        self.plans = list(plans)
        self.run_dir = run_dir
        self.console = console
        self.options = options
        self.run_id = run_id
        self._lock = threading.Lock()
        self.state: dict[str, Any] = {}

    # -- run.json -------------------------------------------------------------
    def _initial_state(self) -> dict[str, Any]:
        previous = self.run_dir.read_run() if self.options.resume else {}
        envs_before = {e["id"]: e for e in previous.get("environments", [])}
        return {
            "harness_version": __version__,
            "run_id": self.run_id,
            "created": previous.get("created", _now()),
            "status": "running",
            "matrix": matrix_to_dict(self.matrix),
            "environments": [
                {**envs_before.get(p.env.id, {}), "id": p.env.id, "spec": asdict(p.env), "image": p.image.tag}
                for p in self.plans
            ],
            "containers_started": previous.get("containers_started", 0),
            "timings": previous.get("timings", {}),
        }

    def _update_env(self, env_id: str, **fields: Any) -> None:
        with self._lock:
            for env in self.state["environments"]:
                if env["id"] == env_id:
                    env.update(fields)
            self.run_dir.write_run(self.state)

    def _save_state(self, **fields: Any) -> None:
        with self._lock:
            self.state.update(fields)
            self.run_dir.write_run(self.state)

    def mark_interrupted(self) -> None:
        """Record in run.json that the run stopped early (resume with --resume)."""
        if self.state:
            self._save_state(status="interrupted", interrupted=_now())

    def _env(self, env_id: str) -> dict[str, Any]:
        return next(e for e in self.state["environments"] if e["id"] == env_id)

    # -- phases ----------------------------------------------------------------
    def execute(self) -> dict[str, Any]:
        """Run every phase and write the reports; returns report.json's content."""
        self.engine.ping()
        self.state = self._initial_state()
        self.run_dir.write_run(self.state)
        self._phase("build", self.plans, self._build)
        ready = [p for p in self.plans if self._env(p.env.id).get("status") == "ok"]
        self._phase("save", ready, self._save)
        self._phase("load", ready, self._load)
        self._save_state(status="complete", finished=_now())
        start = time.monotonic()
        report = write_reports(self.run_dir)
        self.state["timings"]["report"] = round(time.monotonic() - start, 2)
        self.run_dir.write_run(self.state)
        return report

    def _phase(self, name: str, plans: Sequence[EnvPlan], work: Callable[[EnvPlan], None]) -> None:
        start = time.monotonic()
        with self.console.phase(name, len(plans)) as progress:
            if self.options.jobs <= 1 or len(plans) <= 1:
                for plan in plans:
                    work(plan)
                    progress.advance()
            else:
                with ThreadPoolExecutor(max_workers=self.options.jobs, thread_name_prefix=name) as pool:
                    futures = [pool.submit(work, p) for p in plans]
                    for future in futures:
                        future.add_done_callback(lambda _: progress.advance())
                    for future in futures:
                        future.result()
        with self._lock:
            self.state["timings"][name] = round(time.monotonic() - start, 2)

    def _build(self, plan: EnvPlan) -> None:
        env_id = plan.env.id
        if self.options.resume and self._env(env_id).get("status") == "build_error":
            self.console.step(f"build {env_id}: failed in the earlier run, kept as a result")
            return
        self.console.step(f"build {env_id}: {plan.env.label()}")
        log_path = self.run_dir.env_dir(env_id) / "build.log"
        outcome = ensure_image(self.engine, plan.image, log_path)
        if outcome.error:
            self.console.step(f"build {env_id}: FAILED after {outcome.seconds:.0f}s: {outcome.error}")
            self._update_env(env_id, status="build_error", error=outcome.error, image_id=None,
                             build={"built": True, "seconds": round(outcome.seconds, 1)})
            return
        verb = f"built in {outcome.seconds:.0f}s" if outcome.built else "reused"
        self.console.step(f"build {env_id}: {verb} {plan.image.tag}")
        self._update_env(env_id, status="ok", error=None, image_id=outcome.image_id,
                         build={"built": outcome.built, "seconds": round(outcome.seconds, 1)})

    def _run_container(self, spec: RunSpec, log_name: str) -> RunResult:
        with self._lock:
            self.state["containers_started"] += 1
        return self.engine.run(spec, self.run_dir.log(log_name))

    def _save(self, plan: EnvPlan) -> None:
        env_id = plan.env.id
        artifacts = self.run_dir.artifacts(env_id)
        if self.options.resume and (artifacts / "manifest.json").is_file():
            self.console.step(f"save {env_id}: already done")
            return
        shutil.rmtree(artifacts, ignore_errors=True)
        artifacts.mkdir(parents=True)
        records = self.run_dir.records("save", env_id)
        records.write_text("")
        spec = save_spec(self.matrix, plan, self.run_dir.path, self.run_id, self.options.limits)
        result = self._run_container(spec, f"save-{env_id}")
        self._update_env(env_id, save=_container_outcome(result))
        packages = artifacts / "packages.txt"
        if packages.is_file():
            self.run_dir.env_dir(env_id).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(packages, self.run_dir.env_dir(env_id) / "packages.txt")
        ok = result.exit_code == 0 and (artifacts / "manifest.json").is_file()
        self.console.step(f"save {env_id}: {'done' if ok else 'FAILED'} in {result.seconds:.0f}s"
                          + ("" if ok else f" (exit {result.exit_code}, see logs/save-{env_id}.log)"))

    def _load(self, plan: EnvPlan) -> None:
        env_id = plan.env.id
        records = self.run_dir.records("load", env_id)
        if self.options.resume and _load_finished(records.read_text() if records.is_file() else ""):
            self.console.step(f"load {env_id}: already done")
            return
        if not self.options.resume:
            records.write_text("")
        records.touch()
        self.run_dir.outputs(env_id).mkdir(parents=True, exist_ok=True)
        spec = load_spec(self.matrix, plan, self.run_dir.path, self.run_id, self.options.limits)
        result = self._run_container(spec, f"load-{env_id}")
        self._update_env(env_id, load=_container_outcome(result))
        self.console.step(f"load {env_id}: {'done' if result.exit_code == 0 else 'FAILED'} in {result.seconds:.0f}s")


def _load_finished(text: str) -> bool:
    return '"kind": "load-done"' in text
