"""The releases of a package between two versions, as the package index lists them: what `bisect` probes.

The index is asked through the same settings image builds use (images.effective_pip_settings: the
matrix's `pip:` keys, else the host's PIP_* and CA variables), with the wheel cache's client, so a
private index with credentials and its CA bundle answers here as it does to builds. A release counts
when it is final (no pre-release), not yanked, and has a file this environment's Python can install
on this machine (a wheel with its cpXY or py3 tag and this architecture or none, or its
requires-python allowing that Python).
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from harness.errors import UsageError
from harness.wheelcache import Link

GRANULARITIES = ("minor", "release")  # the newest release of each minor in between, or every release


class Index(Protocol):
    """What listing releases needs of a package index (wheelcache.Upstream is one)."""

    def project(self, project: str) -> tuple[list[Link], bool]:
        """Every file of a project the indexes list, and whether any index answered."""


@dataclass(frozen=True)
class Listing:
    """The releases between two versions, in the order a bisection walks them (from the first to the second)."""

    package: str
    releases: tuple[str, ...]
    skipped: tuple[str, ...] = ()  # releases in the range with no file for this Python and machine


def _installable(link: Link, python: tuple[int, int], machine: str) -> bool:
    """Whether this Python on this machine can install the file."""
    requires = link.attributes.get("data-requires-python")
    if requires:
        try:
            if not SpecifierSet(requires).contains(f"{python[0]}.{python[1]}", prereleases=True):
                return False
        except InvalidSpecifier:
            pass  # an index's odd attribute: the file's tags decide
    if not link.filename.endswith(".whl"):
        return True
    _, _, _, tags = parse_wheel_filename(link.filename)
    return any(_fits(tag, python, machine) for tag in tags)


def _fits(tag: Tag, python: tuple[int, int], machine: str) -> bool:
    cp = f"cp{python[0]}{python[1]}"
    interpreter = tag.interpreter in (cp, "py3", f"py{python[0]}{python[1]}") or (
        tag.abi == "abi3" and tag.interpreter.startswith("cp3") and int(tag.interpreter[3:] or 0) <= python[1])
    return interpreter and (tag.platform == "any" or (tag.platform.startswith(("manylinux", "linux"))
                                                      and tag.platform.endswith(machine)))


def _version(link: Link) -> Version | None:
    try:
        if link.filename.endswith(".whl"):
            return Version(str(parse_wheel_filename(link.filename)[1]))
        return Version(str(parse_sdist_filename(link.filename)[1]))
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


def releases(index: Index, package: str, python: str, *, machine: str | None = None,
             pre: bool = False) -> tuple[list[Version], list[Version]]:
    """(installable final releases, final releases without a file for this Python and machine), sorted; `pre`: with
    pre-releases (release candidates, betas) too, never development releases."""
    links, answered = index.project(canonicalize_name(package))
    if not answered:
        raise UsageError(f"the package index did not answer for {package}: check PIP_INDEX_URL (or the matrix's "
                         "pip: keys), the network, and the CA bundle (harness doctor checks them)")
    wanted = tuple(int(x) for x in python.split(".")[:2])
    arch = machine or platform.machine()
    usable: set[Version] = set()
    seen: set[Version] = set()
    for link in links:
        version = _version(link)
        if version is None or (version.is_prerelease and not pre) or version.is_devrelease or (
                "data-yanked" in link.attributes):
            continue
        seen.add(version)
        if _installable(link, (wanted[0], wanted[1]), arch):
            usable.add(version)
    return sorted(usable), sorted(seen - usable)


def between(found: Sequence[Version], first: Version, last: Version, granularity: str = "minor") -> list[Version]:
    """The releases from `first` to `last` (both kept, in that order, whichever is newer): every one, or the newest
    of each minor strictly between the two."""
    if first == last:
        return [first]
    low, high = sorted((first, last))
    inside = [v for v in found if low < v < high]
    if granularity == "minor":
        newest: dict[tuple[int, int], Version] = {}
        for v in inside:
            key = (v.major, v.minor)
            if key not in {(low.major, low.minor), (high.major, high.minor)}:
                newest[key] = max(newest.get(key, v), v)
        inside = sorted(newest.values())
    ordered = [low, *inside, high]
    return ordered if first <= last else ordered[::-1]


def listing(index: Index, package: str, python: str, first: str, last: str, *, granularity: str = "minor",
            machine: str | None = None) -> Listing:
    """The releases a bisection from `first` to `last` walks; UsageError when an endpoint is not a release here."""
    usable, without = releases(index, package, python, machine=machine)
    for end in (first, last):
        if Version(end) not in usable:
            why = "has no file for this Python and machine" if Version(end) in without else "is not on the index"
            raise UsageError(f"{package} {end} {why} (Python {python}); the index lists "
                             f"{', '.join(str(v) for v in usable[-6:])}{' ...' if len(usable) > 6 else ''}")
    walk = between(usable, Version(first), Version(last), granularity)
    low, high = sorted((Version(first), Version(last)))
    return Listing(package, tuple(str(v) for v in walk), tuple(str(v) for v in without if low < v < high))
