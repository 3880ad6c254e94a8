"""The asyncio Memcached auto discovery client, against clusters created through Cacheyard.

The module creates a 2-node cluster of its own (the session's ``lib-mc`` keeps
its node count for test_client_memcached.py). Round trips, agreement with the
sync client (same node for every key, each reading what the other wrote) and
a node added and removed with ModifyCacheCluster run on real memcached; the
failures a real node does not produce on demand (silence, a refused
connection, an error answer) come from small local servers.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from pymemcache.client.base import Client as PlainClient
from service_helpers import describe, wait_available, wait_for

from cacheyard.client.memcached import AutoDiscoveryClient, DiscoveryError, parse_cluster_config
from cacheyard.client.memcached_async import (
    AsyncAutoDiscoveryClient,
    InvalidKeyError,
    MemcachedError,
    NodeError,
    NodeTimeoutError,
    ServerError,
    check_key,
)

pytestmark = pytest.mark.timeout(60)

CLUSTER = "lib-mc-async"


def reply(body: bytes) -> bytes:
    return b"CONFIG cluster 0 %d\r\n%s\r\nEND\r\n" % (len(body), body)


# -- a cluster of this module's own --------------------------------------------------


@pytest.fixture(scope="module")
def cluster(caches: Any) -> Iterator[str]:
    """The configuration endpoint of a 2-node cluster only this module uses."""
    ec = caches.service.client()
    ec.create_cache_cluster(
        CacheClusterId=CLUSTER, Engine="memcached", CacheNodeType="cache.t3.micro", NumCacheNodes=2
    )
    try:
        yield wait_available(ec, CLUSTER)["ConfigurationEndpoint"]["Address"]
    finally:
        ec.delete_cache_cluster(CacheClusterId=CLUSTER)


def node_addresses(caches: Any) -> set[tuple[str, int]]:
    found = describe(caches.service.client(), CLUSTER)
    return {
        (n["Endpoint"]["Address"], int(n["Endpoint"]["Port"]))
        for n in found["CacheNodes"]
        if n["CacheNodeStatus"] == "available"
    }


@pytest.fixture
async def client(cluster: str) -> AsyncIterator[AsyncAutoDiscoveryClient]:
    async with AsyncAutoDiscoveryClient(cluster, refresh_interval=0) as found:
        yield found


async def until(condition: Callable[[], Any], within: float, interval: float = 0.05) -> None:
    """Poll a blocking ``condition`` in a thread, so the event loop (and its tasks) runs."""
    await asyncio.to_thread(wait_for, condition, within, interval)


# -- on real memcached ---------------------------------------------------------------


async def test_round_trip_spread_over_every_node(
    caches: Any, client: AsyncAutoDiscoveryClient
) -> None:
    assert {node.address for node in client.nodes} == node_addresses(caches)
    keys = [f"spread:{n}" for n in range(200)]
    assert all(await asyncio.gather(*(client.set(key, key) for key in keys)))
    assert {client.node_for(key) for key in keys} == node_addresses(caches)
    assert await client.get_many(keys) == {key: key.encode() for key in keys}
    assert await client.get_many([*keys[:3], "spread:missing", keys[0]]) == {
        key: key.encode() for key in keys[:3]
    }
    assert await client.get_many([]) == {}

    assert await client.get("spread:0") == b"spread:0"
    assert await client.delete("spread:0") is True
    assert await client.delete("spread:0") is False
    assert await client.get("spread:0") is None
    assert await client.get("spread:0", b"default") == b"default"

    assert await client.set("text", "café ☕") and await client.get("text") == "café ☕".encode()
    assert await client.set("binary", b"\x00\r\nEND\r\n") and await client.get("binary") == (
        b"\x00\r\nEND\r\n"
    )
    assert await client.set("empty", b"") and await client.get("empty") == b""
    assert await client.set("gone", b"x", expire=-1)  # memcached: a past expiry
    assert await client.get("gone") is None
    assert await client.set("kept", b"x", expire=300) and await client.get("kept") == b"x"

    versions = await client.server_versions()
    assert set(versions) == node_addresses(caches)
    assert all(v[:1].isdigit() for v in versions.values())
    assert await client.refresh() is False  # nothing changed


async def test_pool_is_bounded_and_reused(cluster: str) -> None:
    async with AsyncAutoDiscoveryClient(cluster, refresh_interval=0, max_pool_size=2) as client:
        assert client.open_connections() == {node.address: 0 for node in client.nodes}  # lazy
        keys = [f"pool:{n}" for n in range(40)]
        await asyncio.gather(*(client.set(key, key) for key in keys))
        await asyncio.gather(*(client.get(key) for key in keys * 3))
        opened = client.open_connections()
        assert all(1 <= count <= 2 for count in opened.values()), opened
        for key in keys:  # one at a time: the pooled connections serve, none is added
            assert await client.get(key) == key.encode()
        assert client.open_connections() == opened


async def test_sync_and_async_put_a_key_on_the_same_node(caches: Any, cluster: str) -> None:
    keys = [f"both:{n}" for n in range(300)]
    with AutoDiscoveryClient(cluster, refresh_interval=0) as sync:
        async with AsyncAutoDiscoveryClient(cluster, refresh_interval=0) as aio:
            assert [aio.node_for(key) for key in keys] == [sync.node_for(key) for key in keys]
            assert {aio.node_for(key) for key in keys} == node_addresses(caches)

            by_sync, by_async = keys[::2], keys[1::2]
            for key in by_sync:
                assert sync.set(key, f"sync {key}")
            for key in by_async:
                assert await aio.set(key, f"async {key}".encode())
            expected = {key: f"sync {key}".encode() for key in by_sync} | {
                key: f"async {key}".encode() for key in by_async
            }
            assert await aio.get_many(keys) == expected
            assert sync.get_many(keys) == expected
            assert sync.get(by_async[0]) == await aio.get(by_async[0])

            # and each key really is on that node, asked directly
            for key in keys[:20]:
                node = PlainClient(aio.node_for(key), connect_timeout=2, timeout=2)
                try:
                    assert node.get(key) == expected[key]
                finally:
                    node.close()

            assert await aio.delete(by_sync[0]) and sync.get(by_sync[0]) is None
            assert sync.delete(by_async[0]) and await aio.get(by_async[0]) is None


async def test_a_refused_store_is_a_server_error(client: AsyncAutoDiscoveryClient) -> None:
    with pytest.raises(ServerError, match="SERVER_ERROR") as raised:
        await client.set("huge", b"x" * (2 << 20))  # above memcached's 1 MiB item limit
    assert raised.value.address == client.node_for("huge")
    assert client.open_connections()[client.node_for("huge")] == 0  # that stream was dropped
    assert await client.set("huge", b"fits") and await client.get("huge") == b"fits"


async def test_follows_an_added_and_a_removed_node(caches: Any, cluster: str) -> None:
    """The cluster ends as it began: nodes 0001 and 0002, so test order does not matter."""
    ec = caches.service.client()

    def available_with(count: int) -> bool:
        found = describe(ec, CLUSTER)
        nodes = found.get("CacheNodes", [])
        return (
            found["CacheClusterStatus"] == "available"
            and len(nodes) == count
            and all(n["CacheNodeStatus"] == "available" for n in nodes)
        )

    # one never asked (its background task must follow alone), one refreshed by hand
    background = await AsyncAutoDiscoveryClient.connect(cluster, refresh_interval=0.05)
    manual = await AsyncAutoDiscoveryClient.connect(cluster, refresh_interval=0)
    try:
        first_version = manual.version
        before = {node.address for node in manual.nodes}
        assert len(before) == 2
        keys = [f"grow:{n}" for n in range(300)]
        await asyncio.gather(*(manual.set(key, key) for key in keys))
        await manual.get_many(keys)  # a pooled connection to each node

        ec.modify_cache_cluster(CacheClusterId=CLUSTER, NumCacheNodes=3, ApplyImmediately=True)
        await until(lambda: available_with(3), within=40, interval=0.1)
        await until(lambda: len(background.nodes) == 3, within=10)
        assert background.version > first_version
        assert await manual.refresh() is True
        assert manual.version == background.version
        assert await manual.refresh() is False
        assert {node.address for node in manual.nodes} == node_addresses(caches)

        # rendezvous hashing: the keys that stayed on their node still hit
        (added,) = {node.address for node in manual.nodes} - before
        stayed = [key for key in keys if manual.node_for(key) != added]
        assert 0 < len(stayed) < len(keys)  # the new node took a share
        assert await background.get_many(stayed) == {key: key.encode() for key in stayed}
        fresh = [f"grown:{n}" for n in range(300)]
        await asyncio.gather(*(background.set(key, key) for key in fresh))
        assert await manual.get_many(fresh) == {key: key.encode() for key in fresh}
        assert {manual.node_for(key) for key in fresh} == node_addresses(caches)
        assert manual.open_connections()[added] >= 1

        grown_version = background.version
        ec.modify_cache_cluster(
            CacheClusterId=CLUSTER,
            NumCacheNodes=2,
            CacheNodeIdsToRemove=["0003"],
            ApplyImmediately=True,
        )
        await until(lambda: available_with(2), within=40, interval=0.1)
        await until(lambda: background.version > grown_version, within=10)
        assert {node.address for node in background.nodes} == before == node_addresses(caches)
        assert await manual.refresh() is True
        assert set(manual.open_connections()) == before  # the removed node's pool is closed
        assert await manual.set("shrunk", "yes") and await background.get("shrunk") == b"yes"
    finally:
        await background.aclose()
        await manual.aclose()


# -- failures, from local stand-ins ---------------------------------------------------


class FakeCluster:
    """A configuration endpoint and nodes that misbehave on purpose, on 127.0.0.1."""

    def __init__(self) -> None:
        self.version = 1
        self.nodes: list[tuple[str, int]] = []
        self.endpoint_answer: bytes | None = None  # None: the configuration
        self.servers: list[asyncio.Server] = []
        self.config_port = 0
        self.asked = 0  # configuration requests served

    async def serve(self, handler: Any) -> tuple[str, int]:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        self.servers.append(server)
        return "127.0.0.1", server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        self.config_port = (await self.serve(self._config))[1]

    async def _config(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        self.asked += 1
        body = b"%d\n%s\n" % (
            self.version,
            b" ".join(b"node|%s|%d" % (host.encode(), port) for host, port in self.nodes),
        )
        writer.write(reply(body) if self.endpoint_answer is None else self.endpoint_answer)
        await writer.drain()
        writer.close()

    async def silent_node(self) -> tuple[str, int]:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await reader.read(65536):
                pass  # reads everything, answers nothing
            writer.close()

        return await self.serve(handler)

    async def failing_node(self, answer: bytes) -> tuple[str, int]:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await reader.readline():
                writer.write(answer)
                await writer.drain()
            writer.close()

        return await self.serve(handler)

    async def stop_endpoint(self) -> None:
        self.servers[0].close()
        await self.servers[0].wait_closed()

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for server in self.servers:
            await server.wait_closed()


def refused_address() -> tuple[str, int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return "127.0.0.1", int(sock.getsockname()[1])  # nothing listens once closed


def key_on(client: AsyncAutoDiscoveryClient, node: tuple[str, int], prefix: str = "k") -> str:
    return next(f"{prefix}{n}" for n in range(10_000) if client.node_for(f"{prefix}{n}") == node)


@pytest.fixture
async def fake() -> AsyncIterator[FakeCluster]:
    found = FakeCluster()
    await found.start()
    yield found
    await found.close()


async def test_node_failures_raise_naming_the_node(fake: FakeCluster) -> None:
    silent, silent_too, silent_three = [await fake.silent_node() for _ in range(3)]
    failing = await fake.failing_node(b"SERVER_ERROR out of memory storing object\r\n")
    garbled = await fake.failing_node(b"HELLO\r\n")
    refused = refused_address()
    fake.nodes = [silent, silent_too, silent_three, failing, garbled, refused]
    async with AsyncAutoDiscoveryClient(
        f"127.0.0.1:{fake.config_port}", refresh_interval=0, timeout=0.4
    ) as client:
        started = time.monotonic()
        with pytest.raises(NodeTimeoutError) as timed_out:
            await client.get(key_on(client, silent))
        assert 0.35 < time.monotonic() - started < 2
        assert timed_out.value.address == silent
        assert isinstance(timed_out.value, TimeoutError)
        assert f"127.0.0.1:{silent[1]}" in str(timed_out.value)
        assert client.open_connections()[silent] == 0  # the stream in doubt was closed

        with pytest.raises(ServerError, match="out of memory") as refused_store:
            await client.set(key_on(client, failing), b"value")
        assert refused_store.value.address == failing

        with pytest.raises(NodeError, match="unexpected answer") as garbage:
            await client.delete(key_on(client, garbled))
        assert garbage.value.address == garbled

        with pytest.raises(NodeError) as unreachable:
            await client.get(key_on(client, refused))
        assert unreachable.value.address == refused
        assert isinstance(unreachable.value.__cause__, ConnectionRefusedError)

        # a multi-node read fails as a whole, not with the failing nodes' keys missing
        keys = [key_on(client, node, prefix) for node in fake.nodes for prefix in "ab"]
        started = time.monotonic()
        with pytest.raises(NodeError) as partly:
            await client.get_many(keys)
        # three silent nodes, each given 0.4 s: asked in parallel, not one after the other
        assert time.monotonic() - started < 1.0
        assert len(getattr(partly.value, "__notes__", [])) == 5  # the other nodes' failures

        with pytest.raises(NodeError):
            await client.server_versions()


async def test_discovery_failures(fake: FakeCluster) -> None:
    fake.endpoint_answer = b"ERROR\r\n"
    with pytest.raises(DiscoveryError):
        await AsyncAutoDiscoveryClient.connect(f"127.0.0.1:{fake.config_port}")
    with pytest.raises(OSError):
        await AsyncAutoDiscoveryClient.connect("127.0.0.1", refused_address()[1], timeout=1)
    with pytest.raises(DiscoveryError):  # not ASCII: a DiscoveryError, not UnicodeDecodeError
        parse_cluster_config(reply(b"1\nn\xc3\xa9|1.2.3.4|11211\n"))


async def test_background_refresh_survives_an_unreachable_endpoint(fake: FakeCluster) -> None:
    first = await fake.failing_node(b"VERSION 1.6.0\r\n")
    second = await fake.failing_node(b"VERSION 1.6.1\r\n")
    fake.nodes = [first]
    client = await AsyncAutoDiscoveryClient.connect(
        f"127.0.0.1:{fake.config_port}", refresh_interval=0.02, timeout=0.5
    )
    try:
        assert await client.server_versions() == {first: "1.6.0"}
        fake.endpoint_answer = b"garbage\r\n"
        asked = fake.asked
        await until(lambda: fake.asked >= asked + 2, within=5)  # two refreshes got garbage
        fake.endpoint_answer = None
        fake.nodes, fake.version = [first, second], 2
        await fake.stop_endpoint()  # refused from now on
        await asyncio.sleep(0.1)
        assert client.version == 1  # the known nodes are kept
        assert client._task is not None and not client._task.done()

        restarted = await asyncio.start_server(fake._config, "127.0.0.1", fake.config_port)
        fake.servers.append(restarted)
        await until(lambda: client.version == 2, within=5)
        assert await client.server_versions() == {first: "1.6.0", second: "1.6.1"}
    finally:
        await client.aclose()


async def test_clean_shutdown(fake: FakeCluster) -> None:
    node = await fake.failing_node(b"VERSION 1.6.0\r\n")
    fake.nodes = [node]
    client = AsyncAutoDiscoveryClient(f"127.0.0.1:{fake.config_port}", refresh_interval=30)
    with pytest.raises(MemcachedError, match="not connected"):
        await client.get("k")
    async with client:
        task = client._task
        assert task is not None and not task.done()
        await client.server_versions()
        assert client.open_connections() == {node: 1}
        pool = client._pools[f"127.0.0.1:{node[1]}"]
        (conn,) = pool._open
    assert task.done() and task.cancelled()
    assert conn.writer.is_closing()
    assert client.open_connections() == {}
    with pytest.raises(MemcachedError, match="closed"):
        await client.get("k")
    with pytest.raises(MemcachedError, match="closed"):
        await client.refresh()
    await client.aclose()  # again: nothing to do


@pytest.mark.parametrize(
    "key",
    ["", "a b", "tab\there", "new\nline", "nul\x00", "del\x7f", "é", "k" * 251],
)
async def test_keys_memcached_would_refuse(fake: FakeCluster, key: str) -> None:
    with pytest.raises(InvalidKeyError):
        check_key(key)
    fake.nodes = [await fake.silent_node()]  # nothing may be sent: it would time out
    async with AsyncAutoDiscoveryClient(
        f"127.0.0.1:{fake.config_port}", refresh_interval=0, timeout=0.2
    ) as client:
        with pytest.raises(InvalidKeyError):
            await client.get(key)
        with pytest.raises(InvalidKeyError):
            await client.get_many(["fine", key])
        with pytest.raises(InvalidKeyError):
            await client.set(key, b"v")
        with pytest.raises(InvalidKeyError):
            await client.delete(key)
        assert client.open_connections() == {fake.nodes[0]: 0}


def test_keys_and_values_accepted() -> None:
    assert check_key("k" * 250) == b"k" * 250
    assert check_key("user:42|cart~") == b"user:42|cart~"
    with pytest.raises(TypeError):
        check_key(b"bytes")  # type: ignore[arg-type]


# -- TLS in transit ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_cluster(caches: Any) -> Iterator[tuple[str, str]]:
    """A 2-node TLS cluster's configuration endpoint, and the service's CA file."""
    ec = caches.service.client()
    ec.create_cache_cluster(
        CacheClusterId="lib-mc-async-tls",
        Engine="memcached",
        CacheNodeType="cache.t3.micro",
        NumCacheNodes=2,
        TransitEncryptionEnabled=True,
    )
    done = subprocess.run(
        caches.service.command("ca"), capture_output=True, text=True, timeout=30, check=True
    )
    try:
        found = wait_available(ec, "lib-mc-async-tls")
        yield found["ConfigurationEndpoint"]["Address"], done.stdout.strip()
    finally:
        ec.delete_cache_cluster(CacheClusterId="lib-mc-async-tls")


async def test_tls_with_the_ca(tls_cluster: tuple[str, str]) -> None:
    endpoint, ca = tls_cluster
    keys = [f"tls:{n}" for n in range(100)]
    client = await AsyncAutoDiscoveryClient.connect(
        endpoint, refresh_interval=0, ssl_ca_certs=ca, max_pool_size=2
    )
    try:
        assert all(await asyncio.gather(*(client.set(key, key) for key in keys)))
        assert len({client.node_for(key) for key in keys}) == 2
        assert await client.get_many(keys) == {key: key.encode() for key in keys}
        assert len(await client.server_versions()) == 2
        assert await client.refresh() is False  # discovery again, over TLS
    finally:
        # closing TLS connections does not wait on the nodes
        async with asyncio.timeout(2):
            await client.aclose()
    context = ssl.create_default_context(cafile=ca)
    async with AsyncAutoDiscoveryClient(endpoint, refresh_interval=0, ssl_context=context) as again:
        assert await again.get("tls:0") == b"tls:0"
    with pytest.raises(DiscoveryError, match="ssl_ca_certs"):
        await AsyncAutoDiscoveryClient.connect(endpoint, refresh_interval=0)
    with pytest.raises(ssl.SSLCertVerificationError):
        await AsyncAutoDiscoveryClient.connect(
            endpoint, refresh_interval=0, ssl_context=ssl.create_default_context()
        )
    with pytest.raises(ValueError, match="not both"):
        AsyncAutoDiscoveryClient(endpoint, ssl_ca_certs=ca, ssl_context=context)
