"""A fake engine whose loads are changed afterwards, record by record: errors and drift where a test wants them."""

from __future__ import annotations

import json
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
