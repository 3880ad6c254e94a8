"""Automatic backups: one snapshot per day inside each cache's window, pruned
after its retention limit, as ElastiCache does when SnapshotRetentionLimit > 0.

``tick`` is a pure function of the store and the clock, so tests drive it with
an injected clock instead of waiting for a window to open.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from cacheyard.controller.keys import CACHE_CLUSTER, REPLICATION_GROUP, SNAPSHOT
from cacheyard.domain import snapshots, statuses
from cacheyard.domain.cache_clusters import CacheClusterSpec
from cacheyard.domain.clock import Clock
from cacheyard.domain.codec import dump, load
from cacheyard.domain.replication_groups import ReplicationGroupSpec
from cacheyard.domain.snapshots import SnapshotSpec
from cacheyard.store import Record, Store, Transaction

log = logging.getLogger(__name__)


class BackupScheduler:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        enqueue: Callable[[str, str], None],
        snapshot_arn: Callable[[str], str],
    ) -> None:
        self._store = store
        self._clock = clock
        self._enqueue = enqueue
        self._snapshot_arn = snapshot_arn

    async def tick(self) -> None:
        now = self._clock.now()
        started: list[str] = []
        pruned: list[str] = []
        async with self._store.transaction() as tx:
            taken = await tx.all(SNAPSHOT)
            automatic = [r for r in taken if r.spec["source"] == snapshots.AUTOMATED]
            for spec in await self._due(tx, automatic, now):
                if any(r.id == spec.name for r in taken):
                    continue
                await tx.insert(self._record(spec, now))
                started.append(spec.name)
            retention = await self._retention(tx)
            for record in automatic:
                spec = load(SnapshotSpec, record.spec)
                if record.status == statuses.SNAPSHOT_CREATING or spec.deleting:
                    continue
                # A cache's automatic backups go with it. Turning backups off (a limit
                # of 0) stops new ones; the ones taken stay until deleted.
                limit = retention.get(spec.source_id)
                if limit is None or (limit > 0 and snapshots.expired(limit, spec.created_at, now)):
                    await tx.update_spec(
                        SNAPSHOT,
                        record.id,
                        dump(replace(spec, deleting=True)),
                        statuses.SNAPSHOT_DELETING,
                    )
                    pruned.append(record.id)
        for name in started + pruned:
            self._enqueue(SNAPSHOT, name)

    async def _due(
        self, tx: Transaction, automatic: list[Record], now: datetime
    ) -> list[SnapshotSpec]:
        last: dict[str, datetime] = {}
        for record in automatic:
            taken = load(SnapshotSpec, record.spec)
            if taken.source_id not in last or last[taken.source_id] < taken.created_at:
                last[taken.source_id] = taken.created_at
        due: list[SnapshotSpec] = []
        for cluster in await tx.all(CACHE_CLUSTER):
            spec = load(CacheClusterSpec, cluster.spec)
            if (
                spec.engine == "redis"
                and spec.replication_group_id is None
                and cluster.status == statuses.AVAILABLE
                and snapshots.backup_due(
                    spec.snapshot_window or snapshots.default_window(spec.cluster_id),
                    spec.snapshot_retention_limit,
                    now,
                    last.get(spec.cluster_id),
                )
            ):
                name = snapshots.automatic_name(spec.cluster_id, now)
                due.append(snapshots.of_cluster(spec, name, snapshots.AUTOMATED, now))
        for group_record in await tx.all(REPLICATION_GROUP):
            group = load(ReplicationGroupSpec, group_record.spec)
            if group_record.status == statuses.AVAILABLE and snapshots.backup_due(
                group.snapshot_window or snapshots.default_window(group.group_id),
                group.snapshot_retention_limit,
                now,
                last.get(group.group_id),
            ):
                members = {}
                for member_id in group.member_ids:
                    member = await tx.get(CACHE_CLUSTER, member_id)
                    if member is not None:
                        members[member_id] = load(CacheClusterSpec, member.spec)
                primary = group_record.observed.get("primary") or group.preferred_primary
                name = snapshots.automatic_name(group.group_id, now)
                due.append(
                    snapshots.of_group(group, members, primary, name, snapshots.AUTOMATED, now)
                )
        return due

    @staticmethod
    async def _retention(tx: Transaction) -> dict[str, int]:
        """Each cache's retention limit (a cache that is gone is not in it)."""
        limits = {
            r.id: int(r.spec["snapshot_retention_limit"])
            for r in await tx.all(CACHE_CLUSTER)
            if not r.spec.get("replication_group_id")
        }
        limits.update(
            {r.id: int(r.spec["snapshot_retention_limit"]) for r in await tx.all(REPLICATION_GROUP)}
        )
        return limits

    def _record(self, spec: SnapshotSpec, now: datetime) -> Record:
        return Record(
            kind=SNAPSHOT,
            id=spec.name,
            arn=self._snapshot_arn(spec.name),
            spec=dump(spec),
            status=statuses.SNAPSHOT_CREATING,
            observed={},
            generation=1,
            observed_generation=0,
            created_at=now,
        )
