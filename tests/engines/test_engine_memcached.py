"""memcached nodes: start with the spec's memory and threads, adopt, kill, restart."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from engine_helpers import eventually
from pymemcache.client.base import Client

from cacheyard.domain.parameters import MEMCACHED_PARAMETERS
from cacheyard.engines.errors import EngineStartError
from cacheyard.engines.host import LocalEngineHost
from cacheyard.engines.probes import KeptMemcachedProbes
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


@pytest.mark.timeout(10)
async def test_parameters_reach_memcached_as_flags(
    host: LocalEngineHost, memcached_spec: SpecFactory
) -> None:
    options = {
        "backlog_queue_limit": "512",
        "binding_protocol": "ascii",
        "cas_disabled": "1",
        "chunk_size": "96",
        "chunk_size_growth_factor": "1.5",
        "disable_flush_all": "1",
        "error_on_memory_exhausted": "1",
        "hash_algorithm": "jenkins",
        "idle_timeout": "30",
        "lru_crawler": "0",
        "lru_maintainer": "0",
        "max_item_size": "2097152",
        "max_simultaneous_connections": "100",
        "maxconns_fast": "0",
        "requests_per_event": "10",
        "slab_automove": "2",
        "slab_reassign": "0",
        "track_sizes": "1",
    }
    assert set(options) == set(MEMCACHED_PARAMETERS)
    spec = memcached_spec(memcached_options=options)
    host.start(spec)
    await eventually(lambda: host.probe(spec))
    mc = client(spec)
    try:
        reply = mc.raw_command("stats settings", "END\r\n").decode()
    finally:
        mc.close()
    settings = dict(
        line.split(" ", 2)[1:] for line in reply.splitlines() if line.startswith("STAT")
    )
    running = {
        name: option.stats_words.get(settings[option.stats_key], settings[option.stats_key])
        for name, option in MEMCACHED_PARAMETERS.items()
    }
    assert running == {**options, "chunk_size_growth_factor": "1.50"}  # memcached's %.2f


@pytest.mark.parametrize(
    "options",
    [{"max_memory": "64"}, {"idle_timeout": "30,ext_path=/tmp/x"}, {"max_item_size": "1m -d"}],
)
def test_only_known_parameters_of_one_word_are_options(
    memcached_spec: SpecFactory, options: dict[str, str]
) -> None:
    with pytest.raises(ValueError, match="memcached parameter"):
        memcached_spec(memcached_options=options)


def test_memcached_options_are_for_memcached(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="for memcached nodes"):
        NodeSpec("redis", tmp_path, "127.0.0.1", 6379, 64, memcached_options={"chunk_size": "96"})


async def test_kept_probes_reuse_one_connection_and_find_a_restarted_node(
    host: LocalEngineHost, memcached_spec: Callable[..., NodeSpec]
) -> None:
    spec = memcached_spec()
    host.start(spec)
    await eventually(lambda: host.probe(spec))
    probes = KeptMemcachedProbes()
    client = Client((spec.address, spec.port), timeout=5)
    try:
        assert await probes.version(spec.address, spec.port, 1.0)
        before = int(client.stats()[b"total_connections"])
        for _ in range(20):
            assert await probes.version(spec.address, spec.port, 1.0)
        assert int(client.stats()[b"total_connections"]) == before  # no new connection
        await host.stop(spec.node_dir, grace=0)
        assert not await probes.version(spec.address, spec.port, 0.5)
        host.start(spec)
        await eventually(lambda: probes.version(spec.address, spec.port, 0.5))
    finally:
        client.close()
        probes.forget_all_but(set())
