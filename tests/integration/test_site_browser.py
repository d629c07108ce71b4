"""The compatibility site in a real headless Chromium: the table renders, a square opens its path's page, the
history is there, and nothing is fetched from elsewhere.

Needs Debian's `chromium` package and `playwright` (the test extra); no Docker. Without Chromium the tests fail in
CI (CI is set) and are skipped elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fake_run import ENV_A, ENV_B
from harness.site.build import load_runs
from harness.site.render import write_site
from screenshot_report import report_page
from site_runs import two_nights

pytestmark = pytest.mark.integration


@pytest.fixture
def requested() -> list[str]:
    """Every URL the pages requested."""
    return []


@pytest.fixture
def page(tmp_path: Path, browser_available: None, requested: list[str]) -> Iterator[Any]:
    write_site(load_runs(two_nights(tmp_path / "runs")), tmp_path / "site")
    with report_page(tmp_path / "site" / "index.html", requested) as page:
        yield page


def test_the_table_opens_a_path_page_and_fetches_nothing(page: Any, requested: list[str]) -> None:
    assert page.locator("table.grid").count() == 2
    keras = page.locator("#table-keras")
    assert keras.locator("tr").count() == 1 + 2
    square = keras.locator(f'a[href="paths/{ENV_A.id}--{ENV_B.id}.html"]')
    assert square.inner_text() == "0/1"
    assert "Keras 3.3.3 reads .keras from tf.keras 2.15.0" in (square.locator("..").get_attribute("title") or "")
    assert page.evaluate("getComputedStyle(document.querySelector('td.share-none')).backgroundColor") == (
        "rgb(255, 235, 233)")  # the stylesheet loaded
    square.click()
    page.wait_for_load_state()
    assert page.inner_text("#title").startswith("Keras 3.3.3 reads files from tf.keras 2.15.0")
    assert page.locator("#routes tr").count() >= 2
    assert "keras2-module-move" in page.inner_text("#causes")
    assert page.locator("#history tr").count() == 1 + 2
    assert "pass → error (regressed)" in page.inner_text("#history")
    page.click("text=history")
    page.wait_for_load_state()
    assert page.locator("#runs tr").count() == 1 + 2
    assert requested and [url for url in requested if not url.startswith("file://")] == []
