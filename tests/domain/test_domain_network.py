"""The local network: zones as loopback /24s, subnet ids from the address."""

from __future__ import annotations

import ipaddress

import pytest

from cacheyard.domain.faults import InsufficientCacheClusterCapacityFault, InvalidSubnet
from cacheyard.domain.network import (
    SUBNETS_PER_ZONE,
    Network,
    allocate_address,
    spread_zones,
)

pytestmark = pytest.mark.timeout(10)

NET = Network("us-west-2", base_octet=10)


def test_six_zones_named_after_the_region() -> None:
    assert NET.zones() == [f"us-west-2{letter}" for letter in "abcdef"]


def test_subnets_per_zone_and_their_networks() -> None:
    subnets = NET.subnets()
    assert len(subnets) == 6 * SUBNETS_PER_ZONE
    for z, zone in enumerate(NET.zones(), start=1):
        mine = [s for s in subnets if s.availability_zone == zone]
        assert [str(s.network) for s in mine] == [
            f"127.10.{10 * z + j}.0/24" for j in range(SUBNETS_PER_ZONE)
        ]


def test_subnet_ids_are_the_hex_of_the_network_address() -> None:
    first = NET.subnets()[0]
    assert first.subnet_id == "subnet-7f0a0a00"
    for subnet in Network("r", base_octet=233).subnets():
        address = ipaddress.IPv4Address(int(subnet.subnet_id.removeprefix("subnet-"), 16))
        assert address == subnet.network.network_address
    ids = [s.subnet_id for s in NET.subnets()]
    assert len(set(ids)) == len(ids)


def test_subnet_lookup_by_id() -> None:
    assert NET.subnet("subnet-7f0a0b00").network == ipaddress.IPv4Network("127.10.11.0/24")
    with pytest.raises(InvalidSubnet, match="subnet-deadbeef"):
        NET.subnet("subnet-deadbeef")


def test_default_subnet_ids_are_the_first_subnet_of_zones_a_b_c() -> None:
    ids = NET.default_subnet_ids()
    subnets = [NET.subnet(i) for i in ids]
    assert [s.availability_zone for s in subnets] == ["us-west-2a", "us-west-2b", "us-west-2c"]
    assert [str(s.network) for s in subnets] == [
        "127.10.10.0/24",
        "127.10.20.0/24",
        "127.10.30.0/24",
    ]


def test_hosts_exclude_network_and_broadcast() -> None:
    hosts = list(NET.subnets()[0].hosts())
    assert hosts[0] == "127.10.10.1"
    assert hosts[-1] == "127.10.10.254"
    assert len(hosts) == 254


def test_allocate_address_takes_the_first_free_in_the_zone() -> None:
    subnets = NET.subnets()
    assert allocate_address(subnets, "us-west-2b", set()) == "127.10.20.1"
    used = {"127.10.20.1", "127.10.20.2", "127.10.20.4"}
    assert allocate_address(subnets, "us-west-2b", used) == "127.10.20.3"


def test_allocate_address_moves_on_to_the_next_subnet_of_the_zone() -> None:
    subnets = NET.subnets()
    used = set(subnets[0].hosts())
    assert allocate_address(subnets, "us-west-2a", used) == "127.10.11.1"


def test_allocate_address_only_uses_the_given_subnets() -> None:
    only = [NET.subnet("subnet-7f0a0c00")]  # 127.10.12.0/24 in zone a
    assert allocate_address(only, "us-west-2a", set()) == "127.10.12.1"


def test_no_free_address_is_a_capacity_fault() -> None:
    subnet = NET.subnets()[0]
    with pytest.raises(InsufficientCacheClusterCapacityFault, match="us-west-2a"):
        allocate_address([subnet], "us-west-2a", set(subnet.hosts()))
    with pytest.raises(InsufficientCacheClusterCapacityFault):
        allocate_address([subnet], "us-west-2b", set())  # no subnet in that zone


def test_spread_zones_round_robin_or_preferred() -> None:
    assert spread_zones(["a", "b", "c"], 5, []) == ["a", "b", "c", "a", "b"]
    assert spread_zones(["a", "b", "c"], 3, ["c", "c", "a"]) == ["c", "c", "a"]
    assert spread_zones(["a", "b"], 4, ["b"]) == ["b", "b", "b", "b"]
    assert spread_zones(["a"], 0, []) == []
