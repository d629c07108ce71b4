"""Entry point inside containers: python -m harness.agent {save,load,worker} [--spec JSON]."""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    """Dispatch to one agent step; the spec is a JSON object given on the command line."""
    parser = argparse.ArgumentParser(prog="python -m harness.agent")
    parser.add_argument("step", choices=("save", "load", "worker"))
    parser.add_argument("--spec", default="{}", help="JSON object describing the work")
    args = parser.parse_args(argv)
    spec = json.loads(args.spec)
    if args.step == "save":
        from harness.agent.save import run_save

        return run_save(spec)
    if args.step == "load":
        from harness.agent.load import run_load

        return run_load(spec)
    from harness.agent.worker import run_worker

    return run_worker()


if __name__ == "__main__":
    sys.exit(main())
