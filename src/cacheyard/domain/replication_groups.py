"""Replication groups (cluster mode disabled): one primary, up to five replicas.

The group's spec names its member clusters (``{group}-001`` ...), the two
endpoint addresses that move with roles, and the user's failover settings.
Which member *is* primary is observed state, owned by the reconciler; the spec
only says which member the user last asked to be primary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cacheyard.domain import faults
from cacheyard.domain.cache_clusters import (
    DEFAULT_MAINTENANCE_WINDOW,
    PREFERRED,
    REQUIRED,
    CacheClusterSpec,
    NodePlan,
    Placement,
)
from cacheyard.domain.engines import DEFAULT_PORTS, EngineVersion
from cacheyard.domain.identifiers import node_id
from cacheyard.domain.network import spread_zones
from cacheyard.domain.node_types import NodeType

MAX_MEMBERS = 6
MAX_REPLICAS = MAX_MEMBERS - 1
NODE_GROUP_ID = "0001"
TEST_FAILOVERS_PER_DAY = 5


@dataclass(frozen=True)
class ReplicationGroupSpec:
    group_id: str
    description: str
    engine_version: str
    family: str
    node_type: str
    port: int
    subnet_group: str
    parameter_group: str
    member_ids: tuple[str, ...]
    primary_endpoint: str
    reader_endpoint: str
    automatic_failover: bool
    multi_az: bool
    preferred_primary: str
    created_at: datetime
    switchover_seq: int = 0
    test_failovers: tuple[datetime, ...] = ()
    next_member: int = 1
    maintenance_window: str = DEFAULT_MAINTENANCE_WINDOW
    auto_minor_version_upgrade: bool = True
    security_group_ids: tuple[str, ...] = ()
    snapshot_retention_limit: int = 0
    snapshot_window: str | None = None
    final_snapshot: str | None = None
    transit_encryption: bool = False
    # required, or preferred while clients migrate (the members follow one by one).
    transit_mode: str = REQUIRED
    # SHA-256 of the AUTH tokens accepted (two while one is rotated).
    auth_tokens: tuple[str, ...] = ()
    auth_token_modified: datetime | None = None
    # The RBAC user group whose users replace `default` on every node (at most one).
    user_group_ids: tuple[str, ...] = ()
    # The member snapshots are read from; by default a replica, so the primary never forks.
    snapshotting_cluster: str | None = None
    deleting: bool = False

    def snapshot_source(self, primary: str) -> str:
        if self.snapshotting_cluster in self.member_ids:
            return self.snapshotting_cluster
        replicas = [m for m in self.member_ids if m != primary]
        return replicas[0] if replicas else primary


@dataclass(frozen=True)
class GroupRequest:
    group_id: str
    description: str
    engine: EngineVersion
    node_type: NodeType
    num_members: int
    zones: Sequence[str]
    automatic_failover: bool
    multi_az: bool
    port: int | None
    subnet_group: str
    parameter_group: str | None
    transit_encryption: bool = False
    transit_mode: str = REQUIRED


def member_id(group_id: str, index: int) -> str:
    return f"{group_id}-{index:03d}"


def check_failover_settings(members: int, automatic_failover: bool, multi_az: bool) -> None:
    if multi_az and not automatic_failover:
        raise faults.InvalidParameterCombinationException(
            "Multi-AZ requires automatic failover to be enabled."
        )
    if automatic_failover and members < 2:
        raise faults.InvalidParameterCombinationException(
            "Automatic failover needs at least one read replica: NumCacheClusters must be "
            "at least 2."
        )


def member_count(num_cache_clusters: int | None, replicas: int | None) -> int:
    if (
        num_cache_clusters is not None
        and replicas is not None
        and num_cache_clusters != (replicas + 1)
    ):
        raise faults.InvalidParameterCombinationException(
            "NumCacheClusters and ReplicasPerNodeGroup disagree."
        )
    count = (
        num_cache_clusters
        if num_cache_clusters is not None
        else (replicas + 1 if replicas is not None else 1)
    )
    if not 1 <= count <= MAX_MEMBERS:
        raise faults.InvalidParameterValueException(
            f"The number of cache clusters must be between 1 and {MAX_MEMBERS} "
            f"(up to {MAX_REPLICAS} replicas)."
        )
    return count


def _member(
    group_id: str,
    cluster_id: str,
    zone: str,
    address: str,
    now: datetime,
    engine: EngineVersion,
    node_type: str,
    port: int,
    subnet_group: str,
    parameter_group: str,
    transit_encryption: bool,
    transit_mode: str = REQUIRED,
) -> CacheClusterSpec:
    return CacheClusterSpec(
        cluster_id=cluster_id,
        engine="redis",
        engine_version=engine.version,
        family=engine.family,
        node_type=node_type,
        port=port,
        az_mode="single-az",
        subnet_group=subnet_group,
        parameter_group=parameter_group,
        nodes=(NodePlan(node_id(1), zone, address, now),),
        created_at=now,
        replication_group_id=group_id,
        transit_encryption=transit_encryption,
        transit_mode=transit_mode,
    )


def plan_group(
    request: GroupRequest, placement: Placement, now: datetime
) -> tuple[ReplicationGroupSpec, list[CacheClusterSpec]]:
    check_failover_settings(request.num_members, request.automatic_failover, request.multi_az)
    if request.port is not None and not 1 <= request.port <= 65535:
        raise faults.InvalidParameterValueException(
            f"Invalid value {request.port} for Port: it must be between 1 and 65535."
        )
    if request.zones and len(request.zones) != request.num_members:
        raise faults.InvalidParameterValueException(
            "The number of PreferredCacheClusterAZs must equal NumCacheClusters "
            f"({request.num_members})."
        )
    placement.check_zones(request.zones, request.subnet_group)
    zones = spread_zones(placement.zones, request.num_members, request.zones)
    port = DEFAULT_PORTS["redis"] if request.port is None else request.port
    parameter_group = request.parameter_group or request.engine.default_parameter_group
    members = [
        _member(
            request.group_id,
            member_id(request.group_id, i),
            zone,
            placement.take(zone),
            now,
            request.engine,
            request.node_type.name,
            port,
            request.subnet_group,
            parameter_group,
            request.transit_encryption,
            request.transit_mode,
        )
        for i, zone in enumerate(zones, start=1)
    ]
    group = ReplicationGroupSpec(
        group_id=request.group_id,
        description=request.description,
        engine_version=request.engine.version,
        family=request.engine.family,
        node_type=request.node_type.name,
        port=port,
        subnet_group=request.subnet_group,
        parameter_group=parameter_group,
        member_ids=tuple(m.cluster_id for m in members),
        primary_endpoint=placement.take(zones[0]),
        reader_endpoint=placement.take(zones[0]),
        automatic_failover=request.automatic_failover,
        multi_az=request.multi_az,
        preferred_primary=members[0].cluster_id,
        created_at=now,
        next_member=len(members) + 1,
        transit_encryption=request.transit_encryption,
        transit_mode=request.transit_mode,
    )
    return group, members


def plan_add_replicas(
    group: ReplicationGroupSpec,
    count: int,
    zones: Sequence[str],
    placement: Placement,
    engine: EngineVersion,
    existing_zones: Sequence[str],
    now: datetime,
    cluster_ids: Sequence[str] = (),
) -> tuple[ReplicationGroupSpec, list[CacheClusterSpec]]:
    """New replicas: named ``{group}-00N`` unless the caller names them (CreateCacheCluster)."""
    if len(group.member_ids) + count > MAX_MEMBERS:
        raise faults.InvalidParameterValueException(
            f"A replication group can have at most {MAX_REPLICAS} replicas."
        )
    if zones and len(zones) != count:
        raise faults.InvalidParameterValueException(
            f"The number of availability zones must equal the number of new replicas ({count})."
        )
    placement.check_zones(zones, group.subnet_group)
    chosen = spread_zones(placement.zones, count, zones, existing_zones)
    index = group.next_member
    members = []
    for i, zone in enumerate(chosen):
        if cluster_ids:
            cluster_id = cluster_ids[i]
        else:
            cluster_id = member_id(group.group_id, index)
            index += 1
        members.append(
            _member(
                group.group_id,
                cluster_id,
                zone,
                placement.take(zone),
                now,
                engine,
                group.node_type,
                group.port,
                group.subnet_group,
                group.parameter_group,
                group.transit_encryption,
                group.transit_mode,
            )
        )
    grown = replace(
        group,
        member_ids=group.member_ids + tuple(m.cluster_id for m in members),
        next_member=index,
    )
    return grown, members


def plan_remove_replicas(
    group: ReplicationGroupSpec, to_remove: Sequence[str], primary: str
) -> ReplicationGroupSpec:
    unknown = [m for m in to_remove if m not in group.member_ids]
    if unknown:
        raise faults.InvalidParameterValueException(
            f"{', '.join(unknown)} is not a member of replication group {group.group_id}."
        )
    if primary in to_remove:
        raise faults.InvalidParameterValueException(
            f"Cannot remove the primary cluster {primary}; promote a replica first."
        )
    remaining = tuple(m for m in group.member_ids if m not in to_remove)
    check_failover_settings(len(remaining), group.automatic_failover, group.multi_az)
    preferred = primary if group.preferred_primary in to_remove else group.preferred_primary
    return replace(group, member_ids=remaining, preferred_primary=preferred)


def record_test_failover(group: ReplicationGroupSpec, now: datetime) -> ReplicationGroupSpec:
    """TestFailover, within AWS's limit of a few calls per rolling 24 hours."""
    if not group.automatic_failover:
        raise faults.InvalidReplicationGroupStateFault(
            f"Automatic failover is not enabled for replication group {group.group_id}."
        )
    recent = tuple(t for t in group.test_failovers if now - t < timedelta(days=1))
    if len(recent) >= TEST_FAILOVERS_PER_DAY:
        raise faults.TestFailoverNotAvailableFault(
            f"TestFailover can be called at most {TEST_FAILOVERS_PER_DAY} times in 24 hours "
            f"for replication group {group.group_id}."
        )
    return replace(group, test_failovers=(*recent, now))


def transit_change(
    group: ReplicationGroupSpec, enabled: bool | None, mode: str | None
) -> tuple[bool, str] | None:
    """ModifyReplicationGroup's TransitEncryptionEnabled / TransitEncryptionMode: the
    new (enabled, mode), or None for no change. As on AWS, a live group goes through
    `preferred` both ways (plain text <-> preferred <-> required), one step a call."""
    if enabled is None and mode is None:
        return None
    if mode not in (None, PREFERRED, REQUIRED):
        raise faults.InvalidParameterValueException(
            f"Invalid TransitEncryptionMode {mode}: preferred or required."
        )
    now = group.transit_mode if group.transit_encryption else None
    wanted_on = group.transit_encryption if enabled is None else enabled
    if not wanted_on:
        if mode is not None:
            raise faults.InvalidParameterCombinationException(
                "TransitEncryptionMode needs TransitEncryptionEnabled."
            )
        wanted = None
    else:
        wanted = mode or now or REQUIRED
    if wanted == now:
        return None
    if PREFERRED not in (now, wanted):
        raise faults.InvalidParameterCombinationException(
            "Encryption in transit changes on a running group through TransitEncryptionMode "
            "preferred: set it to preferred first."
        )
    if len(group.member_ids) < 2:
        raise faults.InvalidParameterCombinationException(
            "Changing encryption in transit restarts the members one by one and moves the "
            "primary role: the group needs at least one replica."
        )
    if wanted is None and (group.auth_tokens or group.user_group_ids):
        raise faults.InvalidParameterCombinationException(
            "AUTH tokens and user groups need encryption in transit."
        )
    return (True, wanted) if wanted is not None else (False, REQUIRED)
