"""Create/Describe/Modify/Reboot/DeleteCacheCluster.

Each call validates through the domain, writes the new spec and status in one
transaction, enqueues the cluster for the reconciler and answers at once.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from cacheyard.api.handlers import parameter_groups, sasl_links, snapshots
from cacheyard.api.handlers.cluster_view import cluster_view
from cacheyard.api.handlers.context import Context
from cacheyard.api.handlers.group_view import current_primary
from cacheyard.api.handlers.paging import page
from cacheyard.api.handlers.replication_groups import get_group, require_available
from cacheyard.api.handlers.resources import (
    NOT_YET,
    new_record,
    placement_for,
    refuse_not_yet,
    tags_param,
    transit_encryption,
)
from cacheyard.controller import keys
from cacheyard.domain import auth_tokens, faults, identifiers, statuses, windows
from cacheyard.domain import snapshots as snapshots_domain
from cacheyard.domain.cache_clusters import (
    CacheClusterSpec,
    CreateRequest,
    plan_create,
    plan_reboot,
    plan_resize,
)
from cacheyard.domain.codec import dump, load
from cacheyard.domain.network import DEFAULT_SUBNET_GROUP
from cacheyard.domain.node_types import node_type
from cacheyard.domain.replication_groups import (
    ReplicationGroupSpec,
    plan_add_replicas,
    plan_remove_replicas,
)
from cacheyard.store import Record, Transaction

Params = dict[str, Any]

_NOT_YET = {
    **NOT_YET,
    "PreferredOutpostArn": "Outposts",
    "PreferredOutpostArns": "Outposts",
    "OutpostMode": "Outposts",
    "ScaleConfig": "Scaling",
}


async def _get(tx: Transaction, cluster_id: str) -> Record:
    record = await tx.get(keys.CACHE_CLUSTER, cluster_id.lower())
    if record is None:
        raise faults.CacheClusterNotFoundFault(f"CacheCluster {cluster_id} not found.")
    return record


def _require_available(record: Record) -> None:
    if record.status != statuses.AVAILABLE:
        raise faults.InvalidCacheClusterStateFault(
            f"Cache cluster {record.id} is not in available state (it is {record.status})."
        )


def _metadata(spec: CacheClusterSpec, params: Params) -> CacheClusterSpec:
    """The settings that are only recorded: windows, topics, security groups."""
    changes: dict[str, Any] = {}
    if params.get("PreferredMaintenanceWindow") is not None:
        changes["maintenance_window"] = windows.maintenance_window(
            params["PreferredMaintenanceWindow"]
        )
    if params.get("AutoMinorVersionUpgrade") is not None:
        changes["auto_minor_version_upgrade"] = params["AutoMinorVersionUpgrade"]
    if params.get("SecurityGroupIds") is not None:
        changes["security_group_ids"] = tuple(params["SecurityGroupIds"])
    if params.get("NotificationTopicArn") is not None:
        changes["notification_topic_arn"] = params["NotificationTopicArn"]
    if params.get("NotificationTopicStatus") is not None:
        changes["notification_topic_status"] = params["NotificationTopicStatus"]
    for param, attr in (
        ("SnapshotRetentionLimit", "snapshot_retention_limit"),
        ("SnapshotWindow", "snapshot_window"),
    ):
        if params.get(param) is None:
            continue
        if spec.engine != "redis":
            raise faults.InvalidParameterCombinationException(
                f"{param} is only valid for the redis engine."
            )
        if param == "SnapshotRetentionLimit":
            snapshots_domain.retention_limit(params[param])
        if param == "SnapshotWindow":
            windows.snapshot_window(params[param])
        changes[attr] = params[param]
    return replace(spec, **changes)


async def create(ctx: Context, params: Params) -> Params:
    cluster_id = identifiers.cache_cluster_id(params["CacheClusterId"])
    refuse_not_yet(params, _NOT_YET)
    if params.get("ReplicationGroupId"):
        return await _add_replica(ctx, cluster_id, params)
    if params.get("CacheSecurityGroupNames"):
        raise faults.InvalidParameterCombinationException(
            "Cache security groups cannot be used in a VPC; use SecurityGroupIds."
        )
    async with ctx.store.transaction() as tx:
        restore, snapshot = await snapshots.restore_source(ctx, tx, params)
    engine_name = params.get("Engine") or (snapshot.engine if snapshot else None)
    node_type_name = params.get("CacheNodeType") or (snapshot.node_type if snapshot else None)
    if not engine_name:
        raise faults.InvalidParameterValueException("The parameter Engine must be provided.")
    if not node_type_name:
        raise faults.InvalidParameterValueException(
            "The parameter CacheNodeType must be provided and must not be blank."
        )
    engine = ctx.catalog.resolve(engine_name.lower(), params.get("EngineVersion"))
    if restore is not None and engine.engine != "redis":
        raise faults.InvalidParameterCombinationException(
            "Only Redis clusters can be restored from a snapshot."
        )
    request = CreateRequest(
        cluster_id=cluster_id,
        engine=engine,
        node_type=node_type(node_type_name),
        num_nodes=params.get("NumCacheNodes"),
        az_mode=params.get("AZMode"),
        preferred_zone=params.get("PreferredAvailabilityZone"),
        preferred_zones=params.get("PreferredAvailabilityZones") or [],
        port=params.get("Port"),
        subnet_group=(params.get("CacheSubnetGroupName") or DEFAULT_SUBNET_GROUP).lower(),
        parameter_group=params.get("CacheParameterGroupName"),
    )
    tags = tags_param(params)
    now = ctx.clock.now()
    async with ctx.store.transaction() as tx:
        if await tx.get(keys.CACHE_CLUSTER, cluster_id) is not None:
            raise faults.CacheClusterAlreadyExistsFault(
                f"Cache cluster {cluster_id} already exists."
            )
        group_name, _ = await parameter_groups.resolve_for(
            ctx, tx, request.parameter_group, engine.family
        )
        placement = await placement_for(ctx, tx, request.subnet_group)
        spec = _metadata(plan_create(request, placement, now), params)
        transit = transit_encryption(params, engine.engine)
        spec = replace(
            spec,
            parameter_group=group_name,
            restore=restore,
            transit_encryption=transit,
            auth_tokens=auth_tokens.for_new_cache(params.get("AuthToken"), transit),
            auth_token_modified=now if params.get("AuthToken") else None,
            sasl_user_group=await sasl_links.for_new_cluster(tx, tags, engine.engine),
        )
        record = new_record(ctx, keys.CACHE_CLUSTER, "cluster", cluster_id, spec, now)
        await tx.insert(record)
        await tx.set_tags(record.arn, tags)
    ctx.controller.enqueue(keys.CACHE_CLUSTER, cluster_id)
    return {"CacheCluster": cluster_view(record, show_nodes=False)}


async def _add_replica(ctx: Context, cluster_id: str, params: Params) -> Params:
    """CreateCacheCluster with ReplicationGroupId: a new read replica in that group."""
    if params.get("Engine") not in (None, "redis"):
        raise faults.InvalidParameterCombinationException(
            "A cluster in a replication group must use the redis engine."
        )
    now = ctx.clock.now()
    zone = params.get("PreferredAvailabilityZone")
    async with ctx.store.transaction() as tx:
        group_record = await get_group(tx, params["ReplicationGroupId"])
        require_available(group_record)
        if await tx.get(keys.CACHE_CLUSTER, cluster_id) is not None:
            raise faults.CacheClusterAlreadyExistsFault(
                f"Cache cluster {cluster_id} already exists."
            )
        group = load(ReplicationGroupSpec, group_record.spec)
        engine = ctx.catalog.resolve("redis", group.engine_version)
        placement = await placement_for(ctx, tx, group.subnet_group)
        group, (member,) = plan_add_replicas(
            group, 1, [zone] if zone else [], placement, engine, [], now, [cluster_id]
        )
        record = new_record(ctx, keys.CACHE_CLUSTER, "cluster", cluster_id, member, now)
        await tx.insert(record)
        await tx.set_tags(record.arn, tags_param(params))
        await tx.update_spec(
            keys.REPLICATION_GROUP, group.group_id, dump(group), statuses.MODIFYING
        )
    ctx.controller.enqueue(keys.REPLICATION_GROUP, group.group_id)
    return {"CacheCluster": cluster_view(record, show_nodes=False)}


async def describe(ctx: Context, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        if params.get("CacheClusterId") is not None:
            records = [await _get(tx, params["CacheClusterId"])]
        else:
            records = await tx.all(keys.CACHE_CLUSTER)
        busy = await snapshots.being_read(tx)
    if params.get("ShowCacheClustersNotInReplicationGroups"):
        records = [r for r in records if not r.spec.get("replication_group_id")]
    show = bool(params.get("ShowCacheNodeInfo"))
    views = [cluster_view(r, show_nodes=show, snapshotting=r.id in busy) for r in records]
    return page(views, [r.id for r in records], "CacheClusters", params)


async def modify(ctx: Context, params: Params) -> Params:
    refuse_not_yet(params, _NOT_YET)
    async with ctx.store.transaction() as tx:
        record = await _get(tx, params["CacheClusterId"])
        _require_available(record)
        await snapshots.refuse_while_read(tx, [record.id], "ModifyCacheCluster")
        spec = load(CacheClusterSpec, record.spec)
        _check_unchangeable(ctx, spec, params)
        resized = await _resize(ctx, tx, spec, params)
        status = statuses.MODIFYING if resized.nodes != spec.nodes else record.status
        spec = _metadata(resized, params)
        changed = _auth_token_change(spec, params, ctx.clock.now())
        if changed.auth_tokens != spec.auth_tokens:
            status = statuses.MODIFYING  # until every node takes the new tokens
        spec = changed
        if params.get("CacheParameterGroupName") is not None:
            if spec.replication_group_id is not None:
                raise faults.InvalidParameterCombinationException(
                    f"Cache cluster {spec.cluster_id} is a member of replication group "
                    f"{spec.replication_group_id}: change its parameter group there."
                )
            group_name, _ = await parameter_groups.resolve_for(
                ctx, tx, params["CacheParameterGroupName"], spec.family
            )
            spec = replace(spec, parameter_group=group_name)
        record = await tx.update_spec(keys.CACHE_CLUSTER, record.id, dump(spec), status)
    ctx.controller.enqueue(keys.CACHE_CLUSTER, record.id)
    return {"CacheCluster": cluster_view(record, show_nodes=False)}


def _check_unchangeable(ctx: Context, spec: CacheClusterSpec, params: Params) -> None:
    if params.get("Engine") is not None and params["Engine"].lower() != spec.engine:
        raise faults.InvalidParameterCombinationException("The engine cannot be changed.")
    version = params.get("EngineVersion")
    if version is not None and ctx.catalog.resolve(spec.engine, version).version != (
        spec.engine_version
    ):
        raise faults.InvalidParameterValueException(
            f"Cannot upgrade {spec.engine} {spec.engine_version} to {version}: only the "
            "installed version is available."
        )
    node_type_name = params.get("CacheNodeType")
    if node_type_name is not None and node_type_name != spec.node_type:
        node_type(node_type_name)
        raise faults.InvalidParameterCombinationException(
            "Changing the node type of a cluster is not supported by this Cacheyard version."
        )
    if params.get("CacheSecurityGroupNames"):
        raise faults.InvalidParameterCombinationException(
            "Cache security groups cannot be used in a VPC; use SecurityGroupIds."
        )


def _auth_token_change(spec: CacheClusterSpec, params: Params, now: datetime) -> CacheClusterSpec:
    if params.get("AuthToken") is None and params.get("AuthTokenUpdateStrategy") is None:
        return spec
    if spec.engine != "redis":
        raise faults.InvalidParameterCombinationException(
            "AuthToken is only supported for Redis; Memcached uses SASL (the tag "
            "cacheyard:sasl-user-group)."
        )
    auth_tokens.check_delete(params.get("AuthTokenUpdateStrategy"), params)
    if not spec.transit_encryption:
        raise faults.InvalidParameterCombinationException(
            "AuthToken can only be used with TransitEncryptionEnabled."
        )
    tokens = auth_tokens.updated(
        spec.auth_tokens, params.get("AuthToken"), params.get("AuthTokenUpdateStrategy")
    )
    return replace(spec, auth_tokens=tokens, auth_token_modified=now)


async def _resize(
    ctx: Context, tx: Transaction, spec: CacheClusterSpec, params: Params
) -> CacheClusterSpec:
    count = params.get("NumCacheNodes")
    to_remove = params.get("CacheNodeIdsToRemove") or []
    new_zones = params.get("NewAvailabilityZones") or []
    if count is None:
        if to_remove or new_zones:
            raise faults.InvalidParameterCombinationException(
                "CacheNodeIdsToRemove and NewAvailabilityZones need NumCacheNodes."
            )
        return spec
    if params.get("AZMode") is not None and spec.engine != "memcached":
        raise faults.InvalidParameterCombinationException(
            "AZMode is only supported for Memcached clusters."
        )
    placement = await placement_for(ctx, tx, spec.subnet_group)
    return plan_resize(
        spec, count, to_remove, new_zones, params.get("AZMode"), placement, ctx.clock.now()
    )


async def reboot(ctx: Context, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        record = await _get(tx, params["CacheClusterId"])
        _require_available(record)
        await snapshots.refuse_while_read(tx, [record.id], "RebootCacheCluster")
        spec = plan_reboot(load(CacheClusterSpec, record.spec), params["CacheNodeIdsToReboot"])
        record = await tx.update_spec(
            keys.CACHE_CLUSTER, record.id, dump(spec), statuses.REBOOTING_CLUSTER
        )
    ctx.controller.enqueue(keys.CACHE_CLUSTER, record.id)
    return {"CacheCluster": cluster_view(record, show_nodes=False)}


async def delete(ctx: Context, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        record = await _get(tx, params["CacheClusterId"])
        spec = load(CacheClusterSpec, record.spec)
        if record.status == statuses.DELETING:
            raise faults.InvalidCacheClusterStateFault(
                f"Cache cluster {record.id} is being deleted."
            )
        if record.status != statuses.RESTORE_FAILED:
            _require_available(record)
        await snapshots.refuse_while_read(tx, [record.id], "DeleteCacheCluster")
        final = params.get("FinalSnapshotIdentifier")
        if spec.replication_group_id is not None:
            if final:
                raise faults.InvalidParameterCombinationException(
                    "A final snapshot of a replication group's member is taken by "
                    "DeleteReplicationGroup, not DeleteCacheCluster."
                )
            return await _delete_replica(ctx, tx, record, spec.replication_group_id)
        if final:
            snapshot = snapshots_domain.of_cluster(
                spec,
                snapshots_domain.snapshot_name(final),
                snapshots_domain.MANUAL,
                ctx.clock.now(),
            )
            await snapshots.begin(ctx, tx, snapshot, {})
            spec = replace(spec, final_snapshot=snapshot.name)
        spec = replace(spec, deleting=True)
        record = await tx.update_spec(keys.CACHE_CLUSTER, record.id, dump(spec), statuses.DELETING)
    if final:
        ctx.controller.enqueue(keys.SNAPSHOT, str(spec.final_snapshot))
    ctx.controller.enqueue(keys.CACHE_CLUSTER, record.id)
    return {"CacheCluster": cluster_view(record, show_nodes=False)}


async def _delete_replica(ctx: Context, tx: Transaction, record: Record, group_id: str) -> Params:
    """Deleting a member cluster removes that read replica from its group."""
    group_record = await get_group(tx, group_id)
    require_available(group_record)
    if record.id == current_primary(group_record):
        raise faults.InvalidCacheClusterStateFault(
            f"Cache cluster {record.id} is the primary of replication group {group_id}; "
            "promote a replica before deleting it."
        )
    group = plan_remove_replicas(
        load(ReplicationGroupSpec, group_record.spec), [record.id], current_primary(group_record)
    )
    await tx.update_spec(keys.REPLICATION_GROUP, group_id, dump(group), statuses.MODIFYING)
    spec = replace(load(CacheClusterSpec, record.spec), deleting=True)
    record = await tx.update_spec(keys.CACHE_CLUSTER, record.id, dump(spec), statuses.DELETING)
    ctx.controller.enqueue(keys.REPLICATION_GROUP, group_id)
    return {"CacheCluster": cluster_view(record, show_nodes=False)}
