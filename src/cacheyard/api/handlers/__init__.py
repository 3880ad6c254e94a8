"""Operation handlers: one async function per implemented ElastiCache operation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from cacheyard.api.handlers import (
    cache_clusters,
    engine_versions,
    events,
    replication_groups,
    subnet_groups,
    tags,
)
from cacheyard.api.handlers.context import Context

Handler = Callable[[Context, dict[str, Any]], Awaitable[dict[str, Any]]]

HANDLERS: dict[str, Handler] = {
    "CreateCacheCluster": cache_clusters.create,
    "DescribeCacheClusters": cache_clusters.describe,
    "ModifyCacheCluster": cache_clusters.modify,
    "RebootCacheCluster": cache_clusters.reboot,
    "DeleteCacheCluster": cache_clusters.delete,
    "CreateCacheSubnetGroup": subnet_groups.create,
    "DescribeCacheSubnetGroups": subnet_groups.describe,
    "ModifyCacheSubnetGroup": subnet_groups.modify,
    "DeleteCacheSubnetGroup": subnet_groups.delete,
    "AddTagsToResource": tags.add,
    "RemoveTagsFromResource": tags.remove,
    "ListTagsForResource": tags.list_tags,
    "DescribeEvents": events.describe,
    "DescribeCacheEngineVersions": engine_versions.describe,
    "CreateReplicationGroup": replication_groups.create,
    "DescribeReplicationGroups": replication_groups.describe,
    "ModifyReplicationGroup": replication_groups.modify,
    "DeleteReplicationGroup": replication_groups.delete,
    "IncreaseReplicaCount": replication_groups.increase_replicas,
    "DecreaseReplicaCount": replication_groups.decrease_replicas,
    "TestFailover": replication_groups.test_failover,
}

IMPLEMENTED = frozenset(HANDLERS)

__all__ = ["HANDLERS", "IMPLEMENTED", "Context", "Handler"]
