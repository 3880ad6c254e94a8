"""``connect`` with RBAC users and IAM tokens, against a TLS replication group whose
user group Cacheyard applies to every node: the server really checks them."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from client_caches import Caches
from group_helpers import create_group, describe_group, primary_id, wait_group_available
from service_helpers import REGION, wait_for

from cacheyard.client.connect import CacheEndpoints, Connection, connect, connect_async
from cacheyard.client.iam_token import AwsCredentials, IamCredentialProvider

pytestmark = pytest.mark.timeout(120)

GROUP = "lib-secure"
APP_PASSWORD = "app-password-0123456789"


@pytest.fixture(scope="module")
def secure(caches: Caches) -> Iterator[dict[str, Any]]:
    ec = caches.service.client()
    ec.create_user(
        UserId="lib-default",
        UserName="default",
        Engine="redis",
        AccessString="off ~* +@all",
        NoPasswordRequired=True,
    )
    ec.create_user(
        UserId="lib-app",
        UserName="app",
        Engine="redis",
        AccessString="on ~app:* -@all +@read +@write +ping +info",
        Passwords=[APP_PASSWORD],
    )
    ec.create_user(
        UserId="lib-iam",
        UserName="lib-iam",
        Engine="redis",
        AccessString="on ~* +@all",
        AuthenticationMode={"Type": "iam"},
    )
    ec.create_user_group(
        UserGroupId="lib-secure-users",
        Engine="redis",
        UserIds=["lib-default", "lib-app", "lib-iam"],
    )
    create_group(
        ec, GROUP, members=3, TransitEncryptionEnabled=True, UserGroupIds=["lib-secure-users"]
    )
    wait_group_available(ec, GROUP, timeout=60)
    ca = subprocess.run(
        caches.service.command("ca"), capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    yield {"ca": ca, "description": ec.describe_replication_groups(ReplicationGroupId=GROUP)}
    ec.delete_replication_group(ReplicationGroupId=GROUP)


def iam_provider(caches: Caches) -> IamCredentialProvider:
    key, secret = caches.service.credentials()  # the administrator may connect
    return IamCredentialProvider(GROUP, "lib-iam", REGION, AwsCredentials(key, secret))


def test_an_rbac_user_is_limited_to_its_keys_and_commands(
    caches: Caches, secure: dict[str, Any]
) -> None:
    endpoints = CacheEndpoints.from_replication_group(secure["description"])
    assert endpoints.tls
    conn = connect(endpoints, ssl_ca_certs=secure["ca"], username="app", password=APP_PASSWORD)
    conn.writer.set("app:greeting", "hello")
    wait_for(lambda: conn.reader.get("app:greeting") == b"hello", timeout=10)
    with pytest.raises(redis.exceptions.NoPermissionError):
        conn.writer.set("other:greeting", "x")
    with pytest.raises(redis.exceptions.NoPermissionError):
        conn.writer.config_get("maxmemory")
    with pytest.raises(redis.AuthenticationError):
        connect(
            endpoints, ssl_ca_certs=secure["ca"], username="app", password="x" * 20
        ).writer.ping()
    with pytest.raises(redis.AuthenticationError):  # the group's default user is off
        connect(endpoints, ssl_ca_certs=secure["ca"]).writer.ping()


def test_an_iam_provider_connects_and_an_unknown_key_is_refused(
    caches: Caches, secure: dict[str, Any]
) -> None:
    endpoints = CacheEndpoints.from_replication_group(secure["description"])
    conn = connect(endpoints, ssl_ca_certs=secure["ca"], credential_provider=iam_provider(caches))
    wait_for(lambda: conn.writer.set("iam:k", "v"), timeout=20)
    assert conn.reader.get("iam:k") in (b"v", None)  # the reader may lag by a moment
    stranger = IamCredentialProvider(
        GROUP, "lib-iam", REGION, AwsCredentials("AKIANOTAKNOWNKEY0000", "x" * 40)
    )
    with pytest.raises(redis.AuthenticationError):
        connect(endpoints, ssl_ca_certs=secure["ca"], credential_provider=stranger).writer.ping()


async def test_async_iam_connection(caches: Caches, secure: dict[str, Any]) -> None:
    endpoints = CacheEndpoints.from_replication_group(secure["description"])
    conn = connect_async(
        endpoints, ssl_ca_certs=secure["ca"], credential_provider=iam_provider(caches)
    )
    assert await conn.writer.set("iam:async", "v")
    assert await conn.writer.get("iam:async") == b"v"
    await conn.writer.aclose()
    await conn.reader.aclose()


def test_iam_writes_ride_through_a_test_failover(caches: Caches, secure: dict[str, Any]) -> None:
    ec = caches.service.client()
    before = describe_group(ec, GROUP)
    endpoints = CacheEndpoints.from_replication_group(secure["description"])
    conn: Connection = connect(
        endpoints, ssl_ca_certs=secure["ca"], credential_provider=iam_provider(caches)
    )
    wait_for(lambda: conn.writer.set("iam:before", "1"), timeout=20)
    ec.test_failover(ReplicationGroupId=GROUP, NodeGroupId="0001")
    written = 0
    while primary_id(describe_group(ec, GROUP)) == primary_id(before) or written < 50:
        conn.writer.set(f"iam:during:{written}", written)  # no error reaches the caller
        written += 1
    wait_group_available(ec, GROUP)
    assert conn.writer.get("iam:before") == b"1"
    assert conn.writer.get(f"iam:during:{written - 1}") == str(written - 1).encode()
