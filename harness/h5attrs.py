"""The string attributes of an HDF5 file's root group, read on the host without the HDF5 library.

A Keras .h5 file says on its root group what wrote it and what it holds: `model_config` (the
architecture as JSON), `training_config`, `keras_version`, `backend` (a weights file: `layer_names`
and no `model_config`). That is all the host reads of it, and the file is untrusted, so it is not
opened with h5py: the HDF5 C library parses every structure of the file, and its history of
memory-safety bugs on crafted files is long. pyfive, a pure-Python reader, would be memory-safe but
reads whatever sizes the file claims (a dataspace can claim 2**64 elements). This reader follows
only the structures that lead to the root group's attribute messages (the superblock, the root
object header and its continuation blocks, string and variable-length string types, scalar and
one-dimensional dataspaces, the global heap for variable-length strings) and every step has a
bound: the bytes read in all, the messages and continuation blocks followed, the size of one value.
Anything else (attributes stored densely in a fractal heap, shared datatypes, compound types) is
left unread and said to be so; nothing here raises on a malformed file but H5Error.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import BinaryIO

SIGNATURE = b"\x89HDF\r\n\x1a\n"
MAX_READ = 96 << 20  # bytes read from one file in all
MAX_VALUE = 64 << 20  # one attribute's value
MAX_MESSAGES = 4096
MAX_CHUNKS = 64  # continuation blocks of the root object header
MAX_ELEMENTS = 100_000  # strings in one attribute (a weights file's layer names)
UNDEFINED = 0xFFFFFFFFFFFFFFFF
ATTRIBUTE, ATTRIBUTE_INFO, CONTINUATION, SYMBOL_TABLE, LINK = 0x000C, 0x0015, 0x0010, 0x0011, 0x0006
MAX_MEMBERS = 10_000  # names of the root group's members read
MAX_NODES = 1_000  # B-tree nodes of the root group visited
STRING, VARIABLE = 3, 9


class H5Error(ValueError):
    """The file is not an HDF5 file this reader can follow (truncated, malformed, or beyond its bounds)."""


@dataclass
class RootAttributes:
    """What the root group says: each string attribute read (a str, or a list of str), the names of its members
    (groups and datasets), and what was left unread."""

    values: dict[str, str | list[str]] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)  # names (or kinds) of attributes not decoded, and why

    def text(self, name: str) -> str | None:
        """A scalar string attribute, or None."""
        value = self.values.get(name)
        return value if isinstance(value, str) else None


class _File:
    """Bounded reads at absolute offsets."""

    def __init__(self, fh: BinaryIO, size: int) -> None:
        self.fh = fh
        self.size = size
        self.budget = MAX_READ
        self.offsets = 8
        self.lengths = 8
        self.base = 0

    def read(self, offset: int, n: int) -> bytes:
        if n < 0 or offset < 0 or offset + n > self.size:
            raise H5Error(f"a structure at byte {offset} runs past the end of the file")
        self.budget -= n
        if self.budget < 0:
            raise H5Error(f"more than {MAX_READ} bytes to read")
        self.fh.seek(offset)
        data = self.fh.read(n)
        if len(data) != n:
            raise H5Error("the file is shorter than it says")
        return data

    def number(self, data: bytes, at: int, size: int) -> int:
        if at + size > len(data):
            raise H5Error("a structure is cut short")
        return int.from_bytes(data[at:at + size], "little")

    def address(self, data: bytes, at: int) -> int:
        value = self.number(data, at, self.offsets)
        return value if value == (1 << (8 * self.offsets)) - 1 else value + self.base


def read_root_attributes(fh: BinaryIO, size: int) -> RootAttributes:
    """The string attributes of the root group of the HDF5 file open in `fh` (of `size` bytes)."""
    f = _File(fh, size)
    root = _superblock(f)
    found = RootAttributes()
    for message_type, data in _messages(f, root):
        if message_type == ATTRIBUTE:
            _attribute(f, data, found)
        elif message_type == SYMBOL_TABLE:
            found.members += _symbol_table(f, data)
        elif message_type == LINK:
            found.members += _link_name(f, data)
        elif message_type == ATTRIBUTE_INFO and len(data) > 2 + f.offsets:
            heap = f.address(data, 2 + (2 if data[1] & 1 else 0))
            if heap != (1 << (8 * f.offsets)) - 1:
                found.unread.append("attributes stored densely (a fractal heap)")
    return found


def _superblock(f: _File) -> int:
    """The root group's object header address; sets the sizes of offsets and lengths."""
    at = 0
    while True:
        if at + 48 > f.size:
            raise H5Error("no HDF5 signature")
        if f.read(at, 8) == SIGNATURE:
            break
        at = 512 if at == 0 else at * 2
        if at > min(f.size, 1 << 30):
            raise H5Error("no HDF5 signature")
    head = f.read(at, 48)
    version = head[8]
    if version in (0, 1):
        f.offsets, f.lengths = head[13], head[14]
        start = at + (24 if version == 0 else 28)
    elif version in (2, 3):
        f.offsets, f.lengths = head[9], head[10]
        start = at + 12
    else:
        raise H5Error(f"superblock version {version}")
    if f.offsets not in (2, 4, 8) or f.lengths not in (2, 4, 8):
        raise H5Error("odd sizes of offsets or lengths")
    if version in (0, 1):
        body = f.read(start, 4 * f.offsets + 2 * f.offsets + 24)
        f.base = f.number(body, 0, f.offsets)
        return f.address(body, 4 * f.offsets + f.offsets)  # the root symbol table entry's object header address
    body = f.read(start, 4 * f.offsets)
    f.base = f.number(body, 0, f.offsets)
    return f.address(body, 3 * f.offsets)


def _messages(f: _File, address: int) -> list[tuple[int, bytes]]:
    """(type, data) of every message of the object header at address, continuation blocks followed."""
    first = f.read(address, 4)
    if first == b"OHDR":
        return _messages_v2(f, address)
    if first[0] != 1:
        raise H5Error(f"object header version {first[0]}")
    prefix = f.read(address, 16)
    chunks = [(address + 16, f.number(prefix, 8, 4))]
    found: list[tuple[int, bytes]] = []
    while chunks:
        start, length = chunks.pop(0)
        if len(found) > MAX_MESSAGES or length > MAX_VALUE:
            raise H5Error("too many header messages")
        block = f.read(start, length)
        at = 0
        while at + 8 <= len(block):
            kind, size = f.number(block, at, 2), f.number(block, at + 2, 2)
            data = block[at + 8:at + 8 + size]
            at += 8 + size
            found.append((kind, data))
            if kind == CONTINUATION:
                chunks.append(_continuation(f, data, found))
    return found


def _continuation(f: _File, data: bytes, found: list[tuple[int, bytes]]) -> tuple[int, int]:
    if sum(1 for kind, _ in found if kind == CONTINUATION) > MAX_CHUNKS:
        raise H5Error("too many continuation blocks")
    return f.address(data, 0), f.number(data, f.offsets, f.lengths)


def _messages_v2(f: _File, address: int) -> list[tuple[int, bytes]]:
    head = f.read(address, 6)
    if head[4] != 2:
        raise H5Error(f"object header version {head[4]}")
    flags = head[5]
    at = address + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
    width = 1 << (flags & 3)
    length = f.number(f.read(at, width), 0, width)
    chunks = [(at + width, length - 4, False)]  # the checksum ends the chunk
    found: list[tuple[int, bytes]] = []
    ordered = 2 if flags & 0x04 else 0
    while chunks:
        start, size, signed = chunks.pop(0)
        if len(found) > MAX_MESSAGES or size > MAX_VALUE or size < 0:
            raise H5Error("too many header messages")
        block = f.read(start, size)
        if signed:
            if block[:4] != b"OCHK":
                raise H5Error("a continuation block without its signature")
            block = block[4:]
        pos = 0
        while pos + 4 + ordered <= len(block):
            kind, length = block[pos], f.number(block, pos + 1, 2)
            data = block[pos + 4 + ordered:pos + 4 + ordered + length]
            pos += 4 + ordered + length
            found.append((kind, data))
            if kind == CONTINUATION:
                where, total = _continuation(f, data, found)
                chunks.append((where, total - 4, True))
    return found


def _attribute(f: _File, data: bytes, found: RootAttributes) -> None:
    """Decode one attribute message into found (a string attribute), or say it was left unread."""
    if len(data) < 8:
        raise H5Error("an attribute message is cut short")
    version, flags = data[0], data[1]
    name_size, type_size, space_size = (f.number(data, 2, 2), f.number(data, 4, 2), f.number(data, 6, 2))
    at = 8 + (1 if version == 3 else 0)
    if version not in (1, 2, 3):
        found.unread.append(f"an attribute message of version {version}")
        return

    def padded(n: int) -> int:
        return (n + 7) & ~7 if version == 1 else n

    name = data[at:at + name_size].split(b"\0")[0].decode("utf-8", "replace")
    at += padded(name_size)
    datatype = data[at:at + type_size]
    at += padded(type_size)
    dataspace = data[at:at + space_size]
    at += padded(space_size)
    if flags & 3:
        found.unread.append(f"{name}: a shared datatype or dataspace")
        return
    count = _elements(f, dataspace)
    kind, element = datatype[0] & 0x0F if datatype else -1, f.number(datatype, 4, 4) if len(datatype) >= 8 else 0
    if kind == STRING:
        values = _fixed_strings(data[at:], element, count)
    elif kind == VARIABLE and datatype[1] & 0x0F == 1:
        values = _variable_strings(f, data[at:], count)
    else:
        found.unread.append(f"{name}: not a string")
        return
    found.values[name] = values[0] if count == 1 and values else values


def _symbol_table(f: _File, data: bytes) -> list[str]:
    """The member names of an old-style group: its B-tree of symbol nodes, the names in its local heap."""
    tree, heap = f.address(data, 0), f.address(data, f.offsets)
    head = f.read(heap, 8 + 2 * f.lengths + f.offsets)
    if head[:4] != b"HEAP":
        raise H5Error("a group's local heap without its signature")
    segment_size, segment = f.number(head, 8, f.lengths), f.address(head, 8 + 2 * f.lengths)
    names = f.read(segment, min(segment_size, MAX_VALUE))
    found: list[str] = []
    pending, visited = [tree], 0
    while pending and visited < MAX_NODES and len(found) < MAX_MEMBERS:
        node, visited = pending.pop(), visited + 1
        top = f.read(node, 8 + 2 * f.offsets)
        if top[:4] == b"SNOD":
            count = f.number(top, 6, 2)
            entry = 2 * f.offsets + 24
            body = f.read(node + 8, count * entry)
            for i in range(count):
                start = f.number(body, i * entry, f.offsets)
                found.append(names[start:names.find(b"\0", start)].decode("utf-8", "replace"))
            continue
        if top[:4] != b"TREE" or top[4] != 0:
            raise H5Error("a group's B-tree node without its signature")
        used = f.number(top, 6, 2)  # children: symbol nodes at level 0, deeper B-tree nodes above
        body = f.read(node + 8 + 2 * f.offsets, used * (f.lengths + f.offsets) + f.lengths)
        children = [f.address(body, f.lengths + i * (f.lengths + f.offsets)) for i in range(used)]
        pending += children
    return found


def _link_name(f: _File, data: bytes) -> list[str]:
    """The name a new-style group's link message gives its member."""
    if len(data) < 3 or data[0] != 1:
        return []
    flags, at = data[1], 2
    at += (1 if flags & 0x08 else 0) + (8 if flags & 0x04 else 0) + (1 if flags & 0x10 else 0)
    width = 1 << (flags & 3)
    size = f.number(data, at, width)
    return [data[at + width:at + width + size].decode("utf-8", "replace")]


def _elements(f: _File, space: bytes) -> int:
    if len(space) < 4:
        raise H5Error("a dataspace is cut short")
    version, rank = space[0], space[1]
    if version == 2 and space[3] == 2:  # a null dataspace: no value
        return 0
    at = 8 if version == 1 else 4
    count = 1
    for _ in range(rank):
        count *= f.number(space, at, f.lengths)
        at += f.lengths
        if count > MAX_ELEMENTS:
            raise H5Error(f"an attribute of more than {MAX_ELEMENTS} values")
    return count


def _fixed_strings(data: bytes, size: int, count: int) -> list[str]:
    if size * count > min(len(data), MAX_VALUE):
        raise H5Error("a string attribute runs past its message")
    return [data[i * size:(i + 1) * size].rstrip(b"\0 ").decode("utf-8", "replace") for i in range(count)]


def _variable_strings(f: _File, data: bytes, count: int) -> list[str]:
    step = 4 + f.offsets + 4
    if step * count > len(data):
        raise H5Error("a string attribute runs past its message")
    values = []
    for i in range(count):
        length = f.number(data, i * step, 4)
        collection, index = f.address(data, i * step + 4), f.number(data, i * step + 4 + f.offsets, 4)
        values.append(_heap_object(f, collection, index, length).decode("utf-8", "replace"))
    return values


def _heap_object(f: _File, collection: int, index: int, length: int) -> bytes:
    """One object of a global heap collection (a variable-length string's bytes)."""
    if length > MAX_VALUE:
        raise H5Error("a string longer than the reader reads")
    head = f.read(collection, 8 + f.lengths)
    if head[:4] != b"GCOL":
        raise H5Error("a global heap without its signature")
    end = collection + f.number(head, 8, f.lengths)
    at = collection + 8 + f.lengths
    while at + 8 + f.lengths <= end:
        entry = f.read(at, 8 + f.lengths)
        number, size = f.number(entry, 0, 2), f.number(entry, 8, f.lengths)
        if number == 0:  # free space: the rest of the collection
            break
        if number == index:
            return f.read(at + 8 + f.lengths, min(size, length))
        at += 8 + f.lengths + ((size + 7) & ~7)
    raise H5Error("a string's heap object is missing")


def root_attributes(path: str, size: int) -> RootAttributes:
    """The root group's string attributes of the HDF5 file at path (H5Error when it cannot be followed)."""
    with open(path, "rb") as fh:
        try:
            return read_root_attributes(fh, size)
        except (IndexError, struct.error) as exc:  # a structure shorter than its fields
            raise H5Error(f"a structure is cut short ({exc})") from None
