"""`--mount` options read back as the container engines read them: for any path, the mounts Docker (and Podman)
would make are exactly the ones the harness meant, or the path is refused with exit 2 before anything runs.

Docker's CLI reads a `--mount` value with Go's encoding/csv (one record; opts/mount.go) and keeps the last of a
repeated key; Podman (since 4.1) reads all records and wants exactly one. GoCsv below is a line-for-line port of
encoding/csv's Reader.readRecord (LazyQuotes and TrimLeadingSpace off, as both engines leave them), so a path that
could rewrite the option here could rewrite it there.
"""

from __future__ import annotations

import json
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fake_engine import FakeEngine
from harness.cli import main
from harness.engine import DockerCLI, Mount, PodmanCLI, RunSpec
from harness.errors import UsageError


class CsvError(ValueError):
    """encoding/csv's ErrBareQuote or ErrQuote."""


class GoCsv:
    """encoding/csv.Reader over bytes, Comma ',', no comments, LazyQuotes and TrimLeadingSpace false."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def _read_line(self) -> tuple[bytes, bool]:
        """(line, eof): bufio's ReadSlice('\\n'); a last line's trailing \\r dropped; \\r\\n made \\n."""
        if self.at >= len(self.data):
            return b"", True
        end = self.data.find(b"\n", self.at)
        if end < 0:
            line, self.at = self.data[self.at:], len(self.data)
            line = line[:-1] if line.endswith(b"\r") else line
        else:
            line, self.at = self.data[self.at:end + 1], end + 1
        if line.endswith(b"\r\n"):
            line = line[:-2] + b"\n"
        return line, False

    @staticmethod
    def _blank(line: bytes) -> bool:
        """lengthNL(line) == len(line): nothing but the line's end."""
        return len(line) == (1 if line.endswith(b"\n") else 0)

    def read(self) -> list[bytes] | None:
        """One record (readRecord), or None at the end of the input."""
        while True:
            line, eof = self._read_line()
            if eof:
                return None
            if not self._blank(line):  # empty lines are skipped
                break
        fields: list[bytes] = []
        while True:
            if line[:1] == b'"':
                line, more = self._quoted(line[1:], fields)
            else:
                line, more = self._unquoted(line, fields)
            if not more:
                return fields

    @classmethod
    def _unquoted(cls, line: bytes, fields: list[bytes]) -> tuple[bytes, bool]:
        """A field up to the next comma or the line's end: (the rest of the line, whether more fields follow)."""
        i = line.find(b",")
        field = line[:i] if i >= 0 else line[:len(line) - (1 if line.endswith(b"\n") else 0)]
        if b'"' in field:
            raise CsvError("bare quote in a non-quoted field")
        fields.append(field)
        return (line[i + 1:], True) if i >= 0 else (b"", False)

    def _quoted(self, line: bytes, fields: list[bytes]) -> tuple[bytes, bool]:
        """A field after its opening quote, across lines: "" is a quote; the closing one ends it."""
        buffer = b""
        while True:
            i = line.find(b'"')
            if i < 0:
                if not line:
                    raise CsvError('extraneous or missing " in quoted field')
                buffer += line
                line, _ = self._read_line()
                continue
            buffer, line = buffer + line[:i], line[i + 1:]
            if line[:1] == b'"':
                buffer, line = buffer + b'"', line[1:]
            elif line[:1] == b"," or self._blank(line):
                fields.append(buffer)
                return line[1:], line[:1] == b","
            else:
                raise CsvError('extraneous or missing " in quoted field')

    def read_all(self) -> list[list[bytes]]:
        records = []
        while (record := self.read()) is not None:
            records.append(record)
        return records


@dataclass(frozen=True)
class Bind:
    source: str
    target: str
    read_only: bool


def docker_mount(value: str) -> Bind:
    """What Docker's CLI (opts/mount.go MountOpt.Set) makes of one --mount value; ValueError if it refuses it."""
    record = GoCsv(os.fsencode(value)).read()
    if record is None:
        raise ValueError("EOF")
    found: dict[str, str] = {"type": "volume"}
    read_only = False
    for raw in record:
        key, sep, val = os.fsdecode(raw).partition("=")
        if not sep:
            if key in ("readonly", "ro"):
                read_only = True
                continue
            if key in ("volume-nocopy", "bind-nonrecursive"):
                continue
            raise ValueError(f"invalid field {key!r} must be a key=value pair")
        if key in ("source", "src"):
            found["source"] = val
        elif key in ("target", "dst", "destination"):
            found["target"] = val
        elif key in ("readonly", "ro"):
            read_only = {"1": True, "t": True, "true": True, "True": True, "TRUE": True}.get(val, False)
        elif key == "type":
            found["type"] = val.lower()
        else:
            raise ValueError(f"unexpected key {key!r}")
    assert found["type"] == "bind", found
    return Bind(found.get("source", ""), found["target"], read_only)


def podman_mount(value: str) -> Bind:
    """What Podman (FindMountType, then parseMountOptions) makes of one --mount value."""
    records = GoCsv(os.fsencode(value)).read_all()
    if len(records) != 1:
        raise ValueError("incorrect mount format")
    tokens, kind = [], None
    for raw in records[0]:
        text = os.fsdecode(raw)
        parts = text.split("=")
        if kind is None and len(parts) == 2 and parts[0] == "type":
            kind = parts[1]
        else:
            tokens.append(text)
    assert kind == "bind"
    found: dict[str, str] = {}
    read_only = False
    for token in tokens:
        name, _, val = token.partition("=")
        if name in ("src", "source", "target", "dst", "destination"):
            key = "source" if name in ("src", "source") else "target"
            if key in found:
                raise ValueError(f"cannot pass {name!r} option more than once")
            found[key] = val
        elif name in ("ro", "readonly"):
            read_only = True
        else:
            raise ValueError(f"unknown option {name!r}")
    return Bind(found["source"], found["target"], read_only)


def parsed(args: list[str], engine: str = "docker") -> list[Bind]:
    read = docker_mount if engine == "docker" else podman_mount
    return [read(a[len("--mount="):]) for a in args if a.startswith("--mount=") and "type=bind" in a]


def spec_with(*mounts: Mount) -> RunSpec:
    return RunSpec(image="img", command=("true",), name="c", mounts=mounts)


# Path components: any text but '/' and NUL (a component holds neither); commas, quotes, '=' and newlines included.
COMPONENT = st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)), min_size=1,
                    max_size=40).filter(lambda c: c not in (".", ".."))
CONTAINER = st.lists(st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)), min_size=1,
                             max_size=20).filter(lambda c: c not in (".", "..")), min_size=1, max_size=3)


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(COMPONENT, min_size=1, max_size=4), inside=CONTAINER, read_only=st.booleans())
def test_any_path_is_mounted_exactly_as_meant_or_refused(tmp_path: Path, parts: list[str], inside: list[str],
                                                         read_only: bool) -> None:
    host = tmp_path.joinpath(*parts)
    target = "/harness/" + "/".join(inside)
    mounts = (Mount(host, target, read_only), Mount(tmp_path, "/harness/out", read_only=False))
    meant = [Bind(str(m.host.resolve()), m.container, m.read_only) for m in mounts]
    try:
        docker, podman = DockerCLI()._run_args(spec_with(*mounts)), PodmanCLI()._run_args(spec_with(*mounts))
    except UsageError as exc:
        assert _has_control(str(host) + target), exc  # refused only for what no engine can carry
        return
    assert not _has_control(str(host) + target)
    assert parsed(docker) == meant
    assert parsed(podman, "podman") == meant


@pytest.mark.parametrize("name", ["inj,source=", 'q"uote', "a=b", 'x",source=/etc,"', " lead", '"', ",", "é,ü"])
def test_commas_quotes_and_equals_signs_in_a_source_are_carried_as_written(tmp_path: Path, name: str) -> None:
    host = tmp_path / name / "etc"
    args = DockerCLI()._run_args(spec_with(Mount(host, "/harness/user/m")))
    assert parsed(args) == [Bind(str(host), "/harness/user/m", True)]
    assert parsed(PodmanCLI()._run_args(spec_with(Mount(host, "/harness/user/m"))), "podman") == parsed(args)


@pytest.mark.parametrize("name", ["new\nline", "carriage\rreturn", "tab\there", "bell\x07"])
def test_a_control_character_in_a_mount_source_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError, match="control character"):
        DockerCLI()._run_args(spec_with(Mount(tmp_path / name, "/harness/out")))


def test_the_go_csv_port_reads_what_encoding_csv_reads() -> None:
    # Cases from encoding/csv's own reader tests.
    assert GoCsv(b'a,"b,c",d\n').read() == [b"a", b"b,c", b"d"]
    assert GoCsv(b'"a ""quoted"" field"').read() == [b'a "quoted" field']
    assert GoCsv(b'"multi\nline",x').read() == [b"multi\nline", b"x"]
    assert GoCsv(b'"a\r\nb"').read() == [b"a\nb"]
    assert GoCsv(b"a,b\nc,d").read_all() == [[b"a", b"b"], [b"c", b"d"]]
    assert GoCsv(b"first\nsource=/etc").read() == [b"first"]  # Docker reads one record: the rest is dropped
    for bad in (b'a"b', b'"a"b', b'"unterminated'):
        with pytest.raises(CsvError):
            GoCsv(bad).read()


# ---------------------------------------------------------------------------- every mount a run builds


MATRIX = """\
environments: [{python: "3.11", tensorflow: "2.15.1"}]
models:
  - dense
  - {name: mine, path: "inj,source=/etc", factory: "mymodels:build", inputs: {shape: [2, 4]}}
formats: [h5]
loaders: [load_model]
"""


def _every_mount(engine: FakeEngine) -> list[Bind]:
    return [b for spec in engine.runs for b in parsed(DockerCLI()._run_args(spec))]


def test_a_run_mounts_no_folder_a_path_names_in_a_mount_option(tmp_path: Path) -> None:
    project = tmp_path / "project"
    code = project / "inj,source=" / "etc"
    code.mkdir(parents=True)
    (code / "mymodels.py").write_text("def build():\n    return None\n")
    (project / "m.yaml").write_text(MATRIX)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / f"r,source={elsewhere},target=/t"
    engine = FakeEngine()
    assert main(["run", str(project / "m.yaml"), "--out", str(out), "-q"], engine=lambda: engine) in (0, 1)
    binds = _every_mount(engine)
    sources = {b.source for b in binds}
    assert str(code) in sources  # the user's folder, by its whole name
    assert "/etc" not in sources and str(elsewhere) not in sources
    allowed = (str(out), str(code), str(Path(__file__).resolve().parents[2] / "harness"))
    assert all(any(s == a or s.startswith(a + "/") for a in allowed) for s in sources), sources
    targets = [b.target for b in binds]
    assert "/t" not in targets and all(t.startswith(("/harness/", "/opt/harness-src/")) for t in targets)


@pytest.mark.parametrize("where", ["--out", "path"])
def test_a_control_character_in_a_mounted_path_is_exit_2_before_anything_runs(
        tmp_path: Path, where: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / ("co\nde" if where == "path" else "code")
    folder.mkdir()
    (folder / "mymodels.py").write_text("def build():\n    return None\n")
    path = json.dumps(str(folder))
    (tmp_path / "m.yaml").write_text(textwrap.dedent(f"""\
        environments: [{{python: "3.11", tensorflow: "2.15.1"}}]
        models: [{{name: mine, path: {path}, factory: "mymodels:build", inputs: {{shape: [2, 4]}}}}]
        """))
    out = tmp_path / ("r\nx" if where == "--out" else "run")
    engine = FakeEngine()
    assert main(["run", str(tmp_path / "m.yaml"), "--out", str(out), "-q"], engine=lambda: engine) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "control character" in err, err
    assert engine.builds == [] and engine.runs == [] and not out.exists()


@pytest.mark.parametrize("git", ["folder", "file", "none"])
def test_a_code_directory_at_a_checkouts_root_hides_its_git_folder(tmp_path: Path, git: str) -> None:
    (tmp_path / "m.yaml").write_text(textwrap.dedent("""\
        environments: [{python: "3.11", tensorflow: "2.15.1"}]
        models: [{name: mine, path: ".", factory: "mymodels:build", inputs: {shape: [2, 4]}}]
        formats: [h5]
        loaders: [load_model]
        """))
    (tmp_path / "mymodels.py").write_text("def build():\n    return None\n")
    if git == "folder":
        (tmp_path / ".git").mkdir()
        (tmp_path / ".git" / "config").write_text("[http]\n\textraheader = AUTHORIZATION: basic c2VjcmV0\n")
    elif git == "file":  # a worktree's: it only names where the git folder is
        (tmp_path / ".git").write_text("gitdir: /elsewhere/.git/worktrees/x\n")
    engine = FakeEngine()
    assert main(["run", str(tmp_path / "m.yaml"), "--out", str(tmp_path / "run"), "-q"], engine=lambda: engine) == 0
    assert engine.runs
    for spec in engine.runs:
        assert spec.masks == (("/harness/user/mine/.git",) if git == "folder" else ())
        args = DockerCLI()._run_args(spec)
        masked = [a for a in args if a.startswith("--mount=type=tmpfs")]
        assert masked == (["--mount=type=tmpfs,target=/harness/user/mine/.git,tmpfs-size=4k,readonly"]
                          if git == "folder" else [])
