"""Maintenance and snapshot windows, as ElastiCache accepts them.

A maintenance window is ``ddd:hh24:mi-ddd:hh24:mi`` (UTC, may wrap over the
week's end); a snapshot window ``hh24:mi-hh24:mi``. Both last at least 60 minutes.
"""

from __future__ import annotations

import re

from cacheyard.domain.faults import InvalidParameterValueException

DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
MINUTES_PER_WEEK = 7 * 24 * 60
MIN_MINUTES = 60
_MAINTENANCE = re.compile(r"(\w{3}):(\d{2}):(\d{2})-(\w{3}):(\d{2}):(\d{2})")
_SNAPSHOT = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})")


def _minute_of_day(hour: str, minute: str, parameter: str, value: str) -> int:
    h, m = int(hour), int(minute)
    if h > 23 or m > 59:
        raise InvalidParameterValueException(f"Invalid {parameter}: {value}.")
    return h * 60 + m


def maintenance_window(value: str) -> str:
    """The window in lower case, or InvalidParameterValue."""
    text = value.lower()
    match = _MAINTENANCE.fullmatch(text)
    if match is None or match[1] not in DAYS or match[4] not in DAYS:
        raise InvalidParameterValueException(
            f"Invalid maintenance window: {value}. The format is ddd:hh24:mi-ddd:hh24:mi."
        )
    start = DAYS.index(match[1]) * 1440 + _minute_of_day(
        match[2], match[3], "maintenance window", value
    )
    end = DAYS.index(match[4]) * 1440 + _minute_of_day(
        match[5], match[6], "maintenance window", value
    )
    if (end - start) % MINUTES_PER_WEEK < MIN_MINUTES:
        raise InvalidParameterValueException(
            f"Invalid maintenance window: {value}. The minimum window is 60 minutes."
        )
    return text


def snapshot_window(value: str) -> str:
    match = _SNAPSHOT.fullmatch(value)
    if match is None:
        raise InvalidParameterValueException(
            f"Invalid snapshot window: {value}. The format is hh24:mi-hh24:mi."
        )
    start = _minute_of_day(match[1], match[2], "snapshot window", value)
    end = _minute_of_day(match[3], match[4], "snapshot window", value)
    if (end - start) % 1440 < MIN_MINUTES:
        raise InvalidParameterValueException(
            f"Invalid snapshot window: {value}. The minimum window is 60 minutes."
        )
    return value
