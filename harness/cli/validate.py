"""`harness validate MATRIX`: parse and expand a matrix, print its environments; build nothing."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from harness.cli.options import add_base_image, add_versions, matrix_versions
from harness.errors import EXIT_USAGE


def add_parser(sub: Any) -> None:
    """The `validate` subcommand's arguments."""
    validate = sub.add_parser("validate", help="parse and expand a matrix; build nothing")
    validate.add_argument("matrix", type=Path, help="matrix YAML file")
    add_base_image(validate)
    add_versions(validate)


def main(args: argparse.Namespace, engine: object) -> int:
    """Print the expanded environment table."""
    from rich.console import Console as RichConsole
    from rich.table import Table

    from harness.matrix import MatrixError, load_matrix
    from harness.plan import plan_environments

    versions = matrix_versions(args)
    try:
        matrix = load_matrix(args.matrix, base_image=args.base_image, versions=versions)
    except MatrixError as exc:  # every problem, one line each: `run` shows only the first
        for problem in exc.problems:
            print(f"harness: error: {exc.path}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    plans = plan_environments(matrix, os.environ)
    table = Table(title=f"{matrix.name}: {len(plans)} environment(s)")
    for column in ("id", "python", "tensorflow", "keras", "base image", "image tag"):
        table.add_column(column, overflow="fold")
    for p in plans:
        e = p.env
        keras = f"keras{e.keras}" if e.keras else "bundled"
        if e.legacy_keras:
            keras = f"tf-keras{e.tf_keras or ''} (legacy)"
        table.add_row(e.id, e.python, e.tensorflow_package + e.tensorflow, keras, e.base_image, p.image.tag)
    # The terminal's width ($COLUMNS where set); columns fold rather than run past it.
    out = RichConsole(no_color="NO_COLOR" in os.environ, width=shutil.get_terminal_size((160, 24)).columns)
    out.print(table)
    out.print(f"models: {', '.join(m.name for m in matrix.models)}; formats: {', '.join(matrix.formats)}; "
              f"loaders: {', '.join(matrix.loaders)}")
    for line in versions.lines():
        out.print(f"version: {line}", highlight=False)
    for line in _offline_images(versions, plans, engine):
        out.print(line, highlight=False)
    return 0


def _offline_images(versions: Any, plans: list[Any], engine: object) -> list[str]:
    """For environments whose versions this host's record decided (--offline, or an index that did not answer):
    whether their image is built here (for the base image or its local stand-in), or a run needs the index."""
    import dataclasses

    from harness.base_images import standin
    from harness.errors import EngineUnavailable
    from harness.images import plan_image

    fallen = {c.python for c in (versions.resolver.choices.values() if versions.resolver else ())
              if c.how in ("offline", "unreachable")}
    image_id = getattr(engine, "image_id", None)
    lines = []
    for p in plans:
        if p.env.python not in fallen or not p.env.selectors or image_id is None:
            continue
        local = standin(p.env.base_image, p.env.python)
        tags = [p.image.tag, *([plan_image(dataclasses.replace(p.env, base_image=local)).tag] if local else [])]
        try:
            found = next((t for t in tags if image_id(t)), None)
        except EngineUnavailable:
            continue
        lines.append(f"image: {p.env.id}: " + (f"{found} is built here" if found else
                                               f"{p.image.tag} is not built here: a run needs the index to build it"))
    return lines
