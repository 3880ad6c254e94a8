"""Snapshots (backups) of Redis caches, and when automatic ones are due.

A snapshot's spec records what was snapshotted, as it was when the request was
made: a restore recreates a cache like it (engine, node type, parameter and
subnet groups, windows). Which node the data is read from is decided when the
snapshot is taken (a synced replica when there is one), so it is observed
state, not spec.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from cacheyard.domain import faults
from cacheyard.domain.cache_clusters import CacheClusterSpec
from cacheyard.domain.replication_groups import NODE_GROUP_ID, ReplicationGroupSpec
from cacheyard.domain.windows import snapshot_window

MANUAL = "manual"
AUTOMATED = "automated"
AUTOMATIC_PREFIX = "automatic."
MAX_RETENTION_DAYS = 35
# Names become file names (`<name>-0001.rdb.sha256.tmp` is the longest, staging
# directories `<name>.<16 hex digits>`): they must fit the 255-byte limit.
MAX_NAME_LENGTH = 235
# Names become file and directory names in the snapshot store: no separators.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class NodeGroupLayout:
    """The shard a snapshot holds (one: cluster mode is disabled)."""

    node_group_id: str
    replica_count: int
    primary_zone: str
    replica_zones: tuple[str, ...]


@dataclass(frozen=True)
class SnapshotSpec:
    name: str
    source: str
    engine: str
    engine_version: str
    family: str
    node_type: str
    port: int
    parameter_group: str
    subnet_group: str
    preferred_zone: str
    cache_created_at: datetime
    maintenance_window: str
    auto_minor_version_upgrade: bool
    retention_limit: int
    window: str | None
    layout: NodeGroupLayout
    created_at: datetime
    cache_cluster_id: str | None = None
    replication_group_id: str | None = None
    replication_group_description: str | None = None
    automatic_failover: bool | None = None
    # The member cluster the user named (CreateSnapshot with a member's CacheClusterId).
    requested_cluster: str | None = None
    copy_of: str | None = None
    deleting: bool = False

    @property
    def source_id(self) -> str:
        """The cache the snapshot was taken of: its group if it has one."""
        return self.replication_group_id or self.cache_cluster_id or ""

    @property
    def num_cache_nodes(self) -> int:
        return 1 + self.layout.replica_count


def snapshot_name(value: str) -> str:
    """AWS's rule for snapshot names; ``automatic.`` is reserved for backups it takes."""
    if (
        not _NAME.fullmatch(value)
        or len(value) > MAX_NAME_LENGTH
        or value.lower().startswith(AUTOMATIC_PREFIX)
    ):
        raise faults.InvalidParameterValueException(
            f"Invalid snapshot name: {value!r}. It must be 1 to {MAX_NAME_LENGTH} letters, "
            f"digits, '.', '_' or '-', and must not begin with '{AUTOMATIC_PREFIX}'."
        )
    return value


def retention_limit(value: int) -> int:
    if not 0 <= value <= MAX_RETENTION_DAYS:
        raise faults.InvalidParameterValueException(
            f"SnapshotRetentionLimit must be between 0 and {MAX_RETENTION_DAYS}."
        )
    return value


def automatic_name(resource_id: str, at: datetime) -> str:
    """How ElastiCache names the backups it takes: ``automatic.{id}-YYYY-MM-DD-HH-MM``."""
    return f"{AUTOMATIC_PREFIX}{resource_id}-{at:%Y-%m-%d-%H-%M}"


def default_window(resource_id: str) -> str:
    """A one-hour window when the user gives none. AWS picks one at random; a hash
    of the id keeps it stable across restarts of the control plane."""
    hour = zlib.crc32(resource_id.encode()) % 24
    return f"{hour:02d}:00-{(hour + 1) % 24:02d}:00"


def window_opened_at(window: str, now: datetime) -> datetime | None:
    """When the window ``now`` falls in opened, or None outside it (UTC; a window
    may run over midnight)."""
    text = snapshot_window(window)
    start = time(int(text[0:2]), int(text[3:5]), tzinfo=now.tzinfo)
    end = time(int(text[6:8]), int(text[9:11]), tzinfo=now.tzinfo)
    today_start = datetime.combine(now.date(), start)
    length = (datetime.combine(now.date(), end) - today_start) % timedelta(days=1)
    for opened in (today_start, today_start - timedelta(days=1)):
        if opened <= now < opened + length:
            return opened
    return None


def backup_due(window: str, retention: int, now: datetime, last_automatic: datetime | None) -> bool:
    """Whether an automatic backup should start now: backups are on, the window is
    open, and none was taken since it opened."""
    if retention <= 0:
        return False
    opened = window_opened_at(window, now)
    return opened is not None and (last_automatic is None or last_automatic < opened)


def expired(retention: int, created_at: datetime, now: datetime) -> bool:
    """An automatic backup older than the retention limit (in days) is pruned."""
    return now - created_at >= timedelta(days=retention)


def of_cluster(spec: CacheClusterSpec, name: str, source: str, now: datetime) -> SnapshotSpec:
    """A snapshot of a standalone Redis cluster."""
    _snapshottable(spec)
    return SnapshotSpec(
        name=name,
        source=source,
        engine=spec.engine,
        engine_version=spec.engine_version,
        family=spec.family,
        node_type=spec.node_type,
        port=spec.port,
        parameter_group=spec.parameter_group,
        subnet_group=spec.subnet_group,
        preferred_zone=spec.nodes[0].zone,
        cache_created_at=spec.created_at,
        maintenance_window=spec.maintenance_window,
        auto_minor_version_upgrade=spec.auto_minor_version_upgrade,
        retention_limit=spec.snapshot_retention_limit,
        window=spec.snapshot_window,
        layout=NodeGroupLayout(NODE_GROUP_ID, 0, spec.nodes[0].zone, ()),
        created_at=now,
        cache_cluster_id=spec.cluster_id,
    )


def of_group(
    group: ReplicationGroupSpec,
    members: dict[str, CacheClusterSpec],
    primary: str,
    name: str,
    source: str,
    now: datetime,
    requested_cluster: str | None = None,
) -> SnapshotSpec:
    """A snapshot of a replication group: one shard, its primary and replicas' zones."""
    first = members[primary]
    replicas = [m for m in group.member_ids if m != primary and m in members]
    return SnapshotSpec(
        name=name,
        source=source,
        engine="redis",
        engine_version=group.engine_version,
        family=group.family,
        node_type=group.node_type,
        port=group.port,
        parameter_group=group.parameter_group,
        subnet_group=group.subnet_group,
        preferred_zone=first.nodes[0].zone,
        cache_created_at=group.created_at,
        maintenance_window=group.maintenance_window,
        auto_minor_version_upgrade=group.auto_minor_version_upgrade,
        retention_limit=group.snapshot_retention_limit,
        window=group.snapshot_window,
        layout=NodeGroupLayout(
            NODE_GROUP_ID,
            len(replicas),
            first.nodes[0].zone,
            tuple(members[r].nodes[0].zone for r in replicas),
        ),
        created_at=now,
        replication_group_id=group.group_id,
        replication_group_description=group.description,
        automatic_failover=group.automatic_failover,
        requested_cluster=requested_cluster,
    )


def _snapshottable(spec: CacheClusterSpec) -> None:
    if spec.engine != "redis":
        raise faults.SnapshotFeatureNotSupportedFault(
            f"Snapshots are not supported for {spec.engine} clusters."
        )
