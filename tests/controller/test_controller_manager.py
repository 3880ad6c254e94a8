"""The controller: resync at start adopts records and cleans orphan directories."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from controller_helpers import FakeClock, eventually, get, insert, plan

from cacheyard.controller.keys import CACHE_CLUSTER, key
from cacheyard.controller.layout import Layout
from cacheyard.controller.manager import Controller
from cacheyard.domain import statuses
from cacheyard.domain.cache_clusters import Placement
from cacheyard.domain.parameters import ParameterCatalog
from cacheyard.engines.host import LocalEngineHost
from cacheyard.store import SqlStore
from cacheyard.store.snapshot_files import SnapshotFiles

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def controller(
    store: SqlStore,
    host: LocalEngineHost,
    layout: Layout,
    clock: FakeClock,
    parameters: ParameterCatalog,
    snapshot_files: SnapshotFiles,
) -> AsyncIterator[Controller]:
    made = Controller(
        store, host, layout, clock, parameters, snapshot_files, lambda name: name, workers=2
    )
    yield made
    await made.stop()


async def test_start_converges_records_and_removes_orphan_directories(
    controller: Controller,
    store: SqlStore,
    host: LocalEngineHost,
    layout: Layout,
    placement: Placement,
) -> None:
    orphan = plan(placement, "orphan")
    orphan_node = controller.clusters.node_spec(orphan, orphan.nodes[0])
    host.start(orphan_node)
    (layout.cluster("empty-dir") / "nodes").mkdir(parents=True)
    kept = plan(placement, "kept")
    await insert(store, kept)

    await controller.start()

    async def settled() -> bool:
        record = await get(store, "kept")
        return (
            record is not None
            and record.status == statuses.AVAILABLE
            and not layout.cluster("orphan").exists()
            and not layout.cluster("empty-dir").exists()
        )

    await eventually(settled, within=10)
    assert host.find(orphan_node.node_dir) is None
    assert host.find(layout.node("kept", "0001")) is not None


async def test_enqueue_and_notify_reach_the_reconciler(
    controller: Controller, store: SqlStore, layout: Layout, placement: Placement
) -> None:
    await controller.start()
    first, second = plan(placement, "first"), plan(placement, "second")
    await insert(store, first)
    await insert(store, second)
    controller.enqueue(CACHE_CLUSTER, "first")
    controller.notify(key(CACHE_CLUSTER, "second"))

    async def both_available() -> bool:
        records = [await get(store, "first"), await get(store, "second")]
        return all(r is not None and r.status == statuses.AVAILABLE for r in records)

    await eventually(both_available, within=10)


async def test_nodes_to_watch_lists_only_available_clusters(
    controller: Controller, store: SqlStore, layout: Layout, placement: Placement
) -> None:
    ready = plan(placement, "ready")
    pending = plan(placement, "pending")
    await insert(store, ready, status=statuses.AVAILABLE)
    await insert(store, pending, status=statuses.CREATING)

    watched = await controller.nodes_to_watch()

    assert [(k, n.node_dir, n.address) for k, n in watched] == [
        ("cache-cluster/ready", layout.node("ready", "0001"), ready.nodes[0].address)
    ]
    assert watched[0][1] == controller.clusters.node_spec(ready, ready.nodes[0])
