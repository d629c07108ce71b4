"""`harness site`: the compatibility site of a matrix's runs, from report.json files alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fake_run import ENV_A, ENV_B, FakeRun
from harness.cli import main
from harness.errors import UsageError
from harness.report.writers import write_reports
from harness.rundir import RunDir
from harness.site.build import badge, keras_label, load_runs, page_name, site
from site_runs import two_nights

PAGE = f"{ENV_A.id}--{ENV_B.id}"


def test_the_site_has_a_table_per_format_a_page_and_a_badge_per_path(tmp_path: Path) -> None:
    runs = two_nights(tmp_path)
    assert main(["site", *map(str, runs), "--out", str(tmp_path / "site")]) == 0
    site_dir = tmp_path / "site"
    assert sorted(p.name for p in site_dir.iterdir()) == ["badges", "history.html", "index.html", "paths",
                                                          "style.css"]
    assert len(list((site_dir / "paths").glob("*.html"))) == len(list((site_dir / "badges").glob("*.json"))) == 4
    index = (site_dir / "index.html").read_text()
    assert index.count('<table class="grid"') == 2  # .h5 and .keras
    assert f'href="paths/{PAGE}.html">0/1</a>' in index  # tf.keras 2.15's .keras file in Keras 3.3.3, the 2nd night
    assert json.loads((site_dir / "badges" / f"{PAGE}.json").read_text()) == {
        "schemaVersion": 1, "label": "tf.keras 2.15.0 → Keras 3.3.3", "message": "partial: 1/2 routes break",
        "color": "yellow"}
    page = (site_dir / "paths" / f"{PAGE}.html").read_text()
    assert "Keras 3.3.3 reads files from tf.keras 2.15.0" in page and "keras2-module-move" in page
    assert "dense/keras/load_model: pass → error (regressed)" in page  # when it changed
    assert 'href="../style.css"' in page


def test_history_lists_every_run_newest_first_with_what_changed(tmp_path: Path) -> None:
    data = site(load_runs(two_nights(tmp_path)))
    assert [h["run_id"] for h in data["history"]] == ["night2", "night1"]
    assert data["history"][0]["counts"] == {"regressed": 1, "fixed": 0, "spurious": 0, "broken": 0}
    assert [(c["source"], c["target"], c["format"], c["category"]) for c in data["history"][0]["changes"]] == [
        (ENV_A.id, ENV_B.id, "keras", "regressed")]
    [page] = [p for p in data["pages"] if p["name"] == PAGE]
    assert [t["verdict"] for t in page["timeline"]] == ["safe", "partial"]


def test_runs_are_ordered_by_when_they_ran_whatever_the_order_given(tmp_path: Path) -> None:
    runs = two_nights(tmp_path)
    assert [r["run_id"] for r in load_runs(list(reversed(runs)))] == ["night1", "night2"]


def test_a_site_shows_one_matrix(tmp_path: Path) -> None:
    runs = two_nights(tmp_path)
    other = FakeRun(tmp_path / "other")
    data = json.loads(other.run_dir.run_json.read_text())
    data["matrix"]["name"] = "observatory"
    other.run_dir.run_json.write_text(json.dumps(data))
    write_reports(RunDir(other.root))
    with pytest.raises(UsageError, match=r"the runs are of 2 matrices \(fake, observatory\)"):
        load_runs([*runs, other.root])
    assert main(["site", str(runs[0]), str(other.root), "--out", str(tmp_path / "site")]) == 2


def test_pages_and_badges_are_named_by_the_ids_as_written() -> None:
    source = {"id": "py3.13-tf2.21.0-keras3.16.0", "slot": "py3.13-tflatest-keraslatest"}
    assert page_name(source, {"id": "py3.11-tf2.15.1"}) == "py3.13-tflatest-keraslatest--py3.11-tf2.15.1"


@pytest.mark.parametrize(("env", "label"), [
    ({"keras": "3.15.1", "keras_major": 3, "keras_package": "keras"}, "Keras 3.15.1"),
    ({"keras": "2.21.0", "keras_major": 2, "keras_package": "tf_keras"}, "tf-keras 2.21.0"),
    ({"keras": "2.12.0", "keras_major": 2, "keras_package": "keras"}, "tf.keras 2.12.0"),
])
def test_keras_labels(env: dict[str, object], label: str) -> None:
    assert keras_label(env) == label


def test_badge_colours_follow_the_verdict() -> None:
    path = {"verdict": "broken", "routes_breaks": 2, "routes_portable": 0}
    env = {"keras": "3.3.3", "keras_major": 3}
    assert badge(path, env, env)["color"] == "red" and badge({**path, "verdict": "safe"}, env, env)["message"] == "safe"
