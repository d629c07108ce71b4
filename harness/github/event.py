"""The GitHub Actions run a check answers for: the repository, and the pull request of its event, if any."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError

DEFAULT_API = "https://api.github.com"
PR_EVENTS = ("pull_request", "pull_request_target")


@dataclass(frozen=True)
class PullRequest:
    """The pull request a workflow runs for: where to comment, and the commits it compares."""

    repository: str  # owner/name of the base repository: where the comment goes
    number: int
    base_sha: str
    head_sha: str
    fork: bool  # its head is in another repository: the workflow's token cannot comment (pull_request events)


@dataclass(frozen=True)
class Actions:
    """What GitHub Actions tells a step: the API, the repository, the token, and the pull request (or None)."""

    api: str
    repository: str | None
    token: str | None
    pull_request: PullRequest | None
    event_name: str | None = None


def actions(environ: Mapping[str, str], event_path: Path | None = None) -> Actions:
    """The run's context from its environment ($GITHUB_EVENT_PATH, $GITHUB_REPOSITORY, ...); a missing event file
    is no pull request, an unreadable one is exit 2."""
    path = event_path or (Path(environ["GITHUB_EVENT_PATH"]) if environ.get("GITHUB_EVENT_PATH") else None)
    name = environ.get("GITHUB_EVENT_NAME")
    event = _read(path) if path is not None else {}
    pr = event.get("pull_request") if name in PR_EVENTS or (name is None and "pull_request" in event) else None
    return Actions(api=environ.get("GITHUB_API_URL") or DEFAULT_API, repository=environ.get("GITHUB_REPOSITORY"),
                   token=environ.get("GITHUB_TOKEN") or environ.get("INPUT_GITHUB-TOKEN") or None,
                   pull_request=None if not isinstance(pr, dict) else _pull_request(pr, path, environ),
                   event_name=name)


def _read(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UsageError(f"the event payload {path}: not readable JSON ({exc})") from None
    return data if isinstance(data, dict) else {}


def _pull_request(pr: dict[str, object], path: Path | None, environ: Mapping[str, str]) -> PullRequest:
    base, head = pr.get("base"), pr.get("head")
    if not isinstance(base, dict) or not isinstance(head, dict):
        raise UsageError(f"the event payload {path}: its pull_request has no base or head")
    try:
        base_repo, head_repo = base.get("repo") or {}, head.get("repo") or {}
        repository = str(base_repo.get("full_name") or environ.get("GITHUB_REPOSITORY") or "")
        return PullRequest(repository=repository, number=int(str(pr["number"])), base_sha=str(base["sha"]),
                           head_sha=str(head["sha"]),
                           fork=bool(head_repo) and head_repo.get("full_name") != base_repo.get("full_name"))
    except (KeyError, ValueError, TypeError):
        raise UsageError(f"the event payload {path}: its pull_request has no number, base.sha or head.sha") from None
