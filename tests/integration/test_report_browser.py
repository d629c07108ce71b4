"""report.html in a real headless Chromium: the grid renders, filters and squares work, nothing is fetched.

Needs Debian's `chromium` package and `playwright` (the test extra); no Docker. Without Chromium the
tests fail in CI (CI is set) and are skipped elsewhere.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fake_run import varied_run
from harness.report.writers import write_reports
from harness.rundir import RunDir
from screenshot_report import CHROMIUM, report_page

pytestmark = pytest.mark.integration
CELLS = 3 * 3 * 2  # varied_run: three environments, one model, two formats, one loader


@pytest.fixture(scope="module")
def browser_available() -> None:
    missing = [what for what, ok in ((CHROMIUM, Path(CHROMIUM).is_file()),
                                     ("playwright", importlib.util.find_spec("playwright") is not None)) if not ok]
    if missing:
        message = f"the browser test needs {' and '.join(missing)} (apt-get install chromium; pip install playwright)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


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
    count: int = page.evaluate("document.querySelectorAll('tr.cell:not([hidden])').length")
    return count


def test_grid_renders_a_square_per_pair_and_fetches_nothing(page: Any, requested: list[str]) -> None:
    assert page.locator("#grid td.square").count() == 3 * 3
    assert page.locator("#grid tr").count() == 1 + 3
    assert page.locator('td.square[data-pair="p0-1"] .worst').inner_text() == "error"
    assert page.locator('td.square[data-pair="p0-1"] .counts').inner_text() == "1 error · 1 drift"
    assert page.locator('td.square[data-pair="p1-0"]').get_attribute("class") == "square st-crash expected"
    assert page.inner_text("#shown") == f"{CELLS} of {CELLS} cells shown"  # the script ran
    assert requested and [url for url in requested if not url.startswith("file://")] == []


def test_a_filter_changes_what_is_shown(page: Any) -> None:
    page.select_option("#filter-status", "error")
    assert page.inner_text("#shown") == f"1 of {CELLS} cells shown"
    assert _visible_rows(page) == 1
    assert page.locator('td.square[data-pair="p0-1"] .counts').inner_text() == "1 error"
    assert page.locator('td.square[data-pair="p1-1"]').get_attribute("class") == "square st-none"
    assert page.locator('td.square[data-pair="p1-1"] .worst').inner_text() == "–"
    assert page.locator("details.pair:not([hidden])").count() == 1
    page.select_option("#filter-status", "")
    page.select_option("#filter-format", "keras")
    assert _visible_rows(page) == CELLS // 2
    page.click("#reset")
    assert _visible_rows(page) == CELLS


def test_clicking_a_square_opens_its_cells(page: Any) -> None:
    assert page.locator("details#p0-1").get_attribute("open") is None
    page.click('td.square[data-pair="p0-1"]')
    assert page.locator("details#p0-1").get_attribute("open") is not None
    row = page.locator('details#p0-1 tr.cell[data-format="keras"]')
    assert row.is_visible()
    assert "TypeError" in row.inner_text() and "hint:" in row.inner_text()
