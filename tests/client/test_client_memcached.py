"""Memcached auto discovery against a cluster created through Cacheyard.

The parser is pinned on the ElastiCache wire format; the client is shown to
spread keys over every node and to pick up a node added with
ModifyCacheCluster, leaving the shared cluster as it found it.
"""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from service_helpers import describe, wait_available, wait_for

from cacheyard.client.memcached import (
    AutoDiscoveryClient,
    ClusterConfig,
    ClusterNode,
    DiscoveryError,
    fetch_cluster_config,
    parse_cluster_config,
)

pytestmark = pytest.mark.timeout(180)


def reply(body: bytes) -> bytes:
    return b"CONFIG cluster 0 %d\r\n%s\r\nEND\r\n" % (len(body), body)


def test_parses_the_elasticache_format() -> None:
    body = b"12\nmc.0001.cache.local|10.0.0.1|11211 mc.0002.cache.local|10.0.0.2|11212\n"
    assert parse_cluster_config(reply(body)) == ClusterConfig(
        12,
        (
            ClusterNode("mc.0001.cache.local", "10.0.0.1", 11211),
            ClusterNode("mc.0002.cache.local", "10.0.0.2", 11212),
        ),
    )
    # no IP: connect by name
    (node,) = parse_cluster_config(reply(b"3\nmc.0001.local||11211\n")).nodes
    assert node.address == ("mc.0001.local", 11211)


@pytest.mark.parametrize(
    "bad",
    [
        b"ERROR\r\n",
        b"CONFIG cluster 0 99\r\n1\nh|1.2.3.4|11211\n\r\nEND\r\n",  # length too long
        b"CONFIG cluster 0 5\r\n1\nh|1.2.3.4|11211\n\r\nEND\r\n",  # length too short
        reply(b"x\nh|1.2.3.4|11211\n"),
        reply(b"1\nh|1.2.3.4\n"),
        reply(b"1\nh|1.2.3.4|11211\n")[:-5],
    ],
)
def test_rejects_malformed_answers(bad: bytes) -> None:
    with pytest.raises(DiscoveryError):
        parse_cluster_config(bad)


def node_addresses(caches: Any) -> set[tuple[str, int]]:
    cluster = describe(caches.service.client(), caches.memcached_cluster_id)
    return {
        (n["Endpoint"]["Address"], int(n["Endpoint"]["Port"]))
        for n in cluster["CacheNodes"]
        if n["CacheNodeStatus"] == "available"
    }


@pytest.fixture
def client(caches: Any) -> Iterator[AutoDiscoveryClient]:
    with AutoDiscoveryClient(caches.memcached_config_endpoint, refresh_interval=0) as found:
        yield found


def test_discovers_the_nodes_and_spreads_keys(caches: Any, client: AutoDiscoveryClient) -> None:
    assert {node.address for node in client.nodes} == node_addresses(caches)
    assert len(client.nodes) == 2
    keys = [f"spread:{n}" for n in range(200)]
    for key in keys:
        assert client.set(key, key)
    assert {client.node_for(key) for key in keys} == node_addresses(caches)
    assert client.get_many(keys) == {key: key.encode() for key in keys}
    assert client.get("spread:0") == b"spread:0"
    assert client.delete("spread:0")
    assert client.get("spread:0") is None
    assert client.get("spread:0", b"default") == b"default"
    # a refresh with nothing changed keeps the ring
    assert client.refresh() is False


def test_follows_an_added_node(caches: Any, client: AutoDiscoveryClient) -> None:
    ec = caches.service.client()
    cluster_id = caches.memcached_cluster_id
    first_version = client.version
    before = {node.address for node in client.nodes}
    keys = [f"grow:{n}" for n in range(300)]
    for key in keys:
        client.set(key, key)

    def available_with(count: int) -> bool:
        cluster = describe(ec, cluster_id)
        nodes = cluster.get("CacheNodes", [])
        return (
            cluster["CacheClusterStatus"] == "available"
            and len(nodes) == count
            and all(n["CacheNodeStatus"] == "available" for n in nodes)
        )

    # a second client that is never asked: its background refresh must follow alone
    background = AutoDiscoveryClient(caches.memcached_config_endpoint, refresh_interval=0.05)
    ec.modify_cache_cluster(CacheClusterId=cluster_id, NumCacheNodes=3, ApplyImmediately=True)
    try:
        wait_for(lambda: available_with(3), timeout=90, interval=0.1)
        wait_for(lambda: fetch_cluster_config(*client.endpoint).version > first_version, 10)
        assert client.refresh() is True
        assert len(client.nodes) == 3
        assert client.version > first_version
        assert {node.address for node in client.nodes} == node_addresses(caches)

        wait_for(lambda: len(background.nodes) == 3, timeout=10)
        assert background.version == client.version

        # rendezvous hashing: the keys that stayed on their node still hit
        (added,) = {node.address for node in client.nodes} - before
        stayed = [key for key in keys if client.node_for(key) != added]
        found = client.get_many(stayed)
        assert found == {key: key.encode() for key in stayed}
        assert len(stayed) < len(keys)  # the new node took a share
        # keys round-trip over all three nodes
        fresh = [f"grown:{n}" for n in range(300)]
        for key in fresh:
            assert client.set(key, key)
        assert client.get_many(fresh) == {key: key.encode() for key in fresh}
        assert {client.node_for(key) for key in fresh} == node_addresses(caches)
    finally:
        ec.modify_cache_cluster(
            CacheClusterId=cluster_id,
            NumCacheNodes=2,
            CacheNodeIdsToRemove=["0003"],
            ApplyImmediately=True,
        )
        try:
            wait_for(lambda: available_with(2), timeout=90, interval=0.1)
        finally:
            background.close()
    # back to the two nodes it had, and the client follows the removal too
    grown_version = client.version
    wait_for(lambda: client.refresh() or client.version > grown_version, timeout=10)
    assert {node.address for node in client.nodes} == before == node_addresses(caches)
    assert client.set("shrunk", "yes") and client.get("shrunk") == b"yes"


# -- TLS in transit ------------------------------------------------------------------


def ca_path(caches: Any) -> str:
    """The service's CA certificate, as `cacheyard ca` prints it."""
    done = subprocess.run(
        caches.service.command("ca"), capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def tls_endpoint(caches: Any) -> Iterator[str]:
    """The configuration endpoint of a 2-node TLS cluster of this module's own."""
    ec = caches.service.client()
    ec.create_cache_cluster(
        CacheClusterId="lib-mc-tls",
        Engine="memcached",
        CacheNodeType="cache.t3.micro",
        NumCacheNodes=2,
        TransitEncryptionEnabled=True,
    )
    try:
        yield wait_available(ec, "lib-mc-tls")["ConfigurationEndpoint"]["Address"]
    finally:
        ec.delete_cache_cluster(CacheClusterId="lib-mc-tls")


def test_tls_with_the_ca_file_or_a_context(caches: Any, tls_endpoint: str) -> None:
    ca = ca_path(caches)
    keys = [f"tls:{n}" for n in range(100)]
    with AutoDiscoveryClient(tls_endpoint, refresh_interval=0, ssl_ca_certs=ca) as client:
        assert len(client.nodes) == 2
        for key in keys:
            assert client.set(key, key)
        assert len({client.node_for(key) for key in keys}) == 2
        assert client.refresh() is False  # discovery again, over TLS
    context = ssl.create_default_context(cafile=ca)
    with AutoDiscoveryClient(tls_endpoint, refresh_interval=0, ssl_context=context) as client:
        assert client.get_many(keys) == {key: key.encode() for key in keys}
    # plaintext: the endpoint says nothing (the error says why that may be)
    with pytest.raises(DiscoveryError, match="ssl_ca_certs"):
        AutoDiscoveryClient(tls_endpoint, refresh_interval=0)
    # the system's CAs do not know Cacheyard's
    with pytest.raises(ssl.SSLCertVerificationError):
        AutoDiscoveryClient(
            tls_endpoint, refresh_interval=0, ssl_context=ssl.create_default_context()
        )


def test_tls_options_are_one_or_the_other(tls_endpoint: str) -> None:
    with pytest.raises(ValueError, match="not both"):
        AutoDiscoveryClient(
            tls_endpoint,
            ssl_ca_certs="ca.crt",
            ssl_context=ssl.create_default_context(),
        )
