"""Versions that follow the package index: `latest`, `latest-pre` and pip specifiers, made exact at plan time.

A matrix may ask for `tensorflow: latest`, `keras: latest-pre` or `keras: "~=3.12.0"`. Before an image is planned
each becomes the newest release the index serves that matches and has a file this environment's Python can
install on this machine (advisor/releases.py: the same index, through the same pip settings image builds use);
a newer release without such a file is skipped, and the reason kept. The exact versions go into the environment
id, the image tag (so a new release is a new image, and no release leaves the tag as it was), run.json and every
report.

Each resolution is remembered on this host (the harness cache's releases.json). With --offline, or when the index
does not answer, a selector takes the newest version it resolved to here before, whose image is normally built,
and says so. A run directory that already holds a run (--resume, a phase job) and a --versions file pin them:
every job of one run installs the same releases.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from harness.advisor.releases import Index, releases
from harness.agent.protocol import write_json_atomic
from harness.errors import UsageError
from harness.images import effective_pip_settings
from harness.matrix import Matrix, PipSettings
from harness.matrix.environments import SELECTORS, Resolve
from harness.wheelcache import Link, Upstream, redact

log = logging.getLogger(__name__)
RECORD = "releases.json"  # in the harness cache: what each selector resolved to on this host
LATEST, LATEST_PRE = SELECTORS
SHOWN_SKIPPED = 4


def key(package: str, selector: str, python: str) -> str:
    """How a resolution is named in releases.json, a --versions file and run.json: 'keras latest py3.13'."""
    return f"{package} {selector} py{python}"


@dataclass(frozen=True)
class Choice:
    """What one selector resolved to, for one Python, and how."""

    package: str
    selector: str
    python: str
    version: str
    skipped: tuple[str, ...] = ()  # newer matching releases without a file for this Python and machine
    how: str = "index"  # index | pinned (a run directory or --versions) | offline | unreachable (this host's record)
    when: str | None = None  # offline or unreachable: when this host resolved it

    def words(self) -> str:
        """One line: 'keras latest -> 3.15.1 (Python 3.13)', and what it skipped or fell back to."""
        text = f"{self.package} {self.selector} -> {self.version} (Python {self.python})"
        if self.skipped:
            shown = ", ".join(self.skipped[:SHOWN_SKIPPED]) + (" ..." if len(self.skipped) > SHOWN_SKIPPED else "")
            text += f"; skipped {shown}: no file for Python {self.python} on this machine"
        if self.how == "pinned":
            text += "; as this run resolved it"
        elif self.how in ("offline", "unreachable"):
            why = "--offline" if self.how == "offline" else "the package index did not answer"
            text += f"; {why}: the newest this host resolved it to ({(self.when or '')[:10]})"
        return text


def _matches(selector: str, version: Version) -> bool:
    if version.is_devrelease:
        return False
    if selector == LATEST:
        return not version.is_prerelease
    if selector == LATEST_PRE:
        return True
    return SpecifierSet(selector).contains(version)


def choose(usable: list[Version], without: list[Version], selector: str) -> tuple[Version | None, list[Version]]:
    """The newest usable release a selector matches, and the newer matching ones skipped for want of a file."""
    found = max((v for v in usable if _matches(selector, v)), default=None)
    skipped = sorted((v for v in without if _matches(selector, v) and (found is None or v > found)), reverse=True)
    return found, skipped


class _Once:
    """An index asked once per project for the length of a resolution."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self.pages: dict[str, tuple[list[Link], bool]] = {}

    def project(self, project: str) -> tuple[list[Link], bool]:
        if project not in self.pages:
            self.pages[project] = self.index.project(project)
        return self.pages[project]


class Resolver:
    """Makes selectors exact (a matrix parser's `Resolve`): from pinned versions, the index, or this host's record."""

    def __init__(self, index: Index | None, record: Path | None = None, *, offline: bool = False,
                 pinned: Mapping[str, str] | None = None, machine: str | None = None) -> None:
        self.index = None if index is None else _Once(index)
        self.record = record
        self.offline = offline
        self.pinned = dict(pinned or {})
        self.machine = machine
        self.choices: dict[str, Choice] = {}

    def __call__(self, package: str, selector: str, python: str, at: str, problems: list[str]) -> str | None:
        name = key(package, selector, python)
        if name not in self.choices:
            choice = self._choose(package, selector, python, at, problems)
            if choice is None:
                return None
            self.choices[name] = choice
        return self.choices[name].version

    def _choose(self, package: str, selector: str, python: str, at: str, problems: list[str]) -> Choice | None:
        name = key(package, selector, python)
        if name in self.pinned:
            return Choice(package, selector, python, self.pinned[name], how="pinned")
        if self.offline or self.index is None:
            return self._remembered((package, selector, python), at, problems, "offline")
        try:
            usable, without = releases(self.index, package, python, machine=self.machine, pre=True)
        except UsageError:
            return self._remembered((package, selector, python), at, problems, "unreachable")
        found, skipped = choose(usable, without, selector)
        if found is None:
            newest = ", ".join(str(v) for v in skipped[:SHOWN_SKIPPED])
            problems.append(f"{at}: no release of {package} matches {selector} with a file for Python {python} on "
                            f"this machine" + (f" ({newest}: no such file)" if newest else ""))
            return None
        choice = Choice(package, selector, python, str(found), tuple(str(v) for v in skipped))
        self._remember(choice)
        return choice

    def _remembered(self, asked: tuple[str, str, str], at: str, problems: list[str], how: str) -> Choice | None:
        package, selector, python = asked
        known = self._known().get(key(package, selector, python))
        if not isinstance(known, dict) or not isinstance(known.get("version"), str):
            why = "--offline" if how == "offline" else "the package index did not answer"
            problems.append(f"{at}: {package} {selector} is decided by the package index, and {why}: this host never "
                            f"resolved it for Python {python}; pin a version, or reach the index once")
            return None
        return Choice(package, selector, python, known["version"], how=how, when=str(known.get("when") or ""))

    def _known(self) -> dict[str, Any]:
        if self.record is None or not self.record.is_file():
            return {}
        try:
            data = json.loads(self.record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _remember(self, choice: Choice) -> None:
        """Keep the newest version a selector resolved to (an older one a pinned run asked for never replaces it)."""
        if self.record is None:
            return
        known = self._known()
        name = key(choice.package, choice.selector, choice.python)
        before = known.get(name)
        if isinstance(before, dict) and _newer_or_same(str(before.get("version")), choice.version):
            return
        known[name] = {"version": choice.version, "when": dt.datetime.now(dt.timezone.utc).isoformat()}
        try:
            self.record.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.record, dict(sorted(known.items())))
        except OSError as exc:
            log.warning("%s: not written (%s)", self.record, exc)

    def lines(self) -> list[str]:
        """What every selector resolved to, one line each, in the order they were asked."""
        return [c.words() for c in self.choices.values()]

    def resolved(self) -> dict[str, str]:
        """The resolutions as a --versions file holds them."""
        return {name: c.version for name, c in self.choices.items()}


def _newer_or_same(old: str, new: str) -> bool:
    try:
        return Version(old) >= Version(new)
    except InvalidVersion:
        return False


@dataclass
class Versions:
    """What parse_matrix takes to resolve a matrix's selectors, keeping the resolver it made (to print its lines)."""

    environ: Mapping[str, str]
    record: Path | None
    offline: bool = False
    pinned: Mapping[str, str] = field(default_factory=dict)
    index: Callable[[PipSettings], Index] | None = None  # default: the real indexes (wheelcache.Upstream)
    machine: str | None = None  # whose wheels count; default this one's
    resolver: Resolver | None = None

    def __call__(self, pip: PipSettings) -> Resolve:
        settings = effective_pip_settings(pip, self.environ)
        index = None if self.offline else (self.index or Upstream)(settings)
        log.debug("versions from %s", redact(settings.index_url or "https://pypi.org/simple"))
        self.resolver = Resolver(index, self.record, offline=self.offline, pinned=self.pinned, machine=self.machine)
        return self.resolver

    def lines(self) -> list[str]:
        """What the last matrix's selectors resolved to."""
        return [] if self.resolver is None else self.resolver.lines()

    def resolved(self) -> dict[str, str]:
        """The last matrix's resolutions, as a --versions file holds them."""
        return {} if self.resolver is None else self.resolver.resolved()


def recorded(matrix: Matrix) -> dict[str, str]:
    """The resolutions an expanded matrix (run.json's) holds: every selector of every environment, exact."""
    found: dict[str, str] = {}
    for env in matrix.environments:
        exact = {env.tensorflow_package: env.tensorflow, "keras": env.keras, "tf-keras": env.tf_keras}
        for package, selector in env.selectors:
            spec = exact.get(package) or ""
            if spec.startswith("=="):
                found[key(package, selector, env.python)] = spec[2:]
    return found


def read_versions(path: Path) -> dict[str, str]:
    """A --versions file: {"keras latest py3.13": "3.15.1", ...} as `harness plan` prints under "versions", or a
    run.json (the versions that run resolved); UsageError when it is neither."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"--versions {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if isinstance(data, dict) and isinstance(data.get("matrix"), dict):
        from harness.matrix import matrix_from_dict

        try:
            return recorded(matrix_from_dict(data["matrix"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"--versions {path}: not a harness run.json ({exc!r})") from None
    if isinstance(data, dict) and isinstance(data.get("versions"), dict):
        data = data["versions"]
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise UsageError(f"--versions {path}: expected a mapping like {{\"keras latest py3.13\": \"3.15.1\"}}")
    return dict(data)
