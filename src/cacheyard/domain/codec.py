"""Frozen dataclasses to and from JSON-ready dicts, for the store.

Supports what specs are made of: str, int, bool, None, datetime, nested
dataclasses, tuples and dicts of those.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime
from typing import Any, TypeVar

T = TypeVar("T")


def dump(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: dump(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [dump(v) for v in value]
    if isinstance(value, dict):
        return {k: dump(v) for k, v in value.items()}
    return value


def load(cls: type[T], data: dict[str, Any]) -> T:
    hints = _fields(cls)
    kwargs = {name: _load_value(hint, data[name]) for name, hint in hints.items() if name in data}
    return cls(**kwargs)


_FIELDS: dict[type, dict[str, Any]] = {}


def _fields(cls: type) -> dict[str, Any]:
    """A dataclass's fields and their types, resolved once per class (resolving the
    string annotations is most of a load's cost)."""
    found = _FIELDS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
        _FIELDS[cls] = found
    return found


def _load_value(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _load_value(inner[0], value)
    if origin is tuple:
        return tuple(_load_value(typing.get_args(hint)[0], v) for v in value)
    if origin is dict:
        return dict(value)
    if hint is datetime:
        return datetime.fromisoformat(value)
    if dataclasses.is_dataclass(hint):
        return load(hint, value)  # type: ignore[arg-type]
    return value
