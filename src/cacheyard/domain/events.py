"""Events as ElastiCache words them, recorded for DescribeEvents."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

CACHE_CLUSTER = "cache-cluster"
CACHE_SUBNET_GROUP = "cache-subnet-group"


@dataclass(frozen=True)
class Event:
    source_type: str
    source_id: str
    message: str
    date: datetime


def _ids(node_ids: Iterable[str]) -> str:
    return ",".join(node_ids)


def cluster_created() -> str:
    return "Cache cluster created"


def cluster_deleted() -> str:
    return "Cache cluster deleted"


def node_added(node_id: str, zone: str) -> str:
    return f"Added cache node {node_id} in availability zone {zone}"


def node_removed(node_id: str) -> str:
    return f"Removed cache node {node_id}"


def nodes_restarted(node_ids: Iterable[str]) -> str:
    return f"Cache node {_ids(node_ids)} restarted"


def front_restarted(node_id: str) -> str:
    """Cacheyard's own: the relay that serves TLS and plain text on one port (mode
    ``preferred``) had stopped or hung and was started again."""
    return f"Cache node {node_id}: the front serving TLS and plain text was restarted"


def recovery_started(node_ids: Iterable[str]) -> str:
    return f"Recovering cache nodes {_ids(node_ids)}"


def recovery_finished(node_ids: Iterable[str]) -> str:
    return f"Finished recovery for cache nodes {_ids(node_ids)}"


REPLICATION_GROUP = "replication-group"


def replication_group_created(group_id: str) -> str:
    return f"Replication group {group_id} created"


def replication_group_deleted(group_id: str) -> str:
    return f"Replication group {group_id} deleted"


def test_failover_called(node_group_id: str) -> str:
    return f"Test Failover API called for node group {node_group_id}"


test_failover_called.__test__ = False  # type: ignore[attr-defined]


def failover_completed(old_primary: str, new_primary: str) -> str:
    return f"Failover from primary node {old_primary} to replica node {new_primary} completed"


def primary_handed_over(old_primary: str, new_primary: str) -> str:
    return f"Primary role moved from {old_primary} to {new_primary} as requested"


def _of(source_type: str, source_id: str) -> str:
    kind = "replication group" if source_type == REPLICATION_GROUP else "cache cluster"
    return f"{kind} with ID '{source_id}'"


def snapshot_started(name: str, source_type: str, source_id: str) -> str:
    return f"Snapshot started for snapshot with ID '{name}' of {_of(source_type, source_id)}"


def snapshot_succeeded(name: str, source_type: str, source_id: str) -> str:
    return f"Snapshot succeeded for snapshot with ID '{name}' of {_of(source_type, source_id)}"


def snapshot_failed(name: str, source_type: str, source_id: str, reason: str) -> str:
    return (
        f"Snapshot failed for snapshot with ID '{name}' of {_of(source_type, source_id)}: {reason}"
    )


def restore_started(snapshot: str) -> str:
    return f"Restore from snapshot {snapshot} started"


def restore_finished(snapshot: str) -> str:
    return f"Restore from snapshot {snapshot} completed"


def restore_failed(snapshot: str, reason: str) -> str:
    return f"Restore from snapshot {snapshot} failed: {reason}"


def delete_called_off(snapshot: str) -> str:
    return f"Final snapshot {snapshot} failed: the delete was called off and nothing was removed"
