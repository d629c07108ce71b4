"""Run the composite action's steps (action.yml) here, as a runner would for a pull_request event.

Each `run:` step runs in bash with its `env:` and `if:` evaluated from the inputs, the event payload and the
earlier steps' outputs, with GitHub's files ($GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY, $GITHUB_EVENT_PATH) in a
temporary folder. `uses:` steps (setup-python, the cache, the SARIF upload) are recorded, not run: they are
GitHub's. The expression subset is what action.yml uses; anything else fails the test, so the action cannot
quietly grow an expression this runner reads wrongly. Also a fake GitHub REST API on 127.0.0.1 that keeps
comments in memory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "action.yml"
_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def action() -> dict[str, Any]:
    """action.yml as data."""
    data: dict[str, Any] = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    return data


def pull_request_event(repo: str, number: int, base: str, head: str) -> dict[str, Any]:
    """The parts of a pull_request event payload the action reads."""
    return {"action": "synchronize", "number": number, "pull_request": {
        "number": number, "base": {"sha": base, "repo": {"full_name": repo}},
        "head": {"sha": head, "repo": {"full_name": repo}}}, "repository": {"full_name": repo}}


@dataclass
class ActionRun:
    """What running the steps left: each step's exit code and outputs, the summary, the log."""

    codes: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # `uses:` steps, and steps whose `if:` was false
    log: str = ""
    summary: str = ""

    @property
    def failed(self) -> bool:
        """Whether a step failed (the job would be red)."""
        return any(self.codes.values())


class _Context:
    def __init__(self, inputs: Mapping[str, str], github: Mapping[str, Any], runner: Mapping[str, str],
                 steps: Mapping[str, dict[str, str]]) -> None:
        self.inputs, self.github, self.runner, self.steps = inputs, github, runner, steps
        self.failed = False  # a step failed: steps without an if (success()) are skipped, as on GitHub

    def value(self, ref: str) -> Any:
        """A context reference: inputs.x, github.event.a.b, runner.temp, steps.id.outputs.name, 'literal'."""
        if re.fullmatch(r"'[^']*'", ref):
            return ref[1:-1]
        head, _, rest = ref.partition(".")
        roots: dict[str, Any] = {"inputs": self.inputs, "github": self.github, "runner": self.runner,
                                 "steps": {k: {"outputs": v} for k, v in self.steps.items()}}
        if head not in roots or not rest:
            raise AssertionError(f"action.yml uses an expression this runner does not read: {ref!r}")
        found: Any = roots[head]
        for part in rest.split("."):
            found = found.get(part, "") if isinstance(found, dict) else ""
        return found

    def evaluate(self, expression: str) -> Any:
        """a || b, a && b, !cancelled(), a == 'x', a != 'x', and references: all action.yml uses."""
        if "||" in expression:
            for part in expression.split("||"):
                value = self.evaluate(part.strip())
                if value:
                    return value
            return ""
        if "&&" in expression:
            return all(self.evaluate(part.strip()) for part in expression.split("&&"))
        if expression in ("!cancelled()", "always()", "success()"):
            return expression != "success()" or not self.failed
        compare = re.fullmatch(r"(.+?)\s*(==|!=)\s*(.+)", expression)
        if compare:
            same = str(self.evaluate(compare.group(1))) == str(self.evaluate(compare.group(3)))
            return same if compare.group(2) == "==" else not same
        return self.value(expression)

    def render(self, text: str) -> str:
        return _EXPRESSION.sub(lambda m: str(self.evaluate(m.group(1))), text)


def run_action(inputs: Mapping[str, str], event: Mapping[str, Any], workdir: Path, temp: Path, *,
               env: Mapping[str, str], sha: str = "") -> ActionRun:
    """Every step of action.yml in order, as a runner runs a composite action; `env`: the job's environment."""
    spec = action()
    given = {name: str(inputs.get(name, meta.get("default", ""))) for name, meta in spec["inputs"].items()}
    event_path, output, summary = temp / "event.json", temp / "output", temp / "summary.md"
    event_path.write_text(json.dumps(event), encoding="utf-8")
    summary.write_text("", encoding="utf-8")
    github = {"event": event, "action_path": str(ROOT), "token": env.get("GITHUB_TOKEN", ""), "sha": sha,
              "repository": event.get("repository", {}).get("full_name", "")}
    given = {k: v.replace("${{ github.token }}", github["token"]) for k, v in given.items()}
    result = ActionRun()
    context = _Context(given, github, {"temp": str(temp), "os": "Linux"}, result.outputs)
    base = {**env, "GITHUB_EVENT_PATH": str(event_path), "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ACTION_PATH": str(ROOT), "RUNNER_TEMP": str(temp),
            "GITHUB_REPOSITORY": github["repository"], "GITHUB_ACTIONS": "true"}
    for i, step in enumerate(spec["runs"]["steps"]):
        name = step.get("id") or step.get("name") or f"step{i}"
        condition = str(step.get("if", "")).strip() or "success()"
        context.failed = result.failed
        if not context.evaluate(_EXPRESSION.sub(lambda m: m.group(1), condition)):
            result.skipped.append(f"{name} (if: false)")
            continue
        if "uses" in step:
            result.skipped.append(f"{name} ({step['uses']})")
            continue
        output.write_text("", encoding="utf-8")
        step_env = {**base, "GITHUB_OUTPUT": str(output),
                    **{k: context.render(str(v)) for k, v in (step.get("env") or {}).items()}}
        proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", step["run"]], cwd=workdir, env=step_env,
                              capture_output=True, text=True, timeout=1800, check=False)
        result.codes[name] = proc.returncode
        result.log += f"== {name}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}"
        result.outputs[name] = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    result.summary = summary.read_text(encoding="utf-8")
    return result


@dataclass
class FakeGitHub:
    """Issue comments kept in memory, as GitHub's REST API serves them (the calls `harness pr` makes)."""

    comments: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""
    refuse: int = 0  # answer every write with this HTTP status (403: a fork's read-only token)


@contextmanager
def fake_github() -> Iterator[FakeGitHub]:
    """A fake API on 127.0.0.1 for the duration of the block."""
    state = FakeGitHub()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            return json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")

        def do_GET(self) -> None:
            state.requests.append(("GET", self.path))
            found = re.search(r"[?&]page=(\d+)", self.path)
            page = int(found.group(1)) if found else 1
            self._send(200, state.comments[(page - 1) * 100:page * 100])

        def do_POST(self) -> None:
            state.requests.append(("POST", self.path))
            if state.refuse:
                return self._send(state.refuse, {"message": "Resource not accessible by integration"})
            comment = {"id": len(state.comments) + 1, "body": self._body()["body"],
                       "html_url": f"https://github.example/c/{len(state.comments) + 1}"}
            state.comments.append(comment)
            return self._send(201, comment)

        def do_PATCH(self) -> None:
            state.requests.append(("PATCH", self.path))
            number = int(self.path.rsplit("/", 1)[1])
            comment = next(c for c in state.comments if c["id"] == number)
            comment["body"] = self._body()["body"]
            self._send(200, comment)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def shims(folder: Path, python: str, *, fake_engine: bool) -> dict[str, str]:
    """A bin/ folder put first on PATH: `python` (the test's interpreter; with `fake_engine`, `python -m harness`
    runs with the fake engine and `python -m pip` installs nothing) and `docker` (its save and load recorded, never
    run; with the real engine every other command runs)."""
    folder.mkdir(parents=True, exist_ok=True)
    calls = folder / "calls.log"
    shim = folder / "harness_shim.py"
    shim.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from fake_loads import RefusesInTargets\n"
        "from harness.cli import main\n"
        "sys.exit(main(sys.argv[1:], engine=RefusesInTargets))\n", encoding="utf-8")
    harness = f'exec "{python}" "{shim}" "$@"' if fake_engine else f'exec "{python}" -m harness "$@"'
    pip = 'echo "pip $*" >> "$CALLS"; exit 0' if fake_engine else f'exec "{python}" -m pip "$@"'
    (folder / "python").write_text(
        "#!/bin/bash\n"
        f'if [ "$1 $2" = "-m harness" ]; then shift 2; {harness}; fi\n'
        f'if [ "$1 $2" = "-m pip" ]; then shift 2; {pip}; fi\n'
        f'exec "{python}" "$@"\n', encoding="utf-8")
    # The cache steps' docker save/load are recorded, not run (gigabytes of tar); with the real engine every other
    # docker command is the real one.
    real = "" if fake_engine else shutil.which("docker") or "docker"
    (folder / "docker").write_text(
        "#!/bin/bash\n"
        + (f'case "$1" in save|load) ;; *) exec "{real}" "$@";; esac\n' if real else "")
        + 'echo "docker $*" >> "$CALLS"\n', encoding="utf-8")
    for name in ("python", "docker"):
        (folder / name).chmod(0o755)
    return {"PATH": f"{folder}{os.pathsep}{os.environ.get('PATH', '')}", "CALLS": str(calls)}
