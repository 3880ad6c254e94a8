"""AUTH tokens: ElastiCache's rules, ROTATE / SET on every node, over TLS (DELETE only
when moving to RBAC, see test_rbac.py).

Tokens are applied to every member (ACL users do not replicate), survive a
failover, and changing them drops no connected client. The token itself is
kept nowhere: not in answers, events, the service's log or its database.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from group_helpers import (
    create_group,
    error_of,
    node_group,
    primary_id,
    tls_redis,
    wait_group_available,
)
from service_helpers import Service, wait_for

pytestmark = pytest.mark.timeout(120)

FIRST = "first-token-0123456789"
SECOND = "second-token-$^<>-987654321"
NODE_TYPE = "cache.t3.micro"


def connect(address: str, ca: str, password: str | None = None) -> redis.Redis:
    return tls_redis(address, ca, password=password)


def refused_auth(address: str, ca: str, password: str | None) -> bool:
    try:
        connect(address, ca, password).ping()
    except redis.AuthenticationError:
        return True
    return False


@pytest.fixture(scope="module")
def group(ec: BaseClient) -> Iterator[dict[str, Any]]:
    create_group(ec, "auth-rg", members=3, TransitEncryptionEnabled=True, AuthToken=FIRST)
    yield wait_group_available(ec, "auth-rg")
    ec.delete_replication_group(ReplicationGroupId="auth-rg")


def change(ec: BaseClient, strategy: str, token: str | None = None) -> None:
    params: dict[str, Any] = {"AuthTokenUpdateStrategy": strategy}
    if token is not None:
        params["AuthToken"] = token
    ec.modify_replication_group(ReplicationGroupId="auth-rg", ApplyImmediately=True, **params)


def members(group: dict[str, Any]) -> list[str]:
    return [m["ReadEndpoint"]["Address"] for m in node_group(group)["NodeGroupMembers"]]


def test_a_token_is_needed_on_every_member(group: dict[str, Any], ca: str) -> None:
    assert group["AuthTokenEnabled"] is True
    assert "AuthTokenLastModifiedDate" in group
    endpoint = node_group(group)["PrimaryEndpoint"]["Address"]
    for address in [endpoint, *members(group)]:
        assert refused_auth(address, ca, None)
        assert refused_auth(address, ca, "wrong-token-0123456789")
        assert connect(address, ca, FIRST).ping()
    writer = connect(endpoint, ca, FIRST)
    writer.set("k", "v")
    assert writer.wait(2, 5000) == 2  # replicas authenticate to their primary


def test_rotate_then_set_then_delete(
    ec: BaseClient, group: dict[str, Any], ca: str, service: Service
) -> None:
    endpoint = node_group(group)["PrimaryEndpoint"]["Address"]
    kept = connect(endpoint, ca, FIRST)
    assert kept.ping()

    change(ec, "ROTATE", SECOND)
    wait_group_available(ec, "auth-rg")
    for address in members(group):
        wait_for(lambda a=address: connect(a, ca, SECOND).ping(), timeout=10)
        assert connect(address, ca, FIRST).ping()  # both, while clients move over

    change(ec, "SET", SECOND)
    wait_group_available(ec, "auth-rg")
    for address in members(group):
        wait_for(lambda a=address: refused_auth(a, ca, FIRST), timeout=10)
        assert connect(address, ca, SECOND).ping()
    assert kept.ping()  # an authenticated client was not dropped

    before = primary_id(wait_group_available(ec, "auth-rg"))
    ec.test_failover(ReplicationGroupId="auth-rg", NodeGroupId="0001")
    wait_for(lambda: primary_id(wait_group_available(ec, "auth-rg")) != before, timeout=30)
    assert refused_auth(endpoint, ca, FIRST)
    assert connect(endpoint, ca, SECOND).set("after", "failover")

    # DELETE is only for moving to RBAC (test_rbac.py): alone it would open the cache.
    with pytest.raises(ClientError) as raised:
        change(ec, "DELETE")
    assert error_of(raised) == ("InvalidParameterCombination", 400)
    assert refused_auth(endpoint, ca, None)

    # The tokens were never kept or shown anywhere.
    answers = [
        str(ec.describe_replication_groups(ReplicationGroupId="auth-rg")),
        str(ec.describe_cache_clusters(ShowCacheNodeInfo=True)),
        str(ec.describe_events(MaxRecords=100)),
        service.log_path.read_text(errors="replace"),
    ]
    stored = b"".join(p.read_bytes() for p in service.data_dir.glob("state.db*"))
    for token in (FIRST, SECOND):
        assert all(token not in text for text in answers)
        assert token.encode() not in stored
    change(ec, "SET", FIRST)  # back to the fixture's token for the next tests
    wait_group_available(ec, "auth-rg")


def test_a_standalone_cluster_takes_a_token_and_rotates_it(ec: BaseClient, ca: str) -> None:
    ec.create_cache_cluster(
        CacheClusterId="auth-one",
        Engine="redis",
        CacheNodeType=NODE_TYPE,
        TransitEncryptionEnabled=True,
        AuthToken=FIRST,
    )

    def described() -> dict[str, Any]:
        found = ec.describe_cache_clusters(CacheClusterId="auth-one", ShowCacheNodeInfo=True)
        return dict(found["CacheClusters"][0])

    wait_for(lambda: described()["CacheClusterStatus"] == "available", timeout=30)
    address = described()["CacheNodes"][0]["Endpoint"]["Address"]
    try:
        assert described()["AuthTokenEnabled"] is True
        assert refused_auth(address, ca, None)
        ec.modify_cache_cluster(
            CacheClusterId="auth-one",
            AuthToken=SECOND,
            AuthTokenUpdateStrategy="ROTATE",
            ApplyImmediately=True,
        )
        wait_for(lambda: not refused_auth(address, ca, SECOND), timeout=10)
        assert connect(address, ca, FIRST).ping()
    finally:
        ec.delete_cache_cluster(CacheClusterId="auth-one")


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"TransitEncryptionEnabled": True, "AuthToken": "short-token"}, "InvalidParameterValue"),
        (
            {"TransitEncryptionEnabled": True, "AuthToken": "has/a/slash-0123456789"},
            "InvalidParameterValue",
        ),
        (
            {"TransitEncryptionEnabled": True, "AuthToken": "x" * 129},
            "InvalidParameterValue",
        ),
        ({"AuthToken": FIRST}, "InvalidParameterCombination"),  # a token needs TLS
    ],
)
def test_bad_tokens_are_refused_and_never_repeated(
    ec: BaseClient, params: dict[str, Any], code: str
) -> None:
    with pytest.raises(ClientError) as raised:
        ec.create_replication_group(
            ReplicationGroupId="auth-bad",
            ReplicationGroupDescription="d",
            CacheNodeType=NODE_TYPE,
            **params,
        )
    assert error_of(raised) == (code, 400)
    assert params["AuthToken"] not in raised.value.response["Error"]["Message"]
    with pytest.raises(ClientError):
        ec.describe_replication_groups(ReplicationGroupId="auth-bad")


def test_strategies_need_the_right_token(ec: BaseClient, group: dict[str, Any]) -> None:
    for params, code in (
        ({"AuthTokenUpdateStrategy": "SET"}, "InvalidParameterValue"),
        ({"AuthTokenUpdateStrategy": "DELETE", "AuthToken": FIRST}, "InvalidParameterCombination"),
    ):
        with pytest.raises(ClientError) as raised:
            ec.modify_replication_group(
                ReplicationGroupId="auth-rg", ApplyImmediately=True, **params
            )
        assert error_of(raised) == (code, 400)


def test_a_kept_primary_still_asks_for_the_token(ec: BaseClient, ca: str) -> None:
    create_group(
        ec,
        "auth-keep",
        members=2,
        automatic_failover=False,
        multi_az=False,
        TransitEncryptionEnabled=True,
        AuthToken=FIRST,
    )
    group = wait_group_available(ec, "auth-keep")
    primary = primary_id(group)
    ec.delete_replication_group(ReplicationGroupId="auth-keep", RetainPrimaryCluster=True)

    def kept() -> dict[str, Any] | None:
        found = ec.describe_cache_clusters(CacheClusterId=primary, ShowCacheNodeInfo=True)
        cluster = dict(found["CacheClusters"][0])
        standalone = "ReplicationGroupId" not in cluster
        return cluster if standalone and cluster["CacheClusterStatus"] == "available" else None

    cluster = wait_for(kept, timeout=30)
    try:
        assert cluster["AuthTokenEnabled"] is True
        address = cluster["CacheNodes"][0]["Endpoint"]["Address"]
        assert refused_auth(address, ca, None)
        assert connect(address, ca, FIRST).ping()
    finally:
        ec.delete_cache_cluster(CacheClusterId=primary)
