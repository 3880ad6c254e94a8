"""Maintenance and snapshot windows."""

from __future__ import annotations

import pytest

from cacheyard.domain import windows
from cacheyard.domain.faults import InvalidParameterValueException

pytestmark = pytest.mark.timeout(5)


@pytest.mark.parametrize(
    "value", ["sun:05:00-sun:06:00", "Mon:23:30-Tue:00:30", "sat:23:00-sun:01:00"]
)
def test_valid_maintenance_windows_are_kept_in_lower_case(value: str) -> None:
    assert windows.maintenance_window(value) == value.lower()


@pytest.mark.parametrize(
    "value",
    [
        "whenever you like",
        "sun:05:00-sun:05:30",  # under 60 minutes
        "xyz:05:00-sun:06:00",
        "sun:24:00-mon:01:00",
        "sun:05:60-sun:07:00",
        "sun:05:00-sun:06:00\n",
    ],
)
def test_invalid_maintenance_windows_are_refused(value: str) -> None:
    with pytest.raises(InvalidParameterValueException):
        windows.maintenance_window(value)


def test_snapshot_windows() -> None:
    assert windows.snapshot_window("05:00-06:00") == "05:00-06:00"
    assert windows.snapshot_window("23:30-00:30") == "23:30-00:30"
    for bad in ("05:00-05:30", "5:00-6:00", "25:00-26:00", "noon"):
        with pytest.raises(InvalidParameterValueException):
            windows.snapshot_window(bad)
