"""Cache subnet groups: named sets of subnets, hence of availability zones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cacheyard.domain import faults
from cacheyard.domain.network import Network, Subnet

MAX_SUBNETS = 20


@dataclass(frozen=True)
class SubnetGroupSpec:
    name: str
    description: str
    subnet_ids: tuple[str, ...]


def plan(
    name: str, description: str, subnet_ids: Sequence[str], network: Network
) -> SubnetGroupSpec:
    if not subnet_ids:
        raise faults.InvalidParameterValueException("At least one subnet id must be given.")
    if len(set(subnet_ids)) > MAX_SUBNETS:
        raise faults.CacheSubnetQuotaExceededFault(
            f"A cache subnet group may contain at most {MAX_SUBNETS} subnets."
        )
    for subnet_id in subnet_ids:
        network.subnet(subnet_id)
    unique = tuple(dict.fromkeys(subnet_ids))
    return SubnetGroupSpec(name, description, unique)


def subnets_of(spec: SubnetGroupSpec, network: Network) -> list[Subnet]:
    return [network.subnet(subnet_id) for subnet_id in spec.subnet_ids]
