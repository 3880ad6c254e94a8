"""Create/Describe/Modify/DeleteReplicationGroup, replica counts and TestFailover.

A group and its member clusters are written together in one transaction; the
replication group reconciler owns the members' processes and roles.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from cacheyard.api.handlers import parameter_groups, snapshots, user_group_links
from cacheyard.api.handlers.context import Context
from cacheyard.api.handlers.group_view import current_primary, group_view
from cacheyard.api.handlers.paging import page
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
from cacheyard.domain import snapshots as snapshot_sources
from cacheyard.domain.cache_clusters import REQUIRED, CacheClusterSpec
from cacheyard.domain.codec import dump, load
from cacheyard.domain.network import DEFAULT_SUBNET_GROUP
from cacheyard.domain.node_types import node_type
from cacheyard.domain.replication_groups import (
    NODE_GROUP_ID,
    GroupRequest,
    ReplicationGroupSpec,
    check_failover_settings,
    member_count,
    plan_add_replicas,
    plan_group,
    plan_remove_replicas,
    record_test_failover,
    transit_change,
)
from cacheyard.domain.snapshots import snapshot_name
from cacheyard.store import Record, Transaction

Params = dict[str, Any]

_NOT_YET = {
    **NOT_YET,
    "GlobalReplicationGroupId": "Global datastores",
    "ServerlessCacheSnapshotName": "Restoring from a snapshot",
    "AtRestEncryptionEnabled": "Encryption at rest",
    "KmsKeyId": "Encryption at rest",
    "DataTieringEnabled": "Data tiering",
    "NodeGroupConfiguration": "Node group configuration (cluster mode)",
}


def _refuse_not_yet(params: Params) -> None:
    refuse_not_yet(params, _NOT_YET)
    if (params.get("NumNodeGroups") or 1) != 1 or params.get("ClusterMode", "disabled") not in (
        "disabled",
        "Disabled",
    ):
        raise faults.InvalidParameterValueException(
            "Cluster mode (more than one node group) is not supported by this Cacheyard version."
        )


async def get_group(tx: Transaction, group_id: str) -> Record:
    record = await tx.get(keys.REPLICATION_GROUP, group_id.lower())
    if record is None:
        raise faults.ReplicationGroupNotFoundFault(f"ReplicationGroup {group_id} not found.")
    return record


def require_available(record: Record) -> None:
    if record.status != statuses.AVAILABLE:
        raise faults.InvalidReplicationGroupStateFault(
            f"Replication group {record.id} must be in available state (it is {record.status})."
        )


async def _members(tx: Transaction, record: Record) -> dict[str, Record]:
    found = {}
    for member_id in record.spec["member_ids"]:
        member = await tx.get(keys.CACHE_CLUSTER, member_id)
        if member is not None:
            found[member_id] = member
    return found


def _member_record(ctx: Context, spec: CacheClusterSpec, now: datetime) -> Record:
    return new_record(ctx, keys.CACHE_CLUSTER, "cluster", spec.cluster_id, spec, now)


async def _view(tx: Transaction, record: Record) -> Params:
    return group_view(record, await _members(tx, record))


async def create(ctx: Context, params: Params) -> Params:
    group_id = identifiers.replication_group_id(params["ReplicationGroupId"])
    _refuse_not_yet(params)
    if params.get("Engine") not in (None, "redis", "Redis"):
        raise faults.InvalidParameterValueException(
            "Replication groups are supported for the redis engine only."
        )
    if params.get("CacheSecurityGroupNames"):
        raise faults.InvalidParameterCombinationException(
            "Cache security groups cannot be used in a VPC; use SecurityGroupIds."
        )
    engine = ctx.catalog.resolve("redis", params.get("EngineVersion"))
    tags = tags_param(params)
    now = ctx.clock.now()
    async with ctx.store.transaction() as tx:
        if await tx.get(keys.REPLICATION_GROUP, group_id) is not None:
            raise faults.ReplicationGroupAlreadyExistsFault(
                f"Replication group {group_id} already exists."
            )
        restore, snapshot = await snapshots.restore_source(ctx, tx, params)
        if restore is not None and params.get("PrimaryClusterId"):
            raise faults.InvalidParameterCombinationException(
                "PrimaryClusterId cannot be combined with SnapshotName or SnapshotArns."
            )
        if snapshot is not None and not params.get("CacheNodeType"):
            params = {**params, "CacheNodeType": snapshot.node_type}
        if params.get("PrimaryClusterId"):
            group, members, adopted = await _grow_from_cluster(ctx, tx, group_id, params, now)
        else:
            parameter_group, _ = await parameter_groups.resolve_for(
                ctx, tx, params.get("CacheParameterGroupName"), engine.family
            )
            params = {**params, "CacheParameterGroupName": parameter_group}
            group, members = await _new_group(ctx, tx, group_id, params, engine, now)
            adopted = None
            if restore is not None:
                members[0] = replace(members[0], restore=restore)
        group = _group_metadata(group, params)
        if params.get("AuthToken") is not None:
            group = replace(
                group,
                auth_tokens=auth_tokens.for_new_cache(
                    params["AuthToken"], group.transit_encryption
                ),
                auth_token_modified=now,
            )
        group = replace(
            group,
            user_group_ids=await user_group_links.for_new_cache(
                tx, params, group.transit_encryption
            ),
        )
        record = new_record(ctx, keys.REPLICATION_GROUP, "replicationgroup", group_id, group, now)
        await tx.insert(record)
        await tx.set_tags(record.arn, tags)
        for member in members:
            await tx.insert(_member_record(ctx, member, now))
        if adopted is not None:
            await tx.update_spec(
                keys.CACHE_CLUSTER, adopted.cluster_id, dump(adopted), statuses.MODIFYING
            )
        view = await _view(tx, record)
    ctx.controller.enqueue(keys.REPLICATION_GROUP, group_id)
    return {"ReplicationGroup": view}


async def _new_group(
    ctx: Context,
    tx: Transaction,
    group_id: str,
    params: Params,
    engine: Any,
    now: Any,
) -> tuple[ReplicationGroupSpec, list[CacheClusterSpec]]:
    if not params.get("CacheNodeType"):
        raise faults.InvalidParameterValueException(
            "The parameter CacheNodeType must be provided and must not be blank."
        )
    count = member_count(params.get("NumCacheClusters"), params.get("ReplicasPerNodeGroup"))
    subnet_group = (params.get("CacheSubnetGroupName") or DEFAULT_SUBNET_GROUP).lower()
    for member_index in range(1, count + 1):
        if await tx.get(keys.CACHE_CLUSTER, f"{group_id}-{member_index:03d}") is not None:
            raise faults.CacheClusterAlreadyExistsFault(
                f"Cache cluster {group_id}-{member_index:03d} already exists."
            )
    request = GroupRequest(
        group_id=group_id,
        description=params["ReplicationGroupDescription"],
        engine=engine,
        node_type=node_type(params["CacheNodeType"]),
        num_members=count,
        zones=params.get("PreferredCacheClusterAZs") or [],
        automatic_failover=bool(params.get("AutomaticFailoverEnabled")),
        multi_az=bool(params.get("MultiAZEnabled")),
        port=params.get("Port"),
        subnet_group=subnet_group,
        parameter_group=params.get("CacheParameterGroupName"),
        transit_encryption=transit_encryption(params, "redis"),
        transit_mode=params.get("TransitEncryptionMode") or REQUIRED,
    )
    return plan_group(request, await placement_for(ctx, tx, subnet_group), now)


async def _grow_from_cluster(
    ctx: Context, tx: Transaction, group_id: str, params: Params, now: Any
) -> tuple[ReplicationGroupSpec, list[CacheClusterSpec], CacheClusterSpec]:
    """PrimaryClusterId: an existing Redis cluster becomes the group's primary, keeping its data."""
    primary_id = params["PrimaryClusterId"].lower()
    existing = await tx.get(keys.CACHE_CLUSTER, primary_id)
    if existing is None:
        raise faults.CacheClusterNotFoundFault(f"CacheCluster {primary_id} not found.")
    primary = load(CacheClusterSpec, existing.spec)
    if primary.engine != "redis" or primary.replication_group_id is not None:
        raise faults.InvalidCacheClusterStateFault(
            f"Cache cluster {primary_id} must be a Redis cluster outside any replication group."
        )
    if existing.status != statuses.AVAILABLE:
        raise faults.InvalidCacheClusterStateFault(
            f"Cache cluster {primary_id} is not in available state."
        )
    count = member_count(params.get("NumCacheClusters"), params.get("ReplicasPerNodeGroup"))
    automatic = bool(params.get("AutomaticFailoverEnabled"))
    multi_az = bool(params.get("MultiAZEnabled"))
    placement = await placement_for(ctx, tx, primary.subnet_group)
    engine = ctx.catalog.resolve("redis", primary.engine_version)
    start = ReplicationGroupSpec(
        group_id=group_id,
        description=params["ReplicationGroupDescription"],
        engine_version=primary.engine_version,
        family=primary.family,
        node_type=primary.node_type,
        port=primary.port,
        subnet_group=primary.subnet_group,
        parameter_group=primary.parameter_group,
        member_ids=(primary_id,),
        primary_endpoint=placement.take(primary.nodes[0].zone),
        reader_endpoint=placement.take(primary.nodes[0].zone),
        automatic_failover=False,
        multi_az=False,
        preferred_primary=primary_id,
        created_at=now,
        transit_encryption=primary.transit_encryption,
    )
    zones = params.get("PreferredCacheClusterAZs") or []
    group, replicas = plan_add_replicas(
        start,
        count - 1,
        zones[1:] if zones else [],
        placement,
        engine,
        [primary.nodes[0].zone],
        now,
    )
    check_failover_settings(len(group.member_ids), automatic, multi_az)
    group = replace(group, automatic_failover=automatic, multi_az=multi_az)
    return group, replicas, replace(primary, replication_group_id=group_id)


def _group_metadata(group: ReplicationGroupSpec, params: Params) -> ReplicationGroupSpec:
    changes: dict[str, Any] = {}
    if params.get("PreferredMaintenanceWindow") is not None:
        changes["maintenance_window"] = windows.maintenance_window(
            params["PreferredMaintenanceWindow"]
        )
    if params.get("AutoMinorVersionUpgrade") is not None:
        changes["auto_minor_version_upgrade"] = params["AutoMinorVersionUpgrade"]
    if params.get("SecurityGroupIds") is not None:
        changes["security_group_ids"] = tuple(params["SecurityGroupIds"])
    if params.get("SnapshotRetentionLimit") is not None:
        changes["snapshot_retention_limit"] = snapshot_sources.retention_limit(
            params["SnapshotRetentionLimit"]
        )
    if params.get("SnapshotWindow") is not None:
        changes["snapshot_window"] = windows.snapshot_window(params["SnapshotWindow"])
    if params.get("ReplicationGroupDescription") is not None:
        changes["description"] = params["ReplicationGroupDescription"]
    if params.get("SnapshottingClusterId") is not None:
        member = params["SnapshottingClusterId"].lower()
        if member not in group.member_ids:
            raise faults.InvalidParameterValueException(
                f"{params['SnapshottingClusterId']} is not a member of replication group "
                f"{group.group_id}."
            )
        changes["snapshotting_cluster"] = member
    return replace(group, **changes)


async def describe(ctx: Context, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        if params.get("ReplicationGroupId") is not None:
            records = [await get_group(tx, params["ReplicationGroupId"])]
        else:
            records = await tx.all(keys.REPLICATION_GROUP)
        views = [await _view(tx, r) for r in records]
    return page(views, [r.id for r in records], "ReplicationGroups", params)


async def modify(ctx: Context, params: Params) -> Params:
    _refuse_not_yet(params)
    async with ctx.store.transaction() as tx:
        record = await get_group(tx, params["ReplicationGroupId"])
        require_available(record)
        group = current = load(ReplicationGroupSpec, record.spec)
        if params.get("CacheNodeType") not in (None, group.node_type):
            raise faults.InvalidParameterCombinationException(
                "Changing the node type of a group is not supported by this Cacheyard version."
            )
        transit = transit_change(
            group, params.get("TransitEncryptionEnabled"), params.get("TransitEncryptionMode")
        )
        if transit is not None:
            # The members follow one by one (controller: _migrate_transit).
            group = replace(group, transit_encryption=transit[0], transit_mode=transit[1])
        if params.get("EngineVersion") is not None and (
            ctx.catalog.resolve("redis", params["EngineVersion"]).version != group.engine_version
        ):
            raise faults.InvalidParameterValueException(
                "Only the installed engine version is available."
            )
        if params.get("CacheParameterGroupName") is not None:
            parameter_group, _ = await parameter_groups.resolve_for(
                ctx, tx, params["CacheParameterGroupName"], group.family
            )
            group = replace(group, parameter_group=parameter_group)
            await _set_members_parameter_group(tx, group)
        automatic = bool(params.get("AutomaticFailoverEnabled", group.automatic_failover))
        multi_az = bool(params.get("MultiAZEnabled", group.multi_az))
        check_failover_settings(len(group.member_ids), automatic, multi_az)
        group = replace(_group_metadata(group, params), automatic_failover=automatic)
        if params.get("AuthToken") is not None or params.get("AuthTokenUpdateStrategy"):
            auth_tokens.check_delete(params.get("AuthTokenUpdateStrategy"), params)
            if not group.transit_encryption:
                raise faults.InvalidParameterCombinationException(
                    "AuthToken can only be used with TransitEncryptionEnabled."
                )
            group = replace(
                group,
                auth_tokens=auth_tokens.updated(
                    group.auth_tokens,
                    params.get("AuthToken"),
                    params.get("AuthTokenUpdateStrategy"),
                ),
                auth_token_modified=ctx.clock.now(),
            )
        group = replace(group, multi_az=multi_az)
        # Until every member takes the new tokens, or has moved to the new transit mode.
        changing = group.auth_tokens != current.auth_tokens or transit is not None
        status = statuses.MODIFYING if changing else record.status
        user_groups = await user_group_links.modified(tx, params, group)
        if set(user_groups) - set(group.user_group_ids):
            # A user group's `default` user takes the AUTH token's place (AWS's migration).
            group = replace(group, user_group_ids=user_groups, auth_tokens=())
            status = statuses.MODIFYING
        elif user_groups != group.user_group_ids:
            group = replace(group, user_group_ids=user_groups)  # tokens asked for stay
            status = statuses.MODIFYING
        primary_id = params.get("PrimaryClusterId")
        if primary_id is not None and primary_id.lower() != current_primary(record):
            if primary_id.lower() not in group.member_ids:
                raise faults.InvalidParameterValueException(
                    f"{primary_id} is not a member of replication group {group.group_id}."
                )
            group = replace(
                group,
                preferred_primary=primary_id.lower(),
                switchover_seq=group.switchover_seq + 1,
            )
            status = statuses.MODIFYING
        record = await tx.update_spec(keys.REPLICATION_GROUP, record.id, dump(group), status)
        view = await _view(tx, record)
    ctx.controller.enqueue(keys.REPLICATION_GROUP, record.id)
    return {"ReplicationGroup": view}


async def _set_members_parameter_group(tx: Transaction, group: ReplicationGroupSpec) -> None:
    for member_id in group.member_ids:
        member = await tx.get(keys.CACHE_CLUSTER, member_id)
        if member is not None:
            spec = replace(
                load(CacheClusterSpec, member.spec), parameter_group=group.parameter_group
            )
            await tx.update_spec(keys.CACHE_CLUSTER, member_id, dump(spec), member.status)


async def delete(ctx: Context, params: Params) -> Params:
    _refuse_not_yet(params)
    final = params.get("FinalSnapshotIdentifier")
    async with ctx.store.transaction() as tx:
        record = await get_group(tx, params["ReplicationGroupId"])
        if record.status == statuses.DELETING:
            raise faults.InvalidReplicationGroupStateFault(
                f"Replication group {record.id} is already being deleted."
            )
        if record.status != statuses.RESTORE_FAILED:
            require_available(record)
        group = load(ReplicationGroupSpec, record.spec)
        await snapshots.refuse_while_read(
            tx,
            list(group.member_ids),
            "DeleteReplicationGroup",
            faults.InvalidReplicationGroupStateFault,
        )
        if final:
            snapshot = await snapshots.spec_for_group(
                tx, record, snapshot_name(final), snapshot_sources.MANUAL, ctx
            )
            await snapshots.begin(ctx, tx, snapshot, {})
            group = replace(group, final_snapshot=snapshot.name)
        retain = bool(params.get("RetainPrimaryCluster"))
        if retain and group.transit_encryption and group.transit_mode != REQUIRED:
            raise faults.InvalidParameterCombinationException(
                "RetainPrimaryCluster can't keep a cluster in TransitEncryptionMode preferred: "
                "set the group's mode to required first."
            )
        if retain and group.user_group_ids:
            raise faults.InvalidParameterCombinationException(
                "RetainPrimaryCluster can't keep a cluster of a replication group with a user "
                "group (a cluster has no user groups): remove the user group first."
            )
        primary = current_primary(record)
        for member_id in group.member_ids:
            if retain and member_id == primary:
                continue
            member = await tx.get(keys.CACHE_CLUSTER, member_id)
            if member is not None:
                member_spec = replace(load(CacheClusterSpec, member.spec), deleting=True)
                await tx.update_spec(
                    keys.CACHE_CLUSTER, member_id, dump(member_spec), statuses.DELETING
                )
        group = replace(group, deleting=True, member_ids=(primary,) if retain else group.member_ids)
        record = await tx.update_spec(
            keys.REPLICATION_GROUP, record.id, dump(group), statuses.DELETING
        )
        view = await _view(tx, record)
    if final:
        ctx.controller.enqueue(keys.SNAPSHOT, str(group.final_snapshot))
    ctx.controller.enqueue(keys.REPLICATION_GROUP, record.id)
    return {"ReplicationGroup": view}


async def increase_replicas(ctx: Context, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        record = await get_group(tx, params["ReplicationGroupId"])
        require_available(record)
        group = load(ReplicationGroupSpec, record.spec)
        wanted, zones = _replica_target(params, group)
        current = len(group.member_ids) - 1
        if wanted <= current:
            raise faults.InvalidParameterValueException(
                f"NewReplicaCount must be greater than the current replica count ({current})."
            )
        members = await _members(tx, record)
        existing_zones = [m.spec["nodes"][0]["zone"] for m in members.values()]
        engine = ctx.catalog.resolve("redis", group.engine_version)
        group, added = plan_add_replicas(
            group,
            wanted - current,
            zones,
            await placement_for(ctx, tx, group.subnet_group),
            engine,
            existing_zones,
            ctx.clock.now(),
        )
        for member in added:
            await tx.insert(_member_record(ctx, member, ctx.clock.now()))
        record = await tx.update_spec(
            keys.REPLICATION_GROUP, record.id, dump(group), statuses.MODIFYING
        )
        view = await _view(tx, record)
    ctx.controller.enqueue(keys.REPLICATION_GROUP, record.id)
    return {"ReplicationGroup": view}


def _replica_target(params: Params, group: ReplicationGroupSpec) -> tuple[int, list[str]]:
    configs = params.get("ReplicaConfiguration") or []
    if configs:
        if len(configs) != 1 or configs[0].get("NodeGroupId") != NODE_GROUP_ID:
            raise faults.NodeGroupNotFoundFault(
                f"Replication group {group.group_id} has only node group {NODE_GROUP_ID}."
            )
        return int(configs[0]["NewReplicaCount"]), configs[0].get(
            "PreferredAvailabilityZones"
        ) or []
    if params.get("NewReplicaCount") is None:
        raise faults.InvalidParameterValueException(
            "Either NewReplicaCount or ReplicaConfiguration must be given."
        )
    return int(params["NewReplicaCount"]), []


async def decrease_replicas(ctx: Context, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        record = await get_group(tx, params["ReplicationGroupId"])
        require_available(record)
        group = load(ReplicationGroupSpec, record.spec)
        primary = current_primary(record)
        to_remove = [m.lower() for m in params.get("ReplicasToRemove") or []]
        if not to_remove:
            wanted, _ = _replica_target(params, group)
            current = len(group.member_ids) - 1
            if not 0 <= wanted < current:
                raise faults.InvalidParameterValueException(
                    f"NewReplicaCount must be less than the current replica count ({current})."
                )
            replicas = [m for m in group.member_ids if m != primary]
            to_remove = replicas[wanted - current :]
        group = plan_remove_replicas(group, to_remove, primary)
        for member_id in to_remove:
            await _mark_member_deleting(tx, member_id)
        record = await tx.update_spec(
            keys.REPLICATION_GROUP, record.id, dump(group), statuses.MODIFYING
        )
        view = await _view(tx, record)
    ctx.controller.enqueue(keys.REPLICATION_GROUP, record.id)
    return {"ReplicationGroup": view}


async def _mark_member_deleting(tx: Transaction, member_id: str) -> None:
    member = await tx.get(keys.CACHE_CLUSTER, member_id)
    if member is not None:
        spec = replace(load(CacheClusterSpec, member.spec), deleting=True)
        await tx.update_spec(keys.CACHE_CLUSTER, member_id, dump(spec), statuses.DELETING)


async def test_failover(ctx: Context, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        record = await get_group(tx, params["ReplicationGroupId"])
        if params["NodeGroupId"] != NODE_GROUP_ID:
            raise faults.NodeGroupNotFoundFault(
                f"Node group {params['NodeGroupId']} not found in {record.id}."
            )
        require_available(record)
        group = record_test_failover(load(ReplicationGroupSpec, record.spec), ctx.clock.now())
        record = await tx.update_spec(
            keys.REPLICATION_GROUP, record.id, dump(group), statuses.MODIFYING
        )
        view = await _view(tx, record)
    ctx.controller.enqueue(keys.REPLICATION_GROUP, record.id)
    return {"ReplicationGroup": view}
