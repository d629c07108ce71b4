"""A hand-written ContainerEngine for unit tests: no Docker, no TensorFlow.

It plays the agent's part by writing what the real agent writes (manifests,
reference arrays, JSONL records, outputs) into the mounted run directory.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from harness.engine import BuildResult, RunResult, RunSpec


class FakeEngine:
    """Records every call; builds fail for tags listed in failing_tags."""

    def __init__(self, failing_tags: frozenset[str] = frozenset(), drift: float = 0.0) -> None:
        self.images: dict[str, str] = {}
        self.failing_tags = failing_tags
        self.drift = drift
        self.builds: list[str] = []
        self.runs: list[RunSpec] = []
        self.removed: list[Mapping[str, str]] = []

    def ping(self) -> None:
        """Always reachable."""

    def image_id(self, tag: str) -> str | None:
        """Known tags only."""
        return self.images.get(tag)

    def build(self, context: Path, tag: str, labels: Mapping[str, str], build_args: Mapping[str, str],
              log_path: Path) -> BuildResult:
        """Succeed, or fail like pip does for a tag in failing_tags."""
        self.builds.append(tag)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        assert (context / "Dockerfile").is_file()
        if tag in self.failing_tags:
            log_path.write_text("ERROR: No matching distribution found for tensorflow-cpu==2.12.1\n")
            return BuildResult(ok=False, seconds=0.1, error="ERROR: No matching distribution found for x")
        self.images[tag] = "sha256:" + tag.split(":")[1]
        return BuildResult(ok=True, seconds=0.1)

    def run(self, spec: RunSpec, log_path: Path) -> RunResult:
        """Do what the agent would have done for a save or load container."""
        self.runs.append(spec)
        mounts = {m.container: m.host for m in spec.mounts}
        step = spec.command[3]
        args = json.loads(spec.command[5])
        if step == "save":
            self._save(args, mounts["/harness/out"], mounts["/harness/records.jsonl"])
        else:
            self._load(args, mounts["/harness/artifacts"], mounts["/harness/outputs"],
                       mounts["/harness/records.jsonl"])
        return RunResult(exit_code=0, seconds=0.1)

    def _save(self, args: dict[str, object], out: Path, records: Path) -> None:
        models: dict[str, object] = {}
        for model in args["models"]:  # type: ignore[attr-defined]
            (out / model).mkdir(parents=True, exist_ok=True)
            np.save(out / model / "reference.npy", np.linspace(0, 1, 8, dtype="float32").reshape(2, 4))
            np.save(out / model / "inputs.npy", np.zeros((2, 3), dtype="float32"))
            np.save(out / model / "labels.npy", np.zeros(2, dtype="int64"))
            formats = {f: {"path": f"{model}/{f}/model", "files": {}} for f in args["formats"]}  # type: ignore[attr-defined]
            models[model] = {"inputs": f"{model}/inputs.npy", "labels": f"{model}/labels.npy",
                             "reference": f"{model}/reference.npy", "evaluate": {"loss": 0.5}, "formats": formats}
            with records.open("a") as fh:
                for f in args["formats"]:  # type: ignore[attr-defined]
                    fh.write(json.dumps({"kind": "save", "env": args["env"], "model": model, "format": f,
                                         "status": "ok"}) + "\n")
        (out / "env.json").write_text(json.dumps({"python": "3.11.2", "tensorflow": "2.15.1", "keras": "2.15.0",
                                                  "keras_major": 2, "keras_package": "keras"}))
        (out / "manifest.json").write_text(json.dumps({"env": args["env"], "models": models}))

    def _load(self, args: dict[str, object], artifacts: Path, outputs: Path, records: Path) -> None:
        done = records.read_text()
        with records.open("a") as fh:
            for manifest_path in sorted(artifacts.glob("*/manifest.json")):
                source = manifest_path.parent.name
                manifest = json.loads(manifest_path.read_text())
                for model, entry in manifest["models"].items():
                    for fmt in entry["formats"]:
                        if f'"source": "{source}", "model": "{model}", "format": "{fmt}"' in done:
                            continue
                        ref = np.load(artifacts / source / entry["reference"])
                        out = outputs / source / model / fmt / "load_model.npy"
                        out.parent.mkdir(parents=True, exist_ok=True)
                        np.save(out, ref + np.float32(self.drift))
                        fh.write(json.dumps({"kind": "load", "source": source, "model": model, "format": fmt,
                                             "loader": "load_model", "target": args["env"], "status": "ok",
                                             # like the worker: evaluate() only where the source did
                                             "evaluate": {"loss": 0.5} if entry.get("evaluate") else None}) + "\n")
            fh.write(json.dumps({"kind": "load-done", "target": args["env"]}) + "\n")

    def remove_containers(self, labels: Mapping[str, str]) -> int:
        """Nothing is ever left running here."""
        self.removed.append(dict(labels))
        return 0
