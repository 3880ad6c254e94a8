"""Replication controls on real redis-server processes.

Each test shows one mechanism that failover is built on (ARCHITECTURE.md,
decisions 4 and 6) and prints what it measured (run with -s to see it).
"""

from __future__ import annotations

import asyncio
import functools
import signal
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis
from engine_addresses import new_address
from engine_helpers import answering, eventually, seconds_until
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from cacheyard.engines.errors import EngineError
from cacheyard.engines.host import LocalEngineHost
from cacheyard.engines.replication import (
    ReplicationInfo,
    bind,
    bound_addresses,
    drop_clients,
    make_primary,
    make_replica,
    pause_writes,
    replication_info,
    set_config,
    unpause,
)
from cacheyard.engines.spec import NodeSpec

SpecFactory = Callable[..., NodeSpec]
ClientFactory = Callable[..., aioredis.Redis]
PORT = 6379


@pytest.fixture
async def connect() -> AsyncIterator[ClientFactory]:
    """Clients without retries (a retry would hide a dropped connection), closed at teardown."""
    opened: list[aioredis.Redis] = []

    def make(address: str, socket_timeout: float = 2.0) -> aioredis.Redis:
        client = aioredis.Redis(
            host=address,
            port=PORT,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0),
            single_connection_client=True,
            decode_responses=True,
        )
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


async def start(host: LocalEngineHost, redis_spec: SpecFactory, *names: str) -> list[NodeSpec]:
    specs = [redis_spec(name) for name in names]
    for spec in specs:
        host.start(spec)
    for spec in specs:
        await answering(host, spec)
    return specs


async def info(spec: NodeSpec) -> ReplicationInfo:
    seen = await replication_info(spec.address, spec.port)
    assert seen is not None, f"{spec.address} does not answer"
    return seen


async def linked(replica: NodeSpec) -> bool:
    return (await info(replica)).link_up


async def replicate(primary: NodeSpec, *replicas: NodeSpec) -> float:
    """Attach the replicas; seconds until all of them are in sync and online."""
    for replica in replicas:
        await make_replica(replica.address, replica.port, primary.address, primary.port)

    async def in_sync() -> bool:
        online = {seen.address for seen in (await info(primary)).replicas if seen.online}
        views = [await info(replica) for replica in replicas]
        linked = all(view.link_up and not view.syncing for view in views)
        return linked and online == {replica.address for replica in replicas}

    return await seconds_until(in_sync)


async def sync_counts(client: aioredis.Redis) -> tuple[int, int]:
    """(full syncs, partial resyncs) this node has served as a primary."""
    stats = await client.info("stats")
    return int(stats["sync_full"]), int(stats["sync_partial_ok"])


@pytest.mark.timeout(15)
async def test_replicas_follow_by_their_own_addresses_and_converge(
    host: LocalEngineHost, redis_spec: SpecFactory, connect: ClientFactory
) -> None:
    primary, r1, r2 = await start(host, redis_spec, "p", "r1", "r2")
    print(f"\nreplicas in sync {await replicate(primary, r1, r2):.3f}s after REPLICAOF")

    seen = await info(primary)
    assert seen.role == "primary" and seen.link_up
    assert {(r.address, r.port) for r in seen.replicas} == {(r1.address, PORT), (r2.address, PORT)}
    for replica in (r1, r2):
        view = await info(replica)
        assert view.role == "replica"
        assert (view.primary_address, view.primary_port) == (primary.address, PORT)
        assert view.replicas == ()

    p = connect(primary.address)
    # bind-source-addr: replication connections come from the node's address.
    links = await p.client_list(_type="replica")
    assert {link["addr"].rsplit(":", 1)[0] for link in links} == {r1.address, r2.address}

    await p.mset({f"key:{i}": i for i in range(200)})
    assert await p.wait(2, 1000) == 2

    async def converged() -> bool:
        views = [await info(node) for node in (primary, r1, r2)]
        offsets = {view.offset for view in views} | {r.offset for r in views[0].replicas}
        return len(offsets) == 1 and len({view.replid for view in views}) == 1

    await eventually(converged)
    assert await connect(r2.address).get("key:199") == "199"


@pytest.mark.timeout(15)
async def test_promoting_the_most_advanced_replica_resyncs_the_other_partially(
    host: LocalEngineHost, redis_spec: SpecFactory, connect: ClientFactory
) -> None:
    primary, r1, r2 = await start(host, redis_spec, "p", "r1", "r2")
    await replicate(primary, r1, r2)
    p = connect(primary.address)
    written = {f"key:{i}": str(i) for i in range(1000)}
    await p.mset(written)
    assert await p.wait(2, 1000) == 2

    loop = asyncio.get_running_loop()
    killed_at = loop.time()
    assert host.kill(primary.node_dir, signal.SIGKILL)
    views = {replica: await info(replica) for replica in (r1, r2)}
    new, other = sorted(views, key=lambda replica: views[replica].offset, reverse=True)
    await make_primary(new.address, PORT)
    n = connect(new.address)
    full_before, partial_before = await sync_counts(n)
    assert await n.set("after-failover", "1")
    writable = loop.time() - killed_at
    await make_replica(other.address, PORT, new.address, PORT)
    await eventually(functools.partial(linked, other))
    relinked = loop.time() - killed_at
    print(f"\nkill -9 -> promoted writable {writable * 1000:.1f} ms, other relinked", end=" ")
    print(f"{relinked * 1000:.1f} ms (detection not included)")

    assert await sync_counts(n) == (full_before, partial_before + 1)
    assert await n.mget(list(written)) == list(written.values())
    promoted = await info(new)
    assert promoted.role == "primary"
    assert [r.address for r in promoted.replicas] == [other.address]


@pytest.mark.timeout(20)
async def test_the_endpoint_address_moves_and_its_clients_are_dropped(
    host: LocalEngineHost, redis_spec: SpecFactory, connect: ClientFactory
) -> None:
    a, b, c = await start(host, redis_spec, "a", "b", "c")
    endpoint = new_address()
    await connect(a.address).set("owner", "a")
    await connect(b.address).set("owner", "b")

    assert await bind(a.address, PORT, [a.address, endpoint])
    assert await bound_addresses(a.address, PORT) == [a.address, endpoint]
    on_endpoint = connect(endpoint)
    assert await on_endpoint.get("owner") == "a"
    reader, writer = await asyncio.open_connection(endpoint, PORT)
    writer.write(b"SUBSCRIBE events\r\n")
    await writer.drain()
    assert b"subscribe" in await asyncio.wait_for(reader.read(100), 1)
    # A replica link that arrives on the endpoint address: never to be dropped.
    await make_replica(c.address, PORT, endpoint, PORT)
    await eventually(functools.partial(linked, c))

    # Held by A: B is refused and keeps listening where it did.
    assert not await bind(b.address, PORT, [b.address, endpoint])
    assert await bound_addresses(b.address, PORT) == [b.address]
    assert await connect(b.address).get("owner") == "b"

    assert await bind(a.address, PORT, [a.address])
    took = await seconds_until(lambda: bind(b.address, PORT, [b.address, endpoint]), within=2)
    print(f"\nendpoint bound by B {took * 1000:.1f} ms after A released it")
    assert await connect(endpoint).get("owner") == "b"
    assert await on_endpoint.get("owner") == "a"  # accepted before the move: still A's

    assert await drop_clients(a.address, PORT, endpoint) == 2  # the plain one, the subscriber
    with pytest.raises(RedisConnectionError):
        await on_endpoint.get("owner")
    assert await asyncio.wait_for(reader.read(100), 1) == b""
    writer.close()
    assert await drop_clients(a.address, PORT, endpoint) == 0
    assert (await info(c)).link_up
    assert [r.address for r in (await info(a)).replicas if r.online] == [c.address]


@pytest.mark.timeout(10)
async def test_a_hung_holder_keeps_the_endpoint_until_it_is_killed(
    host: LocalEngineHost, redis_spec: SpecFactory
) -> None:
    a, b = await start(host, redis_spec, "a", "b")
    endpoint = new_address()
    assert await bind(a.address, PORT, [a.address, endpoint])
    assert host.kill(a.node_dir, signal.SIGSTOP)
    assert not await bind(b.address, PORT, [b.address, endpoint])

    assert host.kill(a.node_dir, signal.SIGKILL)
    took = await seconds_until(lambda: bind(b.address, PORT, [b.address, endpoint]), within=2)
    print(f"\nendpoint bound by B {took * 1000:.1f} ms after the hung A was killed")


@pytest.mark.timeout(20)
async def test_min_replicas_to_write_refuses_writes_when_the_replica_hangs(
    host: LocalEngineHost, redis_spec: SpecFactory, connect: ClientFactory
) -> None:
    primary, replica = await start(host, redis_spec, "p", "r")
    await replicate(primary, replica)
    max_lag = 1
    values = {"min-replicas-to-write": "1", "min-replicas-max-lag": str(max_lag)}
    await set_config(primary.address, PORT, values)
    p = connect(primary.address)
    assert await p.set("k", "with a replica")

    async def refused() -> bool:
        try:
            await p.set("k", "probe")
        except ResponseError as exc:
            assert str(exc).startswith("NOREPLICAS")
            return True
        return False

    async def accepted() -> bool:
        return not await refused()

    assert host.kill(replica.node_dir, signal.SIGSTOP)
    try:
        took = await seconds_until(refused, within=max_lag + 4)
    finally:
        assert host.kill(replica.node_dir, signal.SIGCONT)
    back = await seconds_until(accepted, within=max_lag + 4)
    print(f"\nreplica stopped -> NOREPLICAS after {took:.2f} s (max lag {max_lag} s),", end=" ")
    print(f"resumed -> writes accepted after {back:.2f} s")
    assert took <= max_lag + 2.5


@pytest.mark.timeout(15)
async def test_paused_writes_wait_while_reads_answer(
    host: LocalEngineHost, redis_spec: SpecFactory, connect: ClientFactory
) -> None:
    (node,) = await start(host, redis_spec, "p")
    await connect(node.address).set("k", "before")

    await pause_writes(node.address, PORT, 5000)
    with pytest.raises(RedisTimeoutError):
        await connect(node.address, socket_timeout=0.3).set("k", "gave up")
    waiting = asyncio.ensure_future(connect(node.address).set("k", "waited"))
    assert await connect(node.address, socket_timeout=0.3).get("k") == "before"
    await asyncio.sleep(0.2)
    assert not waiting.done()

    await unpause(node.address, PORT)
    assert await asyncio.wait_for(waiting, 1)
    reader = connect(node.address)
    assert await reader.get("k") == "waited"  # the write that gave up is lost
    assert await reader.set("k", "after")


@pytest.mark.timeout(15)
async def test_repeating_make_replica_keeps_the_link(
    host: LocalEngineHost, redis_spec: SpecFactory, connect: ClientFactory
) -> None:
    primary, replica = await start(host, redis_spec, "p", "r")
    await replicate(primary, replica)
    p = connect(primary.address)
    [link] = await p.client_list(_type="replica")
    assert await sync_counts(p) == (1, 0)

    await make_replica(replica.address, PORT, primary.address, PORT)
    assert (await info(replica)).link_up
    await asyncio.sleep(0.3)  # a dropped link would be back by now, through a new sync
    assert [entry["id"] for entry in await p.client_list(_type="replica")] == [link["id"]]
    assert await sync_counts(p) == (1, 0)


@pytest.mark.timeout(10)
async def test_unreachable_nodes(host: LocalEngineHost, redis_spec: SpecFactory) -> None:
    nobody = new_address()
    assert await replication_info(nobody, PORT) is None
    assert await bound_addresses(nobody, PORT) is None
    with pytest.raises(EngineError, match=nobody):
        await make_primary(nobody, PORT)
    with pytest.raises(EngineError):
        await bind(nobody, PORT, [nobody])

    (hung,) = await start(host, redis_spec, "hung")
    assert host.kill(hung.node_dir, signal.SIGSTOP)
    loop = asyncio.get_running_loop()
    asked_at = loop.time()
    assert await replication_info(hung.address, PORT, timeout=0.2) is None
    with pytest.raises(EngineError):
        await make_replica(hung.address, PORT, nobody, PORT, timeout=0.2)
    assert loop.time() - asked_at < 1.0


@pytest.mark.timeout(10)
async def test_refused_commands_raise(host: LocalEngineHost, redis_spec: SpecFactory) -> None:
    (node,) = await start(host, redis_spec, "p")
    with pytest.raises(EngineError, match="CONFIG SET"):
        await set_config(node.address, PORT, {"maxmemory-policy": "sometimes"})
    with pytest.raises(ValueError, match="every interface"):
        await bind(node.address, PORT, [])
    assert await bound_addresses(node.address, PORT) == [node.address]
