"""The snapshot reconciler: take, copy and delete snapshots.

A snapshot in ``creating`` is taken from its source's node (a synced replica
when the group has one): a fresh RDB from the engine, written to the snapshot
store, which publishes it only once complete. The pass is idempotent: after a
control-plane crash it finds either the published snapshot (verified, then
``available``) or nothing, and takes it again; a source that is gone makes
the snapshot ``failed``. A snapshot is never ``available`` with a partial file.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from cacheyard.controller.keys import CACHE_CLUSTER, REPLICATION_GROUP, SNAPSHOT
from cacheyard.controller.layout import Layout
from cacheyard.controller.tls import redis_listeners
from cacheyard.domain import events, statuses
from cacheyard.domain.cache_clusters import CacheClusterSpec
from cacheyard.domain.clock import Clock
from cacheyard.domain.codec import load
from cacheyard.domain.replication_groups import ReplicationGroupSpec
from cacheyard.domain.snapshots import SnapshotSpec
from cacheyard.engines.errors import EngineError
from cacheyard.engines.rdb_capture import capture_rdb
from cacheyard.engines.spec import TlsFiles
from cacheyard.store import Record, Store
from cacheyard.store.snapshot_files import Manifest, SnapshotCorrupt, SnapshotFiles

log = logging.getLogger(__name__)

CAPTURE_TIMEOUT = 3600.0
RETRY = 0.2


class SnapshotFailed(Exception):
    """The snapshot cannot be taken; the message says why."""


@dataclass(frozen=True)
class _Source:
    cluster_id: str
    address: str
    port: int
    node_dir: Path
    tls: TlsFiles | None


class SnapshotReconciler:
    def __init__(self, store: Store, files: SnapshotFiles, layout: Layout, clock: Clock) -> None:
        self._store = store
        self._files = files
        self._layout = layout
        self._clock = clock

    async def reconcile(self, name: str) -> float | None:
        async with self._store.transaction() as tx:
            record = await tx.get(SNAPSHOT, name)
        if record is None or record.spec.get("deleting"):
            await asyncio.to_thread(self._files.delete, name)
            if record is not None:
                async with self._store.transaction() as tx:
                    await tx.delete(SNAPSHOT, name)
            return None
        if record.status != statuses.SNAPSHOT_CREATING:
            return None
        spec = load(SnapshotSpec, record.spec)
        try:
            if await asyncio.to_thread(self._files.exists, name):
                manifest = await asyncio.to_thread(self._files.verify, name)
                cluster_id = record.observed.get("cluster_id", spec.cache_cluster_id or "")
            elif spec.copy_of is not None:
                manifest = await asyncio.to_thread(self._files.copy, spec.copy_of, name)
                cluster_id = await self._taken_from(spec.copy_of) or spec.cache_cluster_id or ""
            else:
                cluster_id, manifest = await self._take(record, spec)
        except SnapshotRetry:
            return RETRY
        except (SnapshotFailed, SnapshotCorrupt, EngineError, OSError) as exc:
            log.warning("snapshot %s failed: %s", name, exc)
            await self._finish(record, spec, statuses.SNAPSHOT_FAILED, {}, str(exc))
            return None
        observed = {
            "cluster_id": cluster_id,
            "node_snapshot": {
                "cluster_id": cluster_id,
                "size": sum(f.size for f in manifest.files),
                "created_at": manifest.created_at,
            },
        }
        await self._finish(record, spec, statuses.SNAPSHOT_AVAILABLE, observed, None)
        return None

    async def _taken_from(self, name: str) -> str | None:
        async with self._store.transaction() as tx:
            source = await tx.get(SNAPSHOT, name)
        return None if source is None else source.observed.get("cluster_id")

    async def _take(self, record: Record, spec: SnapshotSpec) -> tuple[str, Manifest]:
        source = await self._source(spec)
        async with self._store.transaction() as tx:
            await tx.update_observed(SNAPSHOT, spec.name, {"cluster_id": source.cluster_id})
            await tx.add_event(
                events.Event(
                    *self._event_source(spec),
                    events.snapshot_started(spec.name, *self._event_source(spec)),
                    self._clock.now(),
                )
            )
        rdb = await capture_rdb(
            source.address, source.port, source.node_dir, CAPTURE_TIMEOUT, source.tls
        )
        manifest = await asyncio.to_thread(
            self._files.write,
            name=spec.name,
            engine=spec.engine,
            engine_version=spec.engine_version,
            node_type=spec.node_type,
            num_node_groups=1,
            source={
                "cache_cluster_id": spec.cache_cluster_id,
                "replication_group_id": spec.replication_group_id,
                "taken_from": source.cluster_id,
            },
            sources={spec.layout.node_group_id: rdb},
        )
        return source.cluster_id, manifest

    async def _source(self, spec: SnapshotSpec) -> _Source:
        """The node to read from: the cluster's, or the group's snapshotting member
        when it is synced, else its primary."""
        async with self._store.transaction() as tx:
            if spec.replication_group_id is None:
                cluster = await tx.get(CACHE_CLUSTER, spec.cache_cluster_id or "")
                if cluster is None:
                    raise SnapshotFailed(f"cache cluster {spec.cache_cluster_id} no longer exists")
                return self._node_of(cluster)
            group_record = await tx.get(REPLICATION_GROUP, spec.replication_group_id)
            if group_record is None:
                raise SnapshotFailed(
                    f"replication group {spec.replication_group_id} no longer exists"
                )
            group = load(ReplicationGroupSpec, group_record.spec)
            primary = group_record.observed.get("primary") or group.preferred_primary
            members = group_record.observed.get("members", {})
            wanted = spec.requested_cluster or group.snapshot_source(primary)
            if not members.get(wanted, {}).get("synced"):
                wanted = primary
            if not members.get(wanted, {}).get("synced"):
                raise SnapshotRetry
            cluster = await tx.get(CACHE_CLUSTER, wanted)
            if cluster is None:
                raise SnapshotRetry
            return self._node_of(cluster)

    def _node_of(self, cluster: Record) -> _Source:
        spec = load(CacheClusterSpec, cluster.spec)
        node = spec.nodes[0]
        node_dir = self._layout.node(spec.cluster_id, node.node_id)
        listeners = redis_listeners(
            self._layout, node_dir, spec.port, spec.required_tls, spec.preferred_tls
        )
        return _Source(
            spec.cluster_id, node.address, listeners["port"], node_dir, listeners.get("tls")
        )

    @staticmethod
    def _event_source(spec: SnapshotSpec) -> tuple[str, str]:
        if spec.replication_group_id is not None:
            return events.REPLICATION_GROUP, spec.replication_group_id
        return events.CACHE_CLUSTER, spec.cache_cluster_id or ""

    async def _finish(
        self,
        record: Record,
        spec: SnapshotSpec,
        status: str,
        observed: dict[str, object],
        error: str | None,
    ) -> None:
        kind, source_id = self._event_source(spec)
        message = (
            events.snapshot_succeeded(spec.name, kind, source_id)
            if error is None
            else events.snapshot_failed(spec.name, kind, source_id, error)
        )
        async with self._store.transaction() as tx:
            changed = await tx.update_observed(
                SNAPSHOT,
                spec.name,
                {**record.observed, **observed},
                status=status,
                generation=record.generation,
            )
            if changed:
                await tx.add_event(events.Event(kind, source_id, message, self._clock.now()))


class SnapshotRetry(Exception):
    """The source is not ready to be read yet (e.g. its node is recovering)."""
