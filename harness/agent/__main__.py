"""Entry point inside containers: python -m harness.agent {save,load,worker} [--spec JSON]."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from harness.agent.protocol import LoadRequest, SaveRequest


def main(argv: Optional[List[str]] = None) -> int:
    """Dispatch to one agent step; the spec is a JSON object given on the command line."""
    parser = argparse.ArgumentParser(prog="python -m harness.agent")
    parser.add_argument("step", choices=("save", "load", "worker"))
    parser.add_argument("--spec", default="{}", help="the request (protocol.SaveRequest or LoadRequest) as JSON")
    args = parser.parse_args(argv)
    if args.step == "save":
        from harness.agent.save import run_save

        return run_save(SaveRequest.from_json(args.spec))
    if args.step == "load":
        from harness.agent.load import run_load

        return run_load(LoadRequest.from_json(args.spec))
    from harness.agent.worker import run_worker

    return run_worker()


if __name__ == "__main__":
    sys.exit(main())
