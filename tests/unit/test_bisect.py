"""bisect without Docker or a network: releases from a fake index, the binary search, and the command end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from packaging.version import Version

from fake_loads import LoadHook
from harness.advisor.releases import between, listing, releases
from harness.advisor.search import BAD, GOOD, Bisection, Search, budget, root_error, search
from harness.cli import main
from harness.errors import UsageError
from harness.wheelcache import Link

KERAS = ["3.0.5", "3.1.0", "3.1.1", "3.2.1", "3.3.3", "3.4.1", "3.5.0", "3.6.0", "3.7.0", "3.8.0", "3.9.2",
         "3.10.0", "3.11.3", "3.12.4", "3.13.2", "3.14.1", "3.15.0rc1", "3.15.1"]


def _link(filename: str, **attributes: str) -> Link:
    return Link(filename, f"https://files.example/{filename}", None, attributes)


class FakeIndex:
    """A package index answering from a dict of project -> links (None: it does not answer)."""

    def __init__(self, projects: dict[str, list[Link]] | None) -> None:
        self.projects = projects
        self.asked: list[str] = []

    def project(self, project: str) -> tuple[list[Link], bool]:
        self.asked.append(project)
        if self.projects is None:
            return [], False
        return self.projects.get(project, []), True


def _keras_index() -> FakeIndex:
    links = [_link(f"keras-{v}-py3-none-any.whl", **{"data-requires-python": ">=3.9"}) for v in KERAS]
    links.append(_link("keras-3.9.1-py3-none-any.whl", **{"data-yanked": "broken"}))
    links.append(_link("keras-3.16.0-py3-none-any.whl", **{"data-requires-python": ">=3.12"}))
    return FakeIndex({"keras": links})


# ---------------------------------------------------------------------------- releases from the index


def test_final_installable_releases_only() -> None:
    tf = FakeIndex({"tensorflow-cpu": [
        _link("tensorflow_cpu-2.15.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
        _link("tensorflow_cpu-2.16.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
        _link("tensorflow_cpu-2.17.0-cp312-cp312-manylinux_2_17_x86_64.whl"),  # another Python only
        _link("tensorflow_cpu-2.18.0-cp311-cp311-manylinux_2_17_aarch64.whl"),  # another machine only
        _link("tensorflow_cpu-2.19.0rc0-cp311-cp311-manylinux_2_17_x86_64.whl"),  # a pre-release
        _link("tensorflow_cpu-2.20.0-cp311-cp311-manylinux_2_17_x86_64.whl"),
    ]})
    usable, without = releases(tf, "tensorflow-cpu", "3.11", machine="x86_64")
    assert usable == [Version("2.15.1"), Version("2.16.2"), Version("2.20.0")]
    assert without == [Version("2.17.0"), Version("2.18.0")]
    usable, _ = releases(_keras_index(), "keras", "3.11", machine="x86_64")
    assert str(usable[-1]) == "3.15.1" and Version("3.9.1") not in usable  # yanked; 3.16 needs Python 3.12


def test_between_keeps_the_ends_and_the_newest_of_each_minor_in_the_order_walked() -> None:
    found = [Version(v) for v in KERAS if "rc" not in v]
    assert between(found, Version("3.0.5"), Version("3.3.3")) == [Version(v) for v in ("3.0.5", "3.1.1", "3.2.1",
                                                                                        "3.3.3")]
    assert between(found, Version("3.3.3"), Version("3.0.5"), "release") == [
        Version(v) for v in ("3.3.3", "3.2.1", "3.1.1", "3.1.0", "3.0.5")]


def test_listing_names_an_end_the_index_does_not_have() -> None:
    index = _keras_index()
    walk = listing(index, "keras", "3.11", "3.15.1", "3.0.5", machine="x86_64")
    assert walk.releases[0] == "3.15.1" and walk.releases[-1] == "3.0.5" and len(walk.releases) == 16
    with pytest.raises(UsageError, match=r"keras 3\.99\.0 is not on the index"):
        listing(index, "keras", "3.11", "3.99.0", "3.0.5", machine="x86_64")
    with pytest.raises(UsageError, match=r"keras 3\.16\.0 has no file for this Python"):
        listing(index, "keras", "3.11", "3.16.0", "3.0.5", machine="x86_64")
    with pytest.raises(UsageError, match="the package index did not answer for keras"):
        listing(FakeIndex(None), "keras", "3.11", "3.15.1", "3.0.5")


# ---------------------------------------------------------------------------- the search


def _run(outcomes: list[str], routes: int = 1, limit: int | None = None,
         unbuilt: frozenset[int] = frozenset()) -> tuple[Bisection, list[Search], list[int]]:
    """A search over made-up releases: outcomes[i] is every route's at release i."""
    bisection = Bisection(walk=[str(i) for i in range(len(outcomes))])
    cells = {i: {(f"f{r}", "load_model"): {"status": "pass" if o == GOOD else "error", "error": {"type": "E"},
                                           "cause": "c"} for r in range(routes)} for i, o in enumerate(outcomes)}
    for i in (0, len(outcomes) - 1):
        bisection.record(i, cells[i], i not in unbuilt)
    asked: list[int] = []

    def probe(i: int) -> None:
        asked.append(i)
        bisection.record(i, cells[i], i not in unbuilt)

    found = search(bisection, [((f"f{r}", "load_model"), r == 0) for r in range(routes)], probe, limit)
    return bisection, found, asked


@pytest.mark.parametrize("size", [2, 3, 6, 16, 33])
def test_a_binary_search_finds_every_boundary_within_its_budget(size: int) -> None:
    for first_bad in range(1, size):
        bisection, (one,), asked = _run([GOOD] * first_bad + [BAD] * (size - first_bad))
        bounds = Search.bounds(bisection.known[one.route])
        assert bounds == (first_bad - 1, first_bad)
        assert len(asked) + 2 <= budget(size)
        assert bisection.monotone(one.route)


def test_the_other_routes_reuse_every_probe_already_made() -> None:
    _, searches, asked = _run([GOOD] * 5 + [BAD] * 11, routes=3)
    assert [s.asked for s in searches] == [len(asked), 0, 0]  # the same boundary: no new environment


def test_a_route_that_breaks_then_works_again_is_not_monotone() -> None:
    bisection, (one,), _ = _run([GOOD, GOOD, BAD, GOOD, GOOD, BAD, BAD, BAD])
    every = Bisection(walk=bisection.walk)
    for i, o in enumerate([GOOD, GOOD, BAD, GOOD, GOOD, BAD, BAD, BAD]):
        every.record(i, {one.route: {"status": "pass" if o == GOOD else "error"}}, True)
    assert not every.monotone(one.route)
    assert Search.bounds(every.known[one.route]) == (1, 2)  # the first boundary along the walk


def test_a_release_without_an_image_is_stepped_over_and_named() -> None:
    bisection, (one,), asked = _run([GOOD, GOOD, GOOD, BAD, BAD, BAD, BAD, BAD], unbuilt=frozenset({3}))
    assert 3 in asked and Search.bounds(bisection.known[one.route]) == (2, 4)


def test_the_search_stops_at_its_budget_and_says_so() -> None:
    _, (one,), asked = _run([GOOD] * 20 + [BAD] * 12, limit=2)
    assert len(asked) == 2 and one.stopped and "budget" in one.stopped


def test_the_root_of_a_nested_keras_error_is_its_last_exception_encountered() -> None:
    text = "TypeError: outer\n\nException encountered: inner one\n\nException encountered: the root\n"
    assert root_error(text) == "the root"
    assert root_error("ValueError: plain") is None and root_error(None) is None


# ---------------------------------------------------------------------------- the command, end to end


class OldKerasFails(LoadHook):
    """Keras releases older than `oldest` cannot load the file (their environment ids name the release)."""

    oldest = (3, 11)

    def change(self, target: str, record: dict[str, Any], output: Path) -> None:
        version = tuple(int(x) for x in target.rsplit("keras", 1)[1].split(".")[:2])
        if version < self.oldest and record["format"] == "keras":
            self.fail_load(record, output, "TypeError", "Unrecognized keyword arguments passed to Dense: "
                                                        "{'quantization_config': None}")
            record["error"]["traceback"] = (
                "Traceback (most recent call last):\n  File \"x.py\", line 1\nTypeError: <class 'Dense'> could not "
                "be deserialized\n\nException encountered: Dense.__init__() got an unexpected keyword argument "
                "'quantization_config'\n")


@pytest.fixture
def keras_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import zipfile

    with zipfile.ZipFile(tmp_path / "model.keras", "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
    np.save(tmp_path / "x.npy", np.zeros((2, 3), dtype="float32"))
    np.save(tmp_path / "ref.npy", np.linspace(0, 1, 8, dtype="float32").reshape(2, 4))
    index = _keras_index()
    monkeypatch.setattr("harness.wheelcache.Upstream", lambda pip: index)
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    return tmp_path


def _bisect(root: Path, *extra: str, engine: Any = OldKerasFails) -> int:
    return main(["bisect", "--from", "2.16.2+keras3.15.1", "--to", "2.16.2+keras3.0.5", "--model",
                 str(root / "model.keras"), "--inputs", str(root / "x.npy"), "--reference", str(root / "ref.npy"),
                 "--out", str(root / "run"), "-q", *extra], engine=engine)


def test_bisect_names_the_oldest_minor_that_loads_the_file(keras_file: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    engine = OldKerasFails()
    assert _bisect(keras_file, engine=lambda: engine) == 1
    out = capsys.readouterr().out
    assert "your route  .keras / keras.models.load_model" in out
    assert "last good 3.11.3, first bad 3.10.0" in out and "quantization_config" in out
    report = json.loads((keras_file / "run" / "report.json").read_text())
    found = report["bisect"]
    assert found["axis"] == "keras" and found["releases"][0] == "3.15.1" and len(found["releases"]) == 16
    built = len(found["probed"])
    assert built <= budget(16) == 2 + math.ceil(math.log2(16))
    assert len(engine.runs) == 2 * built  # a save and a load container per probed release, each once
    yours = found["routes"][0]
    assert (yours["yours"], yours["last_good"], yours["first_bad"], yours["adjacent"]) == (True, "3.11.3", "3.10.0",
                                                                                          True)
    assert yours["monotone"] and yours["error"].startswith("TypeError: Unrecognized keyword arguments")
    assert yours["root"] == "Dense.__init__() got an unexpected keyword argument 'quantization_config'"
    assert "at the root: Dense.__init__() got an unexpected keyword argument" in out
    run = json.loads((keras_file / "run" / "run.json").read_text())
    assert run["bisect"] == found
    html = (keras_file / "run" / "report.html").read_text()
    assert "Bisect" in html and "3.10.0" in html


def test_bisect_exits_0_when_the_route_works_at_both_ends(keras_file: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    class Never(OldKerasFails):
        oldest = (3, 0)

    engine = Never()
    assert _bisect(keras_file, engine=lambda: engine) == 0
    assert "works at every probed release, 3.15.1 to 3.0.5" in capsys.readouterr().out
    assert len(engine.runs) == 2 * 2  # the two ends only


def test_every_release_is_probed_when_asked(keras_file: Path) -> None:
    engine = OldKerasFails()
    assert _bisect(keras_file, "--every", engine=lambda: engine) == 1
    found = json.loads((keras_file / "run" / "report.json").read_text())["bisect"]
    assert len(found["probed"]) == 16 and found["budget"] is None
    assert [o for _, o in found["routes"][0]["history"]] == ["good"] * 5 + ["bad"] * 11


def test_a_route_that_breaks_and_works_again_is_said_to_be_not_monotone(keras_file: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    class Gap(OldKerasFails):
        """Only the Keras 3.8 and 3.9 minors fail: the history breaks and works again."""

        def change(self, target: str, record: dict[str, Any], output: Path) -> None:
            minor = int(target.rsplit("keras", 1)[1].split(".")[1])
            if minor in (8, 9) and record["format"] == "keras":
                self.fail_load(record, output, "TypeError", "a gap")

    assert _bisect(keras_file, "--every", engine=Gap) == 0  # it works at --to
    out = capsys.readouterr().out
    assert "NOT MONOTONE: the probed releases break and work again" in out
    yours = json.loads((keras_file / "run" / "report.json").read_text())["bisect"]["routes"][0]
    assert (yours["monotone"], yours["last_good"], yours["first_bad"]) == (False, "3.10.0", "3.9.2")


@pytest.mark.parametrize(("argv", "message"), [
    (["--from", "2.16.2+keras3.15.1", "--to", "2.17.1+keras3.0.5", "--axis", "keras"],
     "--axis keras keeps TensorFlow fixed"),
    (["--from", "2.16.2+keras>=3.1", "--to", "2.16.2+keras3.0.5"], "bisect needs an exact keras release"),
    (["--from", "2.16.2+keras3.0.5", "--to", "2.16.2+keras3.0.5"], "nothing to bisect"),
    (["--from", "2.16.2+keras3.15.1", "--to", "2.16.2+keras3.0.5,py3.12"], "bisect keeps one Python"),
    (["--from", "2.16.2+keras3.99.0", "--to", "2.16.2+keras3.0.5"], "keras 3.99.0 is not on the index"),
])
def test_bad_bisect_input_exits_2_before_anything_is_built(keras_file: Path, capsys: pytest.CaptureFixture[str],
                                                           argv: list[str], message: str) -> None:
    engine = OldKerasFails()
    assert main(["bisect", *argv, "--model", str(keras_file / "model.keras"), "--inputs", "2x3", "--out",
                 str(keras_file / "run")], engine=lambda: engine) == 2
    assert message in capsys.readouterr().err
    assert not engine.runs and not (keras_file / "run").exists()
