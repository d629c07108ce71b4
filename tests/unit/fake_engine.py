"""A hand-written ContainerEngine for unit tests: no Docker, no TensorFlow.

It plays the agent's part with the agent's own protocol code (harness.agent.protocol): the save
step writes manifests, records and reference data through the same constructors and paths the
real agent uses, and the load step plans its tasks with the same plan_tasks. A change to the
wire formats or the run-directory layout therefore breaks these fakes too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.agent import protocol
from harness.console import Console
from harness.engine import BuildResult, ContainerInfo, RunResult, RunSpec
from harness.matrix import Matrix
from harness.plan import EnvPlan, Limits, plan_environments, plan_run
from harness.rundir import RunDir
from harness.runner import Runner, RunOptions

NOTHING_TO_ADAPT = "no adapter reads this kind of file (a SavedModel)"
VERSIONS = {"python": "3.11.2", "tensorflow": "2.15.1", "keras": "2.15.0", "keras_major": 2, "keras_package": "keras"}


def _host(mounts: Mapping[str, Path], path: str) -> Path:
    """The host path a container path is mounted from (the longest mount point that holds it)."""
    point = max((m for m in mounts if path == m or path.startswith(m + "/")), key=len)
    return mounts[point] / path[len(point):].lstrip("/")


def _reference(model: str) -> Any:
    """What a model 'predicts': the same in every environment, so unchanged loads pass."""
    return np.linspace(0, 1, 8, dtype="float32").reshape(2, 4)


class FakeEngine:
    """Records every call; builds fail for tags listed in failing_tags; loads add `drift` to the predictions.

    Images it does not have are pulled, unless `registry` is False (a host without one): then a pull fails
    like Docker's, and only imported root filesystems become new base images.
    """

    binary = "docker"
    product = "Docker"

    def __init__(self, failing_tags: frozenset[str] = frozenset(), drift: float = 0.0, registry: bool = True) -> None:
        self.images: dict[str, str] = {}
        self.registry = registry
        self.pulls: list[str] = []
        self.imported: list[tuple[str, tuple[str, ...]]] = []
        self.build_args: list[tuple[dict[str, str], str | None]] = []
        self.failing_tags = failing_tags
        self.drift = drift
        self.builds: list[str] = []
        self.runs: list[RunSpec] = []
        self.removed: list[Mapping[str, str]] = []
        self.listed: list[ContainerInfo] = []
        self.save_stamp = b""  # written into every saved file: set it to make a save differ, as a real one's time does

    def ping(self) -> None:
        """Always reachable."""

    def image_id(self, tag: str) -> str | None:
        """Known tags only."""
        return self.images.get(tag)

    def pull(self, ref: str) -> str | None:
        """Pulled (the image exists from now on), or Docker's words for a host without a registry."""
        self.pulls.append(ref)
        if not self.registry:
            return 'Error response from daemon: Get "https://registry-1.docker.io/v2/": no such host'
        self.images[ref] = "sha256:pulled-" + ref
        return None

    def import_rootfs(self, root: Path, tag: str, changes: Sequence[str], log_path: Path) -> None:
        """The root filesystem becomes an image."""
        assert root.is_dir(), "a root filesystem is a directory"
        self.imported.append((tag, tuple(changes)))
        self.images[tag] = "sha256:imported-" + tag

    def build(self, context: Path, tag: str, labels: Mapping[str, str], build_args: Mapping[str, str],
              log_path: Path, *, network: str | None = None) -> BuildResult:
        """Succeed, or fail like pip does for a tag in failing_tags."""
        self.builds.append(tag)
        self.build_args.append((dict(build_args), network))
        log_path.parent.mkdir(parents=True, exist_ok=True)
        assert (context / "Dockerfile").is_file()
        if tag in self.failing_tags:
            log_path.write_text("ERROR: No matching distribution found for tensorflow-cpu==2.12.1\n")
            return BuildResult(ok=False, seconds=0.1, error="ERROR: No matching distribution found for x")
        self.images[tag] = "sha256:" + tag.split(":")[1]
        return BuildResult(ok=True, seconds=0.1)

    def run(self, spec: RunSpec, log_path: Path) -> RunResult:
        """Do what the agent would have done for a save or load container, through the mounts it was given."""
        self.runs.append(spec)
        mounts = {m.container: m.host for m in spec.mounts}
        step, request = spec.command[3], spec.command[5]
        records = mounts[protocol.RECORDS_MOUNT]
        if step == "save":
            self._save(protocol.SaveRequest.from_json(request), mounts[protocol.OUT_MOUNT], records)
        else:
            self._load(protocol.LoadRequest.from_json(request), mounts, records)
        return RunResult(exit_code=0, seconds=0.1)

    def _save(self, request: protocol.SaveRequest, out: Path, records: Path) -> None:
        writer: protocol.RecordWriter[protocol.SaveRecord] = protocol.RecordWriter(str(records))
        entries = {}
        for spec in request.models:
            model_dir = out / spec.name
            model_dir.mkdir(parents=True, exist_ok=True)
            np.savez(model_dir / protocol.INPUTS, features=np.zeros((2, 3), dtype="float32"))
            np.save(model_dir / protocol.LABELS, np.zeros(2, dtype="int64"))
            np.save(model_dir / protocol.REFERENCE, _reference(spec.name))
            saved = {}
            for fmt in spec.formats or ():
                (model_dir / fmt).mkdir(exist_ok=True)
                (model_dir / fmt / "model").write_bytes(b"fake model" + self.save_stamp)
                files = {f"{fmt}/{rel}": digest for rel, digest in protocol.hash_tree(str(model_dir / fmt)).items()}
                saved[fmt] = {"path": f"{spec.name}/{fmt}/model", "files": files}
                writer.write({"kind": "save", "env": request.env, "model": spec.name, "format": fmt, "status": "ok"})
            made: protocol.MadeBy | None = None if spec.migrates is None else {  # what the agent says of a migration
                "model": spec.migrates.model, "loader": spec.migrates.loaders[0], "env": request.env,
                "tried": [{"loader": spec.migrates.loaders[0], "status": "ok"}]}
            entries[spec.name] = protocol.manifest_entry(spec.name, ["features"], saved, evaluate={"loss": 0.5},
                                                         predict_call="model(x, training=False)", made_by=made)
        writer.close()
        protocol.write_json_atomic(out / protocol.ENV_JSON, VERSIONS)
        protocol.write_json_atomic(out / protocol.MANIFEST, protocol.manifest(request.env, VERSIONS, entries))

    def _load(self, request: protocol.LoadRequest, mounts: Mapping[str, Path], records: Path) -> None:
        target = request.env
        done = set(protocol.done_cells(str(records), target))
        writer: protocol.RecordWriter[protocol.LoadRecord] = protocol.RecordWriter(str(records))
        for task in protocol.plan_tasks(str(artifacts_seen(request, mounts)), protocol.OUTPUTS_MOUNT, request.models):
            if task.cell(target) in done or (request.only is not None and not request.only.covers(task)):
                continue
            if protocol.LOADERS[task.loader].adapts:  # the agent's answer for a file no adapter reads
                writer.write({"kind": "load", "target": target, "status": "unsupported", "stage": "load",
                              "source": task.source, "model": task.model, "format": task.format,
                              "loader": task.loader,
                              "error": {"type": "harness.agent.formats.Unsupported", "message": NOTHING_TO_ADAPT}})
                continue
            reference = Path(task.model_dir) / protocol.REFERENCE
            predicted = np.load(reference) if reference.is_file() else _reference(task.model)
            output = _host(mounts, task.output)
            output.parent.mkdir(parents=True, exist_ok=True)
            # Drift is what an upgrade does: a load in the environment that saved the model predicts the same.
            np.save(output, predicted + np.float32(self.drift if task.source != target else 0.0))
            writer.write({"kind": "load", "target": target, "source": task.source, "model": task.model,
                          "format": task.format, "loader": task.loader, "status": "ok",
                          **({"evaluate": {"loss": 0.5}} if task.evaluate else {})})
        writer.write({"kind": protocol.LOAD_DONE, "target": target})
        writer.close()

    def remove_containers(self, labels: Mapping[str, str]) -> int:
        """Nothing is ever left running here."""
        self.removed.append(dict(labels))
        return 0

    def containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        """The containers a test listed, that carry all the labels (an empty value: any value)."""
        return [c for c in self.listed if all(k in c.labels and (not v or c.labels[k] == v)
                                              for k, v in labels.items())]

    def remove_container_ids(self, ids: list[str]) -> int:
        """Forget the listed containers with these ids."""
        self.listed = [c for c in self.listed if c.id not in ids]
        return len(ids)


def artifacts_seen(request: protocol.LoadRequest, mounts: Mapping[str, Path]) -> Path:
    """The host folder a load container sees as its artifacts: every source's, or (--isolation artifact) the one
    artifact's source alone."""
    if protocol.ARTIFACTS_MOUNT in mounts:
        return mounts[protocol.ARTIFACTS_MOUNT]
    assert request.only is not None
    return _host(mounts, f"{protocol.ARTIFACTS_MOUNT}/{request.only.source}").parent


def planned_runner(engine: FakeEngine, matrix: Matrix, run_dir: RunDir, *, envs: Sequence[EnvPlan] | None = None,
                   limits: Limits | None = None, run_id: str = "test", **options: Any) -> Runner:
    """A runner of the matrix's plan (every environment unless `envs`) on a prepared run directory, started as the
    workflow starts it: what workflow.execute takes. `options` are RunOptions'."""
    plans = plan_environments(matrix, {}) if envs is None else envs
    plan = plan_run(matrix, plans, run_dir, run_id, limits or Limits())
    runner = Runner(engine, plan, run_dir=run_dir, console=Console(quiet=True), options=RunOptions(**options))
    runner.start()
    return runner
