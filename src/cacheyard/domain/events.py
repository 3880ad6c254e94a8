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


def recovery_started(node_ids: Iterable[str]) -> str:
    return f"Recovering cache nodes {_ids(node_ids)}"


def recovery_finished(node_ids: Iterable[str]) -> str:
    return f"Finished recovery for cache nodes {_ids(node_ids)}"
