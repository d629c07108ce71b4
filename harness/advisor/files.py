"""A project's files as `check` reads them: in the working tree, or at a git commit (`git show REF:path`).

Nothing is checked out: a ref's files are read from the repository's objects, so the working tree,
its index and the user's branch stay as they are. Paths are the project folder's own (the folder
holding pyproject.toml or requirements.txt); `repo_path` gives the path from the repository's root,
which is how GitHub names a file in an annotation or a SARIF location.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.engine import host_output
from harness.errors import UsageError
from harness.matrix.problems import project_root, shown

MAX_FILE = 4 * 1024 * 1024  # a dependency file larger than this is not one


@dataclass(frozen=True)
class ProjectFiles:
    """The files of one project folder, in the working tree (ref None) or at a commit."""

    folder: Path  # the project folder in the working tree
    ref: str | None = None  # as the user wrote it (origin/main, HEAD~1)
    commit: str | None = None  # the full commit id it named
    prefix: str = ""  # the project folder's path from the repository's root, with a trailing '/' ('' at the root)

    @property
    def label(self) -> str:
        """How messages name this side: 'origin/main (3f2a1c9)' or 'the working tree'."""
        return "the working tree" if self.ref is None else f"{self.ref} ({(self.commit or '')[:7]})"

    def names(self) -> list[str]:
        """The files directly in the project folder, sorted."""
        if self.ref is None:
            return sorted(p.name for p in self.folder.iterdir() if p.is_file())
        code, out, err = _git(self.folder, "ls-tree", "--full-tree", "--name-only", f"{self.commit}:{self.prefix}")
        if code:
            raise UsageError(f"{self.label}: cannot list {self.prefix or 'the repository root'}: {_first(err)}")
        return sorted(out.decode("utf-8", "replace").splitlines())

    def read(self, name: str) -> str | None:
        """A file's text, or None when this side has no such file."""
        if self.ref is None:
            path = self.folder / name
            if not path.is_file():
                return None
            if path.stat().st_size > MAX_FILE:
                raise UsageError(f"{name}: larger than {MAX_FILE // 1024**2} MiB; not a dependency file")
            data = path.read_bytes()
        else:
            code, data, _ = _git(self.folder, "show", f"{self.commit}:{self.prefix}{name}")
            if code:
                return None
            if len(data) > MAX_FILE:
                raise UsageError(f"{name} at {self.label}: larger than {MAX_FILE // 1024**2} MiB; not a dependency "
                                 "file")
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise UsageError(f"{name}{'' if self.ref is None else ' at ' + self.label}: not UTF-8 text") from None

    def repo_path(self, name: str) -> str:
        """A file's path from the repository's root (from the project folder outside a repository)."""
        return self.prefix + name


def working_tree(folder: Path) -> ProjectFiles:
    """The project folder's files as they are on disk."""
    folder = _folder(folder)
    return ProjectFiles(folder=folder, prefix=_prefix(folder))


def at_ref(folder: Path, ref: str, flag: str) -> ProjectFiles:
    """The project folder's files at a commit; UsageError naming the flag when the ref is no commit."""
    folder = _folder(folder)
    if not ref.strip() or ref.startswith("-"):
        raise UsageError(f"{flag} {shown(ref)}: expected a commit, branch or tag")
    code, out, err = _git(folder, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    if code == 127:
        raise UsageError(f"{flag}: git is not installed; it reads the project's files at {ref}")
    if code:
        where = _git(folder, "rev-parse", "--show-toplevel")
        if where[0]:
            raise UsageError(f"{flag} {shown(ref)}: {folder} is not in a git repository")
        raise UsageError(f"{flag} {shown(ref)}: no such commit in {where[1].decode().strip()}"
                         + (f" ({_first(err)})" if err.strip() else "")
                         + "; fetch it first (git fetch origin, or actions/checkout with fetch-depth: 0)")
    return ProjectFiles(folder=folder, ref=ref, commit=out.decode().strip(), prefix=_prefix(folder))


def _folder(folder: Path) -> Path:
    path = folder.expanduser().resolve()
    if not path.is_dir():
        raise UsageError(f"--project {shown(str(folder))}: not a folder")
    return path


def _prefix(folder: Path) -> str:
    """The folder's path from its repository's root ('' at the root, or outside any repository)."""
    root = project_root(folder)
    return "" if root == folder else folder.relative_to(root).as_posix() + "/"


def _git(folder: Path, *args: str) -> tuple[int, bytes, str]:
    return host_output(["git", "-c", "core.quotepath=off", *args], cwd=folder)


def _first(text: str) -> str:
    return (text.strip().splitlines() or ["git failed"])[0]
