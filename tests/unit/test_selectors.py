"""Versions that follow the package index, against a fake index: latest, latest-pre and specifiers become exact
versions per Python, in the environment id and the image tag; offline, the newest this host resolved."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fake_index import FakeIndex
from harness.cli import main
from harness.errors import MatrixError
from harness.images import plan_image
from harness.matrix import Matrix, PipSettings, parse_matrix
from harness.selectors import Resolver, Versions, choose, read_versions, recorded


def _index() -> FakeIndex:
    """The test index without its release candidate: each test adds what it needs."""
    index = FakeIndex()
    index.projects["tensorflow-cpu"] = [x for x in index.projects["tensorflow-cpu"] if "rc" not in x.filename]
    index.keras("3.13.0rc1", ">=3.11")  # older than a final: latest-pre passes it by
    return index


def _versions(index: FakeIndex, tmp_path: Path, **kwargs: Any) -> Versions:
    return Versions({}, tmp_path / "releases.json", index=lambda pip: index, machine="x86_64", **kwargs)


def _matrix(versions: Versions | None, *envs: dict[str, str]) -> Matrix:
    return parse_matrix({"name": "m", "environments": list(envs), "models": ["dense"], "formats": ["keras"]},
                        path="m.yaml", sha256="0" * 64, versions=versions)


LATEST = {"python": "3.13", "tensorflow": "latest", "keras": "latest"}


def test_latest_is_the_newest_release_with_a_file_for_the_pythons(tmp_path: Path) -> None:
    index = _index()
    index.keras("3.16.0", ">=3.14")  # no file for Python 3.13: skipped, and said so
    versions = _versions(index, tmp_path)
    env = _matrix(versions, LATEST).environments[0]
    assert (env.id, env.tensorflow, env.keras) == ("py3.13-tf2.21.0-keras3.15.1", "==2.21.0", "==3.15.1")
    assert env.slot == "py3.13-tflatest-keraslatest" and env.as_written == env.slot
    assert env.selectors == (("tensorflow-cpu", "latest"), ("keras", "latest"))
    assert versions.lines() == ["tensorflow-cpu latest -> 2.21.0 (Python 3.13)",
                                "keras latest -> 3.15.1 (Python 3.13); skipped 3.16.0: no file for Python 3.13 on "
                                "this machine"]
    assert index.asked.count("keras") == 1  # one page per project, however many environments ask


def test_latest_pre_takes_a_release_candidate_when_it_is_newer(tmp_path: Path) -> None:
    index = _index()
    pre = {"python": "3.13", "tensorflow": "latest-pre", "keras": "latest-pre"}
    before = _matrix(_versions(index, tmp_path), pre).environments[0]
    assert (before.tensorflow, before.keras) == ("==2.21.0", "==3.15.1")  # no candidate newer than 2.21.0
    index.tensorflow("2.22.0rc0", "313")
    index.keras("3.16.0rc1", ">=3.11")
    after = _matrix(_versions(index, tmp_path), pre).environments[0]
    assert (after.id, after.tensorflow, after.keras) == ("py3.13-tf2.22.0rc0-keras3.16.0rc1", "==2.22.0rc0",
                                                         "==3.16.0rc1")
    assert _matrix(_versions(index, tmp_path), LATEST).environments[0].tensorflow == "==2.21.0"


def test_latest_pre_beside_latest_is_left_out_while_no_candidate_is_newer(tmp_path: Path) -> None:
    index = _index()
    pre = {"python": "3.13", "tensorflow": "latest-pre", "keras": "latest-pre"}
    assert [e.id for e in _matrix(_versions(index, tmp_path), LATEST, pre).environments] == [
        "py3.13-tf2.21.0-keras3.15.1"]
    index.tensorflow("2.22.0rc0", "313")
    assert [e.id for e in _matrix(_versions(index, tmp_path), LATEST, pre).environments] == [
        "py3.13-tf2.21.0-keras3.15.1", "py3.13-tf2.22.0rc0-keras3.15.1"]


def test_the_tag_changes_when_the_index_gains_a_release_and_not_otherwise(tmp_path: Path) -> None:
    index = _index()

    def tag() -> str:
        return plan_image(_matrix(_versions(index, tmp_path), LATEST).environments[0]).tag

    first = tag()
    assert tag() == first
    index.keras("3.12.5", ">=3.10")  # a patch of an older line: latest does not move
    index.tensorflow("2.21.1", "311")  # no file for Python 3.13: latest does not move
    assert tag() == first
    index.keras("3.15.2", ">=3.10")
    assert tag() != first


def test_specifiers_resolve_too_and_a_bare_tf_keras_follows_its_tensorflow(tmp_path: Path) -> None:
    matrix = _matrix(_versions(_index(), tmp_path),
                     {"python": "3.13", "tensorflow": "2.21.0", "keras": "~=3.12.0"},
                     {"python": "3.13", "tensorflow": "latest", "keras": "tf-keras"},
                     {"python": "3.11", "tensorflow": "2.20.*", "keras": "tf-keras latest"})
    first, legacy, pinned = matrix.environments
    assert (first.id, first.keras, first.slot) == ("py3.13-tf2.21.0-keras3.12.4", "==3.12.4",
                                                   "py3.13-tf2.21.0-kerascompat3.12.0")
    assert (legacy.id, legacy.tensorflow, legacy.tf_keras) == ("py3.13-tf2.21.0-tfkeras", "==2.21.0", "==2.21.0")
    assert (pinned.id, pinned.tf_keras) == ("py3.11-tf2.20.0-tfkeras2.21.0", "==2.21.0")


def test_exact_versions_never_ask_the_index(tmp_path: Path) -> None:
    index = _index()
    env = _matrix(_versions(index, tmp_path), {"python": "3.11", "tensorflow": "2.16.2", "keras": "3.3.3"})
    assert index.asked == [] and env.environments[0].slot == "" and env.environments[0].selectors == ()


def test_offline_takes_the_newest_this_host_resolved_and_says_so(tmp_path: Path) -> None:
    index = _index()
    _matrix(_versions(index, tmp_path), LATEST)
    index.keras("3.15.2", ">=3.10")
    offline = _versions(index, tmp_path, offline=True)
    env = _matrix(offline, LATEST).environments[0]
    assert env.keras == "==3.15.1" and index.asked == ["tensorflow-cpu", "keras"]  # the first run's questions only
    assert "--offline: the newest this host resolved" in offline.lines()[1]
    index.answers = False
    unreachable = _versions(index, tmp_path)
    assert _matrix(unreachable, LATEST).environments[0].keras == "==3.15.1"
    assert "the package index did not answer" in unreachable.lines()[1]


def test_a_selector_this_host_never_resolved_cannot_go_offline(tmp_path: Path) -> None:
    with pytest.raises(MatrixError) as caught:
        _matrix(_versions(_index(), tmp_path, offline=True), LATEST)
    assert caught.value.problems == [
        "environments[0].tensorflow: tensorflow-cpu latest is decided by the package index, and --offline: this "
        "host never resolved it for Python 3.13; pin a version, or reach the index once"]


def test_no_matching_release_for_the_python_is_a_problem_naming_what_was_skipped(tmp_path: Path) -> None:
    index = _index()
    with pytest.raises(MatrixError, match=r"environments\[0\].keras: no release of keras matches ==3.16.\* with a "
                                          r"file for Python 3.13 on this machine \(3.16.0: no such file\)"):
        index.keras("3.16.0", ">=3.14")
        _matrix(_versions(index, tmp_path), {"python": "3.13", "tensorflow": "2.21.0", "keras": "3.16.*"})


def test_pinned_versions_win_and_a_run_json_pins_what_it_resolved(tmp_path: Path) -> None:
    index = _index()
    first = _matrix(_versions(index, tmp_path), LATEST)
    assert recorded(first) == {"tensorflow-cpu latest py3.13": "2.21.0", "keras latest py3.13": "3.15.1"}
    index.keras("3.15.2", ">=3.10")
    again = _matrix(_versions(index, tmp_path, pinned=recorded(first)), LATEST)
    assert again.environments == first.environments
    (tmp_path / "run.json").write_text(json.dumps({"matrix": {"name": "m", "path": "m.yaml", "sha256": "0",
                                                              "environments": [], "models": [], "formats": [],
                                                              "loaders": []}}))
    assert read_versions(tmp_path / "run.json") == {}
    (tmp_path / "v.json").write_text(json.dumps({"versions": {"keras latest py3.13": "3.15.0"}}))
    assert read_versions(tmp_path / "v.json") == {"keras latest py3.13": "3.15.0"}


def test_choose_skips_development_releases_and_passes_older_candidates_by() -> None:
    from packaging.version import Version

    usable = [Version(v) for v in ("3.15.1", "3.16.0.dev1", "3.15.0rc1")]
    assert choose(usable, [], "latest-pre") == (Version("3.15.1"), [])
    assert choose(usable, [], "==3.15.0rc1") == (Version("3.15.0rc1"), [])


def test_validate_prints_the_versions_and_the_tag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    index = _index()
    monkeypatch.setattr("harness.selectors.Upstream", lambda pip: index)
    (tmp_path / "m.yaml").write_text('environments: [{python: "3.13", tensorflow: "2.21.0", keras: latest}]\n')
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["validate", str(tmp_path / "m.yaml")], engine=object) == 0
    out = capsys.readouterr().out
    tag = plan_image(_matrix(_versions(index, tmp_path), {"python": "3.13", "tensorflow": "2.21.0",
                                                          "keras": "latest"}).environments[0]).tag
    assert "py3.13-tf2.21.0-keras3.15.1" in out and tag in out
    assert "version: keras latest -> 3.15.1 (Python 3.13)" in out


def test_the_index_is_asked_through_the_matrixs_pip_settings(tmp_path: Path) -> None:
    seen: list[PipSettings] = []

    def index(pip: PipSettings) -> FakeIndex:
        seen.append(pip)
        return _index()

    versions = Versions({"PIP_INDEX_URL": "https://host.example/simple"}, None, index=index, machine="x86_64")
    parse_matrix({"environments": [LATEST], "pip": {"index_url": "https://mirror.example/simple"}}, path="m.yaml",
                 sha256="0" * 64, versions=versions)
    assert [p.index_url for p in seen] == ["https://mirror.example/simple"]
    assert isinstance(versions.resolver, Resolver)


def test_offline_validate_says_whether_each_image_is_built_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main as cli

    (tmp_path / "m.yaml").write_text('environments: [{python: "3.13", tensorflow: "2.21.0", keras: latest},\n'
                                     '               {python: "3.13", tensorflow: "2.21.0", keras: "~=3.12.0"}]\n')
    monkeypatch.setenv("COLUMNS", "200")
    assert cli(["validate", str(tmp_path / "m.yaml")], engine=object) == 0  # online once: remembered
    built = plan_image(_matrix(Versions({}, None, index=lambda pip: FakeIndex(), machine="x86_64"),
                               {"python": "3.13", "tensorflow": "2.21.0", "keras": "latest",
                                "base_image": "harness-base:{python}"}).environments[0]).tag

    class Engine:
        def image_id(self, tag: str) -> str | None:
            return "sha256:1" if tag == built else None

    capsys.readouterr()
    assert cli(["validate", str(tmp_path / "m.yaml"), "--offline"], engine=Engine) == 0
    out = capsys.readouterr().out
    assert "keras latest -> 3.15.1 (Python 3.13); --offline: the newest this host resolved it to" in out
    assert f"image: py3.13-tf2.21.0-keras3.15.1: {built} is built here" in out  # the local stand-in's base
    assert "image: py3.13-tf2.21.0-keras3.12.4: harness-env:" in out and "a run needs the index" in out
