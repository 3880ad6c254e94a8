"""memcached nodes: start with the spec's memory and threads, adopt, kill, restart."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable

import pytest
from engine_helpers import eventually
from pymemcache.client.base import Client

from cacheyard.engines.errors import EngineStartError
from cacheyard.engines.host import LocalEngineHost
from cacheyard.engines.spec import NodeSpec

SpecFactory = Callable[..., NodeSpec]


def client(spec: NodeSpec) -> Client:
    return Client((spec.address, spec.port), connect_timeout=1, timeout=1)


@pytest.mark.timeout(10)
async def test_start_probe_set_get_and_settings(
    host: LocalEngineHost, memcached_spec: SpecFactory
) -> None:
    spec = memcached_spec(max_memory_mb=48, threads=3)
    started = host.start(spec)
    await eventually(lambda: host.probe(spec))
    mc = client(spec)
    try:
        assert mc.set("greeting", b"hello", noreply=False)
        assert mc.get("greeting") == b"hello"
        settings = mc.stats("settings")
    finally:
        mc.close()
    assert settings[b"maxbytes"] == 48 * 1024 * 1024
    assert settings[b"num_threads"] == 3
    assert settings[b"maxconns"] == 4096
    assert settings[b"udpport"] == 0
    assert host.find(spec.node_dir) == started


@pytest.mark.timeout(10)
async def test_restarted_control_plane_adopts_and_stops(
    host: LocalEngineHost, memcached_spec: SpecFactory
) -> None:
    spec = memcached_spec()
    started = host.start(spec)
    await eventually(lambda: host.probe(spec))
    restarted = LocalEngineHost()
    assert restarted.find(spec.node_dir) == started
    await restarted.stop(spec.node_dir)
    await restarted.stop(spec.node_dir)
    assert host.find(spec.node_dir) is None
    assert not await host.probe(spec)


@pytest.mark.timeout(10)
async def test_sigkill_then_start_again_on_the_same_address(
    host: LocalEngineHost, memcached_spec: SpecFactory
) -> None:
    spec = memcached_spec()
    first = host.start(spec)
    await eventually(lambda: host.probe(spec))
    assert LocalEngineHost().kill(spec.node_dir, signal.SIGKILL)

    async def gone() -> bool:
        return LocalEngineHost().find(spec.node_dir) is None

    await eventually(gone)
    second = host.start(spec)
    assert second != first
    await eventually(lambda: host.probe(spec))


@pytest.mark.timeout(10)
def test_start_fails_when_the_address_is_taken(
    host: LocalEngineHost, memcached_spec: SpecFactory
) -> None:
    spec = memcached_spec()
    with socket.socket() as holder:
        holder.bind((spec.address, spec.port))
        holder.listen()
        with pytest.raises(EngineStartError, match="in use"):
            host.start(spec)
    assert host.find(spec.node_dir) is None


@pytest.mark.timeout(10)
async def test_a_second_node_cannot_take_a_running_nodes_address(
    host: LocalEngineHost, memcached_spec: SpecFactory
) -> None:
    first = memcached_spec("memcached-1")
    host.start(first)
    clash = memcached_spec("memcached-2", address=first.address)
    with pytest.raises(EngineStartError, match="status 71"):
        host.start(clash)
    assert host.find(clash.node_dir) is None
    assert await host.probe(first)
