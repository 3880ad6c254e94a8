"""The local network: availability zones as loopback address ranges.

Every node is a host of its own with a loopback address. A region has six
availability zones (``{region}a`` .. ``{region}f``); each zone owns a few /24
subnets of ``127.{base}.0.0/16``, so placement is visible in the address:
zone *z* (1-6), subnet *j* (0-3) is ``127.{base}.{10*z + j}.0/24``. Subnet ids
are the hex of the network address, shaped like AWS's (``subnet-7f0a0a00``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cacheyard.domain.faults import InsufficientCacheClusterCapacityFault, InvalidSubnet

ZONE_LETTERS = "abcdef"
SUBNETS_PER_ZONE = 4
DEFAULT_SUBNET_GROUP = "default"
VPC_ID = "vpc-cacheyard"


@dataclass(frozen=True)
class Subnet:
    subnet_id: str
    availability_zone: str
    network: ipaddress.IPv4Network

    def hosts(self) -> Iterable[str]:
        return (str(host) for host in self.network.hosts())


@dataclass(frozen=True)
class Network:
    """The subnets of one region on one loopback /16."""

    region: str
    base_octet: int = 10

    def zones(self) -> list[str]:
        return [f"{self.region}{letter}" for letter in ZONE_LETTERS]

    def subnets(self) -> list[Subnet]:
        found = []
        for z, zone in enumerate(self.zones(), start=1):
            for j in range(SUBNETS_PER_ZONE):
                net = ipaddress.IPv4Network(f"127.{self.base_octet}.{10 * z + j}.0/24")
                hexid = "".join(f"{octet:02x}" for octet in net.network_address.packed)
                found.append(Subnet(f"subnet-{hexid}", zone, net))
        return found

    def subnet(self, subnet_id: str) -> Subnet:
        for subnet in self.subnets():
            if subnet.subnet_id == subnet_id:
                return subnet
        raise InvalidSubnet(f"The subnet ID {subnet_id} does not exist")

    def default_subnet_ids(self) -> list[str]:
        """The default subnet group: the first subnet of the first three zones."""
        return [
            s.subnet_id for s in self.subnets() if s.network.network_address.packed[2] % 10 == 0
        ][:3]


def allocate_address(subnets: Sequence[Subnet], zone: str, used: set[str]) -> str:
    """The first free address of the group's subnets in ``zone``."""
    for subnet in subnets:
        if subnet.availability_zone != zone:
            continue
        for host in subnet.hosts():
            if host not in used:
                return host
    raise InsufficientCacheClusterCapacityFault(
        f"There are not enough free addresses in availability zone {zone}."
    )


def spread_zones(
    zones: Sequence[str], count: int, preferred: Sequence[str], existing: Sequence[str] = ()
) -> list[str]:
    """Zones for ``count`` new nodes: the preferred ones, else each to the zone with the
    fewest nodes so far (``existing`` ones included), in zone order on ties."""
    if preferred:
        return [preferred[i % len(preferred)] for i in range(count)]
    load = {zone: 0 for zone in zones}
    for zone in existing:
        if zone in load:
            load[zone] += 1
    chosen = []
    for _ in range(count):
        zone = min(zones, key=lambda z: load[z])
        load[zone] += 1
        chosen.append(zone)
    return chosen
