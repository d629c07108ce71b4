#!/usr/bin/env python3
"""A PNG of a report.html as headless Chromium renders it.

    python scripts/screenshot_report.py RUN_DIR_OR_REPORT_HTML OUT.png [--open PAIR] [--filter KEY=VALUE]...
        [--size WxH] [--first-screen]

Needs `playwright` (the test extra) and a Chromium at $HARNESS_CHROMIUM (default /usr/bin/chromium,
Debian's `chromium` package); `playwright install` is not needed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = os.environ.get("HARNESS_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def report_html(path: Path) -> Path:
    """The report.html a run directory holds, or the file itself."""
    return path / "report.html" if path.is_dir() else path


@contextmanager
def report_page(path: Path, requested: list[str] | None = None, width: int = 1400, height: int = 900
                ) -> Iterator[Page]:
    """A Playwright page with `path` loaded; every URL the page requests is appended to `requested`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            if requested is not None:
                page.on("request", lambda request: requested.append(request.url))
            page.goto(path.resolve().as_uri())
            yield page
        finally:
            browser.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Write the screenshot; exit 2 when the report or the browser is missing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="a run directory or its report.html")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--open", metavar="PAIR", help="expand this pair's cells first, e.g. p0-1")
    parser.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                        help="set a filter first, e.g. status=error")
    parser.add_argument("--size", default="1400x900", metavar="WxH", help="the window (default 1400x900)")
    parser.add_argument("--first-screen", action="store_true", help="only what the window shows, not the whole page")
    args = parser.parse_args(argv)
    width, _, height = args.size.partition("x")
    html = report_html(args.report)
    for needed in (html, Path(CHROMIUM)):
        if not needed.is_file():
            print(f"screenshot_report: {needed}: not found", file=sys.stderr)
            return 2
    with report_page(html, width=int(width), height=int(height)) as page:
        for item in args.filter:
            key, _, value = item.partition("=")
            page.select_option(f"#filter-{key}", value)
        if args.open:
            page.click(f'td.square[data-pair="{args.open}"]')
        page.screenshot(path=str(args.out), full_page=not args.first_screen)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
