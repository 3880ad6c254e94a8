"""DescribeEvents: by source, time window or duration, with paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cacheyard.api.handlers.context import Context
from cacheyard.api.handlers.paging import decode_marker, encode_marker, max_records
from cacheyard.domain import faults
from cacheyard.store import EventQuery

Params = dict[str, Any]

DEFAULT_DURATION_MINUTES = 60
MAX_DURATION_MINUTES = 14 * 24 * 60


async def describe(ctx: Context, params: Params) -> Params:
    now = ctx.clock.now()
    start, end = params.get("StartTime"), params.get("EndTime")
    duration = params.get("Duration")
    if duration is not None and not 0 <= duration <= MAX_DURATION_MINUTES:
        raise faults.InvalidParameterValueException(
            f"Duration must be between 0 and {MAX_DURATION_MINUTES} minutes."
        )
    if start is not None and end is not None and start > end:
        raise faults.InvalidParameterCombinationException("StartTime must be before EndTime.")
    if start is None:
        minutes = duration if duration is not None else DEFAULT_DURATION_MINUTES
        window_end, span = end or now, timedelta(minutes=minutes)
        # An end near the start of time would underflow; no event is older anyway.
        earliest = datetime.min.replace(tzinfo=UTC)
        start = window_end - span if window_end - earliest > span else earliest
    if params.get("SourceIdentifier") and not params.get("SourceType"):
        raise faults.InvalidParameterCombinationException(
            "SourceType must be given with SourceIdentifier."
        )
    after = decode_marker(params)
    if after is not None and not after.isdigit():  # another listing's marker
        raise faults.InvalidParameterValueException(f"Invalid marker: {params['Marker'][:64]}")
    size = max_records(params)
    query = EventQuery(
        source_type=params.get("SourceType"),
        source_id=params.get("SourceIdentifier"),
        start=start,
        end=end,
        after_seq=int(after) if after else 0,
        limit=size + 1,
    )
    async with ctx.store.transaction() as tx:
        found = await tx.events(query)
    result: Params = {
        "Events": [
            {
                "SourceIdentifier": e.source_id,
                "SourceType": e.source_type,
                "Message": e.message,
                "Date": e.date,
            }
            for _, e in found[:size]
        ]
    }
    if len(found) > size:
        result["Marker"] = encode_marker(str(found[size - 1][0]))
    return result
