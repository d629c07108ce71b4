"""Execute a planned run through the container engine, phase by phase: build, save, load. Resumable.

Each phase can also run alone (`run --phase`), for some environments only, against a run directory
that other jobs share: a phase reads only what earlier phases wrote there, and writes only its own
environments' files (see runstate.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import isolation, untrusted
from harness.agent.protocol import LOAD_DONE, MANIFEST, PACKAGES, CellKey, LoadRecord, RecordWriter
from harness.base_images import BaseBuilds
from harness.cellcache import CellCache
from harness.console import Console
from harness.engine import DOCKER_RUN_FAILED, ContainerEngine, RunResult, RunSpec
from harness.errors import EngineUnavailable
from harness.images import ImageOutcome, ensure_image
from harness.plan import ISOLATION_PROMISES, EnvPlan, RunPlan
from harness.reuse import ReuseAsked, container_key, writable
from harness.rundir import RunDir
from harness.runstate import PHASES, RunState, now, read_phase
from harness.wheelcache import WheelCache

# Engine failures (DOCKER_RUN_FAILED) are retried, results never are; seconds before each retry: a storage lock or
# a daemon restarting is given time to pass, not hit again at once.
RETRY_PAUSES = (2.0, 10.0)
INFRA_RETRIES = len(RETRY_PAUSES)
_pause = time.sleep  # replaced in tests


@dataclass(frozen=True)
class RunOptions:
    """How to run: parallelism, resumption, and which phases (the limits are the plan's)."""

    jobs: int = 1
    resume: bool = False
    phases: tuple[str, ...] = PHASES
    owner: Mapping[str, str] = field(default_factory=dict)  # labels naming this process (host, pid)
    wheel_cache: WheelCache | None = None  # serving while the run builds images
    cell_cache: CellCache | None = None  # saves and load cells computed before, reused when their inputs are unchanged
    bases: BaseBuilds | None = None  # base images being built meanwhile: an image build waits for its own
    reuse: ReuseAsked | None = None  # containers whose results an earlier run on this host already has


def _container_outcome(result: RunResult) -> dict[str, Any]:
    outcome = {"exit_code": result.exit_code, "seconds": round(result.seconds, 2), "timed_out": result.timed_out,
               "oom_killed": result.oom_killed}
    if result.exit_code == DOCKER_RUN_FAILED:  # the engine, not the container, failed (after its retries)
        outcome["engine_failed"] = True
    return outcome


def _image_fields(outcome: ImageOutcome) -> dict[str, Any]:
    return {"image": outcome.tag, "image_id": outcome.image_id, "status": "build_error" if outcome.error else "ok",
            "error": outcome.error}


class Runner:
    """Runs the phases of one planned run into its run directory: images, containers and phase records.

    The workflow's steps (workflow.py) call it phase by phase; everything it starts was planned before
    (plan.py: RunPlan), so no phase plans anything.
    """

    def __init__(self, engine: ContainerEngine, plan: RunPlan, *, run_dir: RunDir, console: Console,
                 options: RunOptions) -> None:
        self.engine = engine
        self.plan = plan
        self.run_dir = run_dir
        self.console = console
        self.options = options
        self.state = RunState(run_dir, plan.matrix, {p.env.id: p.image.tag for p in plan.envs}, plan.run_id)
        self._images: dict[str, ImageOutcome] = {}  # images this process built or found, by environment
        # Environments that differ only in their containers' variables share an image: built once.
        self._tag_locks = {tag: threading.Lock() for tag in {p.image.tag for p in plan.envs}}
        self.failures: list[str] = []  # what went wrong in this process's phases, one line each
        self.report: dict[str, Any] | None = None  # report.json's content, once the report step built it
        self.saved: set[str] = set()  # environments this process saved while the build phase went on
        self._spans: dict[str, tuple[float, float]] = {}  # phase -> (first start, last end) in this process
        self._spans_lock = threading.Lock()

    def asks(self, phase: str) -> bool:
        """Whether this invocation runs a phase."""
        return phase in self.options.phases

    def start(self, *, baseline: Path | None = None, fail_on: str | None = None,
              record: Mapping[str, Any] | None = None) -> None:
        """run.json says the run is running, with its plan and its gate: the baseline and fail_on it was asked for
        (those of an earlier attempt stay when it is not asked again), which every later report uses, and what the
        request records beside them (a check's question)."""
        level = self.plan.limits.isolation
        fields: dict[str, Any] = {**(record or {}), "plan": self.plan.cells.to_dict()}
        if self.asks("load"):
            fields["isolation"] = {"level": level, "promise": ISOLATION_PROMISES[level]}
        if baseline is not None:
            fields["baseline"] = str(baseline.resolve())
        if fail_on is not None:
            fields["fail_on"] = fail_on
        self.state.write_run(status="running", **fields)

    def mark_interrupted(self) -> None:
        """Record in run.json that the run stopped early (resume with --resume)."""
        self.state.write_run(status="interrupted", interrupted=now())

    def usable(self) -> list[EnvPlan]:
        """The selected environments whose image has not failed in this process."""
        return [p for p in self.plan.envs if self._images.get(p.env.id, _UNKNOWN).error is None]

    def each(self, name: str, plans: Sequence[EnvPlan], work: Callable[[EnvPlan], None]) -> None:
        """One phase: `work` for every environment, --jobs at a time, with progress and the phase's wall time; the
        wheel cache serves while it runs (any phase may build an image its job has not built yet).

        An environment whose base image is still being built is started once that base is ready, so it holds
        no job while it waits.
        """
        start = time.monotonic()
        cache = self.options.wheel_cache
        with self.console.phase(name, len(plans)) as progress, cache.serving() if cache else contextlib.nullcontext():
            if self.options.jobs <= 1 or len(plans) <= 1:
                for plan in sorted(plans, key=self._waits):
                    work(plan)
                    progress.advance()
            else:
                with ThreadPoolExecutor(max_workers=self.options.jobs, thread_name_prefix=name) as pool:
                    futures = [self._when_ready(pool, work, p) for p in sorted(plans, key=self._waits)]
                    for future in futures:
                        future.add_done_callback(lambda _: progress.advance())
                    for future in futures:
                        future.result()
        self.state.timings[name] = self.span(name, time.monotonic() - start)

    def missing_images(self) -> bool:
        """Whether an environment's image is still to be built (this process has not built or found it)."""
        return any(p.env.id not in self._images and not self.engine.image_id(p.image.tag) for p in self.plan.envs)

    def _waits(self, plan: EnvPlan) -> bool:
        """Whether an environment's base image is still being built (those go last)."""
        return self.options.bases is not None and self.options.bases.pending(plan.env.base_image)

    def _when_ready(self, pool: ThreadPoolExecutor, work: Callable[[EnvPlan], None], plan: EnvPlan) -> Future[None]:
        """`work` for one environment in the pool: now, or once its base image (being built meanwhile) is ready."""
        base = self.options.bases.future(plan.env.base_image) if self.options.bases else None
        if base is None or base.done():
            return pool.submit(work, plan)
        finished: Future[None] = Future()

        def relay(inner: Future[None]) -> None:
            error = inner.exception()
            if error is None:
                finished.set_result(None)
            else:
                finished.set_exception(error)

        base.add_done_callback(lambda _: pool.submit(work, plan).add_done_callback(relay))
        return finished

    @contextlib.contextmanager
    def _timed(self, phase: str) -> Iterator[None]:
        """Count this stretch of work in a phase's span: from its first start to its last end in this process."""
        start = time.monotonic()
        try:
            yield
        finally:
            end = time.monotonic()
            with self._spans_lock:
                first, last = self._spans.get(phase, (start, end))
                self._spans[phase] = (min(first, start), max(last, end))

    def span(self, phase: str, default: float) -> float:
        """Seconds from the first start of a phase's work to its last end (phases overlap when saves follow
        builds); `default` when this process did none of it."""
        found = self._spans.get(phase)
        return round(found[1] - found[0] if found else default, 2)

    def _image(self, plan: EnvPlan, phase: str, record: dict[str, Any]) -> bool:
        """The environment's image, built here unless this process already has it; False if it did not build.

        A save or load job on a fresh machine builds (or reuses) its image itself.
        """
        env_id = plan.env.id
        outcome = self._images.get(env_id)
        if outcome is None:
            self.console.step(f"{phase} {env_id}: image for {plan.env.label()}")
            log_name = "build.log" if phase == "build" else f"build-{phase}.log"
            bases = self.options.bases
            with self._tag_locks.setdefault(plan.image.tag, threading.Lock()):
                outcome = ensure_image(self.engine, plan.image, self.run_dir.env_dir(env_id) / log_name,
                                       self.options.wheel_cache,
                                       None if bases is None else lambda: bases.wait(plan.env.base_image))
            self._images[env_id] = outcome
            record["build"] = {"built": outcome.built, "seconds": round(outcome.seconds, 1)}
            if plan.image.parent is not None:  # the TensorFlow image it is built FROM, shared by its release
                record["build"]["from"] = plan.image.parent.tag
            if outcome.wheels is not None:
                record["build"]["wheels"] = dataclasses.asdict(outcome.wheels)
            if outcome.error:
                self.console.step(f"{phase} {env_id}: image FAILED after {outcome.seconds:.0f}s: {outcome.error}")
                self.failures.append(f"{env_id}: image did not build: {outcome.error}")
            else:
                verb = f"built in {outcome.seconds:.0f}s" if outcome.built else "reused"
                self.console.step(f"{phase} {env_id}: {verb} {plan.image.tag}")
        record.update(_image_fields(outcome))
        return outcome.error is None

    def build(self, plan: EnvPlan) -> None:
        """Build (or reuse) one environment's image."""
        # A build that failed in an earlier attempt is tried again: the index or the network may have been at fault.
        with self._timed("build"), self.state.phase(plan.env.id, "build") as record:
            self._image(plan, "build", record)

    def build_then_save(self, plan: EnvPlan) -> None:
        """Build (or reuse) one environment's image, then save its models at once: on a host without the images,
        a save need not wait for every other image to be built."""
        self.build(plan)
        if self._images.get(plan.env.id, _UNKNOWN).error is None:
            self.save(plan)
            self.saved.add(plan.env.id)

    def _run_container(self, spec: RunSpec, log_name: str, record: dict[str, Any]) -> RunResult:
        """Run a container; an engine failure (not the container's own) is retried at most twice."""
        owned = dataclasses.replace(spec, labels={**spec.labels, **self.options.owner})
        with _lent(spec):
            return self._run_attempts(owned, log_name, record)

    def _run_attempts(self, owned: RunSpec, log_name: str, record: dict[str, Any]) -> RunResult:
        attempt = 0
        while True:
            record["containers_started"] += 1
            self.state.write_record(record)
            try:
                result = self.engine.run(owned, self.run_dir.log(log_name))
            except EngineUnavailable as exc:
                result = RunResult(exit_code=DOCKER_RUN_FAILED, seconds=0.0, output_tail=str(exc))
            if result.exit_code != DOCKER_RUN_FAILED or attempt == INFRA_RETRIES:
                return result
            attempt += 1
            record["infrastructure_retries"] = attempt
            reason = (result.output_tail.strip().splitlines() or ["no output"])[-1]
            pause = RETRY_PAUSES[attempt - 1]
            self.console.step(f"{log_name}: engine failure ({reason}); retry {attempt}/{INFRA_RETRIES} in {pause:g}s")
            _pause(pause)

    def save(self, plan: EnvPlan) -> None:
        """Save every model of one environment (a save that finished earlier is kept on --resume)."""
        env_id = plan.env.id
        artifacts = self.run_dir.artifacts(env_id)
        if self.options.resume and (artifacts / MANIFEST).is_file():
            self.console.step(f"save {env_id}: already done")
            self.state.settle(env_id, "save")
            return
        with self._timed("save"), self.state.phase(env_id, "save", resume=self.options.resume) as record:
            if not self._image(plan, "save", record):
                return
            key = self._save_key(plan, record)
            if key is not None and self._reuse_save(env_id, key, record):
                return
            untrusted.real_dir(self.run_dir.path, artifacts, fresh=True)
            untrusted.real_file(self.run_dir.path, self.run_dir.records("save", env_id))
            result = self._contained(plan, "save", self.plan.saves[env_id], record)
            record["container"] = _container_outcome(result)
            self._copy_packages(env_id, record)
        ok = result.exit_code == 0 and (artifacts / MANIFEST).is_file()
        if ok and key is not None and self.options.cell_cache is not None:
            self.options.cell_cache.store_save(self.run_dir, env_id, key)
        if not ok:
            self.failures.append(f"{env_id}: save container failed (exit {result.exit_code})")
        how = "reused from an earlier run on this host" if record.get("reused") else f"in {result.seconds:.0f}s"
        self.console.step(f"save {env_id}: {'done' if ok else 'FAILED'} {how}"
                          + ("" if ok else f" (exit {result.exit_code}, see logs/save-{env_id}.log)"))

    def _save_key(self, plan: EnvPlan, record: dict[str, Any]) -> str | None:
        """The cell cache's key of an environment's save (None without a cache), recorded in its phase record."""
        cache = self.options.cell_cache
        if cache is None:
            return None
        env_id = plan.env.id
        models = [m for m in self.plan.matrix.models if env_id in m.homes([env_id])]
        key = cache.save_key(self.plan.saves[env_id], record.get("image_id"), models, self.run_dir)
        record["cache"] = {"key": key, "reused": False}
        return key

    def _reuse_save(self, env_id: str, key: str, record: dict[str, Any]) -> bool:
        """Restore a save from the cell cache, when it holds one: no container."""
        assert self.options.cell_cache is not None
        if not self.options.cell_cache.restore_save(self.run_dir, env_id, key):
            return False
        record["cache"]["reused"] = True
        self._copy_packages(env_id, record)
        self.console.step(f"save {env_id}: reused from the cell cache")
        return True

    def _contained(self, plan: EnvPlan, phase: str, spec: RunSpec, record: dict[str, Any]) -> RunResult:
        """Run a phase's container, or copy what the same container wrote in an earlier run on this host when the
        run may reuse it (options.reuse); a container that ended well is kept for the next run."""
        asked = self.options.reuse
        image_id = self._images.get(plan.env.id, _UNKNOWN).image_id
        key = None
        if asked is not None and image_id and asked.covers(phase, plan.env.id):
            read = sorted({c.source for c in self.plan.cells_of(plan.env.id)}) if phase == "load" else None
            key = container_key(spec, image_id, None if read is None else [self.run_dir.artifacts(s) for s in read])
        if asked is not None and key is not None and asked.store.restore(key, writable(spec)):
            record["reused"] = key
            return RunResult(exit_code=0, seconds=0.0)
        result = self._run_container(spec, f"{phase}-{plan.env.id}", record)
        if asked is not None and key is not None and result.exit_code == 0:
            asked.store.keep(key, writable(spec), load=phase == "load")
        return result

    def _copy_packages(self, env_id: str, record: dict[str, Any]) -> None:
        """envs/<env>/packages.txt from the pip freeze the save container wrote: a regular file, never a link."""
        dest = self.run_dir.env_dir(env_id) / PACKAGES
        untrusted.real_dir(self.run_dir.path, dest.parent)
        try:
            untrusted.copy_file(self.run_dir.path, self.run_dir.artifacts(env_id) / PACKAGES, dest, untrusted.MAX_TEXT)
        except FileNotFoundError:
            return
        except untrusted.UnsafeFile as exc:
            record["refused"] = str(exc)
            self.failures.append(f"{env_id}: {exc}")
            self.console.step(f"save {env_id}: {exc}")

    def _load_complete(self, target: str) -> bool:
        """Whether a target's load finished and its records hold every cell the sources' manifests offer now (a
        source whose build or save succeeded on resume offers new ones)."""
        try:
            found = self.run_dir.read_loads(target)
        except untrusted.UnsafeFile:  # a load container left its records unreadable: not done, load again
            return False
        done = {CellKey.of(r, target) for r in found if r.get("kind") == "load"}
        return any(r.get("kind") == LOAD_DONE for r in found) and all(c in done for c in self._offered(target))

    def _offered(self, target: str) -> list[CellKey]:
        """The cells of a target whose artifact its source's manifest offers now."""
        cells = self.plan.cells_of(target)
        formats = {}
        for source in {c.source for c in cells}:
            manifest = self.run_dir.read_manifest(source) or {"models": {}}
            formats.update({(source, model): entry["formats"] for model, entry in manifest["models"].items()})
        return [c for c in cells if c.format in formats.get((c.source, c.model), {})]

    def load(self, plan: EnvPlan) -> None:
        """Load every artifact of every source in one target (on --resume, only the cells it has not recorded)."""
        env_id = plan.env.id
        records = self.run_dir.records("load", env_id)
        if self.options.resume and self._load_complete(env_id):
            self.console.step(f"load {env_id}: already done")
            self.state.settle(env_id, "load")
            return
        with self._timed("load"), self.state.phase(env_id, "load", resume=self.options.resume) as record:
            if not self._image(plan, "load", record):
                return
            # A new load replaces this target's records and outputs only; what an earlier load container left
            # on their paths (a link where a folder was) is removed, never followed.
            untrusted.real_file(self.run_dir.path, records, truncate=not self.options.resume)
            untrusted.real_dir(self.run_dir.path, self.run_dir.outputs(env_id), fresh=not self.options.resume)
            keys = self._reuse_cells(env_id, record)
            if keys is not None and record["cells"]["computed"] == 0:
                writer: RecordWriter[LoadRecord] = RecordWriter(str(records))
                writer.write({"kind": LOAD_DONE, "target": env_id})
                writer.close()
                self.console.step(f"load {env_id}: {record['cells']['reused']} cell(s) reused from the cell cache, "
                                  "none to compute")
                return
            if self.plan.limits.per_artifact:
                result = self._load_each(plan, record)
            else:
                result = self._contained(plan, "load", self.plan.loads[env_id], record)
            record["container"] = _container_outcome(result)
            if keys and self.options.cell_cache is not None:
                self.options.cell_cache.store_cells(self.run_dir, env_id, keys)
        if result.exit_code != 0:
            self.failures.append(f"{env_id}: load container failed (exit {result.exit_code})")
        how = "reused from an earlier run on this host" if record.get("reused") else f"in {result.seconds:.0f}s"
        self.console.step(f"load {env_id}: {'done' if result.exit_code == 0 else 'FAILED'} {how}")

    def _reuse_cells(self, target: str, record: dict[str, Any]) -> dict[CellKey, str] | None:
        """The cell cache's keys of the cells a target's container would compute (None without a cache), after
        restoring into its records and outputs every cell the cache holds: the container then skips those, as on
        --resume. The phase record says how many were reused and how many are left to compute."""
        cache = self.options.cell_cache
        if cache is None:
            return None
        try:
            done = {CellKey.of(r, target) for r in self.run_dir.read_loads(target) if r.get("kind") == "load"}
        except untrusted.UnsafeFile:
            done = set()
        todo = [c for c in self._offered(target) if c not in done]
        spec = self.plan.loads[target]
        context = {"tolerance": dataclasses.asdict(self.plan.matrix.tolerance), "env": dict(spec.env),
                   "timeout": self.plan.limits.cell_timeout, "memory": self.plan.limits.memory,
                   "isolation": self.plan.limits.isolation}
        image = self._images[target].image_id if target in self._images else None
        keys: dict[CellKey, str] = {}
        for cell in todo:
            key = cache.cell_key(cell, load=context, target_image=image, source_image=self._source_image(cell.source),
                                 model=self.plan.matrix.model(cell.model), run_dir=self.run_dir)
            if key is not None:
                keys[cell] = key
        reused = cache.restore_cells(self.run_dir, target, keys)
        record["cells"] = {"reused": len(reused), "computed": len(todo) - len(reused)}
        return {c: k for c, k in keys.items() if c not in reused}

    def _source_image(self, source: str) -> str | None:
        """The image id a source saved with: this process's, else its phase records' (another job built it); an
        existing file's pseudo-source has none."""
        if source in self._images:
            return self._images[source].image_id
        if source not in self.plan.cells.environments:
            return "existing file"
        for phase in ("save", "build"):
            found = read_phase(self.run_dir, source, phase)
            if found is not None and isinstance(found.get("image_id"), str):
                return str(found["image_id"])
        return None

    def _load_each(self, plan: EnvPlan, record: dict[str, Any]) -> RunResult:
        """--isolation artifact: a container per artifact not yet loaded; the host keeps only its own cells' records.

        Returns the first failed container's result (else the last one's), with the seconds of all of them.
        """
        target = plan.env.id
        try:
            done = {CellKey.of(r, target) for r in self.run_dir.read_loads(target) if r.get("kind") == "load"}
        except untrusted.UnsafeFile:  # written by this host alone, so damaged elsewhere: every artifact again
            done = set()
        todo = isolation.pending(isolation.artifacts(self._offered(target)), target, done)
        self.console.step(f"load {target}: {len(todo)} artifact(s), a container each (--isolation artifact)")
        writer: RecordWriter[LoadRecord] = RecordWriter(str(self.run_dir.records("load", target)))
        outcome, seconds = RunResult(exit_code=0, seconds=0.0), 0.0
        planned = self.plan.artifact_loads[target]
        for artifact in todo:
            log_name, spec = planned[artifact.source, artifact.model, artifact.format]
            where = (target, artifact.source, artifact.model, artifact.format)
            staged, outputs = self.run_dir.artifact_records(*where), self.run_dir.artifact_outputs(*where)
            # Under the default level a load container could write the whole target's outputs folder, and may
            # have left a link on this artifact's path: it is removed, never followed, before the mount.
            untrusted.real_dir(self.run_dir.path, outputs, fresh=True)
            untrusted.real_file(self.run_dir.path, staged)
            result = self._run_container(spec, log_name, record)
            seconds += result.seconds
            outcome = outcome if outcome.exit_code != 0 else result
            refused = isolation.accept(self.run_dir, artifact, target, staged, writer, ended=result)
            untrusted.discard(self.run_dir.path, staged)
            if refused:
                record["refused_records"] = int(record.get("refused_records") or 0) + refused
                self.console.step(f"load {target}: {refused} record(s) from {artifact.words()} named other cells; "
                                  "not kept")
        writer.write({"kind": LOAD_DONE, "target": target})
        writer.close()
        return dataclasses.replace(outcome, seconds=seconds)


@contextlib.contextmanager
def _lent(spec: RunSpec) -> Iterator[None]:
    """A container that runs as another user than the host's root gets its writable mounts while it runs.

    They are given back to root afterwards, so the run directory stays the invoking user's, while no
    container ever runs as uid 0 (plan.py: container_user).
    """
    uid, gid = (int(n) for n in (spec.user or "0:0").split(":"))
    writable = [m.host for m in spec.mounts if not m.read_only] if os.getuid() == 0 and uid != 0 else []
    for path in writable:
        untrusted.chown_tree(path, uid, gid)
    try:
        yield
    finally:
        for path in writable:
            untrusted.chown_tree(path, os.getuid(), os.getgid())


_UNKNOWN = ImageOutcome(tag="", image_id=None, built=False, seconds=0.0)  # no image looked at yet
