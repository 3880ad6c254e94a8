"""Encryption in transit: TLS-only nodes with certificates from Cacheyard's CA.

Clients verify nodes by address against the CA that `cacheyard ca` names;
replication between members, failover, snapshots and restore all run over
TLS; a plaintext client is refused.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from group_helpers import create_group, error_of, node_group, wait_group_available
from service_helpers import wait_available as wait_cluster
from service_helpers import wait_for

from cacheyard.engines.certificates import CertificateAuthority

pytestmark = pytest.mark.timeout(120)

NODE_TYPE = "cache.t3.micro"


def tls_client(address: str, ca: str, **options: Any) -> redis.Redis:
    return redis.Redis(
        address,
        6379,
        ssl=True,
        ssl_ca_certs=ca,
        ssl_cert_reqs="required",
        ssl_check_hostname=True,
        socket_timeout=5,
        **options,
    )


@pytest.fixture(scope="module")
def tls_cluster(ec: BaseClient) -> Iterator[dict[str, Any]]:
    ec.create_cache_cluster(
        CacheClusterId="tls-one",
        Engine="redis",
        CacheNodeType=NODE_TYPE,
        TransitEncryptionEnabled=True,
    )
    yield wait_cluster(ec, "tls-one")
    ec.delete_cache_cluster(CacheClusterId="tls-one")


def test_a_tls_cluster_serves_only_tls(tls_cluster: dict[str, Any], ca: str) -> None:
    assert tls_cluster["TransitEncryptionEnabled"] is True
    assert tls_cluster["TransitEncryptionMode"] == "required"
    address = tls_cluster["CacheNodes"][0]["Endpoint"]["Address"]
    with pytest.raises(redis.ConnectionError):
        redis.Redis(address, 6379, socket_timeout=2).ping()
    client = tls_client(address, ca)
    assert client.set("secret", "over tls") and client.get("secret") == b"over tls"
    client.close()
    done = subprocess.run(
        ["redis-cli", "-h", address, "--tls", "--cacert", ca, "get", "secret"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert done.stdout.strip() == "over tls", done.stderr


def test_clients_verify_the_node_against_the_ca(
    tls_cluster: dict[str, Any], ca: str, tmp_path: Path
) -> None:
    address = tls_cluster["CacheNodes"][0]["Endpoint"]["Address"]
    other = CertificateAuthority(tmp_path / "other-ca").ensure()
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        tls_client(address, str(other)).ping()
    context = ssl.create_default_context(cafile=ca)
    with (
        socket.create_connection((address, 6379), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=address) as wrapped,
    ):
        peer = wrapped.getpeercert()
    assert peer is not None
    subject = cast(tuple[tuple[tuple[str, str], ...], ...], peer["subject"])
    names = dict(x[0] for x in subject)
    assert names["commonName"] == "tls-one"


def test_a_tls_group_replicates_fails_over_and_snapshots_over_tls(ec: BaseClient, ca: str) -> None:
    create_group(ec, "tls-rg", members=3, TransitEncryptionEnabled=True)
    group = wait_group_available(ec, "tls-rg")
    try:
        assert group["TransitEncryptionEnabled"] is True
        assert group["TransitEncryptionMode"] == "required"
        endpoint = node_group(group)["PrimaryEndpoint"]["Address"]
        reader = node_group(group)["ReaderEndpoint"]["Address"]
        writer = tls_client(endpoint, ca)
        writer.mset({f"k{i}": i for i in range(100)})
        assert writer.wait(2, 5000) == 2  # both replicas acknowledged, over TLS
        for member in node_group(group)["NodeGroupMembers"]:
            if member["CurrentRole"] == "replica":
                replica = tls_client(member["ReadEndpoint"]["Address"], ca)
                assert replica.info("replication")["master_link_status"] == "up"
                replica.close()
        assert tls_client(reader, ca).get("k7") == b"7"  # the reader endpoint's name too
        writer.close()

        ec.test_failover(ReplicationGroupId="tls-rg", NodeGroupId="0001")
        wait_for(
            lambda: (
                wait_group_available(ec, "tls-rg")["NodeGroups"][0]["NodeGroupMembers"][0][
                    "CurrentRole"
                ]
                == "replica"
            ),
            timeout=30,
        )
        writer = tls_client(endpoint, ca)
        assert writer.get("k99") == b"99"
        assert writer.set("after", "failover")
        # The snapshot is read from a replica: every replica has the write first.
        wait_for(lambda: writer.wait(2, 1000) == 2, timeout=20)
        writer.close()

        ec.create_snapshot(ReplicationGroupId="tls-rg", SnapshotName="tls-rg-snap")
        wait_for(
            lambda: (
                ec.describe_snapshots(SnapshotName="tls-rg-snap")["Snapshots"][0]["SnapshotStatus"]
                == "available"
            ),
            timeout=30,
        )
        ec.create_cache_cluster(
            CacheClusterId="tls-restored",
            SnapshotName="tls-rg-snap",
            TransitEncryptionEnabled=True,
        )
        restored = wait_cluster(ec, "tls-restored")
        copy = tls_client(restored["CacheNodes"][0]["Endpoint"]["Address"], ca)
        assert copy.get("after") == b"failover" and copy.dbsize() == 101
        copy.close()
        ec.delete_cache_cluster(CacheClusterId="tls-restored")
        ec.delete_snapshot(SnapshotName="tls-rg-snap")
    finally:
        ec.delete_replication_group(ReplicationGroupId="tls-rg")


@pytest.mark.parametrize(
    ("call", "params", "code"),
    [
        # (Memcached TLS: test_memcached_tls.py; preferred mode: test_tls_migration.py.)
        (
            "create_replication_group",
            {
                "ReplicationGroupId": "tls-mode-only",
                "ReplicationGroupDescription": "d",
                "CacheNodeType": NODE_TYPE,
                "TransitEncryptionMode": "required",
            },
            "InvalidParameterCombination",
        ),
    ],
)
def test_what_cannot_be_encrypted_is_refused(
    ec: BaseClient, call: str, params: dict[str, Any], code: str
) -> None:
    with pytest.raises(ClientError) as raised:
        getattr(ec, call)(**params)
    assert error_of(raised) == (code, 400)


def test_a_running_group_cannot_switch_tls_on_without_preferred_mode(ec: BaseClient) -> None:
    create_group(ec, "tls-plain", members=1, automatic_failover=False, multi_az=False)
    wait_group_available(ec, "tls-plain")
    try:
        with pytest.raises(ClientError) as raised:
            ec.modify_replication_group(
                ReplicationGroupId="tls-plain",
                TransitEncryptionEnabled=True,
                ApplyImmediately=True,
            )
        assert error_of(raised) == ("InvalidParameterCombination", 400)
        assert wait_group_available(ec, "tls-plain")["TransitEncryptionEnabled"] is False
    finally:
        ec.delete_replication_group(ReplicationGroupId="tls-plain")


def test_a_group_created_in_preferred_mode_takes_both_kinds_of_client(
    ec: BaseClient, ca: str
) -> None:
    create_group(
        ec, "tls-both", members=2, TransitEncryptionEnabled=True, TransitEncryptionMode="preferred"
    )
    group = wait_group_available(ec, "tls-both")
    try:
        assert group["TransitEncryptionMode"] == "preferred"
        endpoint = node_group(group)["PrimaryEndpoint"]["Address"]
        wait_for(lambda: tls_client(endpoint, ca).set("via", "tls"), timeout=20)
        plain = redis.Redis(endpoint, 6379, socket_timeout=5)
        assert plain.get("via") == b"tls"
        assert plain.set("via", "plain")
    finally:
        ec.delete_replication_group(ReplicationGroupId="tls-both")
