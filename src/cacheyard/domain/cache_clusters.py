"""The desired state of a cache cluster and the rules that change it.

A cluster's *spec* is what the user asked for; the reconciler drives real
processes toward it. Every function here is pure: it checks a request against
ElastiCache's rules and returns the next spec, or raises the fault AWS would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from cacheyard.domain import faults
from cacheyard.domain.engines import DEFAULT_PORTS, EngineVersion
from cacheyard.domain.identifiers import node_id
from cacheyard.domain.network import Subnet, allocate_address, spread_zones
from cacheyard.domain.node_types import NodeType

MAX_MEMCACHED_NODES = 40
DEFAULT_MAINTENANCE_WINDOW = "sun:05:00-sun:06:00"


# TransitEncryptionMode values.
REQUIRED = "required"
PREFERRED = "preferred"


@dataclass(frozen=True)
class NodePlan:
    node_id: str
    zone: str
    address: str
    created_at: datetime
    reboot_seq: int = 0


@dataclass(frozen=True)
class RestoreSource:
    """Where a new cache's data comes from: a stored snapshot, or exported RDB
    files named by ``SnapshotArns`` (resolved to paths when the request is taken)."""

    snapshot: str | None = None
    files: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.snapshot or ", ".join(self.files)


@dataclass(frozen=True)
class CacheClusterSpec:
    cluster_id: str
    engine: str
    engine_version: str
    family: str
    node_type: str
    port: int
    az_mode: str
    subnet_group: str
    parameter_group: str
    nodes: tuple[NodePlan, ...]
    created_at: datetime
    configuration_address: str | None = None
    discovery_version: int = 1
    maintenance_window: str = DEFAULT_MAINTENANCE_WINDOW
    auto_minor_version_upgrade: bool = True
    security_group_ids: tuple[str, ...] = ()
    notification_topic_arn: str | None = None
    notification_topic_status: str | None = None
    snapshot_retention_limit: int = 0
    snapshot_window: str | None = None
    network_type: str = "ipv4"
    replication_group_id: str | None = None
    restore: RestoreSource | None = None
    final_snapshot: str | None = None
    # TLS on the node's port: only TLS (TransitEncryptionMode required), or TLS and
    # plain text while a replication group migrates (preferred).
    transit_encryption: bool = False
    transit_mode: str = REQUIRED

    @property
    def preferred_tls(self) -> bool:
        """TLS and plain text on the port: a front holds it (engines/tls_front.py)."""
        return self.transit_encryption and self.transit_mode == PREFERRED

    @property
    def required_tls(self) -> bool:
        return self.transit_encryption and self.transit_mode == REQUIRED

    # SHA-256 of the AUTH tokens accepted (two while one is rotated).
    auth_tokens: tuple[str, ...] = ()
    auth_token_modified: datetime | None = None
    # Memcached with SASL (Cacheyard's extension): the user group whose password users log in.
    sasl_user_group: str | None = None
    deleting: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def node_ids(self) -> list[str]:
        return [n.node_id for n in self.nodes]

    def node(self, wanted: str) -> NodePlan:
        for plan in self.nodes:
            if plan.node_id == wanted:
                return plan
        raise KeyError(wanted)

    @property
    def preferred_zone(self) -> str:
        zones = {n.zone for n in self.nodes}
        return zones.pop() if len(zones) == 1 else "Multiple"


@dataclass(frozen=True)
class Placement:
    """What placement decisions need to know about the world."""

    subnets: Sequence[Subnet]
    used_addresses: set[str]

    @property
    def zones(self) -> list[str]:
        seen: list[str] = []
        for subnet in self.subnets:
            if subnet.availability_zone not in seen:
                seen.append(subnet.availability_zone)
        return seen

    def check_zones(self, zones: Sequence[str], group: str) -> None:
        for zone in zones:
            if zone not in self.zones:
                raise faults.InvalidParameterValueException(
                    f"The subnet group {group} has no subnet in availability zone {zone}."
                )

    def take(self, zone: str) -> str:
        address = allocate_address(self.subnets, zone, self.used_addresses)
        self.used_addresses.add(address)
        return address


@dataclass(frozen=True)
class CreateRequest:
    cluster_id: str
    engine: EngineVersion
    node_type: NodeType
    num_nodes: int | None
    az_mode: str | None
    preferred_zone: str | None
    preferred_zones: Sequence[str]
    port: int | None
    subnet_group: str
    parameter_group: str | None


def _check_node_count(engine: str, count: int) -> None:
    if engine == "redis" and count != 1:
        raise faults.InvalidParameterValueException(
            "Cannot create a Redis cluster with a NumCacheNodes parameter greater than 1."
        )
    if count < 1:
        raise faults.InvalidParameterValueException(
            "The parameter NumCacheNodes must be greater than 0."
        )
    if count > MAX_MEMCACHED_NODES:
        raise faults.NodeQuotaForClusterExceededFault(
            f"Cannot create a cluster with more than {MAX_MEMCACHED_NODES} nodes."
        )


def _zones_for_new_nodes(
    az_mode: str,
    count: int,
    preferred: Sequence[str],
    placement: Placement,
    group: str,
    single_zone: str | None,
    existing: Sequence[str] = (),
) -> list[str]:
    placement.check_zones(preferred, group)
    if preferred and len(preferred) != count:
        raise faults.InvalidParameterValueException(
            "The number of preferred availability zones must equal the number of nodes "
            f"to create ({count})."
        )
    if az_mode == "single-az":
        if len(set(preferred)) > 1:
            raise faults.InvalidParameterCombinationException(
                "When AZMode is single-az, all preferred availability zones must be the same."
            )
        zone = preferred[0] if preferred else (single_zone or placement.zones[0])
        return [zone] * count
    return spread_zones(placement.zones, count, preferred, existing)


def plan_create(request: CreateRequest, placement: Placement, now: datetime) -> CacheClusterSpec:
    engine = request.engine.engine
    if request.port is not None and not 1 <= request.port <= 65535:
        raise faults.InvalidParameterValueException(
            f"Invalid value {request.port} for Port: it must be between 1 and 65535."
        )
    count = request.num_nodes if request.num_nodes is not None else 1
    _check_node_count(engine, count)
    if request.preferred_zone and request.preferred_zones:
        raise faults.InvalidParameterCombinationException(
            "Only one of PreferredAvailabilityZone and PreferredAvailabilityZones may be given."
        )
    if engine == "redis" and request.az_mode is not None:
        raise faults.InvalidParameterCombinationException(
            "AZMode is only supported for Memcached clusters."
        )
    # Without AZMode, a list of different preferred zones asks for cross-az placement.
    az_mode = request.az_mode or (
        "cross-az" if len(set(request.preferred_zones)) > 1 else "single-az"
    )
    if az_mode == "cross-az" and count < 2:
        raise faults.InvalidParameterValueException(
            "AZMode cross-az requires NumCacheNodes of at least 2."
        )
    if request.preferred_zone:
        placement.check_zones([request.preferred_zone], request.subnet_group)
    zones = _zones_for_new_nodes(
        az_mode,
        count,
        request.preferred_zones,
        placement,
        request.subnet_group,
        request.preferred_zone,
    )
    nodes = tuple(
        NodePlan(node_id(i), zone, placement.take(zone), now) for i, zone in enumerate(zones, 1)
    )
    configuration_address = placement.take(zones[0]) if engine == "memcached" else None
    return CacheClusterSpec(
        cluster_id=request.cluster_id,
        engine=engine,
        engine_version=request.engine.version,
        family=request.engine.family,
        node_type=request.node_type.name,
        port=DEFAULT_PORTS[engine] if request.port is None else request.port,
        az_mode=az_mode,
        subnet_group=request.subnet_group,
        parameter_group=request.parameter_group or request.engine.default_parameter_group,
        nodes=nodes,
        created_at=now,
        configuration_address=configuration_address,
    )


def plan_resize(
    spec: CacheClusterSpec,
    num_nodes: int,
    to_remove: Sequence[str],
    new_zones: Sequence[str],
    az_mode: str | None,
    placement: Placement,
    now: datetime,
) -> CacheClusterSpec:
    """Add or remove Memcached nodes, as ModifyCacheCluster does."""
    _check_node_count(spec.engine, num_nodes)
    current = len(spec.nodes)
    unknown = [n for n in to_remove if n not in spec.node_ids]
    if unknown:
        raise faults.InvalidParameterValueException(
            f"Cache node(s) {', '.join(unknown)} not found in cluster {spec.cluster_id}."
        )
    if num_nodes < current:
        if len(set(to_remove)) != current - num_nodes:
            raise faults.InvalidParameterValueException(
                "The number of cache node ids to remove must equal the number of nodes "
                f"being removed ({current - num_nodes}); CacheNodeIdsToRemove is required."
            )
        kept = tuple(n for n in spec.nodes if n.node_id not in to_remove)
        return replace(spec, nodes=kept, discovery_version=spec.discovery_version + 1)
    if to_remove:
        raise faults.InvalidParameterCombinationException(
            "CacheNodeIdsToRemove can only be given when NumCacheNodes decreases."
        )
    if num_nodes == current:
        return spec
    mode = az_mode or spec.az_mode
    single = spec.nodes[0].zone if spec.nodes else None
    zones = _zones_for_new_nodes(
        mode,
        num_nodes - current,
        new_zones,
        placement,
        spec.subnet_group,
        single,
        existing=[n.zone for n in spec.nodes],
    )
    next_index = max(int(n.node_id) for n in spec.nodes) + 1
    added = tuple(
        NodePlan(node_id(next_index + i), zone, placement.take(zone), now)
        for i, zone in enumerate(zones)
    )
    return replace(
        spec,
        nodes=spec.nodes + added,
        az_mode=mode,
        discovery_version=spec.discovery_version + 1,
    )


def plan_reboot(spec: CacheClusterSpec, node_ids: Sequence[str]) -> CacheClusterSpec:
    unknown = [n for n in node_ids if n not in spec.node_ids]
    if unknown or not node_ids:
        raise faults.InvalidParameterValueException(
            f"Cache node(s) {', '.join(unknown) or '(none)'} not found in cluster "
            f"{spec.cluster_id}."
        )
    wanted = set(node_ids)
    nodes = tuple(
        replace(n, reboot_seq=n.reboot_seq + 1) if n.node_id in wanted else n for n in spec.nodes
    )
    return replace(spec, nodes=nodes)
