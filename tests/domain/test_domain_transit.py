"""ModifyReplicationGroup's encryption-in-transit changes: one step through
`preferred` at a time, as on AWS."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from cacheyard.domain import faults
from cacheyard.domain.replication_groups import ReplicationGroupSpec, transit_change

pytestmark = pytest.mark.timeout(10)

PLAIN = ReplicationGroupSpec(
    group_id="g",
    description="",
    engine_version="7.0.15",
    family="redis7",
    node_type="cache.t3.micro",
    port=6379,
    subnet_group="default",
    parameter_group="default.redis7",
    member_ids=("g-001", "g-002"),
    primary_endpoint="127.10.10.9",
    reader_endpoint="127.10.10.10",
    automatic_failover=True,
    multi_az=True,
    preferred_primary="g-001",
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
)
PREFERRED = replace(PLAIN, transit_encryption=True, transit_mode="preferred")
REQUIRED = replace(PLAIN, transit_encryption=True, transit_mode="required")
ALONE = replace(PLAIN, member_ids=("g-001",))  # no replica to hand the primary role to
WITH_TOKEN = replace(PREFERRED, auth_tokens=("h",))  # a token needs TLS


@pytest.mark.parametrize(
    ("group", "enabled", "mode", "result"),
    [
        (PLAIN, True, "preferred", (True, "preferred")),
        (PREFERRED, None, "required", (True, "required")),
        (PREFERRED, True, "required", (True, "required")),
        (REQUIRED, None, "preferred", (True, "preferred")),
        (PREFERRED, False, None, (False, "required")),
        (REQUIRED, True, "required", None),
        (PLAIN, False, None, None),
        (PLAIN, None, None, None),
    ],
)
def test_one_step_through_preferred(
    group: ReplicationGroupSpec, enabled: bool | None, mode: str | None, result: object
) -> None:
    assert transit_change(group, enabled, mode) == result


@pytest.mark.parametrize(
    ("group", "enabled", "mode", "fault"),
    [
        (PLAIN, True, "required", faults.InvalidParameterCombinationException),
        (PLAIN, True, None, faults.InvalidParameterCombinationException),
        (REQUIRED, False, None, faults.InvalidParameterCombinationException),
        (PLAIN, None, "preferred", faults.InvalidParameterCombinationException),
        (PLAIN, True, "sometimes", faults.InvalidParameterValueException),
        (
            replace(PLAIN, member_ids=("g-001",)),
            True,
            "preferred",
            faults.InvalidParameterCombinationException,
        ),
        (
            replace(PREFERRED, auth_tokens=("h",)),
            False,
            None,
            faults.InvalidParameterCombinationException,
        ),
    ],
)
def test_refusals(
    group: ReplicationGroupSpec, enabled: bool | None, mode: str | None, fault: type[Exception]
) -> None:
    with pytest.raises(fault):
        transit_change(group, enabled, mode)
