"""report.html from report.json: self-contained, escaped, deterministic; the legend says what README says."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from fake_run import ENV_A, ENV_B, ENV_C, FakeRun, varied_run
from harness.cli import main
from harness.matrix import Expectation
from harness.report.html import counts_text, render_html
from harness.report.junit import render_junit
from harness.report.markdown import render_markdown
from harness.report.statuses import MEANINGS, STATUS_ORDER
from harness.report.summary import formats_line, split_paths
from harness.report.writers import write_reports
from harness.rundir import RunDir

README = Path(__file__).resolve().parents[2] / "docs" / "report.md"  # the status table


@pytest.fixture
def run(tmp_path: Path) -> FakeRun:
    return varied_run(tmp_path / "run")


@pytest.fixture
def html(run: FakeRun) -> str:
    write_reports(RunDir(run.root))
    return (run.root / "report.html").read_text(encoding="utf-8")


def test_grid_has_a_square_per_path_coloured_by_its_verdict(html: str, run: FakeRun) -> None:
    squares = re.findall(r'<td class="square ([^"]*)" data-pair="(p\d+-\d+)"', html)
    assert len(squares) == 3 * 3
    by_pair = {pair: cls for cls, pair in squares}
    assert by_pair["p0-1"] == "v-broken"  # ENV_A -> ENV_B: both routes break (a drift and an error)
    assert by_pair["p1-0"] == "v-partial"  # an (expected) crash breaks one route of two
    assert by_pair["p0-0"] == by_pair["p1-1"] == "v-home"  # the diagonal: each environment at home
    assert by_pair["p0-2"] == "v-untested"  # ENV_C did not build
    assert html.count('<tbody class="cell"') == len(run.report()["cells"])


def test_every_cell_detail_is_there(html: str, run: FakeRun) -> None:
    report = run.report()
    assert "Could not deserialize class" in html
    for cause in report["causes"]:  # each cause's fix once, in the causes table; cells link to it
        assert html.count(f'<tr id="cause-{cause["name"]}">') == 1
        assert f'href="#cause-{cause["name"]}"' in html
    (tb,) = report["tracebacks"]  # stored once, linked from its cells
    assert f'<a href="#{tb}">traceback</a>' in html and f'<details id="{tb}" class="traceback">' in html
    # an expected cell links to its expect: entry, whose reason the expectations table holds once
    assert 'expected:</b> <a href="#expectation-0">segfaults in h5py</a>' in html
    assert '<tr id="expectation-0"><td>0</td><td class="msg">segfaults in h5py</td><td>1</td></tr>' in html
    assert "max abs diff" in html
    for env in (ENV_A, ENV_B, ENV_C):
        assert f'<td class="mono">{env.id}</td>' in html
    assert "2 packages</summary><pre>numpy==1.26.4\ntensorflow-cpu==2.15.1\n</pre>" in html  # pip freeze, collapsed
    assert "ERROR: No matching distribution found" in html


def test_filters_offer_the_values_of_the_cells(html: str) -> None:
    for key, values in (("model", ["dense"]), ("format", ["h5", "keras"]), ("loader", ["load_model"]),
                        ("status", ["pass", "skipped", "drift", "error", "crash"])):
        select = re.search(rf'<select data-filter="{key}".*?</select>', html, re.S)
        assert select is not None
        assert re.findall(r'<option value="([^"]+)"', select.group(0)) == values


def test_page_is_self_contained(html: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert re.findall(r"<script[^>]*>", html) == ["<script>"]


def test_everything_is_escaped(tmp_path: Path) -> None:
    run = FakeRun(tmp_path / "run", expect=(Expectation(reason="<i>known</i>", status=("error",)),))
    run.load_failed(ENV_A.id, ENV_B.id, "h5", status="error", stage="load",
                    error={"type": "<b>Bad</b>", "message": "</script><script>alert(1)</script>",
                           "traceback": "<img src=x onerror=alert(2)>"})
    html = render_html(run.report(), {ENV_A.id: "evil==1 <script>alert(3)</script>"})
    assert "alert(1)</script>" not in html and "<img src=x" not in html and "<script>alert(3)" not in html
    assert "<b>Bad</b>" not in html and "<i>known</i>" not in html
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;i&gt;known&lt;/i&gt;" in html


def test_output_is_deterministic(run: FakeRun) -> None:
    write_reports(RunDir(run.root))
    first = (run.root / "report.html").read_bytes()
    write_reports(RunDir(run.root))
    assert (run.root / "report.html").read_bytes() == first


def test_report_prints_html(run: FakeRun, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(run.root), "--format", "html"]) == 1
    assert capsys.readouterr().out == (run.root / "report.html").read_text(encoding="utf-8")


def test_counts_text_is_worst_first() -> None:
    assert counts_text(["pass", "error", "pass", "skipped"]) == "1 error · 1 skipped · 2 pass"
    assert counts_text([]) == ""


def _readme_statuses() -> dict[str, str]:
    rows = re.findall(r"^\| `(\w+)` \| (.+) \|$", README.read_text(encoding="utf-8"), re.M)
    return {status: re.sub(r"[`*]", "", meaning) for status, meaning in rows if status in STATUS_ORDER}


def test_legend_uses_the_readme_words(html: str) -> None:
    assert _readme_statuses() == MEANINGS
    for status in STATUS_ORDER:
        assert f'<span class="badge st-{status}">{status}</span></dt><dd>{escape(MEANINGS[status])}</dd>' in html


def test_the_first_screen_answers_each_upgrade_path(html: str, run: FakeRun) -> None:
    report: dict[str, Any] = run.report()
    assert f"<strong>exit {report['verdict']['exit_code']}: " in html
    start = html.index('<div id="paths">')
    paths = html[start:html.index("</table>", start)]
    ups, downs = split_paths(report)
    for path in ups:  # the upgrades, each with its answer in words; the downgrades folded below
        assert f"{path['source']} → {path['target']}</td>" in paths
        assert escape(formats_line(path)) in paths
    folded = html[html.index("Downgrades (rollbacks)"):]
    for path in downs:
        assert f"{path['source']} → {path['target']}</td>" in folded
    assert html.count('<span class="badge v-broken">broken</span>') >= 1
    assert html.index('id="paths"') < html.index('id="causes"') < html.index('id="grid"') < html.index('class="pair"')


def test_a_hint_without_a_cause_is_shown_with_its_cell(run: FakeRun) -> None:
    report = run.report()
    unsupported = dict(next(c for c in report["cells"] if c["status"] == "pass"), status="unsupported", cause=None,
                       error={"type": "Unsupported", "message": "TFSMLayer exists only in Keras 3",
                              "hint": "Keras 2 has no <TFSMLayer>", "traceback": None})
    report["cells"].append(unsupported)
    html = render_html(report)
    assert '<div class="hint">hint: Keras 2 has no &lt;TFSMLayer&gt;</div>' in html
    assert "  - hint: Keras 2 has no <TFSMLayer>" not in render_markdown(report)  # only failing cells are listed
    assert "Keras 2 has no" not in render_junit(report)  # skipped: one line, no details
