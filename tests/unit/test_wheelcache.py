"""The host's wheel cache as builds see it: a PEP 503 index on 127.0.0.1 in front of a real (here: fake) index.

The upstream index is a small http.server on the loopback, so requests really travel; nothing leaves the host
and no container engine is involved.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from harness import wheelcache
from harness.matrix import PipSettings
from harness.wheelcache import Link, WheelCache, parse_page, project_of, render_page

WHEEL = "demo_pkg-1.0-py3-none-any.whl"
CONTENT = b"PK\x03\x04 not really a zip, but bytes all the same" * 100
SHA = hashlib.sha256(CONTENT).hexdigest()


class Upstream:
    """A fake package index: one project, one wheel; counts what it served and the credentials it saw."""

    def __init__(self, content: bytes = CONTENT, sha: str = SHA) -> None:
        self.content = content
        self.sha = sha
        self.served: list[str] = []
        self.auth: list[str | None] = []
        self.gate = threading.Event()
        self.gate.set()
        self.busy = 0  # how many more project pages are answered 503, as a busy index does
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's name
                upstream.served.append(self.path)
                upstream.auth.append(self.headers.get("Authorization"))
                if self.path == "/simple/demo-pkg/" and upstream.busy:
                    upstream.busy -= 1
                    self.send_error(503)
                    return
                if self.path == "/simple/demo-pkg/":
                    body = (f'<a href="../../packages/{WHEEL}#sha256={upstream.sha}" data-requires-python="&gt;=3.9"'
                            f' data-dist-info-metadata="sha256=00">{WHEEL}</a>').encode()
                elif self.path == f"/packages/{WHEEL}":
                    upstream.gate.wait(10)
                    body = upstream.content
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def index(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/simple"

    def files(self) -> int:
        return sum(p.startswith("/packages/") for p in self.served)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    fake = Upstream()
    yield fake
    fake.close()


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as reply:
        data: bytes = reply.read()
        return data


def _build(cache: WheelCache) -> tuple[bytes, bytes, Any]:
    """What pip does in one build: read the project page, follow its link."""
    with cache.session("env") as session:
        base = session.build_args["PIP_INDEX_URL"]
        page = get(base + "demo-pkg/")
        links = parse_page(page.decode(), base + "demo-pkg/")
        data = get(links[0].url)
    return page, data, session.stats


def test_each_file_is_downloaded_once_and_reused_by_every_later_build(tmp_path: Path, upstream: Upstream) -> None:
    cache = WheelCache(tmp_path, PipSettings(index_url=upstream.index))
    with cache.serving():
        page, data, first = _build(cache)
        _, again, second = _build(cache)
    assert data == again == CONTENT
    assert upstream.files() == 1
    assert (first.downloaded, first.reused, first.bytes_downloaded) == (1, 0, len(CONTENT))
    assert (second.downloaded, second.reused, second.bytes_reused) == (0, 1, len(CONTENT))
    text = page.decode()
    assert f"#sha256={SHA}" in text and 'data-requires-python="&gt;=3.9"' in text  # what pip needs is kept
    assert upstream.index.split("//")[1].split("/")[0] not in text  # every link points back at the cache
    # a new cache server (the next run) finds the file on disk
    with WheelCache(tmp_path, PipSettings(index_url=upstream.index)).serving() as later:
        _, _, third = _build(later)
    assert (third.downloaded, third.reused, upstream.files()) == (0, 1, 1)


def test_two_builds_asking_at_once_download_the_file_once(tmp_path: Path, upstream: Upstream) -> None:
    cache = WheelCache(tmp_path, PipSettings(index_url=upstream.index))
    upstream.gate.clear()  # the first download waits until both builds have asked
    results: list[Any] = []
    with cache.serving():
        threads = [threading.Thread(target=lambda: results.append(_build(cache))) for _ in range(2)]
        for t in threads:
            t.start()
        upstream.gate.set()
        for t in threads:
            t.join(30)
    assert upstream.files() == 1
    assert sorted((s.downloaded, s.reused) for _, _, s in results) == [(0, 1), (1, 0)]


def test_a_file_whose_hash_is_not_the_indexs_is_refused_and_not_cached(tmp_path: Path) -> None:
    bad = Upstream(content=b"tampered", sha=SHA)
    try:
        cache = WheelCache(tmp_path, PipSettings(index_url=bad.index))
        with cache.serving(), pytest.raises(urllib.error.HTTPError) as raised:
            _build(cache)
        raised.value.close()
        assert raised.value.code == 502
        assert not (tmp_path / "files" / WHEEL).exists()
        assert [p.name for p in (tmp_path / "files").iterdir()] == []  # no partial file left either
    finally:
        bad.close()


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses before an index is asked again, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(wheelcache, "_pause", slept.append)
    return slept


def test_a_busy_index_is_asked_again_after_a_pause(tmp_path: Path, upstream: Upstream, pauses: list[float]) -> None:
    upstream.busy = 2
    with WheelCache(tmp_path, PipSettings(index_url=upstream.index)).serving() as cache:
        page, data, stats = _build(cache)
    assert data == CONTENT and stats.downloaded == 1 and WHEEL in page.decode()
    assert pauses == list(wheelcache.PAGE_RETRY_PAUSES)


def test_an_index_busy_for_longer_serves_what_the_host_has(tmp_path: Path, upstream: Upstream,
                                                          pauses: list[float]) -> None:
    with WheelCache(tmp_path, PipSettings(index_url=upstream.index)).serving() as cache:
        _build(cache)
    upstream.busy = 1 + len(wheelcache.PAGE_RETRY_PAUSES)  # every attempt of the next build
    with WheelCache(tmp_path, PipSettings(index_url=upstream.index)).serving() as busy:
        page, data, stats = _build(busy)
    assert data == CONTENT and (stats.downloaded, stats.reused) == (0, 1) and WHEEL in page.decode()
    assert len(pauses) == len(wheelcache.PAGE_RETRY_PAUSES)


def test_with_the_index_unreachable_the_cached_files_still_build(tmp_path: Path, upstream: Upstream,
                                                                 pauses: list[float]) -> None:
    with WheelCache(tmp_path, PipSettings(index_url=upstream.index)).serving() as cache:
        _build(cache)
    gone = upstream.index
    upstream.close()
    with WheelCache(tmp_path, PipSettings(index_url=gone)).serving() as offline:
        page, data, stats = _build(offline)
    assert data == CONTENT and (stats.downloaded, stats.reused) == (0, 1)
    assert 'data-requires-python="&gt;=3.9"' in page.decode()


def test_index_credentials_reach_the_index_and_never_the_build(tmp_path: Path, upstream: Upstream) -> None:
    secret = upstream.index.replace("http://", "http://alice:s3cret@")
    cache = WheelCache(tmp_path, PipSettings(index_url=secret))
    with cache.serving():
        page, _, _ = _build(cache)
        with cache.session("env") as session:
            args = session.build_args
    token = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert set(upstream.auth) == {token}  # the page and the file (same host) both carried them
    assert "s3cret" not in page.decode() and "s3cret" not in repr(args)
    assert all("s3cret" not in p.read_text() for p in (tmp_path / "files").glob("*.json"))


@pytest.mark.parametrize("path", ["/b1/files/..%2f..%2fetc%2fpasswd", "/b1/files/x.whl.json", "/b1/other/x",
                                  "/b1/simple/", "/b1/files/unknown-1.0-py3-none-any.whl"])
def test_anything_but_a_listed_file_or_a_project_page_is_not_found(tmp_path: Path, upstream: Upstream,
                                                                  path: str) -> None:
    with WheelCache(tmp_path, PipSettings(index_url=upstream.index)).serving() as cache, \
            pytest.raises(urllib.error.HTTPError) as raised:
        get(cache.url + path)
    raised.value.close()
    assert raised.value.code == 404


def test_an_unknown_project_is_not_found(tmp_path: Path, upstream: Upstream) -> None:
    with WheelCache(tmp_path, PipSettings(index_url=upstream.index)).serving() as cache, \
            pytest.raises(urllib.error.HTTPError) as raised:
        get(cache.url + "/b1/simple/nothing-here/")
    raised.value.close()
    assert raised.value.code == 404


def test_pages_are_parsed_and_rendered_with_what_pip_reads() -> None:
    page = ('<html><body><a href="/files/a/Foo-1.0.tar.gz#sha256=' + "a" * 64 + '" data-yanked="">Foo-1.0.tar.gz'
            '</a><a href="https://other.example/x/foo-2.0-py3-none-any.whl" data-requires-python="&lt;4"'
            ' onclick="x">w</a><a>no href</a></body></html>')
    links = parse_page(page, "https://index.example/simple/foo/")
    assert links == [
        Link("Foo-1.0.tar.gz", "https://index.example/files/a/Foo-1.0.tar.gz", "a" * 64, {"data-yanked": ""}),
        Link("foo-2.0-py3-none-any.whl", "https://other.example/x/foo-2.0-py3-none-any.whl", None,
             {"data-requires-python": "<4"}),
    ]
    again = parse_page(render_page("foo", links, "/t/files/"), "http://127.0.0.1:1/t/simple/foo/")
    assert [(x.filename, x.url, x.sha256, dict(x.attributes)) for x in again] == [
        (x.filename, f"http://127.0.0.1:1/t/files/{x.filename}", x.sha256, dict(x.attributes)) for x in links]


def test_project_of_a_distribution_file() -> None:
    assert project_of("tensorflow_cpu-2.16.2-cp311-cp311-manylinux_2_17_x86_64.whl") == "tensorflow-cpu"
    assert project_of("Foo.Bar-1.0.tar.gz") == "foo-bar"
    assert project_of("README") is None
