"""A wheel cache on the host, served to image builds as their package index: each file fetched once per host.

The engine's builder has no cache mounts (the classic builder, Podman), so every image build
would download every wheel again: tensorflow-cpu alone is over 200 MB, shared by every environment
on that release. For the length of a run the harness serves a pull-through index on 127.0.0.1,
and builds (with --network host) use it as their only index. It asks the real indexes (the
matrix's `pip:` keys or the host's PIP_* variables) for each project page, and fetches each
distribution file the first time a build asks for it into the cache directory; every later build,
of this run or another, gets the file from there. Index credentials and the CA bundle stay on the
host: images carry neither, and rotating a token changes no image tag.

Hand-written with the standard library (http.server, urllib, html.parser) rather than taken from
PyPI's pull-through caches (proxpi, devpi-server): those are servers with their own process,
configuration and eviction policy, and cannot tell per build what was downloaded and what reused,
which run.json records.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import logging
import os
import re
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from harness.matrix import PipSettings

log = logging.getLogger(__name__)

PYPI = "https://pypi.org/simple"
CACHE_VARIABLE = "HARNESS_WHEEL_CACHE"  # a directory, or "off": builds then reach the index themselves
REMOTE_VARIABLES = ("DOCKER_HOST", "CONTAINER_HOST")
CHUNK = 1 << 20
INDEX_TIMEOUT = 300.0
PAGE_RETRY_PAUSES = (1.0, 4.0)  # seconds before asking an index again that did not answer a project page
_pause = time.sleep  # replaced in tests
# Attributes of a simple-index link that pip reads; everything else is dropped.
KEPT_ATTRIBUTES = ("data-requires-python", "data-yanked", "data-dist-info-metadata", "data-core-metadata")


@dataclass
class WheelStats:
    """What one build (or a whole run) took from the cache: files downloaded once, and files reused."""

    downloaded: int = 0
    reused: int = 0
    bytes_downloaded: int = 0
    bytes_reused: int = 0

    def add(self, other: WheelStats) -> None:
        """Count another build's files in."""
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


@dataclass(frozen=True)
class Link:
    """One file of a project page: where it really is, and what pip needs to know of it."""

    filename: str
    url: str  # upstream, without the fragment
    sha256: str | None
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Session:
    """One build's use of the index: the build arguments that point pip at it, and what it fetched."""

    build_args: dict[str, str]
    network: str | None
    stats: WheelStats | None  # None: the build reached the index directly, nothing was counted


def cache_enabled(environ: Mapping[str, str]) -> bool:
    """Whether builds go through the host's cache: not when it is turned off, nor for an engine on another host
    (its builds cannot reach this host's loopback)."""
    if environ.get(CACHE_VARIABLE, "").lower() == "off":
        return False
    return not any(_remote(environ.get(v, "")) for v in REMOTE_VARIABLES)


def _remote(endpoint: str) -> bool:
    """Whether an engine endpoint is on another machine (a tcp:// or ssh:// to this one's loopback is not)."""
    parts = urllib.parse.urlsplit(endpoint)
    return parts.scheme in ("tcp", "ssh", "http", "https") and parts.hostname not in ("127.0.0.1", "localhost",
                                                                                      "::1")


def cache_root(environ: Mapping[str, str], default: Path) -> Path:
    """HARNESS_WHEEL_CACHE when it names a directory, else `default`."""
    value = environ.get(CACHE_VARIABLE, "")
    return Path(value) if value and value.lower() != "off" else default


class _Anchors(HTMLParser):
    """The <a> elements of a simple-index page: (attributes, text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.found.append({k: v or "" for k, v in attrs})


def parse_page(text: str, page_url: str) -> list[Link]:
    """The files a PEP 503 project page links to, with absolute URLs."""
    parser = _Anchors()
    parser.feed(text)
    links = []
    for attrs in parser.found:
        href = attrs.get("href")
        if not href:
            continue
        url, _, fragment = urllib.parse.urljoin(page_url, href).partition("#")
        filename = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
        if not filename or "/" in filename or filename.startswith("."):
            continue
        digest = re.fullmatch(r"sha256=([0-9a-fA-F]{64})", fragment)
        kept = {k: attrs[k] for k in KEPT_ATTRIBUTES if k in attrs}
        links.append(Link(filename, url, digest.group(1).lower() if digest else None, kept))
    return links


def render_page(project: str, links: list[Link], files_prefix: str) -> str:
    """A PEP 503 page whose links all point back at this index."""
    rows = []
    for link in links:
        href = files_prefix + urllib.parse.quote(link.filename) + (f"#sha256={link.sha256}" if link.sha256 else "")
        extra = "".join(f' {k}="{html.escape(v)}"' for k, v in sorted(link.attributes.items()))
        rows.append(f'<a href="{html.escape(href)}"{extra}>{html.escape(link.filename)}</a><br/>')
    body = "\n".join(rows)
    return f"<!DOCTYPE html>\n<html><head><title>Links for {html.escape(project)}</title></head><body>\n{body}\n" \
           "</body></html>\n"


def project_of(filename: str) -> str | None:
    """The canonical project name a distribution file belongs to, or None for anything else."""
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[0])
        return str(parse_sdist_filename(filename)[0])
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


class Upstream:
    """The real indexes, reached with the host's credentials, trusted hosts and CA bundle."""

    def __init__(self, pip: PipSettings) -> None:
        self.indexes = [u.rstrip("/") for u in (pip.index_url or PYPI, *pip.extra_index_urls)]
        self.trusted = set(pip.trusted_hosts)
        self.context = ssl.create_default_context(cafile=pip.ca_bundle) if pip.ca_bundle else \
            ssl.create_default_context()
        self.insecure = ssl._create_unverified_context()  # only for hosts the user marked trusted

    def open(self, url: str, accept: str = "*/*") -> Any:
        """An open HTTP response for url (credentials in the URL become an Authorization header)."""
        parts = urllib.parse.urlsplit(url)
        headers = {"Accept": accept, "User-Agent": "harness-wheel-cache"}
        if parts.username is not None:
            token = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
            url = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))
        elif (auth := self._index_auth(parts.hostname)) is not None:
            headers["Authorization"] = auth
        context = self.insecure if parts.hostname in self.trusted else self.context
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=INDEX_TIMEOUT,
                                      context=context)

    def _index_auth(self, host: str | None) -> str | None:
        """The credentials of the index on this host: files of a private index need them too."""
        for index in self.indexes:
            parts = urllib.parse.urlsplit(index)
            if parts.hostname == host and parts.username is not None:
                token = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
                return "Basic " + base64.b64encode(token.encode()).decode()
        return None

    def project(self, project: str) -> tuple[list[Link], bool]:
        """Every index's files of a project (first index first), and whether any index answered at all.

        An index that is unreachable, or busy (HTTP 5xx, 429), is asked again after a pause; still so, it has
        not answered, and what this host already has builds. An index that answers "not found" (or refuses
        the credentials) has answered.
        """
        links: list[Link] = []
        answered = False
        for index in self.indexes:
            for pause in (*PAGE_RETRY_PAUSES, None):
                found = self._page(index, project)
                if found is not None or pause is None:
                    break
                _pause(pause)
            if found is not None:
                links += found
                answered = True
        seen: set[str] = set()
        unique = [x for x in links if not (x.filename in seen or seen.add(x.filename))]  # type: ignore[func-returns-value]  # set.add returns None: keeps the first
        return unique, answered

    def _page(self, index: str, project: str) -> list[Link] | None:
        """One index's files of a project; None when it did not answer (unreachable, or busy)."""
        try:
            with self.open(f"{index}/{project}/", accept="application/vnd.pypi.simple.v1+html, text/html") as reply:
                return parse_page(reply.read().decode("utf-8", errors="replace"), reply.geturl())
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code != 404:
                log.warning("index %s: HTTP %s for %s", redact(index), exc.code, project)
            return None if exc.code >= 500 or exc.code == 429 else []
        except (urllib.error.URLError, OSError) as exc:
            log.warning("index %s unreachable: %s", redact(index), exc)
            return None


def redact(url: str) -> str:
    """An index URL without the credentials it may carry."""
    return re.sub(r"//[^/@]+@", "//***@", url)


class WheelCache:
    """The cache directory and the index that serves it; start() it for the length of a run."""

    def __init__(self, root: Path, pip: PipSettings, upstream: Upstream | None = None) -> None:
        self.root = root
        self.files = root / "files"
        self.upstream = upstream or Upstream(pip)
        self.links: dict[str, Link] = {}  # filename -> where it comes from, from the pages served
        self.stats: dict[str, WheelStats] = {}  # session token -> what its build fetched
        self._lock = threading.Lock()
        self._file_locks: dict[str, threading.Lock] = {}
        self._server: ThreadingHTTPServer | None = None
        self._tokens = 0

    # -- serving ---------------------------------------------------------------
    @contextmanager
    def serving(self) -> Iterator[WheelCache]:
        """Serve the index on 127.0.0.1 (a free port) in a background thread until the block ends."""
        self.files.mkdir(parents=True, exist_ok=True)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="wheel-cache", daemon=True)
        thread.start()
        self._server = server
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)
            self._server = None

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT, while serving."""
        if self._server is None:
            raise RuntimeError("the wheel cache is not serving")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @contextmanager
    def session(self, name: str) -> Iterator[Session]:
        """The build arguments of one build, and the count of what it downloaded and reused."""
        with self._lock:
            self._tokens += 1
            token = f"b{self._tokens}"
            self.stats[token] = WheelStats()
        log.debug("wheel cache session %s for %s", token, name)
        yield Session({"PIP_INDEX_URL": f"{self.url}/{token}/simple/"}, "host", self.stats[token])

    # -- what the handler calls --------------------------------------------------
    def page(self, token: str, project: str) -> str | None:
        """The project page for a build, or None when no index knows the project."""
        project = canonicalize_name(project)
        links, answered = self.upstream.project(project)
        if not answered:  # every index unreachable: what this host already has still builds
            links = self._cached_links(project)
        if not links:
            return None
        with self._lock:
            for link in links:
                self.links.setdefault(link.filename, link)
        return render_page(project, links, f"/{token}/files/")

    def _cached_links(self, project: str) -> list[Link]:
        found = []
        for meta in sorted(self.files.glob("*.json")):
            filename = meta.name[: -len(".json")]
            if project_of(filename) != project or not (self.files / filename).is_file():
                continue
            try:
                known = json.loads(meta.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            found.append(Link(filename, str(known.get("url", "")), known.get("sha256"),
                              {k: v for k, v in (known.get("attributes") or {}).items() if k in KEPT_ATTRIBUTES}))
        return found

    def fetch(self, token: str, filename: str) -> Path | None:
        """The cached file (downloaded now if it is not cached yet, or is not the file the index lists)."""
        metadata = filename.endswith(".metadata")
        name = filename[: -len(".metadata")] if metadata else filename
        link = self.links.get(name)
        path = self.files / filename
        with self._lock:
            lock = self._file_locks.setdefault(filename, threading.Lock())
        with lock:  # two builds asking for one file at once download it once
            expected = None if metadata or link is None else link.sha256
            if path.is_file() and (expected is None or self._recorded_sha256(filename) == expected):
                self._count(token, path, downloaded=False, metadata=metadata)
                return path
            if link is None:
                return None
            self._download(link.url + (".metadata" if metadata else ""), path, expected, link)
            self._count(token, path, downloaded=True, metadata=metadata)
            return path

    def _recorded_sha256(self, filename: str) -> str | None:
        try:
            return str(json.loads((self.files / f"{filename}.json").read_text(encoding="utf-8"))["sha256"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _download(self, url: str, path: Path, expected: str | None, link: Link) -> None:
        """Fetch into a private file, check its sha256, then publish: its record first, the file last.

        Other runs may read the cache meanwhile: they see a whole file with its record, or no file.
        """
        partial = path.with_name(path.name + f".part-{os.getpid()}-{threading.get_ident()}")
        staged = partial.with_name(partial.name + ".json")
        digest = hashlib.sha256()
        try:
            with self.upstream.open(url) as reply, open(partial, "wb") as out:
                _copy(reply, out, digest)
            if expected and digest.hexdigest() != expected:
                raise OSError(f"{path.name}: sha256 {digest.hexdigest()} is not the index's {expected}")
            if not path.name.endswith(".metadata"):
                record = {"sha256": digest.hexdigest(), "url": redact(link.url), "attributes": dict(link.attributes)}
                staged.write_text(json.dumps(record, sort_keys=True), encoding="utf-8")
                staged.replace(self.files / f"{path.name}.json")
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
            staged.unlink(missing_ok=True)

    def _count(self, token: str, path: Path, *, downloaded: bool, metadata: bool) -> None:
        if metadata:  # a few kB of METADATA; only distribution files count as wheels
            return
        size = path.stat().st_size
        with self._lock:
            stats = self.stats.setdefault(token, WheelStats())
            if downloaded:
                stats.downloaded += 1
                stats.bytes_downloaded += size
            else:
                stats.reused += 1
                stats.bytes_reused += size


def _copy(reply: BinaryIO, out: BinaryIO, digest: Any) -> None:
    while chunk := reply.read(CHUNK):
        digest.update(chunk)
        out.write(chunk)


def _handler(cache: WheelCache) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        """GET /TOKEN/simple/PROJECT/ and GET /TOKEN/files/FILENAME; nothing else."""

        def do_GET(self) -> None:  # http.server's name
            parts = [urllib.parse.unquote(p) for p in urllib.parse.urlsplit(self.path).path.split("/") if p]
            try:
                if len(parts) == 3 and parts[1] == "simple":
                    self._page(parts[0], parts[2])
                elif len(parts) == 3 and parts[1] == "files" and _safe_name(parts[2]):
                    self._file(parts[0], parts[2])
                else:
                    self.send_error(404)
            except (OSError, urllib.error.URLError) as exc:
                log.warning("wheel cache: %s: %s", self.path, exc)
                with contextlib.suppress(OSError):  # the build may have gone already
                    self.send_error(502, str(exc)[:200])

        def _page(self, token: str, project: str) -> None:
            text = cache.page(token, project)
            if text is None:
                self.send_error(404)
                return
            data = text.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _file(self, token: str, filename: str) -> None:
            path = cache.fetch(token, filename)
            if path is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(path.stat().st_size))
            self.end_headers()
            with open(path, "rb") as data:
                while chunk := data.read(CHUNK):
                    self.wfile.write(chunk)

        def log_message(self, format: str, *args: Any) -> None:  # http.server's signature
            log.debug("wheel cache: " + format, *args)

    return Handler


def _safe_name(filename: str) -> bool:
    """A plain file name: nothing that could leave the cache directory, and not the cache's own records."""
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+!-]*", filename)) and not filename.endswith(".json")

