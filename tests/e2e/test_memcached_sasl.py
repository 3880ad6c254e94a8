"""Memcached SASL, Cacheyard's extension: a user group's password users log in.

A Memcached cluster created with the tag ``cacheyard:sasl-user-group`` runs every
node with SASL (binary protocol, PLAIN); a changed password or user group takes
effect for new logins at once, and nobody logs in without a right password.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import bmemcached
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from group_helpers import error_of
from pymemcache.client.base import Client as TextClient
from sasl_clients import sasl_refusal
from service_helpers import wait_for

pytestmark = pytest.mark.timeout(120)

TAG = "cacheyard:sasl-user-group"
ALICE = "alice-password-0123456"
BOB = "bob-password-0123456789"


def describe(ec: BaseClient, cluster_id: str) -> dict[str, Any]:
    found = ec.describe_cache_clusters(CacheClusterId=cluster_id, ShowCacheNodeInfo=True)
    return dict(found["CacheClusters"][0])


def addresses(cluster: dict[str, Any]) -> list[str]:
    return [n["Endpoint"]["Address"] for n in cluster["CacheNodes"]]


def logs_in(address: str, user: str, password: str) -> bool:
    return sasl_refusal(address, user, password) is None


@pytest.fixture(scope="module")
def cluster(ec: BaseClient) -> Iterator[dict[str, Any]]:
    ec.create_user(
        UserId="mc-alice",
        UserName="alice",
        Engine="redis",
        AccessString="on ~* +@all",
        Passwords=[ALICE],
    )
    ec.create_user(
        UserId="mc-bob", UserName="bob", Engine="redis", AccessString="on ~* +@all", Passwords=[BOB]
    )
    ec.create_user_group(UserGroupId="mc-team", Engine="redis", UserIds=["default", "mc-alice"])
    ec.create_user_group(UserGroupId="mc-other", Engine="redis", UserIds=["default", "mc-bob"])
    ec.create_cache_cluster(
        CacheClusterId="mc-sasl",
        Engine="memcached",
        CacheNodeType="cache.t3.micro",
        NumCacheNodes=2,
        Tags=[{"Key": TAG, "Value": "mc-team"}],
    )
    wait_for(lambda: describe(ec, "mc-sasl")["CacheClusterStatus"] == "available", timeout=30)
    yield describe(ec, "mc-sasl")
    ec.delete_cache_cluster(CacheClusterId="mc-sasl")


def test_only_the_right_password_logs_in_on_every_node(cluster: dict[str, Any]) -> None:
    for address in addresses(cluster):
        assert logs_in(address, "alice", ALICE)
        assert not logs_in(address, "alice", "wrong-password-0123456")
        assert not logs_in(address, "bob", BOB)  # not in this cluster's group
        assert not logs_in(address, "default", "")
        text = TextClient((address, 11211), timeout=2, connect_timeout=2)
        with pytest.raises(Exception):  # noqa: B017 - SASL nodes speak no text protocol
            text.get("probe")
        text.close()


def test_a_new_password_works_at_once_and_logged_in_clients_stay(
    ec: BaseClient, cluster: dict[str, Any]
) -> None:
    address = addresses(cluster)[0]
    kept = bmemcached.Client([f"{address}:11211"], "alice", ALICE, socket_timeout=5)
    assert kept.set("kept", "yes")
    new = "alice-new-password-987654"
    ec.modify_user(UserId="mc-alice", Passwords=[new])
    for each in addresses(cluster):
        wait_for(lambda a=each: logs_in(a, "alice", new), timeout=20)
        assert not logs_in(each, "alice", ALICE)
    assert kept.get("kept") == "yes"
    kept.disconnect_all()


def test_the_tag_moves_the_cluster_to_another_group(
    ec: BaseClient, cluster: dict[str, Any]
) -> None:
    arn = cluster["ARN"]
    ec.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": TAG, "Value": "mc-other"}])
    for address in addresses(cluster):
        wait_for(lambda a=address: logs_in(a, "bob", BOB), timeout=20)
    with pytest.raises(ClientError) as raised:
        ec.remove_tags_from_resource(ResourceName=arn, TagKeys=[TAG])
    assert error_of(raised) == ("InvalidParameterValue", 400)
    with pytest.raises(ClientError) as raised:
        ec.delete_user_group(UserGroupId="mc-other")
    assert error_of(raised) == ("InvalidUserGroupState", 400)


def test_refusals(ec: BaseClient, cluster: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as raised:
        ec.create_cache_cluster(
            CacheClusterId="mc-bad",
            Engine="redis",
            CacheNodeType="cache.t3.micro",
            Tags=[{"Key": TAG, "Value": "mc-team"}],
        )
    assert error_of(raised) == ("InvalidParameterCombination", 400)
    with pytest.raises(ClientError) as raised:
        ec.create_cache_cluster(
            CacheClusterId="mc-bad",
            Engine="memcached",
            CacheNodeType="cache.t3.micro",
            Tags=[{"Key": TAG, "Value": "nosuch"}],
        )
    assert error_of(raised) == ("UserGroupNotFound", 404)
    ec.create_cache_cluster(
        CacheClusterId="mc-open", Engine="memcached", CacheNodeType="cache.t3.micro"
    )
    try:
        arn = describe(ec, "mc-open")["ARN"]
        with pytest.raises(ClientError) as raised:
            ec.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": TAG, "Value": "mc-team"}])
        assert error_of(raised) == ("InvalidParameterValue", 400)
    finally:
        ec.delete_cache_cluster(CacheClusterId="mc-open")
