"""Subnet groups: named sets of existing subnets, duplicates folded."""

from __future__ import annotations

import pytest

from cacheyard.domain import faults
from cacheyard.domain.network import Network
from cacheyard.domain.subnet_groups import MAX_SUBNETS, plan, subnets_of

pytestmark = pytest.mark.timeout(10)

NET = Network("us-east-1", base_octet=10)
IDS = [s.subnet_id for s in NET.subnets()]


def test_plan_keeps_order_and_folds_duplicates() -> None:
    group = plan("g", "desc", [IDS[4], IDS[0], IDS[4]], NET)
    assert group.subnet_ids == (IDS[4], IDS[0])
    assert [s.subnet_id for s in subnets_of(group, NET)] == [IDS[4], IDS[0]]


def test_plan_needs_a_subnet() -> None:
    with pytest.raises(faults.InvalidParameterValueException):
        plan("g", "desc", [], NET)


def test_plan_refuses_unknown_subnets() -> None:
    with pytest.raises(faults.InvalidSubnet, match="subnet-00000000"):
        plan("g", "desc", [IDS[0], "subnet-00000000"], NET)


def test_plan_limits_the_number_of_subnets() -> None:
    assert len(plan("g", "d", IDS[:MAX_SUBNETS], NET).subnet_ids) == MAX_SUBNETS
    with pytest.raises(faults.CacheSubnetQuotaExceededFault):
        plan("g", "d", IDS[: MAX_SUBNETS + 1], NET)
