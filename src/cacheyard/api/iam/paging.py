"""IAM's MaxItems/Marker/IsTruncated paging, over items sorted by name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cacheyard.api.handlers.paging import decode_marker, encode_marker

DEFAULT_MAX_ITEMS = 100


def page(
    items: Sequence[Any], names: Sequence[str], key: str, params: dict[str, Any]
) -> dict[str, Any]:
    """One page of ``items`` (sorted by ``names``), the Marker of the next if there is one."""
    size = params.get("MaxItems", DEFAULT_MAX_ITEMS)
    after = decode_marker(params)
    start = 0 if after is None else next((i for i, n in enumerate(names) if n > after), len(names))
    result: dict[str, Any] = {key: list(items[start : start + size])}
    truncated = start + size < len(items)
    result["IsTruncated"] = truncated
    if truncated:
        result["Marker"] = encode_marker(names[start + size - 1])
    return result
