"""A fake engine whose loads are changed afterwards, record by record: errors and drift where a test wants them."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from fake_engine import FakeEngine
from harness.agent import protocol
from harness.engine import RunResult, RunSpec


class LoadHook(FakeEngine):
    """FakeEngine, then change(target, record, output) on every load record its load container wrote."""

    def run(self, spec: RunSpec, log_path: Path) -> RunResult:
        """The fake's load, then each of its records through change()."""
        result = super().run(spec, log_path)
        if spec.command[3] != "load":
            return result
        mounts = {m.container: m.host for m in spec.mounts}
        records, outputs = mounts[protocol.RECORDS_MOUNT], mounts[protocol.OUTPUTS_MOUNT]
        target = protocol.LoadRequest.from_json(spec.command[5]).env
        lines = [json.loads(line) for line in records.read_text().splitlines() if line.strip()]
        for record in lines:
            if record.get("kind") == "load":
                self.change(target, record, outputs / protocol.output_rel(
                    record["source"], record["model"], record["format"], record["loader"]))
        records.write_text("".join(json.dumps(r) + "\n" for r in lines))
        return result

    def change(self, target: str, record: dict[str, Any], output: Path) -> None:
        """Nothing changes by default."""

    @staticmethod
    def fail_load(record: dict[str, Any], output: Path, kind: str, message: str) -> None:
        """Make a load an error: no predictions, the error in its record."""
        record.update(status="error", stage="load", error={"type": kind, "message": message})
        output.unlink(missing_ok=True)

    @staticmethod
    def shift(output: Path, by: float) -> None:
        """Make a load predict other numbers."""
        np.save(output, np.load(output) + np.float32(by))


# What Keras 3.12.1 says loading a .keras file that wraps TFSMLayer in safe mode (fixtures/hint_messages.json)
TFSM_REFUSAL = ("Requested the deserialization of a `TFSMLayer`, which loads an external SavedModel. This carries a "
                "potential risk of arbitrary code execution and thus it is disallowed by default. If you trust the "
                "source of the artifact, you can override this error by passing `safe_mode=False` to the loading "
                "function, or calling `keras.config.enable_unsafe_deserialization().")


class RefusesInTargets(LoadHook):
    """Loads in the environments whose id holds $HARNESS_FAKE_BREAK_IN fail as Keras 3.12.1 refuses TFSMLayer (the
    load_model routes); every other load passes. Each environment says the Keras its id names (keras3.12.1), so hint
    rules see the releases they are about. For tests that run the CLI in another process (the action's steps)."""

    def run(self, spec: RunSpec, log_path: Path) -> RunResult:
        """The fake's save, with the Keras release of the environment's id in env.json and the manifest."""
        result = super().run(spec, log_path)
        keras = re.search(r"-keras(\d+\.\d+\.\d+)", json.loads(spec.command[5])["env"])
        if spec.command[3] == "save" and keras:
            out = {m.container: m.host for m in spec.mounts}[protocol.OUT_MOUNT]
            for name in (protocol.ENV_JSON, protocol.MANIFEST):
                data = json.loads((out / name).read_text())
                versions = data.get("versions", data)
                versions.update(keras=keras.group(1), keras_major=int(keras.group(1).split(".")[0]))
                (out / name).write_text(json.dumps(data))
        return result

    def change(self, target: str, record: dict[str, Any], output: Path) -> None:
        """The refusal where the environment variable says."""
        where = os.environ.get("HARNESS_FAKE_BREAK_IN")
        if where and where in target and record["loader"].startswith("load_model"):
            self.fail_load(record, output, "ValueError", TFSM_REFUSAL)
