"""Reports: report.json is built from the run directory; every other format from report.json."""
