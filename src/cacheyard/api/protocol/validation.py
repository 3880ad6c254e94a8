"""The input constraints the model declares, each refused with AWS's error.

Parameter names in messages are the dotted wire names the caller sent
(``Tags.Tag.1.Key``), so the caller can find the offending value. A pattern that
Python's ``re`` cannot express (Java's ``\\p{L}`` classes, found in IAM and STS
but not in ElastiCache) is not enforced.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from cacheyard.domain.faults import InvalidParameterValueException, MissingParameter

from .wire import join, member_name

# Characters XML 1.0 cannot carry: a value holding one could never be answered back.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def invalid(
    shape: Any, path: str, reason: str, raw: str | None = None
) -> InvalidParameterValueException:
    """The fault for a value the model refuses; sensitive values are never echoed."""
    if raw is None or shape.metadata.get("sensitive"):
        return InvalidParameterValueException(f"Invalid value for parameter {path}: {reason}")
    return InvalidParameterValueException(f'Invalid value "{raw}" for parameter {path}: {reason}')


def check_required(shape: Any, present: Mapping[str, Any], path: str) -> None:
    """Every required member of a structure the caller sent must be there."""
    for name in shape.required_members:
        if name not in present:
            param = join(path, member_name(shape.members[name], name))
            raise MissingParameter(f"The request must contain the parameter {param}")


def check_count(shape: Any, count: int, path: str) -> None:
    """A list or map must have between ``min`` and ``max`` entries."""
    _check_bounds(shape, count, path, "entry count must be {}")


def check_value(shape: Any, value: Any, path: str) -> None:
    """A scalar must satisfy its shape's enum, length, range and pattern."""
    kind = shape.type_name
    if kind == "string":
        _check_string(shape, value, path)
    elif kind == "blob":
        _check_bounds(shape, len(value), path, "length in bytes must be {}")
    elif kind in ("integer", "long", "float", "double"):
        _check_bounds(shape, value, path, "must be {}", str(value))


def _check_string(shape: Any, value: str, path: str) -> None:
    if _NOT_XML.search(value):
        raise invalid(shape, path, "contains characters that are not allowed")
    if shape.enum and value not in shape.enum:
        raise invalid(shape, path, f"must be one of: {', '.join(shape.enum)}", value)
    _check_bounds(shape, len(value), path, "length must be {}", value)
    pattern = shape.metadata.get("pattern")
    compiled = _compiled(pattern) if pattern is not None else None
    # Smithy patterns are not anchored: the value must contain a match.
    if compiled is not None and not compiled.search(value):
        raise invalid(shape, path, f"must match the pattern {pattern}", value)


@cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _check_bounds(
    shape: Any, measure: float, path: str, template: str, raw: str | None = None
) -> None:
    low = shape.metadata.get("min")
    high = shape.metadata.get("max")
    if low is not None and measure < low:
        raise invalid(shape, path, template.format(f"at least {low}"), raw)
    if high is not None and measure > high:
        raise invalid(shape, path, template.format(f"at most {high}"), raw)
