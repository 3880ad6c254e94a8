"""Read a Query-protocol form into python values by walking the operation's input shape.

The form is first folded into a tree on its dots (``Tags.Tag.1.Key``), then each
shape takes what it knows from its node: unknown parameters are ignored, as AWS
ignores them.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cacheyard.domain.faults import MissingParameter

from .validation import check_count, check_required, check_value, invalid
from .wire import entry_names, is_flattened, item_name, join, member_name

# Never operation parameters, like SigV4's ``X-Amz-*`` query parameters.
_RESERVED = frozenset({"Action", "Version"})
_INTEGER = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|NaN|-?Infinity")
_EPOCH = re.compile(r"[0-9]+(\.[0-9]+)?")


@dataclass
class _Node:
    """One dotted segment of the form: its own value, if sent, and what hangs below it."""

    value: str | None = None
    children: dict[str, _Node] = field(default_factory=dict)

    def indexed(self) -> Iterator[tuple[str, _Node]]:
        """The numbered children (``.1``, ``.2``, ...), in index order."""
        numbered = [key for key in self.children if key.isascii() and key.isdigit()]
        for key in sorted(numbered, key=int):
            yield key, self.children[key]


def parse_input(shape: Any, form: Mapping[str, str]) -> dict[str, Any]:
    """The operation's parameters from the form, keyed by member name like boto3's kwargs."""
    root = _Node()
    for key, value in form.items():
        if key in _RESERVED or key.lower().startswith("x-amz-"):
            continue
        node = root
        for segment in key.split("."):
            node = node.children.setdefault(segment, _Node())
        node.value = value
    return _structure(shape, root, "")


def _parse(shape: Any, node: _Node, path: str) -> Any:
    """The value of ``node`` as ``shape``, or None when the caller sent nothing usable."""
    kind = shape.type_name
    if kind == "structure":
        return _structure(shape, node, path)
    if kind == "list":
        return _list(shape, node, path)
    if kind == "map":
        return _map(shape, node, path)
    if node.value is None:
        return None
    convert = _SCALARS[kind]
    try:
        value = convert(node.value)
    except ValueError as error:
        raise invalid(shape, path, str(error), node.value) from None
    check_value(shape, value, path)
    return value


def _structure(shape: Any, node: _Node, path: str) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for name, member in shape.members.items():
        wire = member_name(member, name)
        child = node.children.get(wire)
        if child is not None:
            value = _parse(member, child, join(path, wire))
            if value is not None:
                parsed[name] = value
    check_required(shape, parsed, path)
    return parsed


def _list(shape: Any, node: _Node, path: str) -> list[Any] | None:
    items, items_path = _container(shape, node, path, item_name(shape))
    if items is None:
        if node.value != "":
            return None
        items = _Node()  # an empty value is how the Query protocol sends an empty list
    parsed = []
    for index, item in items.indexed():
        value = _parse(shape.member, item, join(items_path, index))
        if value is not None:
            parsed.append(value)
    check_count(shape, len(parsed), path)
    return parsed


def _map(shape: Any, node: _Node, path: str) -> dict[Any, Any] | None:
    entries, entries_path = _container(shape, node, path, "entry")
    if entries is None:
        return None
    key_name, value_name = entry_names(shape)
    parsed = {}
    for index, entry in entries.indexed():
        entry_path = join(entries_path, index)
        key = _entry_part(shape.key, entry, entry_path, key_name)
        parsed[key] = _entry_part(shape.value, entry, entry_path, value_name)
    check_count(shape, len(parsed), path)
    return parsed


def _container(shape: Any, node: _Node, path: str, segment: str) -> tuple[_Node | None, str]:
    """Where a list's items or a map's entries hang: under ``segment`` unless flattened."""
    if is_flattened(shape):
        return node, path
    return node.children.get(segment), join(path, segment)


def _entry_part(shape: Any, entry: _Node, path: str, name: str) -> Any:
    """A map entry's key or value, both of which must be there."""
    node = entry.children.get(name)
    value = None if node is None else _parse(shape, node, join(path, name))
    if value is None:
        raise MissingParameter(f"The request must contain the parameter {join(path, name)}")
    return value


def _boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered not in ("true", "false"):
        raise ValueError("must be true or false")
    return lowered == "true"


def _integer(bits: int) -> Callable[[str], int]:
    limit = 1 << (bits - 1)

    def convert(raw: str) -> int:
        if not _INTEGER.fullmatch(raw) or not -limit <= int(raw) < limit:
            raise ValueError(f"must be a {bits}-bit integer")
        return int(raw)

    return convert


def _float(raw: str) -> float:
    if not _FLOAT.fullmatch(raw):
        raise ValueError("must be a number")
    return float(raw)


def _timestamp(raw: str) -> datetime:
    """ISO 8601 (what the SDKs send) or epoch seconds; a time without a zone is UTC."""
    try:
        if _EPOCH.fullmatch(raw):
            return datetime.fromtimestamp(float(raw), UTC)
        parsed = datetime.fromisoformat(raw)
    except (ValueError, OverflowError, OSError):
        raise ValueError("must be an ISO 8601 timestamp") from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _blob(raw: str) -> bytes:
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error:
        raise ValueError("must be base64-encoded") from None


def _string(raw: str) -> str:
    return raw


_SCALARS: dict[str, Callable[[str], Any]] = {
    "string": _string,
    "boolean": _boolean,
    "integer": _integer(32),
    "long": _integer(64),
    "float": _float,
    "double": _float,
    "timestamp": _timestamp,
    "blob": _blob,
}
