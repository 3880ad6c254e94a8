"""Marker/MaxRecords paging as every Describe call does it."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

from cacheyard.domain.faults import InvalidParameterValueException

DEFAULT_MAX_RECORDS = 100
MIN_MAX_RECORDS = 20


def max_records(params: Mapping[str, Any], largest: int = DEFAULT_MAX_RECORDS) -> int:
    """MaxRecords, 20 up to ``largest`` (100 for most calls, 50 for DescribeSnapshots)."""
    value = params.get("MaxRecords")
    if value is None:
        return largest
    if not MIN_MAX_RECORDS <= value <= largest:
        raise InvalidParameterValueException(
            f"Invalid value {value} for MaxRecords. Must be between "
            f"{MIN_MAX_RECORDS} and {largest}."
        )
    return int(value)


def encode_marker(position: str) -> str:
    return base64.urlsafe_b64encode(position.encode()).decode()


def decode_marker(params: Mapping[str, Any]) -> str | None:
    """The position a Marker stands for (a name or a number, never control
    characters). Only a marker in the form this service hands out is accepted:
    base64 decoding alone skips stray characters, and a damaged marker would
    silently restart the listing."""
    marker = params.get("Marker")
    if marker is None:
        return None
    try:
        position = base64.b64decode(marker, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        position = None
    if position is None or not position.isprintable() or encode_marker(position) != marker:
        raise InvalidParameterValueException(f"Invalid marker: {marker[:64]}")
    return position


def page(
    items: Sequence[Any],
    ids: Sequence[str],
    key: str,
    params: Mapping[str, Any],
    largest: int = DEFAULT_MAX_RECORDS,
) -> dict[str, Any]:
    """The result holding one page of ``items`` (sorted by ``ids``), with a Marker if more."""
    size = max_records(params, largest)
    after = decode_marker(params)
    start = 0 if after is None else next((i for i, v in enumerate(ids) if v > after), len(ids))
    result: dict[str, Any] = {key: list(items[start : start + size])}
    if start + size < len(items):
        result["Marker"] = encode_marker(ids[start + size - 1])
    return result
