"""Read a matrix file: its bytes, then its YAML, refusing YAML that is cheap to write and costly to read.

yaml.safe_load already refuses tags that construct Python objects; what it
does not bound is the *shape*: an alias bomb (a few lines that expand to
billions of nodes when walked) or nesting deep enough to exhaust the stack.
The event stream is read first, in time linear in the file's size, counting
the nodes the document would have once every alias is expanded.
"""


from __future__ import annotations

from pathlib import Path

import yaml

from harness.errors import MatrixError
from harness.untrusted import UnsafeFile, read_named

MAX_BYTES = 1_000_000
MAX_NODES = 100_000  # after alias expansion; a large matrix has a few thousand
MAX_DEPTH = 50


def shape_problem(text: str) -> str | None:
    """Why a YAML text is refused before parsing it into objects, or None."""
    if len(text) > MAX_BYTES:
        return f"file too large for a matrix ({len(text)} bytes, at most {MAX_BYTES})"
    sizes: dict[str, int] = {}  # anchor -> expanded node count
    stack: list[tuple[str | None, int]] = [(None, 0)]  # (anchor, nodes so far) per open collection
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            stack.append((event.anchor, 1))
            if len(stack) > MAX_DEPTH:
                return f"nesting deeper than {MAX_DEPTH} levels: refused"
            continue
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            anchor, count = stack.pop()
            if anchor:
                sizes[anchor] = count
        elif isinstance(event, yaml.ScalarEvent):
            count = 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            count = sizes.get(event.anchor or "", 1)
        else:
            continue
        anchor, total = stack[-1]
        stack[-1] = (anchor, total + count)
        if stack[-1][1] > MAX_NODES:
            return f"the document expands to more than {MAX_NODES} nodes (an alias bomb?): refused"
    return None


def read_bytes(path: str) -> bytes:
    """The file's bytes, or MatrixError with one readable line.

    A regular file only, read up to MAX_BYTES: a FIFO would block the read for ever and /dev/zero never ends
    (neither is read from; a link to a file is followed, the matrix being the user's own choice).
    """
    try:
        return read_named(Path(path), MAX_BYTES)
    except FileNotFoundError:
        problem = "file not found"
    except UnsafeFile as exc:
        problem = ("is a directory, expected a YAML file" if Path(path).is_dir()
                   else str(exc).removeprefix(f"{path}: "))
    except OSError as exc:
        problem = f"cannot read the file: {exc.strerror or exc}"
    except ValueError as exc:  # e.g. a NUL byte in the path
        problem = f"not a usable path: {exc}"
    raise MatrixError(path, [problem])


class _Loader(yaml.SafeLoader):
    """safe_load's loader, noting every key a mapping repeats (YAML keeps the last one silently)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.repeated: list[tuple[int, str]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                self.repeated.append((line, f"line {line}: key {key!r} repeats the one on line {seen[key]}; YAML "
                                            "would keep only the last: merge them"))
            else:
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _safe_load(text: str) -> object:
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    if loader.repeated:
        raise _Repeated([problem for _, problem in sorted(loader.repeated)])
    return data


class _Repeated(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems)
        self.problems = problems


def load_yaml(raw: bytes, path: str) -> object:
    """Parsed YAML, or MatrixError naming the line of a syntax error (or every repeated key)."""
    try:
        text = raw.decode("utf-8")
        refused = shape_problem(text)
        if refused is None:
            return _safe_load(text)
        problem = refused
    except _Repeated as exc:
        raise MatrixError(path, exc.problems) from None
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text (bad byte at offset {exc.start})"
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = f"{where}invalid YAML: {exc.problem or exc.context or 'syntax error'}"
    except yaml.YAMLError as exc:
        problem = f"invalid YAML: {exc}"
    except ValueError as exc:  # e.g. a number of thousands of digits
        problem = f"invalid YAML: {str(exc)[:200]}"
    raise MatrixError(path, [problem])
