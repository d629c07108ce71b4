"""JSON Lines records: appended and flushed one at a time, so a crash loses at most one.

Shared by the agent (writer) and the host (reader). Standard library only.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterator, List

RECORD_SCHEMA = 1


class RecordWriter:
    """Append-only JSONL writer that makes every record durable before returning."""

    def __init__(self, path: str) -> None:
        self.path = path
        # Line-buffered append; the file may be a bind mount of a single file.
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the whole phase; see close()

    def write(self, record: Dict[str, Any]) -> None:
        """Write one record and flush it to disk."""
        record = dict(record)
        record.setdefault("schema", RECORD_SCHEMA)
        self._fh.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Close the file."""
        self._fh.close()


def read_records(path: str) -> Iterator[Dict[str, Any]]:
    """Yield the records of a JSONL file, skipping a torn last line."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            line = raw.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            if isinstance(record, dict):
                yield record


def cell_key(record: Dict[str, Any]) -> str:
    """Identity of a load cell: source/model/format/loader."""
    return "/".join(str(record.get(k)) for k in ("source", "model", "format", "loader"))


def done_keys(path: str, kind: str) -> List[str]:
    """Keys of the records of one kind already written (for resuming)."""
    return [cell_key(r) for r in read_records(path) if r.get("kind") == kind]
