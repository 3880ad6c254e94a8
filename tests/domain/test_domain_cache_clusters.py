"""Cache cluster plans: create, resize and reboot under ElastiCache's rules."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from cacheyard.domain import faults
from cacheyard.domain.cache_clusters import (
    MAX_MEMCACHED_NODES,
    CacheClusterSpec,
    CreateRequest,
    Placement,
    plan_create,
    plan_reboot,
    plan_resize,
)
from cacheyard.domain.engines import EngineVersion
from cacheyard.domain.network import Network, Subnet
from cacheyard.domain.node_types import node_type

pytestmark = pytest.mark.timeout(10)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
NET = Network("us-east-1", base_octet=10)
A, B, C = "us-east-1a", "us-east-1b", "us-east-1c"
REDIS = EngineVersion("redis", "7.0.15")
MEMCACHED = EngineVersion("memcached", "1.6.18")


def placement(zones: Sequence[str] = (A, B, C), used: set[str] | None = None) -> Placement:
    """The first subnet of each zone, like the default subnet group."""
    subnets = [s for s in NET.subnets() if s.availability_zone in zones]
    firsts = [next(s for s in subnets if s.availability_zone == z) for z in zones]
    return Placement(firsts, set() if used is None else used)


def request(
    engine: EngineVersion = MEMCACHED,
    num_nodes: int | None = 1,
    az_mode: str | None = None,
    preferred_zone: str | None = None,
    preferred_zones: Sequence[str] = (),
    port: int | None = None,
    cluster_id: str = "c1",
) -> CreateRequest:
    return CreateRequest(
        cluster_id=cluster_id,
        engine=engine,
        node_type=node_type("cache.t3.micro"),
        num_nodes=num_nodes,
        az_mode=az_mode,
        preferred_zone=preferred_zone,
        preferred_zones=list(preferred_zones),
        port=port,
        subnet_group="default",
        parameter_group=None,
    )


def subnet_of(where: Placement, address: str) -> Subnet:
    ip = ipaddress.IPv4Address(address)
    return next(s for s in where.subnets if ip in s.network)


def memcached(
    count: int, az_mode: str | None = None, where: Placement | None = None
) -> CacheClusterSpec:
    return plan_create(request(num_nodes=count, az_mode=az_mode), where or placement(), NOW)


# create: redis


def test_redis_create_is_one_node_with_defaults() -> None:
    spec = plan_create(request(REDIS, num_nodes=None), placement(), NOW)
    assert spec.engine == "redis"
    assert spec.engine_version == "7.0.15"
    assert spec.family == "redis7"
    assert spec.parameter_group == "default.redis7"
    assert spec.port == 6379
    assert spec.az_mode == "single-az"
    assert spec.node_ids == ["0001"]
    assert spec.nodes[0].zone == A
    assert spec.nodes[0].address == "127.10.10.1"
    assert spec.nodes[0].created_at == NOW
    assert spec.created_at == NOW
    assert spec.configuration_address is None
    assert spec.discovery_version == 1
    assert spec.preferred_zone == A


@pytest.mark.parametrize("count", [0, 2, 3])
def test_redis_needs_exactly_one_node(count: int) -> None:
    with pytest.raises(faults.InvalidParameterValueException):
        plan_create(request(REDIS, num_nodes=count), placement(), NOW)


@pytest.mark.parametrize("mode", ["single-az", "cross-az"])
def test_redis_refuses_az_mode(mode: str) -> None:
    with pytest.raises(faults.InvalidParameterCombinationException, match="AZMode"):
        plan_create(request(REDIS, az_mode=mode), placement(), NOW)


def test_redis_custom_port_and_preferred_zone() -> None:
    spec = plan_create(request(REDIS, port=7000, preferred_zone=C), placement(), NOW)
    assert spec.port == 7000
    assert spec.nodes[0].zone == C
    assert spec.nodes[0].address == "127.10.30.1"


# create: memcached


@pytest.mark.parametrize("count", [1, 2, MAX_MEMCACHED_NODES])
def test_memcached_takes_1_to_40_nodes(count: int) -> None:
    spec = memcached(count)
    assert spec.node_ids == [f"{i:04d}" for i in range(1, count + 1)]
    assert spec.port == 11211
    assert spec.family == "memcached1.6"


def test_memcached_zero_nodes_is_refused() -> None:
    with pytest.raises(faults.InvalidParameterValueException, match="greater than 0"):
        memcached(0)


def test_memcached_more_than_40_nodes_is_a_quota_fault() -> None:
    with pytest.raises(faults.NodeQuotaForClusterExceededFault):
        memcached(MAX_MEMCACHED_NODES + 1)


def test_memcached_default_is_single_az_in_the_first_zone() -> None:
    spec = memcached(3)
    assert spec.az_mode == "single-az"
    assert {n.zone for n in spec.nodes} == {A}
    assert spec.preferred_zone == A


def test_memcached_cross_az_spreads_round_robin() -> None:
    spec = memcached(5, "cross-az")
    assert spec.az_mode == "cross-az"
    assert [n.zone for n in spec.nodes] == [A, B, C, A, B]
    assert spec.preferred_zone == "Multiple"


def test_cross_az_needs_two_nodes() -> None:
    with pytest.raises(faults.InvalidParameterValueException, match="cross-az"):
        memcached(1, "cross-az")


def test_preferred_zones_place_each_node() -> None:
    spec = plan_create(
        request(num_nodes=3, az_mode="cross-az", preferred_zones=[C, A, C]), placement(), NOW
    )
    assert [n.zone for n in spec.nodes] == [C, A, C]


def test_preferred_zones_count_must_equal_node_count() -> None:
    with pytest.raises(faults.InvalidParameterValueException, match="number of preferred"):
        plan_create(
            request(num_nodes=3, az_mode="cross-az", preferred_zones=[A, B]), placement(), NOW
        )


def test_single_az_preferred_zones_must_all_be_the_same() -> None:
    with pytest.raises(faults.InvalidParameterCombinationException, match="single-az"):
        plan_create(
            request(num_nodes=2, az_mode="single-az", preferred_zones=[A, B]), placement(), NOW
        )
    spec = plan_create(
        request(num_nodes=2, az_mode="single-az", preferred_zones=[B, B]), placement(), NOW
    )
    assert [n.zone for n in spec.nodes] == [B, B]


def test_preferred_zone_and_zones_together_are_refused() -> None:
    with pytest.raises(faults.InvalidParameterCombinationException):
        plan_create(request(num_nodes=1, preferred_zone=A, preferred_zones=[A]), placement(), NOW)


def test_preferred_zone_puts_single_az_nodes_there() -> None:
    spec = plan_create(request(num_nodes=2, preferred_zone=B), placement(), NOW)
    assert [n.zone for n in spec.nodes] == [B, B]


@pytest.mark.parametrize(
    "req",
    [
        request(num_nodes=1, preferred_zone="us-east-1f"),
        request(num_nodes=2, az_mode="cross-az", preferred_zones=[A, "us-east-1f"]),
        request(num_nodes=1, preferred_zone="eu-west-1a"),
    ],
)
def test_zone_outside_the_subnet_group_is_refused(req: CreateRequest) -> None:
    with pytest.raises(faults.InvalidParameterValueException, match="no subnet"):
        plan_create(req, placement(), NOW)


def test_addresses_are_unique_and_in_the_zone_subnet() -> None:
    where = placement(used={"127.10.10.1", "127.10.20.2"})
    spec = memcached(7, "cross-az", where)
    addresses = [n.address for n in spec.nodes]
    assert spec.configuration_address is not None
    assert len(set([*addresses, spec.configuration_address])) == 8
    assert "127.10.10.1" not in addresses
    for plan in spec.nodes:
        assert subnet_of(where, plan.address).availability_zone == plan.zone
    assert subnet_of(where, spec.configuration_address).availability_zone == spec.nodes[0].zone
    # The placement remembers what it handed out.
    assert {*addresses, spec.configuration_address} <= where.used_addresses


def test_configuration_address_only_for_memcached() -> None:
    assert memcached(1).configuration_address == "127.10.10.2"
    assert plan_create(request(REDIS), placement(), NOW).configuration_address is None


def test_two_clusters_never_share_an_address() -> None:
    where = placement()
    first = memcached(3, where=where)
    second = plan_create(request(REDIS, cluster_id="c2"), where, NOW)
    taken = {n.address for n in first.nodes} | {first.configuration_address}
    assert second.nodes[0].address not in taken


def test_full_zone_is_a_capacity_fault() -> None:
    first = NET.subnets()[0]
    with pytest.raises(faults.InsufficientCacheClusterCapacityFault):
        plan_create(request(REDIS), placement(zones=[A], used=set(first.hosts())), NOW)


# resize


def test_resize_adds_nodes_after_the_highest_id() -> None:
    spec = memcached(3)
    shrunk = plan_resize(spec, 2, ["0002"], [], None, placement(), NOW)
    grown = plan_resize(shrunk, 4, [], [], None, placement(), LATER)
    assert grown.node_ids == ["0001", "0003", "0004", "0005"]
    assert grown.discovery_version == spec.discovery_version + 2
    assert [n.created_at for n in grown.nodes[-2:]] == [LATER, LATER]
    assert grown.nodes[:2] == shrunk.nodes


def test_resize_add_uses_free_addresses_in_the_cluster_zone() -> None:
    spec = memcached(2)
    used = {n.address for n in spec.nodes} | {spec.configuration_address or ""}
    grown = plan_resize(spec, 3, [], [], None, placement(used=set(used)), NOW)
    added = grown.nodes[-1]
    assert added.zone == A
    assert added.address not in used
    assert grown.az_mode == "single-az"


def test_resize_add_with_new_zones_and_cross_az() -> None:
    spec = memcached(2)
    grown = plan_resize(spec, 4, [], [B, C], "cross-az", placement(used={"127.10.10.1"}), NOW)
    assert [n.zone for n in grown.nodes[2:]] == [B, C]
    assert grown.az_mode == "cross-az"
    with pytest.raises(faults.InvalidParameterValueException, match="number of preferred"):
        plan_resize(spec, 4, [], [B], "cross-az", placement(), NOW)


def test_resize_remove_needs_matching_ids() -> None:
    spec = memcached(3)
    removed = plan_resize(spec, 1, ["0001", "0003"], [], None, placement(), NOW)
    assert removed.node_ids == ["0002"]
    assert removed.discovery_version == 2
    with pytest.raises(faults.InvalidParameterValueException, match="CacheNodeIdsToRemove"):
        plan_resize(spec, 2, [], [], None, placement(), NOW)
    with pytest.raises(faults.InvalidParameterValueException, match="CacheNodeIdsToRemove"):
        plan_resize(spec, 2, ["0001", "0002"], [], None, placement(), NOW)
    with pytest.raises(faults.InvalidParameterValueException, match="CacheNodeIdsToRemove"):
        plan_resize(spec, 1, ["0001", "0001"], [], None, placement(), NOW)


def test_resize_unknown_node_id() -> None:
    spec = memcached(2)
    with pytest.raises(faults.InvalidParameterValueException, match="0009"):
        plan_resize(spec, 1, ["0009"], [], None, placement(), NOW)


def test_resize_remove_ids_only_when_shrinking() -> None:
    spec = memcached(2)
    with pytest.raises(faults.InvalidParameterCombinationException):
        plan_resize(spec, 2, ["0001"], [], None, placement(), NOW)
    with pytest.raises(faults.InvalidParameterCombinationException):
        plan_resize(spec, 3, ["0001"], [], None, placement(), NOW)


def test_resize_to_the_same_count_changes_nothing() -> None:
    spec = memcached(2)
    assert plan_resize(spec, 2, [], [], None, placement(), NOW) is spec


def test_resize_limits() -> None:
    spec = memcached(2)
    with pytest.raises(faults.NodeQuotaForClusterExceededFault):
        plan_resize(spec, MAX_MEMCACHED_NODES + 1, [], [], None, placement(), NOW)
    with pytest.raises(faults.InvalidParameterValueException):
        plan_resize(spec, 0, ["0001", "0002"], [], None, placement(), NOW)
    redis = plan_create(request(REDIS), placement(), NOW)
    with pytest.raises(faults.InvalidParameterValueException):
        plan_resize(redis, 2, [], [], None, placement(), NOW)


# reboot


def test_reboot_bumps_reboot_seq_of_the_named_nodes() -> None:
    spec = memcached(3)
    once = plan_reboot(spec, ["0001", "0003"])
    twice = plan_reboot(once, ["0001"])
    assert [n.reboot_seq for n in once.nodes] == [1, 0, 1]
    assert [n.reboot_seq for n in twice.nodes] == [2, 0, 1]
    assert [replace(n, reboot_seq=0) for n in twice.nodes] == list(spec.nodes)


def test_reboot_unknown_or_no_node() -> None:
    spec = memcached(1)
    with pytest.raises(faults.InvalidParameterValueException, match="0002"):
        plan_reboot(spec, ["0001", "0002"])
    with pytest.raises(faults.InvalidParameterValueException):
        plan_reboot(spec, [])


def test_spec_node_lookup() -> None:
    spec = memcached(2)
    assert spec.node("0002") is spec.nodes[1]
    with pytest.raises(KeyError):
        spec.node("0003")


def test_different_preferred_zones_without_az_mode_mean_cross_az() -> None:
    spec = plan_create(request(num_nodes=3, preferred_zones=[A, B, C]), placement(), NOW)
    assert spec.az_mode == "cross-az"
    assert [n.zone for n in spec.nodes] == [A, B, C]


def test_cross_az_growth_fills_the_emptiest_zones_first() -> None:
    spec = plan_create(
        request(num_nodes=2, az_mode="cross-az", preferred_zones=[A, A]), placement(), NOW
    )
    grown = plan_resize(spec, 5, [], [], None, placement(), LATER)
    assert [n.zone for n in grown.nodes] == [A, A, B, C, B]
