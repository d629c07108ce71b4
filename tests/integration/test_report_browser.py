"""report.html in a real headless Chromium: the grid renders, filters and squares work, nothing is fetched.

Needs Debian's `chromium` package and `playwright` (the test extra); no Docker. Without Chromium the
tests fail in CI (CI is set) and are skipped elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fake_run import varied_run
from harness.report.writers import write_reports
from harness.rundir import RunDir
from screenshot_report import report_page

pytestmark = pytest.mark.integration
CELLS = 3 * 3 * 2  # varied_run: three environments, one model, two formats, one loader


@pytest.fixture
def requested() -> list[str]:
    """Every URL the page requested."""
    return []


@pytest.fixture
def page(tmp_path: Path, browser_available: None, requested: list[str]) -> Iterator[Any]:
    run = varied_run(tmp_path / "run")
    write_reports(RunDir(run.root))
    with report_page(run.root / "report.html", requested) as page:
        yield page


def _visible_rows(page: Any) -> int:
    count: int = page.evaluate("document.querySelectorAll('tbody.cell:not([hidden])').length")
    return count


def test_grid_renders_a_square_per_path_and_fetches_nothing(page: Any, requested: list[str]) -> None:
    assert page.locator("#grid td.square").count() == 3 * 3
    assert page.locator("#grid tr").count() == 1 + 3
    assert page.locator('td.square[data-pair="p0-1"] .worst').inner_text() == "broken"
    # The keras route's home never ran (varied_run dropped it): only the h5 route counts.
    assert page.locator('td.square[data-pair="p0-1"] .detail').inner_text() == "1/1 break"
    assert page.locator('td.square[data-pair="p1-0"]').get_attribute("class") == "square v-partial"
    assert page.locator('td.square[data-pair="p0-0"] .worst').inner_text() == "home"
    assert page.inner_text("#shown") == f"{CELLS} of {CELLS} cells shown"  # the script ran
    assert requested and [url for url in requested if not url.startswith("file://")] == []


def test_a_filter_changes_what_is_shown(page: Any) -> None:
    page.select_option("#filter-status", "error")
    assert page.inner_text("#shown") == f"1 of {CELLS} cells shown"
    assert _visible_rows(page) == 1
    assert page.locator("details.pair:not([hidden])").count() == 1
    page.select_option("#filter-status", "")
    page.select_option("#filter-route", "breaks")
    assert _visible_rows(page) == 2  # the drift of A -> B, the expected crash of B -> A
    page.select_option("#filter-route", "")
    page.select_option("#filter-format", "keras")
    assert _visible_rows(page) == CELLS // 2
    page.click("#reset")
    assert _visible_rows(page) == CELLS


def test_clicking_a_square_opens_its_cells_and_a_cause_leads_to_its_fix(page: Any) -> None:
    assert page.locator("details#p0-1").get_attribute("open") is None
    page.click('td.square[data-pair="p0-1"]')
    assert page.locator("details#p0-1").get_attribute("open") is not None
    cell = page.locator("details#p0-1 tbody.cell").filter(has=page.locator("td:nth-child(2)", has_text="keras"))
    assert cell.is_visible()
    assert "TypeError" in cell.inner_text()
    cause = cell.get_attribute("data-cause")
    assert cause and page.locator(f"#cause-{cause}").inner_text().count("tf-keras")  # the fix, in the causes table


FIRST_SCREEN = (1600, 1000)


def test_the_first_screen_answers_every_upgrade_path(tmp_path: Path, browser_available: None) -> None:
    """Five environments, as in the default matrix: every upgrade path's verdict and, in words, what works per
    format, and the first broken path's format x loader table, all on the first screen; downgrades folded."""
    from fake_run import FakeRun
    from harness.matrix import Environment

    five = tuple(Environment(id=f"py3.11-tf2.{minor}.1-keras3.{minor}.0", python="3.11", tensorflow=f"==2.{minor}.1",
                             keras=f"==3.{minor}.0", base_image="python:3.11-slim") for minor in range(16, 21))
    run = FakeRun(tmp_path / "run", envs=five)
    for source in five[:2]:
        for target in five[3:]:
            run.load_failed(source.id, target.id, "keras", status="error", stage="load",
                            error={"type": "TypeError", "message": "Could not deserialize class 'Functional'"})
    write_reports(RunDir(run.root))
    shot = SCREENSHOTS / "report-first-screen.png"
    with report_page(run.root / "report.html", width=FIRST_SCREEN[0], height=FIRST_SCREEN[1]) as page:
        rows = page.locator("#paths tr")
        assert rows.count() == 1 + 10  # the upgrades; the ten downgrades are folded below
        first_table = page.locator("table.caniuse").first
        for element in [*(rows.nth(i) for i in range(rows.count())), first_table]:
            box = element.bounding_box()
            assert box is not None and box["y"] + box["height"] <= FIRST_SCREEN[1], element.inner_text()
        partial = page.locator("#paths tr", has_text="partial")
        assert partial.count() == 4 and "not .keras" in partial.first.inner_text()
        assert "0/1" in first_table.inner_text() and "1/1" in first_table.inner_text()
        assert not page.locator("details.folded").first.evaluate("d => d.open")
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000


SCREENSHOTS = Path(os.environ.get("HARNESS_SCREENSHOTS", Path(__file__).resolve().parents[2] / "build" / "screenshots"))
