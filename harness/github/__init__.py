"""A check's answer where a pull request is reviewed: the event it runs for (event.py), what it says there (the
comment, the job summary, the annotations and the SARIF, rendered from report.json and checks.json: answer.py),
and GitHub's REST API for the one comment it keeps up to date (api.py). `harness pr` ties them together; the
composite action (action.yml) only runs it."""
