"""Automatic backups: the BackupScheduler driven by a fake clock, on a real store.

Days pass in microseconds: each tick is given the time it would run at. The
snapshots it starts are taken by the real SnapshotReconciler from real redis
nodes, as the controller's work queue would, so "available" means an RDB file
in the snapshot store.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from controller_helpers import (
    ACCOUNT,
    MEMCACHED,
    REDIS,
    REGION,
    T0,
    FakeClock,
    converge,
    get,
    insert,
    plan,
    record_for,
    update,
)

from cacheyard.controller.backups import BackupScheduler
from cacheyard.controller.cache_clusters import CacheClusterReconciler
from cacheyard.controller.keys import REPLICATION_GROUP, SNAPSHOT
from cacheyard.controller.layout import Layout
from cacheyard.controller.replication_groups import ReplicationGroupReconciler
from cacheyard.controller.snapshots import SnapshotReconciler
from cacheyard.domain import snapshots, statuses
from cacheyard.domain.cache_clusters import CacheClusterSpec, Placement
from cacheyard.domain.codec import dump, load
from cacheyard.domain.node_types import node_type
from cacheyard.domain.parameters import ParameterCatalog
from cacheyard.domain.replication_groups import GroupRequest, plan_group
from cacheyard.domain.snapshots import SnapshotSpec
from cacheyard.engines.host import LocalEngineHost
from cacheyard.store import Record, SqlStore
from cacheyard.store.snapshot_files import SnapshotFiles

pytestmark = pytest.mark.timeout(45)

WINDOW = "03:00-04:00"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in May 2024, UTC (the fake clock starts on May 1st, 12:00)."""
    return datetime(2024, 5, day, hour, minute, tzinfo=UTC)


def snapshot_arn(name: str) -> str:
    return f"arn:aws:elasticache:{REGION}:{ACCOUNT}:snapshot:{name}"


class Backups:
    """The scheduler, what it enqueued, and the clock it reads."""

    def __init__(self, store: SqlStore, clock: FakeClock) -> None:
        self.store = store
        self.clock = clock
        self.enqueued: list[tuple[str, str]] = []
        self.scheduler = BackupScheduler(
            store, clock, lambda kind, name: self.enqueued.append((kind, name)), snapshot_arn
        )

    async def tick(self, now: datetime) -> list[tuple[str, str]]:
        """Tick at ``now``; what this tick enqueued."""
        self.clock.current = now
        before = len(self.enqueued)
        await self.scheduler.tick()
        return self.enqueued[before:]

    async def snapshots(self) -> dict[str, Record]:
        async with self.store.transaction() as tx:
            return {r.id: r for r in await tx.all(SNAPSHOT)}


@pytest.fixture
def backups(store: SqlStore, clock: FakeClock) -> Backups:
    return Backups(store, clock)


@pytest.fixture
def snapshot_reconciler(
    store: SqlStore, snapshot_files: SnapshotFiles, layout: Layout, clock: FakeClock
) -> SnapshotReconciler:
    return SnapshotReconciler(store, snapshot_files, layout, clock)


def with_backups(
    spec: CacheClusterSpec, retention: int, window: str | None = WINDOW
) -> CacheClusterSpec:
    return dataclasses.replace(spec, snapshot_retention_limit=retention, snapshot_window=window)


async def redis_cluster(
    reconciler: CacheClusterReconciler,
    store: SqlStore,
    placement: Placement,
    cluster_id: str,
    retention: int,
) -> CacheClusterSpec:
    """A running, available single-node Redis cluster with automatic backups."""
    spec = with_backups(plan(placement, cluster_id), retention)
    await insert(store, spec)
    await converge(reconciler, cluster_id)
    return spec


async def take(reconciler: SnapshotReconciler, name: str) -> None:
    """What the work queue does with an enqueued snapshot: reconcile until done."""
    for _ in range(50):
        again = await reconciler.reconcile(name)
        if again is None:
            return
        await asyncio.sleep(again)
    raise AssertionError(f"snapshot {name} did not settle")


async def put(address: str, port: int, **values: str) -> None:
    async with aioredis.Redis(host=address, port=port, socket_timeout=2) as client:
        await client.mset(values)


async def settle(reconciler: SnapshotReconciler, enqueued: list[tuple[str, str]]) -> None:
    for kind, name in enqueued:
        assert kind == SNAPSHOT
        await take(reconciler, name)


def rdb_bytes(files: SnapshotFiles, name: str, tmp_path: Path) -> bytes:
    """The snapshot's RDB file, exported (and so checked against its manifest)."""
    exported = files.export(name, tmp_path / "exported", name)
    rdb = next(p for p in exported if p.suffix == ".rdb")
    return rdb.read_bytes()


def snapshot_record(spec: SnapshotSpec, status: str) -> Record:
    return Record(
        kind=SNAPSHOT,
        id=spec.name,
        arn=snapshot_arn(spec.name),
        spec=dump(spec),
        status=status,
        observed={},
        generation=1,
        observed_generation=0,
        created_at=spec.created_at,
    )


async def test_one_backup_per_window_kept_for_the_retention_limit(
    reconciler: CacheClusterReconciler,
    snapshot_reconciler: SnapshotReconciler,
    store: SqlStore,
    placement: Placement,
    backups: Backups,
    snapshot_files: SnapshotFiles,
    tmp_path: Path,
) -> None:
    spec = await redis_cluster(reconciler, store, placement, "bk-life", retention=2)
    address, port = spec.nodes[0].address, spec.port
    await put(address, port, day1="one")
    manual = snapshots.of_cluster(spec, "bk-life-manual", snapshots.MANUAL, at(1, 12))
    async with store.transaction() as tx:
        await tx.insert(snapshot_record(manual, statuses.SNAPSHOT_CREATING))
    await take(snapshot_reconciler, manual.name)

    # Before the window opens: nothing.
    assert await backups.tick(at(1, 12)) == []
    assert await backups.tick(at(2, 2, 59)) == []
    assert set(await backups.snapshots()) == {manual.name}

    # The window opens: one automatic backup, named as ElastiCache names them.
    first = "automatic.bk-life-2024-05-02-03-00"
    assert await backups.tick(at(2, 3)) == [(SNAPSHOT, first)]
    record = (await backups.snapshots())[first]
    taken = load(SnapshotSpec, record.spec)
    assert record.status == statuses.SNAPSHOT_CREATING
    assert record.arn == snapshot_arn(first)
    assert taken.source == snapshots.AUTOMATED
    assert taken.cache_cluster_id == "bk-life"
    assert taken.replication_group_id is None
    assert (taken.retention_limit, taken.window) == (2, WINDOW)
    assert taken.created_at == at(2, 3)
    # Still in the window, taken or not yet: no second one.
    assert await backups.tick(at(2, 3, 1)) == []
    await take(snapshot_reconciler, first)
    assert await backups.tick(at(2, 3, 59)) == []
    assert await backups.tick(at(2, 4)) == []

    # The reconciler took it from the real node: an RDB file holding the data.
    record = (await backups.snapshots())[first]
    assert record.status == statuses.SNAPSHOT_AVAILABLE
    assert record.observed["cluster_id"] == "bk-life"
    manifest = snapshot_files.verify(first)
    assert manifest.source["cache_cluster_id"] == "bk-life"
    assert manifest.files[0].size > 0
    assert b"day1" in rdb_bytes(snapshot_files, first, tmp_path)

    # The next day's window: another one; the first is kept (1 day old < 2).
    await put(address, port, day2="two")
    second = "automatic.bk-life-2024-05-03-03-20"
    assert await backups.tick(at(3, 3, 20)) == [(SNAPSHOT, second)]
    await take(snapshot_reconciler, second)
    assert b"day2" in rdb_bytes(snapshot_files, second, tmp_path)
    assert set(await backups.snapshots()) == {manual.name, first, second}
    # A copy of an automatic backup is the user's (manual): it outlives the original.
    copy = dataclasses.replace(
        taken, name="bk-life-copy", source=snapshots.MANUAL, copy_of=first, created_at=at(3, 4)
    )
    async with store.transaction() as tx:
        await tx.insert(snapshot_record(copy, statuses.SNAPSHOT_CREATING))
    await take(snapshot_reconciler, copy.name)
    keep = {manual.name, copy.name}

    # Two days after the first: it is pruned as the third is started.
    third = "automatic.bk-life-2024-05-04-03-00"
    enqueued = await backups.tick(at(4, 3))
    assert sorted(enqueued) == sorted([(SNAPSHOT, third), (SNAPSHOT, first)])
    found = await backups.snapshots()
    assert found[first].status == statuses.SNAPSHOT_DELETING
    assert found[first].spec["deleting"] is True
    assert found[second].status == statuses.SNAPSHOT_AVAILABLE
    await settle(snapshot_reconciler, enqueued)
    found = await backups.snapshots()
    assert set(found) == keep | {second, third}
    assert not snapshot_files.exists(first)
    assert snapshot_files.names() == sorted(keep | {second, third})
    assert b"day1" in rdb_bytes(snapshot_files, copy.name, tmp_path)

    # Backups turned off (retention 0): none is taken any more, and the ones taken
    # stay (as on ElastiCache, they go only with the cache or when deleted).
    await update(store, with_backups(spec, 0), statuses.AVAILABLE)
    assert await backups.tick(at(4, 3, 30)) == []
    assert await backups.tick(at(5, 3)) == []
    assert await backups.tick(at(30, 3)) == []
    found = await backups.snapshots()
    assert {name: r.status for name, r in found.items()} == dict.fromkeys(
        keep | {second, third}, statuses.SNAPSHOT_AVAILABLE
    )
    assert snapshot_files.names() == sorted(keep | {second, third})


async def test_a_deleted_cluster_takes_its_automatic_backups_with_it(
    reconciler: CacheClusterReconciler,
    snapshot_reconciler: SnapshotReconciler,
    store: SqlStore,
    host: LocalEngineHost,
    layout: Layout,
    placement: Placement,
    backups: Backups,
    snapshot_files: SnapshotFiles,
) -> None:
    spec = await redis_cluster(reconciler, store, placement, "bk-gone", retention=5)
    manual = snapshots.of_cluster(spec, "bk-gone-final", snapshots.MANUAL, at(1, 12))
    async with store.transaction() as tx:
        await tx.insert(snapshot_record(manual, statuses.SNAPSHOT_CREATING))
    await take(snapshot_reconciler, manual.name)
    automatic = "automatic.bk-gone-2024-05-02-03-05"
    assert await backups.tick(at(2, 3, 5)) == [(SNAPSHOT, automatic)]
    await take(snapshot_reconciler, automatic)
    assert snapshot_files.names() == sorted([automatic, manual.name])

    await update(store, dataclasses.replace(spec, deleting=True), statuses.DELETING)
    await converge(reconciler, "bk-gone")
    assert await get(store, "bk-gone") is None
    assert host.find_all(layout.cluster("bk-gone")) == {}

    # Well within the retention limit, but the cache is gone: its backups go too.
    enqueued = await backups.tick(at(2, 12))
    assert enqueued == [(SNAPSHOT, automatic)]
    await settle(snapshot_reconciler, enqueued)
    assert set(await backups.snapshots()) == {manual.name}
    assert snapshot_files.names() == [manual.name]
    # Nothing is started for it in its next window either.
    assert await backups.tick(at(3, 3, 5)) == []


async def test_only_available_redis_caches_with_a_retention_limit_are_backed_up(
    store: SqlStore, placement: Placement, backups: Backups
) -> None:
    """Scheduler only: the records say what is running, no engine is needed to decide."""
    cases = {
        "bk-on": (with_backups(plan(placement, "bk-on"), 1), statuses.AVAILABLE),
        "bk-off": (with_backups(plan(placement, "bk-off"), 0), statuses.AVAILABLE),
        "bk-busy": (with_backups(plan(placement, "bk-busy"), 1), statuses.MODIFYING),
        "bk-new": (with_backups(plan(placement, "bk-new"), 1), statuses.CREATING),
        "bk-memcached": (
            with_backups(plan(placement, "bk-memcached", engine=MEMCACHED), 1),
            statuses.AVAILABLE,
        ),
        # No window given: a stable one-hour window of its own (12:00-13:00 for this id).
        "bk-default": (with_backups(plan(placement, "bk-default"), 1, None), statuses.AVAILABLE),
    }
    for spec, status in cases.values():
        await insert(store, spec, status)
    assert snapshots.default_window("bk-default") == "12:00-13:00"

    assert await backups.tick(at(2, 3, 10)) == [(SNAPSHOT, "automatic.bk-on-2024-05-02-03-10")]
    assert await backups.tick(at(2, 11, 59)) == []
    assert await backups.tick(at(2, 12, 30)) == [
        (SNAPSHOT, "automatic.bk-default-2024-05-02-12-30")
    ]
    assert await backups.tick(at(2, 12, 59)) == []
    assert set(await backups.snapshots()) == {
        "automatic.bk-on-2024-05-02-03-10",
        "automatic.bk-default-2024-05-02-12-30",
    }


async def test_a_window_over_midnight_takes_one_backup(
    store: SqlStore, placement: Placement, backups: Backups
) -> None:
    await insert(
        store,
        with_backups(plan(placement, "bk-night"), 3, "23:30-00:30"),
        statuses.AVAILABLE,
    )
    assert await backups.tick(at(2, 23, 29)) == []
    assert await backups.tick(at(2, 23, 45)) == [(SNAPSHOT, "automatic.bk-night-2024-05-02-23-45")]
    assert await backups.tick(at(3, 0, 15)) == []  # the same window, after midnight
    assert await backups.tick(at(3, 0, 30)) == []
    assert await backups.tick(at(3, 23, 30)) == [(SNAPSHOT, "automatic.bk-night-2024-05-03-23-30")]


async def reconcile_group(reconciler: ReplicationGroupReconciler, group_id: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while (again := await reconciler.reconcile(group_id)) is not None:
        assert loop.time() < deadline, f"{group_id} did not converge"
        await asyncio.sleep(min(again, 0.05))


async def test_a_replication_group_is_backed_up_under_its_own_name(
    store: SqlStore,
    host: LocalEngineHost,
    layout: Layout,
    clock: FakeClock,
    placement: Placement,
    parameters: ParameterCatalog,
    snapshot_files: SnapshotFiles,
    snapshot_reconciler: SnapshotReconciler,
    backups: Backups,
    tmp_path: Path,
) -> None:
    request = GroupRequest(
        group_id="bk-rg",
        description="backed up",
        engine=REDIS,
        node_type=node_type("cache.t3.micro"),
        num_members=2,
        zones=[],
        automatic_failover=False,
        multi_az=False,
        port=None,
        subnet_group="default",
        parameter_group=None,
    )
    group, members = plan_group(request, placement, T0)
    group = dataclasses.replace(group, snapshot_retention_limit=1, snapshot_window=WINDOW)
    async with store.transaction() as tx:
        await tx.insert(
            Record(
                kind=REPLICATION_GROUP,
                id=group.group_id,
                arn=f"arn:aws:elasticache:{REGION}:{ACCOUNT}:replicationgroup:bk-rg",
                spec=dump(group),
                status=statuses.CREATING,
                observed={},
                generation=1,
                observed_generation=0,
                created_at=T0,
            )
        )
        for member in members:
            await tx.insert(record_for(member))
    groups = ReplicationGroupReconciler(
        store, host, layout, clock, lambda kind, key: None, parameters, snapshot_files
    )
    await reconcile_group(groups, "bk-rg")
    async with store.transaction() as tx:
        record = await tx.get(REPLICATION_GROUP, "bk-rg")
    assert record is not None and record.status == statuses.AVAILABLE
    primary = next(m for m in members if m.cluster_id == record.observed["primary"])
    async with aioredis.Redis(host=primary.nodes[0].address, port=group.port) as client:
        await client.set("group-key", "1")
        assert await client.wait(1, 2000) == 1

    name = "automatic.bk-rg-2024-05-02-03-00"
    assert await backups.tick(at(2, 3)) == [(SNAPSHOT, name)]
    taken = load(SnapshotSpec, (await backups.snapshots())[name].spec)
    assert taken.source == snapshots.AUTOMATED
    assert taken.replication_group_id == "bk-rg"
    assert taken.cache_cluster_id is None
    assert taken.num_cache_nodes == 2
    assert (taken.retention_limit, taken.window) == (1, WINDOW)
    await take(snapshot_reconciler, name)
    found = (await backups.snapshots())[name]
    assert found.status == statuses.SNAPSHOT_AVAILABLE
    # Read from the replica, as ElastiCache does, so the primary never forks.
    assert found.observed["cluster_id"] == group.snapshot_source(primary.cluster_id)
    assert found.observed["cluster_id"] != primary.cluster_id
    assert b"group-key" in rdb_bytes(snapshot_files, name, tmp_path)

    # A day later (retention 1): replaced by the next one.
    nxt = "automatic.bk-rg-2024-05-03-03-00"
    enqueued = await backups.tick(at(3, 3))
    assert sorted(enqueued) == sorted([(SNAPSHOT, name), (SNAPSHOT, nxt)])
    await settle(snapshot_reconciler, enqueued)
    assert set(await backups.snapshots()) == {nxt}
    assert snapshot_files.names() == [nxt]
