"""The cache cluster reconciler against a real store and real engines."""

from __future__ import annotations

import dataclasses
import signal
import socket

import pytest
import redis.asyncio as aioredis
from controller_helpers import (
    MEMCACHED,
    T0,
    FakeClock,
    config_get_cluster,
    converge,
    eventually,
    get,
    insert,
    messages,
    plan,
    update,
)
from pymemcache.client.base import Client as MemcacheClient

from cacheyard.controller.cache_clusters import HUNG_AFTER, START_RETRY, CacheClusterReconciler
from cacheyard.controller.layout import Layout
from cacheyard.domain import statuses
from cacheyard.domain.cache_clusters import NodePlan, Placement, plan_reboot, plan_resize
from cacheyard.domain.parameters import ParameterCatalog
from cacheyard.engines.host import LocalEngineHost
from cacheyard.engines.spec import NodeSpec
from cacheyard.store import EventQuery, SqlStore
from cacheyard.store.snapshot_files import SnapshotFiles

pytestmark = pytest.mark.timeout(30)


async def ping(address: str, port: int = 6379) -> bool:
    async with aioredis.Redis(host=address, port=port, socket_timeout=1) as client:
        return bool(await client.ping())


def memcached_version(address: str, port: int = 11211) -> str:
    client = MemcacheClient((address, port), connect_timeout=1, timeout=1)
    try:
        return bytes(client.version()).decode()
    finally:
        client.close()


def cluster_map(reply: bytes) -> tuple[int, list[str]]:
    """(version, ["host|ip|port", ...]) from a ``config get cluster`` answer."""
    header, body, end = reply.split(b"\r\n", 2)
    assert header.startswith(b"CONFIG cluster 0 ")
    assert int(header.split()[-1]) == len(body)
    assert end == b"END\r\n"
    version, nodes = body.decode().split("\n", 1)
    return int(version), nodes.split()


async def test_creating_redis_cluster_becomes_available(
    reconciler: CacheClusterReconciler,
    store: SqlStore,
    host: LocalEngineHost,
    layout: Layout,
    placement: Placement,
) -> None:
    spec = plan(placement, "red1")
    await insert(store, spec)

    await converge(reconciler, "red1")

    record = await get(store, "red1")
    assert record is not None
    assert (record.status, record.generation, record.observed_generation) == ("available", 1, 1)
    assert record.observed["nodes"]["0001"]["status"] == statuses.NODE_AVAILABLE
    node = spec.nodes[0]
    assert await ping(node.address, spec.port)
    process = host.find(layout.node("red1", "0001"))
    assert process is not None
    assert await messages(store, "red1") == [
        f"Added cache node 0001 in availability zone {node.zone}",
        "Cache cluster created",
    ]
    async with store.transaction() as tx:
        dates = {e.date for _, e in await tx.events(EventQuery(source_id="red1"))}
    assert dates == {T0}

    # Converged: another pass changes nothing.
    assert await reconciler.reconcile("red1") is None
    assert host.find(layout.node("red1", "0001")) == process
    assert len(await messages(store, "red1")) == 2


async def test_a_new_control_plane_adopts_running_engines(
    reconciler: CacheClusterReconciler,
    store: SqlStore,
    host: LocalEngineHost,
    layout: Layout,
    clock: FakeClock,
    placement: Placement,
    parameters: ParameterCatalog,
    snapshot_files: SnapshotFiles,
) -> None:
    spec = plan(placement, "adopt")
    await insert(store, spec)
    await converge(reconciler, "adopt")
    before = host.find(layout.node("adopt", "0001"))
    assert before is not None

    fresh_host = LocalEngineHost()
    restarted = CacheClusterReconciler(store, fresh_host, layout, clock, parameters, snapshot_files)
    assert await restarted.reconcile("adopt") is None

    assert fresh_host.find(layout.node("adopt", "0001")) == before
    record = await get(store, "adopt")
    assert record is not None and record.status == "available"
    assert len(await messages(store, "adopt")) == 2  # nothing new to tell


async def test_deleting_stops_the_engines_and_forgets_the_cluster(
    reconciler: CacheClusterReconciler,
    store: SqlStore,
    host: LocalEngineHost,
    layout: Layout,
    placement: Placement,
) -> None:
    spec = plan(placement, "gone")
    await insert(store, spec)
    await converge(reconciler, "gone")
    record = await get(store, "gone")
    assert record is not None
    async with store.transaction() as tx:
        await tx.set_tags(record.arn, {"team": "cache"})

    await update(store, dataclasses.replace(spec, deleting=True), statuses.DELETING)
    await converge(reconciler, "gone")

    assert host.find_all(layout.cluster("gone")) == {}
    assert not layout.cluster("gone").exists()
    assert await get(store, "gone") is None
    async with store.transaction() as tx:
        assert await tx.tags(record.arn) == []
    assert (await messages(store, "gone"))[-1] == "Cache cluster deleted"
    assert not await host.probe(reconciler.node_spec(spec, spec.nodes[0]), timeout=0.2)


async def test_directory_without_a_record_is_cleaned_up(
    reconciler: CacheClusterReconciler,
    host: LocalEngineHost,
    layout: Layout,
    placement: Placement,
) -> None:
    spec = plan(placement, "orphan")
    node = reconciler.node_spec(spec, spec.nodes[0])
    host.start(node)
    await eventually(lambda: host.probe(node))

    assert await reconciler.reconcile("orphan") is None

    assert host.find(node.node_dir) is None
    assert not layout.cluster("orphan").exists()


async def test_stray_node_directory_is_stopped_and_removed(
    reconciler: CacheClusterReconciler,
    store: SqlStore,
    host: LocalEngineHost,
    layout: Layout,
    placement: Placement,
) -> None:
    spec = plan(placement, "stray")
    await insert(store, spec)
    await converge(reconciler, "stray")
    kept = host.find(layout.node("stray", "0001"))
    zone = spec.nodes[0].zone
    stray: NodeSpec = reconciler.node_spec(spec, NodePlan("0002", zone, placement.take(zone), T0))
    host.start(stray)
    await eventually(lambda: host.probe(stray))

    await converge(reconciler, "stray")

    assert host.find(stray.node_dir) is None
    assert not stray.node_dir.exists()
    assert host.find(layout.node("stray", "0001")) == kept
    assert "Removed cache node 0002" in await messages(store, "stray")
    record = await get(store, "stray")
    assert record is not None and set(record.observed["nodes"]) == {"0001"}


async def test_reboot_restarts_the_process(
    reconciler: CacheClusterReconciler,
    store: SqlStore,
    host: LocalEngineHost,
    layout: Layout,
    placement: Placement,
) -> None:
    spec = plan(placement, "boot")
    await insert(store, spec)
    await converge(reconciler, "boot")
    node_dir = layout.node("boot", "0001")
    before = host.find(node_dir)
    assert before is not None

    rebooted = plan_reboot(spec, ["0001"])
    await update(store, rebooted, statuses.REBOOTING_CLUSTER)
    await converge(reconciler, "boot")

    after = host.find(node_dir)
    assert after is not None and after.pid != before.pid
    assert await ping(spec.nodes[0].address)
    record = await get(store, "boot")
    assert record is not None
    assert (record.status, record.generation, record.observed_generation) == ("available", 2, 2)
    assert record.observed["nodes"]["0001"]["restarted"] == 1
    assert (await messages(store, "boot"))[-1] == "Cache node 0001 restarted"

    # Done once: the next pass leaves the new process alone.
    assert await reconciler.reconcile("boot") is None
    assert host.find(node_dir) == after


async def test_killed_engine_is_restarted_with_recovery_events(
    reconciler: CacheClusterReconciler,
    store: SqlStore,
    host: LocalEngineHost,
    layout: Layout,
    placement: Placement,
) -> None:
    spec = plan(placement, "crash")
    await insert(store, spec)
    await converge(reconciler, "crash")
    node_dir = layout.node("crash", "0001")
    killed = host.find(node_dir)
    assert killed is not None
    assert host.kill(node_dir, signal.SIGKILL)

    async def gone() -> bool:
        return host.find(node_dir) is None

    await eventually(gone)

    await converge(reconciler, "crash")

    restarted = host.find(node_dir)
    assert restarted is not None and restarted.pid != killed.pid
    assert await ping(spec.nodes[0].address)
    assert (await messages(store, "crash"))[-2:] == [
        "Recovering cache nodes 0001",
        "Finished recovery for cache nodes 0001",
    ]
    record = await get(store, "crash")
    assert record is not None and record.status == "available"
    assert record.observed["nodes"]["0001"]["recovering"] is False


async def test_taken_address_is_retried_until_it_frees(
    reconciler: CacheClusterReconciler,
    store: SqlStore,
    placement: Placement,
) -> None:
    spec = plan(placement, "busy")
    await insert(store, spec)
    squatter = socket.socket()
    try:
        squatter.bind((spec.nodes[0].address, spec.port))
        squatter.listen()
        assert await reconciler.reconcile("busy") == START_RETRY
        record = await get(store, "busy")
        assert record is not None and record.status == "creating"
    finally:
        squatter.close()
    await converge(reconciler, "busy")
    record = await get(store, "busy")
    assert record is not None and record.status == "available"


async def test_memcached_cluster_serves_discovery_and_follows_resizes(
    reconciler: CacheClusterReconciler,
    store: SqlStore,
    host: LocalEngineHost,
    layout: Layout,
    placement: Placement,
) -> None:
    spec = plan(placement, "mc", engine=MEMCACHED, num_nodes=2, az_mode="cross-az")
    assert spec.configuration_address is not None
    await insert(store, spec)
    await converge(reconciler, "mc")

    record = await get(store, "mc")
    assert record is not None and record.status == "available"
    for node in spec.nodes:
        assert memcached_version(node.address).startswith("1.6")
    assert host.find(layout.config_endpoint("mc")) is not None
    version, nodes = cluster_map(await config_get_cluster(spec.configuration_address))
    assert version == 1
    assert nodes == [f"{n.address}|{n.address}|11211" for n in spec.nodes]
    assert await messages(store, "mc") == [
        f"Added cache node 0001 in availability zone {spec.nodes[0].zone}",
        f"Added cache node 0002 in availability zone {spec.nodes[1].zone}",
        "Cache cluster created",
    ]

    grown = plan_resize(spec, 3, [], [], None, placement, T0)
    await update(store, grown, statuses.MODIFYING)
    await converge(reconciler, "mc")
    version, nodes = cluster_map(await config_get_cluster(spec.configuration_address))
    assert (version, len(nodes)) == (2, 3)
    assert memcached_version(grown.nodes[2].address).startswith("1.6")
    assert f"Added cache node 0003 in availability zone {grown.nodes[2].zone}" in (
        await messages(store, "mc")
    )

    shrunk = plan_resize(grown, 2, ["0001"], [], None, placement, T0)
    await update(store, shrunk, statuses.MODIFYING)
    await converge(reconciler, "mc")
    version, nodes = cluster_map(await config_get_cluster(spec.configuration_address))
    assert version == 3
    assert nodes == [f"{n.address}|{n.address}|11211" for n in shrunk.nodes]
    assert host.find(layout.node("mc", "0001")) is None
    assert not layout.node("mc", "0001").exists()
    assert (await messages(store, "mc"))[-1] == "Removed cache node 0001"
    record = await get(store, "mc")
    assert record is not None
    assert (record.status, record.observed_generation) == ("available", 3)

    await update(store, dataclasses.replace(shrunk, deleting=True), statuses.DELETING)
    await converge(reconciler, "mc")
    assert host.find_all(layout.cluster("mc")) == {}
    assert await get(store, "mc") is None


async def test_hung_engine_is_not_reported_available(
    reconciler: CacheClusterReconciler,
    store: SqlStore,
    host: LocalEngineHost,
    layout: Layout,
    placement: Placement,
) -> None:
    spec = plan(placement, "hung")
    await insert(store, spec)
    await converge(reconciler, "hung")
    node_dir = layout.node("hung", "0001")
    assert host.kill(node_dir, signal.SIGSTOP)
    try:
        assert await reconciler.reconcile("hung") is not None  # not converged
        record = await get(store, "hung")
        assert record is not None
        assert record.observed["nodes"]["0001"]["status"] != statuses.NODE_AVAILABLE
    finally:
        host.kill(node_dir, signal.SIGCONT)


async def test_hung_engine_is_restarted_in_place_after_a_while(
    reconciler: CacheClusterReconciler,
    store: SqlStore,
    host: LocalEngineHost,
    layout: Layout,
    placement: Placement,
    clock: FakeClock,
) -> None:
    spec = plan(placement, "stuck")
    await insert(store, spec)
    await converge(reconciler, "stuck")
    node_dir = layout.node("stuck", "0001")
    hung = host.find(node_dir)
    assert hung is not None and host.kill(node_dir, signal.SIGSTOP)
    try:
        assert await reconciler.reconcile("stuck") is not None
        assert host.find(node_dir) == hung  # not killed at the first silence
        clock.advance(HUNG_AFTER.total_seconds())
        assert await reconciler.reconcile("stuck") is not None
        await converge(reconciler, "stuck")
    finally:
        host.kill(node_dir, signal.SIGCONT)
    replaced = host.find(node_dir)
    assert replaced is not None and replaced.pid != hung.pid
    record = await get(store, "stuck")
    assert record is not None and record.status == statuses.AVAILABLE
    assert (await messages(store, "stuck"))[-2:] == [
        "Recovering cache nodes 0001",
        "Finished recovery for cache nodes 0001",
    ]
