"""The corpus: its manifest (one-line problems naming the key), fetching through an index (a fake one here, verified
by sha256, each distribution once), and a matrix's `corpus:` key turning fetched files into existing-artifact models."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from harness.agent.protocol import routes
from harness.base_images import cache_dir
from harness.cli import main
from harness.corpus import Index, fetch
from harness.errors import MatrixError, UsageError
from harness.matrix import load_matrix
from harness.matrix.corpus import default_cache, load_corpus, parse_corpus
from harness.wheelcache import Link

REPO = Path(__file__).resolve().parents[2]
H5 = b"\x89HDF\r\n\x1a\n fake h5 bytes"
TFLITE = b"TFL3 fake tflite bytes"
MODEL_PY = b"def build():\n    raise NotImplementedError\n"
PB = b"saved model bytes"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _wheel() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("pkg/data/model.h5", H5)
        archive.writestr("pkg/data/model.tflite", TFLITE)
        archive.writestr("pkg/model.py", MODEL_PY)
        archive.writestr("pkg/saved/saved_model.pb", PB)
        archive.writestr("pkg/saved/variables/variables.index", b"index")
    return buffer.getvalue()


def _sdist() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in (("old-1.0/old/weights.hdf5", H5), ("old-1.0/old/model.py", MODEL_PY)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


WHEEL, SDIST = _wheel(), _sdist()
DISTS = {"pkg-1.0-py3-none-any.whl": WHEEL, "old-1.0.tar.gz": SDIST}


class FakeUpstream:
    """The index's side: project pages and files, counting downloads."""

    def __init__(self, lie: bool = False) -> None:
        self.downloads: list[str] = []
        self.lie = lie

    def project(self, project: str) -> tuple[list[Link], bool]:
        return [Link(name, f"https://files.example/{name}", None if self.lie else _sha(data))
                for name, data in DISTS.items() if name.startswith(project)], True

    def open(self, url: str) -> Any:
        name = url.rsplit("/", 1)[-1]
        self.downloads.append(name)
        return io.BytesIO(b"tampered" if self.lie else DISTS[name])


def _file(name: str, **fields: Any) -> dict[str, Any]:
    entry = {"name": name, "package": "pkg", "version": "1.0", "licence": "MIT",
             "dist": {"file": "pkg-1.0-py3-none-any.whl", "sha256": _sha(WHEEL)},
             "member": {"path": "pkg/data/model.h5", "sha256": _sha(H5)}, "format": "h5", "kind": "functional",
             "saved_by": "keras 2.4.0", "home": {"python": "3.11", "tensorflow": "2.15.1"},
             "inputs": [{"name": "input", "shape": [2, 3], "dtype": "float32", "low": 0, "high": 1}]}
    entry.update(fields)
    return entry


FILES = [
    _file("plain"),
    _file("lite", member={"path": "pkg/data/model.tflite", "sha256": _sha(TFLITE)}, format="tflite",
          kind="tflite", tolerance={"rtol": 0.0, "atol": 1.0e-2}),
    _file("saved", member={"path": "pkg/saved", "files": {"saved_model.pb": _sha(PB),
                                                          "variables/variables.index": _sha(b"index")}},
          format="savedmodel", inputs=[{"name": "a", "shape": [2], "dtype": "int64", "value": [0, 5]},
                                       {"name": "b", "shape": [2, 4], "dtype": "float32", "low": 0, "high": 9,
                                        "integers": True}]),
    _file("weights", dist={"file": "old-1.0.tar.gz", "sha256": _sha(SDIST)}, package="old",
          member={"path": "old-1.0/old/weights.hdf5", "sha256": _sha(H5)}, format="weights_h5",
          code={"members": {"old-1.0/old/model.py": _sha(MODEL_PY)}, "factory": "old.model:build"}),
    _file("keras3", home={"python": "3.11", "tensorflow": "2.16.2", "keras": "3.3.3"}),
    _file("ancient", home=None, no_home="only TensorFlow 1.15 reads it"),
]


def _manifest(tmp_path: Path, files: list[dict[str, Any]] | None = None) -> Path:
    path = tmp_path / "corpus" / "manifest.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"name": "test-corpus", "files": FILES if files is None else files}),
                    encoding="utf-8")
    return path


@pytest.fixture
def cache_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("HARNESS_CACHE", str(root))
    return root


def _problems(data: object) -> list[str]:
    with pytest.raises(MatrixError) as raised:
        parse_corpus(data, path="manifest.yaml", sha256="0" * 64)
    return raised.value.problems


# ---------------------------------------------------------------------------- the manifest


def test_the_project_corpus_pins_enough_real_files() -> None:
    corpus = load_corpus(REPO / "corpus" / "manifest.yaml")
    homed = [f for f in corpus.files if f.home is not None]
    assert len(homed) >= 25 and len({f.package for f in homed}) >= 15
    assert {f.format for f in homed} >= {"h5", "weights_h5", "savedmodel", "keras", "tflite"}
    assert all(f.no_home for f in corpus.files if f.home is None)
    eras = {f.saved_by.split()[1][:3] for f in homed if f.saved_by.startswith("keras ")}
    assert eras >= {"2.0", "2.1", "2.2", "2.4", "3.8"}
    assert any(f.kind == "subclassed" for f in homed)
    shims = REPO / "corpus" / "code"
    assert all((shims / f.code.shim).is_file() for f in corpus.files if f.code and f.code.shim)


def test_a_valid_manifest_parses_into_files() -> None:
    corpus = parse_corpus({"files": FILES}, path="c/manifest.yaml", sha256="0" * 64)
    saved = corpus.file("saved")
    assert saved.member.wanted() == [("pkg/saved/saved_model.pb", "saved/saved_model.pb", _sha(PB)),
                                     ("pkg/saved/variables/variables.index", "saved/variables/variables.index",
                                      _sha(b"index"))]
    assert corpus.file("ancient").home is None
    assert corpus.file("keras3").home_words() == "python 3.11, tensorflow 2.16.2, keras 3.3.3"
    values = [s.array(seed=i) for i, s in enumerate(saved.inputs)]
    assert values[0].tolist() == [0, 5] and values[0].dtype == np.int64
    assert values[1].dtype == np.float32 and np.all(values[1] == np.round(values[1]))


@pytest.mark.parametrize(("change", "expected"), [
    ({"version": 1.0}, 'files[0].version: found the number 1.0; quote versions ("1.0")'),
    ({"dist": {"file": "pkg.whl", "sha256": "abc"}}, "files[0].dist.sha256: expected 64 lowercase hex digits"),
    ({"member": {"path": "../etc/passwd", "sha256": "0" * 64}}, "files[0].member.path: expected a relative path"),
    ({"format": "onnx"}, "files[0].format: unknown format the string 'onnx'"),
    ({"format": "savedmodel"}, "files[0].member: a savedmodel member is a folder: give 'files'"),
    ({"format": "weights_h5"}, "files[0]: a weights_h5 file holds weights only"),
    ({"home": None}, "files[0].no_home: a file without a home says why"),
    ({"home": {"python": "3.11"}}, "files[0].home: expected matrix environment keys"),
    ({"inputs": [{"name": "x", "shape": [0], "dtype": "float32"}]}, "files[0].inputs[0].shape: expected a list"),
    ({"inputs": [{"name": "x", "shape": [2], "dtype": "float33"}]}, "did you mean 'float32'?"),
    ({"licenc": "MIT"}, "files[0].licenc: unknown key; did you mean 'licence'?"),
    ({"code": {"factory": "no good"}}, "files[0].code.factory: expected module:attribute"),
])
def test_every_problem_names_its_key(change: dict[str, Any], expected: str) -> None:
    problems = _problems({"files": [_file("x", **change)]})
    assert any(expected in p for p in problems), problems


def test_a_name_listed_twice_and_an_empty_corpus_are_refused() -> None:
    assert _problems({"files": [_file("x"), _file("x")]}) == ["files[1].name: 'x' is listed twice"]
    assert _problems({"files": []})[0].startswith("files: expected a non-empty list")
    assert _problems(["x"])[0].startswith("top level: expected a mapping")


def test_the_cache_is_under_the_harness_cache_directory() -> None:
    for environ in ({}, {"HARNESS_CACHE": "/c"}, {"XDG_CACHE_HOME": "/x"}):
        assert default_cache(environ).root == cache_dir(environ) / "corpus"


# ---------------------------------------------------------------------------- fetching


def test_fetch_downloads_each_distribution_once_verifies_and_lays_out(tmp_path: Path, cache_env: Path) -> None:
    corpus = load_corpus(_manifest(tmp_path))
    upstream = FakeUpstream()
    results = fetch(corpus, default_cache(), Index(upstream))
    assert [(r.name, r.status) for r in results] == [(f["name"], "fetched") for f in FILES]
    assert sorted(upstream.downloads) == sorted(DISTS)  # six files, two distributions, each downloaded once
    cache = default_cache()
    assert cache.artifact(corpus.file("plain")).read_bytes() == H5
    assert (cache.artifact(corpus.file("saved")) / "variables" / "variables.index").read_bytes() == b"index"
    code = cache.code(corpus.file("weights"))
    assert code is not None and (code / "old" / "model.py").read_bytes() == MODEL_PY  # the sdist's top folder dropped
    with np.load(cache.inputs(corpus.file("saved"))) as inputs:
        assert inputs.files == ["a", "b"]
    again = fetch(corpus, cache, Index(upstream), only=["plain", "lite"])
    assert [(r.name, r.status) for r in again] == [("plain", "cached"), ("lite", "cached")]
    assert len(upstream.downloads) == 2


def test_fetch_refuses_what_is_not_the_pinned_file(tmp_path: Path, cache_env: Path) -> None:
    corpus = load_corpus(_manifest(tmp_path, [FILES[0]]))
    results = fetch(corpus, default_cache(), Index(FakeUpstream(lie=True)))
    assert results[0].status == "failed" and "the manifest pins" in results[0].detail
    bad = _file("plain", member={"path": "pkg/data/model.h5", "sha256": "1" * 64})
    results = fetch(load_corpus(_manifest(tmp_path, [bad])), default_cache(), Index(FakeUpstream()))
    assert results[0].status == "failed" and "pkg/data/model.h5: sha256" in results[0].detail
    with pytest.raises(UsageError, match="--only nope: no such file"):
        fetch(corpus, default_cache(), Index(FakeUpstream()), only=["nope"])


# ---------------------------------------------------------------------------- a matrix's corpus


def _matrix(tmp_path: Path, extra: dict[str, Any] | None = None) -> Path:
    path = tmp_path / "matrix.yaml"
    data = {"environments": [{"python": "3.11", "tensorflow": "2.15.1"},
                             {"python": "3.11", "tensorflow": "2.16.2", "keras": "3.3.3"}],
            "corpus": "corpus/manifest.yaml", **(extra or {})}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_a_matrix_runs_the_fetched_files_from_their_homes(tmp_path: Path, cache_env: Path) -> None:
    corpus = load_corpus(_manifest(tmp_path))
    fetch(corpus, default_cache(), Index(FakeUpstream()))
    matrix = load_matrix(_matrix(tmp_path))
    models = {m.name: m for m in matrix.models}
    assert sorted(models) == ["keras3", "lite", "plain", "saved", "weights"]  # no probes: the corpus alone
    assert models["plain"].home(["py3.11-tf2.15.1"]) == "py3.11-tf2.15.1"
    assert models["keras3"].origin and models["keras3"].origin.reference_env
    assert models["keras3"].origin.reference_env.env == "py3.11-tf2.16.2-keras3.3.3"
    assert models["lite"].artifact_format == "tflite" and routes(models["lite"]) == [("tflite", "tflite_interpreter")]
    assert models["weights"].artifact_format == "weights_h5" and models["weights"].code.factory == "old.model:build"
    assert models["lite"].tolerance is not None and models["lite"].tolerance.atol == 1.0e-2
    assert matrix.corpus is not None
    left = {f.name: f.left_out for f in matrix.corpus.files if f.left_out}
    assert left == {"ancient": "no home here: only TensorFlow 1.15 reads it"}


def test_a_home_that_is_not_among_the_environments_is_left_out_with_the_reason(tmp_path: Path,
                                                                                 cache_env: Path) -> None:
    corpus = load_corpus(_manifest(tmp_path))
    fetch(corpus, default_cache(), Index(FakeUpstream()))
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump({"environments": [{"python": "3.11", "tensorflow": "2.15.1"}], "models": ["dense"],
                                    "corpus": {"manifest": "corpus/manifest.yaml", "only": ["plain", "keras3"]}}),
                    encoding="utf-8")
    matrix = load_matrix(path)
    assert [m.name for m in matrix.models] == ["dense", "plain"]
    assert matrix.corpus is not None
    assert [(f.name, f.left_out) for f in matrix.corpus.files] == [
        ("plain", None), ("keras3", "its home (python 3.11, tensorflow 2.16.2, keras 3.3.3) is not among this "
                                    "matrix's environments")]


def test_a_matrix_never_downloads_and_names_the_command_that_does(tmp_path: Path, cache_env: Path) -> None:
    _manifest(tmp_path)
    with pytest.raises(MatrixError, match=r"corpus: plain: not fetched yet in .*run `harness corpus fetch"):
        load_matrix(_matrix(tmp_path))
    with pytest.raises(MatrixError, match=r"corpus.only\[0\]: no file the string 'plian'.*did you mean 'plain'"):
        load_matrix(_matrix(tmp_path, {"corpus": {"manifest": "corpus/manifest.yaml", "only": ["plian"]}}))


def test_corpus_matrix_keeps_the_environment_ids_and_adds_the_packages(tmp_path: Path, cache_env: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    files = [*FILES[:1], {**FILES[3], "packages": ["scipy"]}]
    manifest = _manifest(tmp_path, files)
    fetch(load_corpus(manifest), default_cache(), Index(FakeUpstream()))
    out = tmp_path / "corpus-run.yaml"
    source = REPO / "matrices" / "default.yaml"
    assert main(["corpus", "matrix", str(manifest), "--matrix", str(source), "--out", str(out)]) == 0
    data = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert data["corpus"] == {"manifest": "corpus/manifest.yaml"}
    assert all(e["packages"] == ["scipy"] for e in data["environments"])
    matrix = load_matrix(out)
    assert [e.id for e in matrix.environments] == [e.id for e in load_matrix(source).environments]
    assert [m.name for m in matrix.models] == ["plain", "weights"]


def test_the_fetch_command_prints_a_line_per_file_and_fails_on_a_failed_one(
        tmp_path: Path, cache_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import harness.corpus as corpus_module

    manifest = _manifest(tmp_path, [FILES[0]])
    monkeypatch.setattr(corpus_module, "index_for", lambda pip, environ: Index(FakeUpstream()))
    assert main(["corpus", "fetch", str(manifest)]) == 0
    assert "1 fetched, 0 cached, 0 failed" in capsys.readouterr().out
    monkeypatch.setattr(corpus_module, "index_for", lambda pip, environ: Index(FakeUpstream(lie=True)))
    (default_cache().record(load_corpus(manifest).files[0])).unlink()
    (default_cache().dist(load_corpus(manifest).files[0])).unlink()
    assert main(["corpus", "fetch", str(manifest)]) == 1
    assert "FAIL plain" in capsys.readouterr().out
