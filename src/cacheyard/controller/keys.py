"""Work-queue keys: ``{kind}/{id}``."""

from __future__ import annotations

CACHE_CLUSTER = "cache-cluster"
CACHE_SUBNET_GROUP = "cache-subnet-group"
REPLICATION_GROUP = "replication-group"
CACHE_PARAMETER_GROUP = "cache-parameter-group"
SNAPSHOT = "snapshot"


def key(kind: str, resource_id: str) -> str:
    return f"{kind}/{resource_id}"


def split(queue_key: str) -> tuple[str, str]:
    kind, _, resource_id = queue_key.partition("/")
    return kind, resource_id
