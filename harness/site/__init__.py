"""The compatibility site: a static site built from the reports of one or more runs (`harness site`).

build.py decides everything a page shows, from report.json alone (the per-path tables, verdicts and causes the
report computed; history by diff.category()); render.py lays it out as HTML and writes shields.io endpoints.
"""
