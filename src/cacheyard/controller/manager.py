"""The controller: one keyed work queue in front of the reconcilers.

On start it enqueues every stored resource (and every directory left without
one), which is how a restarted control plane adopts running engines and
finishes whatever was under way. A slow periodic resync catches anything a
missed notification would leave behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from cacheyard.controller import keys
from cacheyard.controller.backups import BackupScheduler
from cacheyard.controller.cache_clusters import CacheClusterReconciler
from cacheyard.controller.layout import Layout
from cacheyard.controller.replication_groups import ReplicationGroupReconciler
from cacheyard.controller.snapshots import SnapshotReconciler
from cacheyard.controller.workqueue import WorkQueue
from cacheyard.domain import statuses
from cacheyard.domain.cache_clusters import CacheClusterSpec
from cacheyard.domain.clock import Clock
from cacheyard.domain.codec import load
from cacheyard.domain.parameters import ParameterCatalog
from cacheyard.engines.cancellation import stop_tasks
from cacheyard.engines.host import EngineHost
from cacheyard.engines.spec import NodeSpec
from cacheyard.store import Store
from cacheyard.store.snapshot_files import SnapshotFiles

log = logging.getLogger(__name__)

RESYNC_INTERVAL = 10.0
BACKUP_INTERVAL = 30.0


class Controller:
    def __init__(
        self,
        store: Store,
        host: EngineHost,
        layout: Layout,
        clock: Clock,
        parameters: ParameterCatalog,
        snapshots: SnapshotFiles,
        snapshot_arn: Callable[[str], str],
        workers: int = 8,
    ) -> None:
        self._store = store
        self._layout = layout
        self._snapshot_files = snapshots
        self.clusters = CacheClusterReconciler(store, host, layout, clock, parameters, snapshots)
        self.groups = ReplicationGroupReconciler(
            store, host, layout, clock, self.enqueue, parameters, snapshots
        )
        self.snapshots = SnapshotReconciler(store, snapshots, layout, clock)
        self.backups = BackupScheduler(store, clock, self.enqueue, snapshot_arn)
        self._queue = WorkQueue(self._handle, workers=workers)
        self._resync: asyncio.Task[None] | None = None
        self._backups: asyncio.Task[None] | None = None

    def enqueue(self, kind: str, resource_id: str) -> None:
        self._queue.add(keys.key(kind, resource_id))

    def notify(self, queue_key: str) -> None:
        self._queue.add(queue_key)

    async def start(self) -> None:
        await asyncio.to_thread(self._snapshot_files.clean_staging)
        self._queue.start()
        await self.resync()
        self._resync = asyncio.create_task(self._every(RESYNC_INTERVAL, self.resync))
        self._backups = asyncio.create_task(self._every(BACKUP_INTERVAL, self.backups.tick))

    async def stop(self) -> None:
        await stop_tasks(t for t in (self._resync, self._backups) if t is not None)
        await self._queue.stop()
        await self.groups.lock_iam_users()  # after the last pass, so none undoes it

    async def resync(self) -> None:
        async with self._store.transaction() as tx:
            stored = {r.id for r in await tx.all(keys.CACHE_CLUSTER)}
            groups = [r.id for r in await tx.all(keys.REPLICATION_GROUP)]
            snapshots = [r.id for r in await tx.all(keys.SNAPSHOT)]
        for group_id in groups:
            self.enqueue(keys.REPLICATION_GROUP, group_id)
        for name in set(snapshots) | set(await asyncio.to_thread(self._snapshot_files.names)):
            self.enqueue(keys.SNAPSHOT, name)
        on_disk = (
            {p.name for p in self._layout.clusters.iterdir() if p.is_dir()}
            if self._layout.clusters.is_dir()
            else set()
        )
        for cluster_id in sorted(stored | on_disk):
            self.enqueue(keys.CACHE_CLUSTER, cluster_id)

    @staticmethod
    async def _every(interval: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await job()
            except Exception:
                log.exception("periodic %s failed", getattr(job, "__name__", job))

    async def _handle(self, queue_key: str) -> float | None:
        kind, resource_id = keys.split(queue_key)
        if kind == keys.REPLICATION_GROUP:
            return await self.groups.reconcile(resource_id)
        if kind == keys.SNAPSHOT:
            return await self.snapshots.reconcile(resource_id)
        if kind == keys.CACHE_CLUSTER:
            group_id = await self._group_of(resource_id)
            if group_id is not None:
                self.enqueue(keys.REPLICATION_GROUP, group_id)
                return None
            return await self.clusters.reconcile(resource_id)
        log.warning("no reconciler for %s", queue_key)
        return None

    async def _group_of(self, cluster_id: str) -> str | None:
        """The replication group that owns a member cluster; its reconciler does the work."""
        async with self._store.transaction() as tx:
            record = await tx.get(keys.CACHE_CLUSTER, cluster_id)
        return None if record is None else record.spec.get("replication_group_id")

    async def nodes_to_watch(self) -> list[tuple[str, NodeSpec]]:
        """Every node of every cluster that is meant to be up and answering."""
        async with self._store.transaction() as tx:
            records = await tx.all(keys.CACHE_CLUSTER)
        watched: list[tuple[str, NodeSpec]] = []
        for record in records:
            if record.status != statuses.AVAILABLE:
                continue
            spec = load(CacheClusterSpec, record.spec)
            queue_key = (
                keys.key(keys.REPLICATION_GROUP, spec.replication_group_id)
                if spec.replication_group_id
                else keys.key(keys.CACHE_CLUSTER, spec.cluster_id)
            )
            watched.extend((queue_key, self.clusters.node_spec(spec, n)) for n in spec.nodes)
        return watched
