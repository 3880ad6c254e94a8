"""redis-server nodes: start, probe, adoption by a new host, stop and kill."""

from __future__ import annotations

import dataclasses
import signal
import socket
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis
from engine_helpers import eventually

from cacheyard.engines import procfs
from cacheyard.engines.errors import EngineStartError
from cacheyard.engines.host import LocalEngineHost
from cacheyard.engines.spec import NodeSpec

SpecFactory = Callable[..., NodeSpec]


def client(spec: NodeSpec) -> aioredis.Redis:
    return aioredis.Redis(host=spec.address, port=spec.port, decode_responses=True)


@pytest.mark.timeout(10)
async def test_start_probe_set_get_and_find(host: LocalEngineHost, redis_spec: SpecFactory) -> None:
    spec = redis_spec()
    started = host.start(spec)
    await eventually(lambda: host.probe(spec))
    async with client(spec) as r:
        assert await r.set("greeting", "hello")
        assert await r.get("greeting") == "hello"
        assert await r.config_get("maxmemory") == {"maxmemory": str(64 * 1024 * 1024)}
        assert (await r.config_get("maxmemory-policy"))["maxmemory-policy"] == "volatile-lru"
        assert (await r.config_get("repl-diskless-sync-delay"))["repl-diskless-sync-delay"] == "0"
        assert (await r.config_get("dir"))["dir"] == str(spec.node_dir)
        assert (await r.config_get("save"))["save"] == ""
    assert host.find(spec.node_dir) == started
    assert procfs.cwd(started.pid) == str(spec.node_dir)
    assert (spec.node_dir / "engine.log").stat().st_size > 0


@pytest.mark.timeout(10)
async def test_restarted_control_plane_adopts_and_stops(
    host: LocalEngineHost, redis_spec: SpecFactory
) -> None:
    spec = redis_spec()
    started = host.start(spec)
    await eventually(lambda: host.probe(spec))

    restarted = LocalEngineHost()  # knows nothing of the processes it finds
    assert restarted.find(spec.node_dir) == started
    assert restarted.find_all(spec.node_dir.parent) == {spec.node_dir: started}
    await restarted.stop(spec.node_dir)
    assert restarted.find(spec.node_dir) is None
    assert host.find(spec.node_dir) is None
    assert not await host.probe(spec)


@pytest.mark.timeout(10)
async def test_stop_is_idempotent(host: LocalEngineHost, redis_spec: SpecFactory) -> None:
    spec = redis_spec()
    await host.stop(spec.node_dir)  # never started, no directory
    host.start(spec)
    await host.stop(spec.node_dir)
    await host.stop(spec.node_dir)
    assert host.find(spec.node_dir) is None


@pytest.mark.timeout(10)
async def test_sigkill_leaves_a_zombie_that_does_not_count(
    host: LocalEngineHost, redis_spec: SpecFactory
) -> None:
    spec = redis_spec()
    first = host.start(spec)
    await eventually(lambda: host.probe(spec))

    other = LocalEngineHost()  # not the parent: cannot reap, so a zombie stays
    assert other.kill(spec.node_dir, signal.SIGKILL)

    async def zombie() -> bool:
        stat = procfs.read_stat(first.pid)
        return stat is not None and stat.state == "Z" and not procfs.is_live(first.pid, stat)

    await eventually(zombie)
    assert other.find(spec.node_dir) is None
    assert other.find_all(spec.node_dir.parent) == {}

    async def reaped_by_its_parent() -> bool:
        return host.find(spec.node_dir) is None and procfs.read_stat(first.pid) is None

    await eventually(reaped_by_its_parent)

    second = host.start(spec)  # same address, same directory
    assert second.pid != first.pid
    await eventually(lambda: host.probe(spec))


@pytest.mark.timeout(10)
async def test_stop_escalates_to_sigkill(host: LocalEngineHost, redis_spec: SpecFactory) -> None:
    spec = redis_spec()
    host.start(spec)
    await eventually(lambda: host.probe(spec))
    assert host.kill(spec.node_dir, signal.SIGSTOP)  # SIGTERM stays pending
    assert not await host.probe(spec, timeout=0.2)  # hung: only the timeout tells
    await host.stop(spec.node_dir, grace=0.3)
    assert host.find(spec.node_dir) is None


@pytest.mark.timeout(10)
async def test_loading_counts_as_not_ready(host: LocalEngineHost, redis_spec: SpecFactory) -> None:
    spec = redis_spec()
    host.start(spec)
    await eventually(lambda: host.probe(spec))
    async with client(spec) as r:
        await r.mset({f"key:{i}": "v" * 100 for i in range(400)})
        assert await r.save()
    await host.stop(spec.node_dir)

    # Debug settings slow loading to 400 x 2.5 ms (about one second) and
    # answer clients every kilobyte loaded, as a large dataset would.
    debug = {"key-load-delay": "2500", "loading-process-events-interval-bytes": "1024"}
    slow = dataclasses.replace(spec, redis_config=debug)
    host.start(slow)  # returns once bound, long before the data is loaded
    assert not await host.probe(slow)
    with socket.create_connection((slow.address, slow.port), timeout=1) as raw:
        raw.sendall(b"PING\r\n")
        assert raw.recv(100).startswith(b"-LOADING")
    await eventually(lambda: host.probe(slow))
    async with client(slow) as r:
        assert await r.dbsize() == 400


@pytest.mark.timeout(15)
async def test_find_returns_the_main_process_not_its_bgsave_fork(
    host: LocalEngineHost, redis_spec: SpecFactory
) -> None:
    # Saving is slowed to 10 ms per key: the fork lives for seconds.
    spec = redis_spec(redis_config={"rdb-key-save-delay": "10000"})
    main = host.start(spec)
    await eventually(lambda: host.probe(spec))
    async with client(spec) as r:
        await r.mset({f"key:{i}": i for i in range(500)})
        await r.bgsave()

    async def forked() -> bool:
        return any(
            procfs.cwd(pid) == str(spec.node_dir) and pid != main.pid for pid in procfs.pids()
        )

    await eventually(forked)
    assert LocalEngineHost().find(spec.node_dir) == main
    assert LocalEngineHost().find_all(spec.node_dir.parent) == {spec.node_dir: main}
    await host.stop(spec.node_dir)

    async def nothing_left() -> bool:
        return not any(procfs.cwd(pid) == str(spec.node_dir) for pid in procfs.pids())

    await eventually(nothing_left)


@pytest.mark.timeout(10)
def test_start_fails_when_the_address_is_taken(
    host: LocalEngineHost, redis_spec: SpecFactory
) -> None:
    spec = redis_spec()
    with socket.socket() as holder:
        holder.bind((spec.address, spec.port))
        holder.listen()
        with pytest.raises(EngineStartError, match="in use"):
            host.start(spec)
    assert host.find(spec.node_dir) is None


@pytest.mark.timeout(10)
def test_start_fails_on_a_refused_configuration(
    host: LocalEngineHost, redis_spec: SpecFactory
) -> None:
    spec = redis_spec(redis_config={"maxmemory-policy": "sometimes"})
    with pytest.raises(EngineStartError, match="maxmemory-policy"):
        host.start(spec)


@pytest.mark.timeout(10)
def test_start_fails_without_the_binary(redis_spec: SpecFactory) -> None:
    missing = LocalEngineHost(redis_server="/nonexistent/redis-server")
    with pytest.raises(EngineStartError, match="cannot run"):
        missing.start(redis_spec())


@pytest.mark.timeout(10)
async def test_start_refuses_a_second_process_for_the_node(
    host: LocalEngineHost, redis_spec: SpecFactory
) -> None:
    spec = redis_spec()
    running = host.start(spec)
    with pytest.raises(EngineStartError, match="already runs"):
        LocalEngineHost().start(spec)
    assert host.find(spec.node_dir) == running


@pytest.mark.timeout(10)
async def test_parameter_overrides_reach_the_engine(
    host: LocalEngineHost, redis_spec: SpecFactory
) -> None:
    spec = redis_spec(redis_config={"maxmemory-policy": "allkeys-lru", "save": "900 1 300 10"})
    host.start(spec)
    await eventually(lambda: host.probe(spec))
    async with client(spec) as r:
        assert (await r.config_get("maxmemory-policy"))["maxmemory-policy"] == "allkeys-lru"
        assert (await r.config_get("save"))["save"] == "900 1 300 10"


def test_identity_directives_cannot_be_overridden(redis_spec: SpecFactory) -> None:
    with pytest.raises(ValueError, match="managed by the engine host"):
        redis_spec(redis_config={"daemonize": "yes"})
    with pytest.raises(ValueError, match="invalid redis directive"):
        redis_spec(redis_config={"save\nbind": "0.0.0.0"})
