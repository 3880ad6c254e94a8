"""Operation handlers: one async function per implemented ElastiCache operation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from cacheyard.api.handlers import (
    cache_clusters,
    engine_versions,
    events,
    parameter_groups,
    replication_groups,
    snapshots,
    subnet_groups,
    tags,
    user_groups,
    users,
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
    "CreateCacheParameterGroup": parameter_groups.create,
    "DescribeCacheParameterGroups": parameter_groups.describe,
    "ModifyCacheParameterGroup": parameter_groups.modify,
    "ResetCacheParameterGroup": parameter_groups.reset,
    "DeleteCacheParameterGroup": parameter_groups.delete,
    "DescribeCacheParameters": parameter_groups.describe_parameters,
    "DescribeEngineDefaultParameters": parameter_groups.describe_engine_defaults,
    "CreateSnapshot": snapshots.create,
    "DescribeSnapshots": snapshots.describe,
    "CopySnapshot": snapshots.copy,
    "DeleteSnapshot": snapshots.delete,
    "CreateUser": users.create,
    "DescribeUsers": users.describe,
    "ModifyUser": users.modify,
    "DeleteUser": users.delete,
    "CreateUserGroup": user_groups.create,
    "DescribeUserGroups": user_groups.describe,
    "ModifyUserGroup": user_groups.modify,
    "DeleteUserGroup": user_groups.delete,
}

IMPLEMENTED = frozenset(HANDLERS)

__all__ = ["HANDLERS", "IMPLEMENTED", "Context", "Handler"]
