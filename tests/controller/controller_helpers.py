"""Helpers for the controller tests (a unique module name, imported directly).

Clusters are planned by the domain on a Network whose base octet comes in turn
from 200-225 (starting at a random one), and every subnet starts at a random
host offset, so the engines of consecutive tests and of concurrent test runs
do not meet on an address.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from cacheyard.controller.cache_clusters import CacheClusterReconciler
from cacheyard.controller.keys import CACHE_CLUSTER
from cacheyard.domain.arns import Arn
from cacheyard.domain.cache_clusters import CacheClusterSpec, CreateRequest, Placement, plan_create
from cacheyard.domain.codec import dump
from cacheyard.domain.engines import EngineVersion
from cacheyard.domain.network import Network
from cacheyard.domain.node_types import node_type
from cacheyard.domain.statuses import CREATING
from cacheyard.store import EventQuery, Record, Store

REGION = "us-east-1"
ACCOUNT = "000000000000"
REDIS = EngineVersion("redis", "7.0.15")
MEMCACHED = EngineVersion("memcached", "1.6.18")
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


# Controller tests take 127.200-225 (engine and health-monitor tests 127.226-250),
# and each network a base of its own, in turn, so no two tests meet on an address.
_BASES = itertools.cycle(random.sample(range(200, 226), 26))


def new_network() -> Network:
    return Network(REGION, base_octet=next(_BASES))


def new_placement(network: Network) -> Placement:
    """All subnets of the network, each with a random number of leading hosts taken."""
    subnets = network.subnets()
    used: set[str] = set()
    for subnet in subnets:
        skip = random.randint(0, 200)
        used.update(host for i, host in enumerate(subnet.hosts()) if i < skip)
    return Placement(subnets, used)


def plan(
    placement: Placement,
    cluster_id: str,
    engine: EngineVersion = REDIS,
    num_nodes: int = 1,
    az_mode: str | None = None,
) -> CacheClusterSpec:
    request = CreateRequest(
        cluster_id=cluster_id,
        engine=engine,
        node_type=node_type("cache.t3.micro"),
        num_nodes=num_nodes,
        az_mode=az_mode,
        preferred_zone=None,
        preferred_zones=[],
        port=None,
        subnet_group="default",
        parameter_group=None,
    )
    return plan_create(request, placement, T0)


def record_for(spec: CacheClusterSpec, status: str = CREATING) -> Record:
    return Record(
        kind=CACHE_CLUSTER,
        id=spec.cluster_id,
        arn=str(Arn(REGION, ACCOUNT, "cluster", spec.cluster_id)),
        spec=dump(spec),
        status=status,
        observed={},
        generation=1,
        observed_generation=0,
        created_at=spec.created_at,
    )


async def insert(store: Store, spec: CacheClusterSpec, status: str = CREATING) -> None:
    async with store.transaction() as tx:
        await tx.insert(record_for(spec, status))


async def update(store: Store, spec: CacheClusterSpec, status: str) -> Record:
    async with store.transaction() as tx:
        return await tx.update_spec(CACHE_CLUSTER, spec.cluster_id, dump(spec), status)


async def get(store: Store, cluster_id: str) -> Record | None:
    async with store.transaction() as tx:
        return await tx.get(CACHE_CLUSTER, cluster_id)


async def messages(store: Store, cluster_id: str) -> list[str]:
    async with store.transaction() as tx:
        found = await tx.events(EventQuery(source_id=cluster_id, limit=1000))
    return [event.message for _, event in found]


async def converge(
    reconciler: CacheClusterReconciler, cluster_id: str, within: float = 10.0
) -> int:
    """Reconcile until a pass says it is done; returns the number of passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    passes = 0
    while True:
        again = await reconciler.reconcile(cluster_id)
        passes += 1
        if again is None:
            return passes
        assert loop.time() < deadline, f"{cluster_id} did not converge within {within}s"
        await asyncio.sleep(min(again, 0.05))


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        assert loop.time() < deadline, f"condition not met within {within}s"
        await asyncio.sleep(0.01)


async def config_get_cluster(address: str, port: int = 11211) -> bytes:
    """The raw answer of a configuration endpoint to ``config get cluster``."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), 2)
    try:
        writer.write(b"config get cluster\r\n")
        return await asyncio.wait_for(reader.readuntil(b"END\r\n"), 2)
    finally:
        writer.close()
