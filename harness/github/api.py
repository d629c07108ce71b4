"""GitHub's REST API, for the one pull request comment a check keeps up to date: found by its marker, edited in
place when it exists, created when not. The standard library's HTTP client: no dependency for three calls."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from harness.github.event import PullRequest

TIMEOUT = 30.0  # seconds per request
PER_PAGE = 100
MAX_PAGES = 30  # 3,000 comments: a pull request with more is looked through no further


class ApiError(Exception):
    """A request GitHub refused or that did not reach it; the message says which and why."""


def _request(api: str, token: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        api.rstrip("/") + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                 "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "harness-check",
                 **({"Content-Type": "application/json"} if body is not None else {})})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            text = response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        raise ApiError(f"{method} {path}: HTTP {exc.code} {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ApiError(f"{method} {path}: {getattr(exc, 'reason', exc)}") from None
    return json.loads(text) if text else None


def upsert_comment(api: str, token: str, pr: PullRequest, marker: str, body: str) -> tuple[str, str]:
    """('updated' or 'created', the comment's URL): the pull request's comment holding `marker` is edited, else one
    is added."""
    base = f"/repos/{pr.repository}/issues"
    for page in range(1, MAX_PAGES + 1):
        comments = _request(api, token, "GET", f"{base}/{pr.number}/comments?per_page={PER_PAGE}&page={page}")
        for comment in comments or []:
            if marker in str(comment.get("body") or ""):
                edited = _request(api, token, "PATCH", f"{base}/comments/{comment['id']}", {"body": body})
                return "updated", str((edited or {}).get("html_url") or comment.get("html_url") or "")
        if not comments or len(comments) < PER_PAGE:
            break
    created = _request(api, token, "POST", f"{base}/{pr.number}/comments", {"body": body})
    return "created", str((created or {}).get("html_url") or "")
