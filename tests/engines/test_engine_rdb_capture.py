"""capture_rdb on real redis-server processes.

A save is slowed down with ``rdb-key-save-delay`` (microseconds per key, read
by the forked child at fork time), so "a save is already running" is a state
the test holds, not a race it hopes to win.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from engine_addresses import new_address
from engine_helpers import answering

from cacheyard.engines.errors import EngineError
from cacheyard.engines.host import LocalEngineHost
from cacheyard.engines.rdb_capture import capture_rdb
from cacheyard.engines.replication import make_replica, replication_info
from cacheyard.engines.spec import NodeSpec

SpecFactory = Callable[..., NodeSpec]
ClientFactory = Callable[[NodeSpec], aioredis.Redis]
TIMEOUT = 5.0


@pytest.fixture
async def connect() -> AsyncIterator[ClientFactory]:
    opened: list[aioredis.Redis] = []

    def make(spec: NodeSpec) -> aioredis.Redis:
        client = aioredis.Redis(host=spec.address, port=spec.port, decode_responses=True)
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


async def start(host: LocalEngineHost, spec: NodeSpec) -> NodeSpec:
    host.start(spec)
    await answering(host, spec)  # not while LOADING
    return spec


async def load(host: LocalEngineHost, redis_spec: SpecFactory, rdb: Path) -> NodeSpec:
    """A fresh node that starts from a copy of ``rdb``."""
    spec = redis_spec("loaded")
    spec.node_dir.mkdir(parents=True)
    shutil.copyfile(rdb, spec.node_dir / "dump.rdb")
    return await start(host, spec)


async def start_slow_save(client: aioredis.Redis, rewrite_aof: bool = False) -> None:
    """Start a save (or AOF rewrite) of 200 keys that takes about 0.4 s, saves after it fast."""
    await client.mset({f"filler:{i}": i for i in range(200)})
    await client.config_set("rdb-key-save-delay", 2000)
    await (client.bgrewriteaof() if rewrite_aof else client.bgsave())
    await client.config_set("rdb-key-save-delay", 0)


async def persistence(client: aioredis.Redis) -> dict[str, int]:
    info = await client.info("persistence")
    return {key: int(info[key]) for key in ("rdb_saves", "rdb_bgsave_in_progress")}


async def test_capture_writes_the_dataset_to_dump_rdb(
    host: LocalEngineHost, redis_spec: SpecFactory, connect: ClientFactory
) -> None:
    node = await start(host, redis_spec())
    client = connect(node)
    await client.mset({f"key:{i}": i for i in range(1000)})
    await client.hset("hash", mapping={"a": "1", "b": "2"})

    rdb = await capture_rdb(node.address, node.port, node.node_dir, TIMEOUT)

    assert rdb == node.node_dir / "dump.rdb"
    assert rdb.read_bytes().startswith(b"REDIS0010")
    loaded = connect(await load(host, redis_spec, rdb))
    assert await loaded.dbsize() == 1001
    assert await loaded.get("key:999") == "999"
    assert await loaded.hgetall("hash") == {"a": "1", "b": "2"}


async def test_a_save_running_at_the_call_is_not_taken_for_the_capture(
    host: LocalEngineHost, redis_spec: SpecFactory, connect: ClientFactory
) -> None:
    node = await start(host, redis_spec())
    client = connect(node)
    await start_slow_save(client)
    await client.set("written-during-the-old-save", "1")
    assert await persistence(client) == {"rdb_saves": 1, "rdb_bgsave_in_progress": 1}

    rdb = await capture_rdb(node.address, node.port, node.node_dir, TIMEOUT)

    # The old save finished first (it does not have the key), then ours ran.
    assert await persistence(client) == {"rdb_saves": 2, "rdb_bgsave_in_progress": 0}
    loaded = connect(await load(host, redis_spec, rdb))
    assert await loaded.get("written-during-the-old-save") == "1"


async def test_capture_waits_for_an_aof_rewrite_then_saves(
    host: LocalEngineHost, redis_spec: SpecFactory, connect: ClientFactory
) -> None:
    node = await start(host, redis_spec())
    client = connect(node)
    await start_slow_save(client, rewrite_aof=True)
    await client.set("written-during-the-rewrite", "1")
    assert (await client.info("persistence"))["aof_rewrite_in_progress"] == 1

    rdb = await capture_rdb(node.address, node.port, node.node_dir, TIMEOUT)

    assert (await client.info("persistence"))["aof_rewrite_in_progress"] == 0
    loaded = connect(await load(host, redis_spec, rdb))
    assert await loaded.get("written-during-the-rewrite") == "1"


async def test_capture_on_a_replica(
    host: LocalEngineHost, redis_spec: SpecFactory, connect: ClientFactory
) -> None:
    primary = await start(host, redis_spec("primary"))
    replica = await start(host, redis_spec("replica"))
    await connect(primary).mset({f"key:{i}": i for i in range(100)})
    await make_replica(replica.address, replica.port, primary.address, primary.port)
    assert await connect(primary).wait(1, 2000) == 1

    rdb = await capture_rdb(replica.address, replica.port, replica.node_dir, TIMEOUT)

    seen = await replication_info(replica.address, replica.port)
    assert seen is not None and seen.role == "replica"
    assert rdb == replica.node_dir / "dump.rdb"
    loaded = connect(await load(host, redis_spec, rdb))
    assert await loaded.dbsize() == 100


async def test_capture_gives_up_at_the_timeout(
    host: LocalEngineHost, redis_spec: SpecFactory, connect: ClientFactory
) -> None:
    node = await start(host, redis_spec())
    client = connect(node)
    await client.mset({f"key:{i}": i for i in range(200)})
    await client.config_set("rdb-key-save-delay", 100_000)  # 20 s for 200 keys

    with pytest.raises(EngineError, match=r"within 0\.3s"):
        await capture_rdb(node.address, node.port, node.node_dir, 0.3)


async def test_a_failed_save_raises(
    host: LocalEngineHost, redis_spec: SpecFactory, connect: ClientFactory
) -> None:
    node = await start(host, redis_spec())
    await connect(node).set("key", "value")
    # Redis renames its temporary file onto dump.rdb, which fails on a directory.
    (node.node_dir / "dump.rdb" / "blocker").mkdir(parents=True)

    with pytest.raises(EngineError, match=r"BGSAVE .* failed; see .*engine\.log"):
        await capture_rdb(node.address, node.port, node.node_dir, TIMEOUT)


async def test_an_unreachable_node_raises(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="failed"):
        await capture_rdb(new_address(), 6379, tmp_path, TIMEOUT)
