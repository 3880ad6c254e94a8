"""Encryption in transit for Memcached clusters, through boto3 against a real service.

Every node of a TLS Memcached cluster speaks TLS only on 11211 with a
certificate from Cacheyard's CA naming its address; the configuration endpoint
speaks TLS too (its own certificate) and relays to the nodes over TLS. The
client library's auto discovery clients take the CA; plaintext clients get
nothing. New nodes get certificates; SASL runs inside TLS.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from group_helpers import error_of
from pymemcache.client.base import Client
from sasl_clients import sasl_refusal
from service_helpers import Service, describe, messages, wait_for
from service_helpers import wait_available as wait_cluster

from cacheyard.client.memcached import (
    AutoDiscoveryClient,
    DiscoveryError,
    fetch_cluster_config,
)
from cacheyard.client.memcached_async import AsyncAutoDiscoveryClient
from cacheyard.engines.host import LocalEngineHost

pytestmark = pytest.mark.timeout(120)

NODE_TYPE = "cache.t3.micro"
CLUSTER = "mc-tls"
SASL_TAG = "cacheyard:sasl-user-group"
ALICE = "alice-password-0123456"


def addresses(cluster: dict[str, Any]) -> list[str]:
    return [n["Endpoint"]["Address"] for n in cluster["CacheNodes"]]


def endpoint_of(cluster: dict[str, Any]) -> str:
    address: str = cluster["ConfigurationEndpoint"]["Address"]
    return address


def context(ca: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca)


def tls_client(address: str, ca: str) -> Client:
    return Client((address, 11211), tls_context=context(ca), connect_timeout=5, timeout=5)


def serves_tls(address: str, ca: str) -> bool:
    """A TLS client verifying the CA and ``address`` stores and reads a value."""
    client = tls_client(address, ca)
    try:
        return bool(client.set("tls-probe", address, noreply=False)) and (
            client.get("tls-probe") == address.encode()
        )
    finally:
        client.close()


def plaintext_answer(address: str, request: bytes = b"version\r\n") -> bytes:
    """What a plaintext client gets: b"" when the connection is reset or closed."""
    with socket.create_connection((address, 11211), timeout=5) as sock:
        sock.sendall(request)
        try:
            return sock.recv(100)
        except ConnectionResetError:
            return b""


@pytest.fixture(scope="module")
def cluster(ec: BaseClient) -> Iterator[dict[str, Any]]:
    created = ec.create_cache_cluster(
        CacheClusterId=CLUSTER,
        Engine="memcached",
        CacheNodeType=NODE_TYPE,
        NumCacheNodes=2,
        TransitEncryptionEnabled=True,
    )["CacheCluster"]
    assert created["TransitEncryptionEnabled"] is True
    try:
        yield wait_cluster(ec, CLUSTER)
    finally:
        ec.delete_cache_cluster(CacheClusterId=CLUSTER)


def test_describe_shows_tls(ec: BaseClient, cluster: dict[str, Any]) -> None:
    assert cluster["Engine"] == "memcached"
    assert cluster["TransitEncryptionEnabled"] is True
    assert cluster["TransitEncryptionMode"] == "required"
    assert cluster["AuthTokenEnabled"] is False
    assert cluster["ConfigurationEndpoint"]["Port"] == 11211
    listed = ec.describe_cache_clusters()["CacheClusters"]
    (again,) = [c for c in listed if c["CacheClusterId"] == CLUSTER]
    assert again["TransitEncryptionMode"] == "required"


def test_every_node_serves_tls_only(cluster: dict[str, Any], ca: str) -> None:
    for address in addresses(cluster):
        assert serves_tls(address, ca)
        assert plaintext_answer(address) == b""


def test_the_configuration_endpoint_speaks_tls_only(cluster: dict[str, Any], ca: str) -> None:
    endpoint = endpoint_of(cluster)
    found = fetch_cluster_config(endpoint, 11211, timeout=5, ssl_context=context(ca))
    assert sorted(n.ip for n in found.nodes) == sorted(addresses(cluster))
    assert plaintext_answer(endpoint, b"config get cluster\r\n") == b""
    with pytest.raises(DiscoveryError, match="give ssl_ca_certs"):
        fetch_cluster_config(endpoint, 11211, timeout=5)
    # the endpoint's certificate names the endpoint's own address, and comes from the CA
    with (
        socket.create_connection((endpoint, 11211), timeout=5) as raw,
        context(ca).wrap_socket(raw, server_hostname=endpoint) as sock,
    ):
        peer = sock.getpeercert()
    assert peer is not None
    names = peer["subjectAltName"]
    assert names == (("IP Address", endpoint),)
    # other commands are relayed to a node, over TLS
    assert serves_tls(endpoint, ca)


def test_the_client_library_takes_the_ca(cluster: dict[str, Any], ca: str) -> None:
    keys = [f"key-{i}" for i in range(40)]
    with AutoDiscoveryClient(endpoint_of(cluster), refresh_interval=0, ssl_ca_certs=ca) as client:
        assert sorted(n.ip for n in client.nodes) == sorted(addresses(cluster))
        for key in keys:
            assert client.set(key, key)
        assert client.get_many(keys) == {key: key.encode() for key in keys}
        assert {client.node_for(key)[0] for key in keys} == set(addresses(cluster))
    with pytest.raises(DiscoveryError):
        AutoDiscoveryClient(endpoint_of(cluster), refresh_interval=0)
    plain_node = Client((addresses(cluster)[0], 11211), connect_timeout=5, timeout=5)
    with pytest.raises(OSError):
        plain_node.get("key-0")
    plain_node.close()

    async def through_asyncio() -> dict[str, bytes]:
        async with AsyncAutoDiscoveryClient(
            endpoint_of(cluster), refresh_interval=0, ssl_context=context(ca)
        ) as client:
            assert await client.set("from-asyncio", "yes")
            assert len(await client.server_versions()) == 2
            return await client.get_many([*keys, "from-asyncio"])

    found = asyncio.run(through_asyncio())
    assert found == {**{key: key.encode() for key in keys}, "from-asyncio": b"yes"}


def test_a_killed_tls_node_is_restarted_with_tls(
    ec: BaseClient, service: Service, cluster: dict[str, Any], ca: str
) -> None:
    node_dir = service.data_dir / "clusters" / CLUSTER / "nodes" / "0001"
    before = messages(ec, CLUSTER)
    assert not any(m.startswith("Recovering") for m in before)
    assert LocalEngineHost().kill(node_dir, signal.SIGKILL)
    wait_for(
        lambda: any(m.startswith("Finished recovery") for m in messages(ec, CLUSTER)), timeout=30
    )
    wait_cluster(ec, CLUSTER)
    assert serves_tls(addresses(cluster)[0], ca)


def test_a_new_node_gets_a_certificate(
    ec: BaseClient, service: Service, cluster: dict[str, Any], ca: str
) -> None:
    client = AutoDiscoveryClient(endpoint_of(cluster), refresh_interval=0, ssl_ca_certs=ca)
    try:
        version = client.version
        ec.modify_cache_cluster(CacheClusterId=CLUSTER, NumCacheNodes=3, ApplyImmediately=True)
        grown = wait_cluster(ec, CLUSTER)
        assert grown["NumCacheNodes"] == 3
        assert grown["TransitEncryptionEnabled"] is True
        new = grown["CacheNodes"][2]["Endpoint"]["Address"]
        assert (service.data_dir / "clusters" / CLUSTER / "nodes" / "0003" / "tls").is_dir()
        assert serves_tls(new, ca)
        assert plaintext_answer(new) == b""
        assert client.refresh()
        assert client.version > version
        assert sorted(n.ip for n in client.nodes) == sorted(addresses(grown))
        keys = [f"grown-{i}" for i in range(60)]
        for key in keys:
            assert client.set(key, "v")
        assert new in {client.node_for(key)[0] for key in keys}
        assert client.get_many(keys) == dict.fromkeys(keys, b"v")
    finally:
        client.close()


def logs_in(address: str, ca: str | None, password: str) -> bool:
    return sasl_refusal(address, "alice", password, context(ca) if ca is not None else None) is None


def test_tls_and_sasl_together(ec: BaseClient, ca: str) -> None:
    ec.create_user(
        UserId="tls-alice",
        UserName="alice",
        Engine="redis",
        AccessString="on ~* +@all",
        Passwords=[ALICE],
    )
    ec.create_user_group(UserGroupId="tls-team", Engine="redis", UserIds=["default", "tls-alice"])
    ec.create_cache_cluster(
        CacheClusterId="mc-tls-sasl",
        Engine="memcached",
        CacheNodeType=NODE_TYPE,
        NumCacheNodes=2,
        TransitEncryptionEnabled=True,
        Tags=[{"Key": SASL_TAG, "Value": "tls-team"}],
    )
    try:
        found = wait_cluster(ec, "mc-tls-sasl")
        assert found["TransitEncryptionMode"] == "required"
        for address in addresses(found):
            assert logs_in(address, ca, ALICE)
            assert not logs_in(address, ca, "wrong-password-0123456")
            assert not logs_in(address, None, ALICE)  # plaintext: the port speaks TLS only
            assert plaintext_answer(address, b"\x80" + b"\x00" * 23) == b""
        discovered = fetch_cluster_config(
            endpoint_of(found), 11211, timeout=5, ssl_context=context(ca)
        )
        assert sorted(n.ip for n in discovered.nodes) == sorted(addresses(found))
    finally:
        ec.delete_cache_cluster(CacheClusterId="mc-tls-sasl")
        wait_for(
            lambda: (
                not any(
                    c["CacheClusterId"] == "mc-tls-sasl"
                    for c in ec.describe_cache_clusters()["CacheClusters"]
                )
            ),
            timeout=30,
        )
        ec.delete_user_group(UserGroupId="tls-team")


@pytest.mark.parametrize(
    ("params", "code"),
    [
        # An AUTH token is a Redis password; Memcached logs in through SASL.
        (
            {"TransitEncryptionEnabled": True, "AuthToken": "a-token-of-sixteen-chars"},
            "InvalidParameterCombination",
        ),
        ({"AuthToken": "a-token-of-sixteen-chars"}, "InvalidParameterCombination"),
    ],
)
def test_what_memcached_tls_refuses(ec: BaseClient, params: dict[str, Any], code: str) -> None:
    with pytest.raises(ClientError) as raised:
        ec.create_cache_cluster(
            CacheClusterId="mc-tls-refused", Engine="memcached", CacheNodeType=NODE_TYPE, **params
        )
    assert error_of(raised) == (code, 400)


def test_an_auth_token_cannot_be_added_later(ec: BaseClient, cluster: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as raised:
        ec.modify_cache_cluster(
            CacheClusterId=CLUSTER,
            AuthToken="a-token-of-sixteen-chars",
            AuthTokenUpdateStrategy="SET",
            ApplyImmediately=True,
        )
    assert error_of(raised) == ("InvalidParameterCombination", 400)


def test_certificate_keys_are_private(
    ec: BaseClient, service: Service, cluster: dict[str, Any]
) -> None:
    """The endpoint's and the nodes' keys are 0600, as Redis nodes' are (ADR 12)."""
    cluster_dir = service.data_dir / "clusters" / CLUSTER
    keys = list(cluster_dir.glob("**/tls/node.key"))
    nodes = describe(ec, CLUSTER)["CacheNodes"]
    assert len(keys) == len(nodes) + 1  # and the configuration endpoint's
    assert all(key.stat().st_mode & 0o777 == 0o600 for key in keys)
    assert (cluster_dir / "config-endpoint" / "tls" / "node.crt").exists()
