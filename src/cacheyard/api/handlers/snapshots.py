"""Create/Describe/Copy/DeleteSnapshot, and the snapshot side of create and delete.

A snapshot is written as a record in ``creating`` and taken by the snapshot
reconciler; it is ``available`` only once its files are complete and verified
in the snapshot store. Restores name a snapshot (``SnapshotName``) or exported
RDB files (``SnapshotArns``, ``arn:aws:s3:::bucket/key`` under the buckets
directory).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cacheyard.api.handlers.context import Context
from cacheyard.api.handlers.group_view import current_primary
from cacheyard.api.handlers.paging import page
from cacheyard.api.handlers.resources import new_record, tags_param
from cacheyard.controller import keys
from cacheyard.domain import faults, snapshots, statuses
from cacheyard.domain.cache_clusters import CacheClusterSpec, RestoreSource
from cacheyard.domain.codec import load
from cacheyard.domain.network import VPC_ID
from cacheyard.domain.replication_groups import ReplicationGroupSpec
from cacheyard.domain.snapshots import SnapshotSpec
from cacheyard.store import Record, Transaction
from cacheyard.store.snapshot_files import SnapshotCorrupt

Params = dict[str, Any]

MAX_SNAPSHOT_RECORDS = 50
MAX_SNAPSHOTS = 1000
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_S3_ARN = re.compile(r"arn:aws:s3:::([^/]+)/(.+)")


async def get_snapshot(tx: Transaction, name: str) -> Record:
    record = await tx.get(keys.SNAPSHOT, name)
    if record is None:
        raise faults.SnapshotNotFoundFault(f"Snapshot {name} not found.")
    return record


def snapshot_view(record: Record, show_node_group_config: bool = False) -> Params:
    spec = load(SnapshotSpec, record.spec)
    observed = record.observed
    view: Params = {
        "SnapshotName": spec.name,
        "SnapshotStatus": record.status,
        "SnapshotSource": spec.source,
        "CacheNodeType": spec.node_type,
        "Engine": spec.engine,
        "EngineVersion": spec.engine_version,
        "NumCacheNodes": spec.num_cache_nodes,
        "PreferredAvailabilityZone": spec.preferred_zone,
        "CacheClusterCreateTime": spec.cache_created_at,
        "PreferredMaintenanceWindow": spec.maintenance_window,
        "Port": spec.port,
        "CacheParameterGroupName": spec.parameter_group,
        "CacheSubnetGroupName": spec.subnet_group,
        "VpcId": VPC_ID,
        "AutoMinorVersionUpgrade": spec.auto_minor_version_upgrade,
        "SnapshotRetentionLimit": spec.retention_limit,
        "SnapshotWindow": spec.window or snapshots.default_window(spec.source_id),
        "NumNodeGroups": 1,
        "ARN": record.arn,
        "DataTiering": "disabled",
    }
    if spec.cache_cluster_id is not None:
        view["CacheClusterId"] = spec.cache_cluster_id
    if spec.replication_group_id is not None:
        view["ReplicationGroupId"] = spec.replication_group_id
        view["ReplicationGroupDescription"] = spec.replication_group_description
        view["AutomaticFailover"] = "enabled" if spec.automatic_failover else "disabled"
    taken = observed.get("node_snapshot")
    node: Params = {"NodeGroupId": spec.layout.node_group_id, "CacheNodeId": "0001"}
    if spec.cache_cluster_id is not None:
        node["CacheClusterId"] = spec.cache_cluster_id
    elif taken is not None:
        node["CacheClusterId"] = taken["cluster_id"]
    node["CacheNodeCreateTime"] = spec.cache_created_at
    if taken is not None:
        node["CacheSize"] = _size_text(taken["size"])
        node["SnapshotCreateTime"] = datetime.fromisoformat(taken["created_at"])
    if show_node_group_config:
        node["NodeGroupConfiguration"] = {
            "NodeGroupId": spec.layout.node_group_id,
            "Slots": "0-16383",
            "ReplicaCount": spec.layout.replica_count,
            "PrimaryAvailabilityZone": spec.layout.primary_zone,
            "ReplicaAvailabilityZones": list(spec.layout.replica_zones),
        }
    view["NodeSnapshots"] = [node]
    return view


def _size_text(size: int) -> str:
    return f"{max(1, round(size / 1_000_000))} MB"


async def begin(ctx: Context, tx: Transaction, spec: SnapshotSpec, tags: Params) -> Record:
    """Write a new snapshot record in ``creating`` for the snapshot reconciler."""
    existing = await tx.all(keys.SNAPSHOT)
    if any(r.id == spec.name for r in existing):
        raise faults.SnapshotAlreadyExistsFault(f"Snapshot {spec.name} already exists.")
    if len(existing) >= MAX_SNAPSHOTS:
        raise faults.SnapshotQuotaExceededFault(f"At most {MAX_SNAPSHOTS} snapshots are allowed.")
    record = new_record(
        ctx,
        keys.SNAPSHOT,
        "snapshot",
        spec.name,
        spec,
        ctx.clock.now(),
        status=statuses.SNAPSHOT_CREATING,
    )
    await tx.insert(record)
    await tx.set_tags(record.arn, tags)
    return record


async def being_read(tx: Transaction) -> set[str]:
    """The clusters a snapshot is being taken from right now."""
    return {
        r.observed["cluster_id"]
        for r in await tx.all(keys.SNAPSHOT)
        if r.status == statuses.SNAPSHOT_CREATING and r.observed.get("cluster_id")
    }


async def refuse_while_read(
    tx: Transaction,
    cluster_ids: list[str],
    what: str,
    fault: type[faults.Fault] = faults.InvalidCacheClusterStateFault,
) -> None:
    """Changes that would stop a node a snapshot is being read from wait, as on AWS."""
    busy = sorted(set(cluster_ids) & await being_read(tx))
    if busy:
        raise fault(
            f"Cache cluster {busy[0]} is snapshotting: {what} can be retried once "
            "the snapshot is complete."
        )


async def spec_for_cluster(
    tx: Transaction, cluster: Record, name: str, source: str, ctx: Context
) -> SnapshotSpec:
    """A snapshot of a cluster; a member cluster's snapshot is one of its group."""
    spec = load(CacheClusterSpec, cluster.spec)
    if spec.replication_group_id is None:
        return snapshots.of_cluster(spec, name, source, ctx.clock.now())
    group = await tx.get(keys.REPLICATION_GROUP, spec.replication_group_id)
    assert group is not None
    return await spec_for_group(tx, group, name, source, ctx, requested=spec.cluster_id)


async def spec_for_group(
    tx: Transaction,
    group: Record,
    name: str,
    source: str,
    ctx: Context,
    requested: str | None = None,
) -> SnapshotSpec:
    group_spec = load(ReplicationGroupSpec, group.spec)
    members = {}
    for member_id in group_spec.member_ids:
        member = await tx.get(keys.CACHE_CLUSTER, member_id)
        if member is not None:
            members[member_id] = load(CacheClusterSpec, member.spec)
    return snapshots.of_group(
        group_spec, members, current_primary(group), name, source, ctx.clock.now(), requested
    )


async def create(ctx: Context, params: Params) -> Params:
    name = snapshots.snapshot_name(params["SnapshotName"])
    cluster_id = params.get("CacheClusterId")
    group_id = params.get("ReplicationGroupId")
    if bool(cluster_id) == bool(group_id):
        raise faults.InvalidParameterCombinationException(
            "Give exactly one of CacheClusterId and ReplicationGroupId."
        )
    if params.get("KmsKeyId"):
        raise faults.InvalidParameterCombinationException(
            "KmsKeyId needs encryption at rest, which this Cacheyard version does not offer."
        )
    tags = tags_param(params)
    async with ctx.store.transaction() as tx:
        if cluster_id:
            cluster = await tx.get(keys.CACHE_CLUSTER, cluster_id.lower())
            if cluster is None:
                raise faults.CacheClusterNotFoundFault(f"CacheCluster {cluster_id} not found.")
            spec = await spec_for_cluster(tx, cluster, name, snapshots.MANUAL, ctx)
            if cluster.status != statuses.AVAILABLE:
                raise faults.InvalidCacheClusterStateFault(
                    f"Cache cluster {cluster.id} is not in available state."
                )
        else:
            group = await tx.get(keys.REPLICATION_GROUP, str(group_id).lower())
            if group is None:
                raise faults.ReplicationGroupNotFoundFault(
                    f"ReplicationGroup {group_id} not found."
                )
            if group.status != statuses.AVAILABLE:
                raise faults.InvalidReplicationGroupStateFault(
                    f"Replication group {group.id} is not in available state."
                )
            spec = await spec_for_group(tx, group, name, snapshots.MANUAL, ctx)
        record = await begin(ctx, tx, spec, tags)
    ctx.controller.enqueue(keys.SNAPSHOT, name)
    return {"Snapshot": snapshot_view(record)}


async def describe(ctx: Context, params: Params) -> Params:
    source = params.get("SnapshotSource")
    if source not in (None, "system", "user"):
        raise faults.InvalidParameterValueException(
            f"Invalid value {source} for SnapshotSource. Valid values are: system, user."
        )
    async with ctx.store.transaction() as tx:
        if params.get("SnapshotName") is not None:
            records = [await get_snapshot(tx, params["SnapshotName"])]
        else:
            records = await tx.all(keys.SNAPSHOT)
        cluster_id = params.get("CacheClusterId")
        if (
            cluster_id is not None
            and await tx.get(keys.CACHE_CLUSTER, cluster_id.lower()) is None
            and not any(r.spec.get("cache_cluster_id") == cluster_id.lower() for r in records)
        ):
            raise faults.CacheClusterNotFoundFault(f"CacheCluster {cluster_id} not found.")
    wanted_source = {"system": snapshots.AUTOMATED, "user": snapshots.MANUAL}.get(source or "")
    group_id = params.get("ReplicationGroupId")
    chosen = [
        r
        for r in records
        if (wanted_source is None or r.spec["source"] == wanted_source)
        and (group_id is None or r.spec.get("replication_group_id") == group_id.lower())
        and (cluster_id is None or r.spec.get("cache_cluster_id") == cluster_id.lower())
    ]
    show = bool(params.get("ShowNodeGroupConfig"))
    views = [snapshot_view(r, show) for r in chosen]
    return page(views, [r.id for r in chosen], "Snapshots", params, MAX_SNAPSHOT_RECORDS)


async def copy(ctx: Context, params: Params) -> Params:
    target = snapshots.snapshot_name(params["TargetSnapshotName"])
    if params.get("KmsKeyId"):
        raise faults.InvalidParameterCombinationException(
            "KmsKeyId needs encryption at rest, which this Cacheyard version does not offer."
        )
    async with ctx.store.transaction() as tx:
        source = await get_snapshot(tx, params["SourceSnapshotName"])
        if source.status != statuses.SNAPSHOT_AVAILABLE:
            raise faults.InvalidSnapshotStateFault(
                f"Snapshot {source.id} is not available (it is {source.status})."
            )
    if params.get("TargetBucket"):
        return await _export(ctx, source, params["TargetBucket"], target)
    spec = load(SnapshotSpec, source.spec)
    copied = replace(
        spec, name=target, source=snapshots.MANUAL, copy_of=source.id, created_at=ctx.clock.now()
    )
    async with ctx.store.transaction() as tx:
        record = await begin(ctx, tx, copied, tags_param(params))
    ctx.controller.enqueue(keys.SNAPSHOT, target)
    return {"Snapshot": snapshot_view(record)}


async def _export(ctx: Context, source: Record, bucket: str, target: str) -> Params:
    """CopySnapshot with TargetBucket: verified RDB files written to the bucket's
    directory, outside the snapshot store, as an export to S3 does."""
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise faults.InvalidParameterValueException(f"Invalid bucket name: {bucket}.")
    try:
        await asyncio.to_thread(ctx.snapshots.export, source.id, ctx.buckets / bucket, target)
    except SnapshotCorrupt as exc:
        raise faults.InvalidSnapshotStateFault(
            f"Snapshot {source.id} cannot be exported: {exc}"
        ) from None
    except OSError as exc:
        raise faults.InvalidParameterValueException(
            f"Snapshot {source.id} cannot be exported to bucket {bucket}: {exc.strerror}"
        ) from None
    view = snapshot_view(source)
    view["SnapshotName"] = target
    return {"Snapshot": view}


async def delete(ctx: Context, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        record = await get_snapshot(tx, params["SnapshotName"])
        if record.status not in (statuses.SNAPSHOT_AVAILABLE, statuses.SNAPSHOT_FAILED):
            raise faults.InvalidSnapshotStateFault(
                f"Snapshot {record.id} is {record.status} and cannot be deleted now."
            )
        spec = load(SnapshotSpec, record.spec)
        record = await tx.update_spec(
            keys.SNAPSHOT,
            record.id,
            {**record.spec, "deleting": True},
            statuses.SNAPSHOT_DELETING,
        )
    ctx.controller.enqueue(keys.SNAPSHOT, spec.name)
    return {"Snapshot": snapshot_view(record)}


async def restore_source(
    ctx: Context, tx: Transaction, params: Params
) -> tuple[RestoreSource | None, SnapshotSpec | None]:
    """What a create call restores from: SnapshotName or SnapshotArns, checked now."""
    name = params.get("SnapshotName")
    arn_list = params.get("SnapshotArns") or []
    if name and arn_list:
        raise faults.InvalidParameterCombinationException(
            "Give either SnapshotName or SnapshotArns, not both."
        )
    if name:
        record = await get_snapshot(tx, name)
        if record.status != statuses.SNAPSHOT_AVAILABLE:
            raise faults.InvalidSnapshotStateFault(
                f"Snapshot {name} is not available (it is {record.status})."
            )
        return RestoreSource(snapshot=record.id), load(SnapshotSpec, record.spec)
    if arn_list:
        if len(arn_list) != 1:
            raise faults.InvalidParameterValueException(
                "Exactly one RDB file is needed: a cache without cluster mode has one shard."
            )
        return RestoreSource(files=(str(bucket_path(ctx.buckets, arn_list[0])),)), None
    return None, None


def bucket_path(buckets: Path, arn: str) -> Path:
    """The file an ``arn:aws:s3:::bucket/key`` names, which must exist."""
    match = _S3_ARN.fullmatch(arn)
    if match is None or not _BUCKET.fullmatch(match[1]):
        raise faults.InvalidParameterValueException(
            f"Invalid snapshot ARN {arn}: expected arn:aws:s3:::bucket/key.rdb."
        )
    path = (buckets / match[1] / match[2]).resolve()
    if not path.is_relative_to(buckets.resolve()) or not path.is_file():
        raise faults.InvalidParameterValueException(f"The object {arn} does not exist.")
    return path
