"""Snapshot names, windows and the automatic-backup schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cacheyard.domain import faults, snapshots

NOON = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("name", ["nightly", "a", "before-upgrade.2026_11", "X9"])
def test_valid_snapshot_names(name: str) -> None:
    assert snapshots.snapshot_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "automatic.mine", "Automatic.x", "a/b", "../x", ".hidden", "a b", "x" * 236]
)
def test_invalid_snapshot_names(name: str) -> None:
    with pytest.raises(faults.InvalidParameterValueException):
        snapshots.snapshot_name(name)


def test_automatic_names_follow_aws() -> None:
    at = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    assert snapshots.automatic_name("shop", at) == "automatic.shop-2026-01-02-03-04"


def test_default_window_is_one_stable_hour() -> None:
    window = snapshots.default_window("shop")
    assert window == snapshots.default_window("shop")
    start, end = window.split("-")
    assert (int(end[:2]) - int(start[:2])) % 24 == 1


def test_window_opened_at_inside_and_outside() -> None:
    assert snapshots.window_opened_at("11:30-12:30", NOON) == NOON.replace(minute=30, hour=11)
    assert snapshots.window_opened_at("12:00-13:00", NOON) == NOON
    assert snapshots.window_opened_at("13:00-14:00", NOON) is None
    assert snapshots.window_opened_at("10:00-12:00", NOON) is None  # the end is exclusive


def test_window_over_midnight() -> None:
    late = datetime(2026, 11, 26, 23, 30, tzinfo=UTC)
    early = datetime(2026, 11, 27, 0, 30, tzinfo=UTC)
    opened = datetime(2026, 11, 26, 23, 0, tzinfo=UTC)
    assert snapshots.window_opened_at("23:00-01:00", late) == opened
    assert snapshots.window_opened_at("23:00-01:00", early) == opened
    assert snapshots.window_opened_at("23:00-01:00", early + timedelta(hours=1)) is None


def test_backup_due_once_per_window() -> None:
    window = "11:30-12:30"
    assert snapshots.backup_due(window, 1, NOON, None)
    assert not snapshots.backup_due(window, 0, NOON, None)  # backups off
    assert not snapshots.backup_due(window, 1, NOON, NOON - timedelta(minutes=10))
    yesterday = NOON - timedelta(days=1)
    assert snapshots.backup_due(window, 1, NOON, yesterday)
    assert not snapshots.backup_due(window, 1, NOON + timedelta(hours=1), None)


def test_expired_after_retention_days() -> None:
    assert not snapshots.expired(2, NOON, NOON + timedelta(days=1, hours=23))
    assert snapshots.expired(2, NOON, NOON + timedelta(days=2))


def test_retention_limit_bounds() -> None:
    assert snapshots.retention_limit(35) == 35
    with pytest.raises(faults.InvalidParameterValueException):
        snapshots.retention_limit(36)
