"""Refuse YAML that is cheap to write and costly to read, before it is constructed.

yaml.safe_load already refuses tags that construct Python objects; what it
does not bound is the *shape*: an alias bomb (a few lines that expand to
billions of nodes when walked) or nesting deep enough to exhaust the stack.
The event stream is read first, in time linear in the file's size, counting
the nodes the document would have once every alias is expanded.
"""

from __future__ import annotations

import yaml

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
