"""The Memcached configuration endpoint (auto discovery), as clients see it."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import socket
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path

import pytest
from engine_addresses import new_address
from engine_helpers import eventually
from pymemcache.client.base import Client

from cacheyard.engines.discovery import (
    DiscoverySpec,
    config_get_cluster_reply,
    legacy_get_reply,
    write_discovery_config,
)
from cacheyard.engines.host import LocalEngineHost
from cacheyard.engines.spec import NodeSpec

SpecFactory = Callable[..., NodeSpec]


def node_entry(spec: NodeSpec, index: int) -> tuple[str, str, int]:
    return (f"mc.abc123.{index:04d}.use1.cache.local", spec.address, spec.port)


def read_reply(sock: socket.socket, header: bytes) -> tuple[int, list[str]]:
    """Parse as AWS's cluster client does: header, <n> bytes, CRLF, END."""
    stream = sock.makefile("rb")
    line = stream.readline()
    assert line.startswith(header + b" 0 ") and line.endswith(b"\r\n")
    size = int(line.split()[-1])
    body = stream.read(size)
    assert stream.read(2) == b"\r\n"
    assert stream.readline() == b"END\r\n"
    version_line, nodes_line, rest = body.decode().split("\n")
    assert rest == ""
    return int(version_line), nodes_line.split(" ")


def ask(endpoint: DiscoverySpec, request: bytes, header: bytes) -> tuple[int, list[str]]:
    with socket.create_connection((endpoint.address, endpoint.port), timeout=2) as sock:
        sock.sendall(request)
        return read_reply(sock, header)


def test_reply_format_counts_the_body_bytes() -> None:
    spec = DiscoverySpec(
        Path("/x"), "127.0.0.1", 11211, 12, (("a.cache", "10.0.0.1", 11211), ("b", "10.0.0.2", 1))
    )
    body = b"12\na.cache|10.0.0.1|11211 b|10.0.0.2|1\n"
    assert config_get_cluster_reply(spec) == b"CONFIG cluster 0 %d\r\n%s\r\nEND\r\n" % (
        len(body),
        body,
    )
    assert legacy_get_reply(spec) == b"VALUE AmazonElastiCache:cluster 0 %d\r\n%s\r\nEND\r\n" % (
        len(body),
        body,
    )
    with pytest.raises(ValueError):
        DiscoverySpec(Path("/x"), "127.0.0.1", 11211, 1, (("bad host", "10.0.0.1", 1),))


@pytest.fixture
async def cluster(
    host: LocalEngineHost, tmp_path: Path, memcached_spec: SpecFactory
) -> AsyncIterator[tuple[list[NodeSpec], DiscoverySpec]]:
    nodes = [memcached_spec(f"memcached-{i}") for i in range(1, 6)]
    for node in nodes:
        host.start(node)
    for node in nodes:
        await eventually(partial(host.probe, node))
    endpoint = DiscoverySpec(
        node_dir=tmp_path / "config-endpoint",
        address=new_address(),
        port=11211,
        version=1,
        nodes=tuple(node_entry(node, i) for i, node in enumerate(nodes[:3], start=1)),
    )
    host.start_discovery(endpoint)
    await eventually(lambda: host.probe_discovery(endpoint))
    yield nodes, endpoint


@pytest.mark.timeout(15)
async def test_config_get_cluster_follows_the_cluster_map(
    cluster: tuple[list[NodeSpec], DiscoverySpec],
) -> None:
    nodes, endpoint = cluster
    expected = [f"{h}|{ip}|{port}" for h, ip, port in endpoint.nodes]
    assert ask(endpoint, b"config get cluster\r\n", b"CONFIG cluster") == (1, expected)
    legacy = ask(endpoint, b"get AmazonElastiCache:cluster\r\n", b"VALUE AmazonElastiCache:cluster")
    assert legacy == (1, expected)

    grown = dataclasses.replace(
        endpoint,
        version=2,
        nodes=tuple(node_entry(node, i) for i, node in enumerate(nodes, start=1)),
    )
    write_discovery_config(grown)
    version, entries = ask(grown, b"config get cluster\r\n", b"CONFIG cluster")
    assert version == 2
    assert entries == [f"{h}|{ip}|{port}" for h, ip, port in grown.nodes]
    assert len(entries) == 5


@pytest.mark.timeout(15)
async def test_cache_commands_reach_a_node(
    cluster: tuple[list[NodeSpec], DiscoverySpec],
) -> None:
    nodes, endpoint = cluster
    through_endpoint = Client((endpoint.address, endpoint.port), connect_timeout=1, timeout=2)
    first_node = Client((nodes[0].address, nodes[0].port), connect_timeout=1, timeout=2)
    try:
        assert through_endpoint.set("session:1", b"alice", noreply=False)
        assert through_endpoint.get("session:1") == b"alice"
        assert first_node.get("session:1") == b"alice"
    finally:
        through_endpoint.close()
        first_node.close()


@pytest.mark.timeout(15)
async def test_version_then_discovery_on_one_connection(
    cluster: tuple[list[NodeSpec], DiscoverySpec],
) -> None:
    _, endpoint = cluster
    with socket.create_connection((endpoint.address, endpoint.port), timeout=2) as sock:
        sock.sendall(b"version\r\n")
        stream = sock.makefile("rb")
        assert stream.readline().startswith(b"VERSION 1.6.")
        sock.sendall(b"config get cluster\r\n")
        assert read_reply(sock, b"CONFIG cluster")[0] == 1
        sock.sendall(b"set k 0 0 2\r\nhi\r\nget k\r\n")
        assert stream.readline() == b"STORED\r\n"
        assert stream.readline() == b"VALUE k 0 2\r\n"


@pytest.mark.timeout(15)
async def test_relay_skips_a_dead_node(
    host: LocalEngineHost, cluster: tuple[list[NodeSpec], DiscoverySpec]
) -> None:
    nodes, endpoint = cluster
    await host.stop(nodes[0].node_dir)
    mc = Client((endpoint.address, endpoint.port), connect_timeout=1, timeout=2)
    second = Client((nodes[1].address, nodes[1].port), connect_timeout=1, timeout=2)
    try:
        assert mc.set("k", b"v", noreply=False)
        assert second.get("k") == b"v"
    finally:
        mc.close()
        second.close()


@pytest.mark.timeout(15)
@pytest.mark.filterwarnings("ignore:subprocess .* is still running:ResourceWarning")
async def test_endpoint_outlives_the_host_that_started_it(
    tmp_path: Path, memcached_spec: SpecFactory
) -> None:
    node = memcached_spec()
    endpoint = DiscoverySpec(
        tmp_path / "config-endpoint", new_address(), 11211, 7, (node_entry(node, 1),)
    )
    creator = LocalEngineHost()
    started = creator.start_discovery(endpoint)
    del creator
    gc.collect()

    adopter = LocalEngineHost()
    try:
        await eventually(lambda: adopter.probe_discovery(endpoint))
        assert adopter.find(endpoint.node_dir) == started
        assert adopter.find_all(tmp_path) == {endpoint.node_dir: started}
        assert await asyncio.to_thread(ask, endpoint, b"config get cluster\r\n", b"CONFIG cluster")
    finally:
        await adopter.stop(endpoint.node_dir)
    assert adopter.find(endpoint.node_dir) is None
