"""Parameter groups through boto3, and what they do to the real engines.

The parameters and their rules come from the installed engines; a change to a
group in use reaches every node that uses it: immediate parameters at once by
CONFIG SET, requires-reboot ones shown as pending until the node restarts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from group_helpers import connect, create_group, error_of, read_endpoints, wait_group_available
from pymemcache.client.base import Client as MemcacheClient
from service_helpers import describe as cluster
from service_helpers import wait_available as wait_cluster
from service_helpers import wait_for

pytestmark = pytest.mark.timeout(120)

REDIS_NODE = "cache.t3.micro"


def parameters(ec: BaseClient, group: str, **filters: Any) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    paginator = ec.get_paginator("describe_cache_parameters")
    for page in paginator.paginate(CacheParameterGroupName=group, **filters):
        found.update({p["ParameterName"]: p for p in page["Parameters"]})
    return found


def set_values(ec: BaseClient, group: str, **values: str) -> None:
    ec.modify_cache_parameter_group(
        CacheParameterGroupName=group,
        ParameterNameValues=[
            {"ParameterName": name.replace("_", "-"), "ParameterValue": value}
            for name, value in values.items()
        ],
    )


def refused(call: Any, code: str, status: int, **params: Any) -> None:
    with pytest.raises(ClientError) as raised:
        call(**params)
    assert error_of(raised) == (code, status), raised.value.response["Error"]


@pytest.fixture
def group(ec: BaseClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh redis7 group, deleted afterwards (once nothing uses it)."""
    name = f"pg-{request.node.name.split('[')[0][5:40].replace('_', '-').rstrip('-')}"
    ec.create_cache_parameter_group(
        CacheParameterGroupName=name, CacheParameterGroupFamily="redis7", Description="test"
    )
    yield name
    wait_for(lambda: _deleted(ec, name), timeout=60, interval=0.2)


def _deleted(ec: BaseClient, name: str) -> bool:
    try:
        ec.delete_cache_parameter_group(CacheParameterGroupName=name)
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code == "CacheParameterGroupNotFound":
            return True
        assert code == "InvalidCacheParameterGroupState"  # still in use while deleting
        return False
    return True


def test_every_installed_family_has_its_default_group(ec: BaseClient) -> None:
    groups = {
        g["CacheParameterGroupName"]: g
        for g in ec.describe_cache_parameter_groups()["CacheParameterGroups"]
    }
    assert groups["default.redis7"]["CacheParameterGroupFamily"] == "redis7"
    assert groups["default.memcached1.6"]["CacheParameterGroupFamily"] == "memcached1.6"
    assert groups["default.redis7"]["ARN"].endswith(":parametergroup:default.redis7")


def test_engine_defaults_come_from_the_engine(ec: BaseClient) -> None:
    paginator = ec.get_paginator("describe_engine_default_parameters")
    pages = list(paginator.paginate(CacheParameterGroupFamily="redis7", MaxRecords=20))
    assert len(pages) > 1  # paged in twenties
    found = {p["ParameterName"]: p for page in pages for p in page["EngineDefaults"]["Parameters"]}
    policy = found["maxmemory-policy"]
    assert policy["ParameterValue"] == "volatile-lru"  # ElastiCache's default, not redis'
    assert set(policy["AllowedValues"].split(",")) == {
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "noeviction",
    }
    assert policy["ChangeType"] == "immediate"
    assert found["databases"]["ChangeType"] == "requires-reboot"
    assert found["databases"]["DataType"] == "integer"
    assert found["appendfsync"]["AllowedValues"] == "everysec,always,no"
    for managed in ("bind", "port", "dir", "requirepass", "maxmemory", "replicaof", "save"):
        assert managed not in found
    memcached = ec.describe_engine_default_parameters(CacheParameterGroupFamily="memcached1.6")
    names = {p["ParameterName"] for p in memcached["EngineDefaults"]["Parameters"]}
    assert {"max_item_size", "chunk_size_growth_factor", "cas_disabled"} <= names


def test_modify_describe_reset(ec: BaseClient, group: str) -> None:
    set_values(ec, group, maxmemory_policy="allkeys-lru", timeout="300")
    user = parameters(ec, group, Source="user")
    assert {n: p["ParameterValue"] for n, p in user.items()} == {
        "maxmemory-policy": "allkeys-lru",
        "timeout": "300",
    }
    every = parameters(ec, group)
    assert every["appendonly"]["Source"] == "system"
    assert every["appendonly"]["ParameterValue"] == "no"
    ec.reset_cache_parameter_group(
        CacheParameterGroupName=group, ParameterNameValues=[{"ParameterName": "timeout"}]
    )
    assert set(parameters(ec, group, Source="user")) == {"maxmemory-policy"}
    ec.reset_cache_parameter_group(CacheParameterGroupName=group, ResetAllParameters=True)
    assert parameters(ec, group, Source="user") == {}


def test_bad_requests_get_aws_errors_and_change_nothing(ec: BaseClient, group: str) -> None:
    set_values(ec, group, maxmemory_policy="allkeys-lfu")
    before = parameters(ec, group)
    bad_values = [
        {"ParameterName": "maxmemory-policy", "ParameterValue": "sometimes"},
        {"ParameterName": "databases", "ParameterValue": "0"},
        {"ParameterName": "appendonly", "ParameterValue": "maybe"},
        {"ParameterName": "no-such-parameter", "ParameterValue": "1"},
        {"ParameterName": "bind", "ParameterValue": "0.0.0.0"},
    ]
    for bad in bad_values:
        refused(
            ec.modify_cache_parameter_group,
            "InvalidParameterValue",
            400,
            CacheParameterGroupName=group,
            # A valid change next to the bad one must not be applied either.
            ParameterNameValues=[{"ParameterName": "timeout", "ParameterValue": "60"}, bad],
        )
    assert parameters(ec, group) == before
    refused(
        ec.create_cache_parameter_group,
        "CacheParameterGroupAlreadyExists",
        400,
        CacheParameterGroupName=group,
        CacheParameterGroupFamily="redis7",
        Description="again",
    )
    refused(
        ec.create_cache_parameter_group,
        "InvalidParameterValue",
        400,
        CacheParameterGroupName="pg-unknown-family",
        CacheParameterGroupFamily="redis2.6",
        Description="not installed",
    )
    refused(
        ec.describe_cache_parameters,
        "CacheParameterGroupNotFound",
        404,
        CacheParameterGroupName="no-such-group",
    )
    refused(
        ec.modify_cache_parameter_group,
        "InvalidCacheParameterGroupState",
        400,
        CacheParameterGroupName="default.redis7",
        ParameterNameValues=[{"ParameterName": "timeout", "ParameterValue": "60"}],
    )
    refused(
        ec.delete_cache_parameter_group,
        "InvalidCacheParameterGroupState",
        400,
        CacheParameterGroupName="default.redis7",
    )
    refused(
        ec.create_cache_cluster,
        "InvalidParameterCombination",
        400,
        CacheClusterId="wrong-family",
        Engine="memcached",
        CacheNodeType=REDIS_NODE,
        CacheParameterGroupName=group,
    )
    with pytest.raises(ClientError):
        cluster(ec, "wrong-family")


def test_a_change_reaches_every_node_of_a_group_at_once(ec: BaseClient, group: str) -> None:
    create_group(ec, "rg-params", members=3, CacheParameterGroupName=group)
    created = wait_group_available(ec, "rg-params")
    nodes = [connect(address) for address in read_endpoints(created).values()]
    try:
        assert {n.config_get("maxmemory-policy")["maxmemory-policy"] for n in nodes} == {
            "volatile-lru"
        }
        set_values(ec, group, maxmemory_policy="allkeys-lru")
        wait_for(
            lambda: all(
                n.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru" for n in nodes
            ),
            timeout=5,
        )
        member = cluster(ec, "rg-params-002")
        assert member["CacheParameterGroup"]["CacheParameterGroupName"] == group
        assert member["CacheParameterGroup"]["ParameterApplyStatus"] == "in-sync"

        set_values(ec, group, databases="32")

        def pending_everywhere() -> bool:
            return all(
                cluster(ec, f"rg-params-00{i}")["CacheParameterGroup"]["ParameterApplyStatus"]
                == "pending-reboot"
                for i in (1, 2, 3)
            )

        wait_for(pending_everywhere, timeout=15)
        status = cluster(ec, "rg-params-001")
        assert status["CacheParameterGroup"]["CacheNodeIdsToReboot"] == ["0001"]
        assert status["CacheNodes"][0]["ParameterGroupStatus"] == "pending-reboot"
        assert {n.config_get("databases")["databases"] for n in nodes} == {"16"}
    finally:
        for node in nodes:
            node.close()
        ec.delete_replication_group(ReplicationGroupId="rg-params")


def test_requires_reboot_values_apply_at_the_reboot(ec: BaseClient, group: str) -> None:
    set_values(ec, group, databases="32", maxmemory_policy="allkeys-random")
    ec.create_cache_cluster(
        CacheClusterId="pg-reboot",
        Engine="redis",
        CacheNodeType=REDIS_NODE,
        CacheParameterGroupName=group,
    )
    created = wait_cluster(ec, "pg-reboot")
    address = created["CacheNodes"][0]["Endpoint"]["Address"]
    assert created["CacheParameterGroup"]["ParameterApplyStatus"] == "in-sync"
    node = redis.Redis(address, 6379, socket_timeout=5)
    try:
        assert node.config_get("databases") == {"databases": "32"}  # started with it
        set_values(ec, group, databases="8")
        wait_for(
            lambda: (
                cluster(ec, "pg-reboot")["CacheParameterGroup"]["ParameterApplyStatus"]
                == "pending-reboot"
            ),
            timeout=15,
        )
        assert node.config_get("databases") == {"databases": "32"}
        ec.reboot_cache_cluster(CacheClusterId="pg-reboot", CacheNodeIdsToReboot=["0001"])
        wait_for(
            lambda: (
                cluster(ec, "pg-reboot")["CacheParameterGroup"]["ParameterApplyStatus"] == "in-sync"
                and cluster(ec, "pg-reboot")["CacheClusterStatus"] == "available"
            ),
            timeout=30,
        )
        assert node.config_get("databases") == {"databases": "8"}
        assert node.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-random"}
        refused(
            ec.delete_cache_parameter_group,
            "InvalidCacheParameterGroupState",
            400,
            CacheParameterGroupName=group,
        )
        ec.reset_cache_parameter_group(
            CacheParameterGroupName=group,
            ParameterNameValues=[{"ParameterName": "maxmemory-policy"}],
        )
        wait_for(
            lambda: node.config_get("maxmemory-policy") == {"maxmemory-policy": "volatile-lru"},
            timeout=5,
        )
    finally:
        node.close()
        ec.delete_cache_cluster(CacheClusterId="pg-reboot")


def test_moving_a_cluster_to_another_group(ec: BaseClient, group: str) -> None:
    set_values(ec, group, maxmemory_policy="noeviction")
    ec.create_cache_cluster(CacheClusterId="pg-move", Engine="redis", CacheNodeType=REDIS_NODE)
    address = wait_cluster(ec, "pg-move")["CacheNodes"][0]["Endpoint"]["Address"]
    node = redis.Redis(address, 6379, socket_timeout=5)
    try:
        ec.modify_cache_cluster(CacheClusterId="pg-move", CacheParameterGroupName=group)
        wait_for(
            lambda: node.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"},
            timeout=5,
        )
        assert cluster(ec, "pg-move")["CacheParameterGroup"]["CacheParameterGroupName"] == group
    finally:
        node.close()
        ec.delete_cache_cluster(CacheClusterId="pg-move")


def test_memcached_parameters_apply_at_the_reboot(ec: BaseClient) -> None:
    name = "pg-memcached"
    ec.create_cache_parameter_group(
        CacheParameterGroupName=name, CacheParameterGroupFamily="memcached1.6", Description="m"
    )
    ec.modify_cache_parameter_group(
        CacheParameterGroupName=name,
        ParameterNameValues=[
            {"ParameterName": "chunk_size_growth_factor", "ParameterValue": "1.5"}
        ],
    )
    ec.create_cache_cluster(
        CacheClusterId="pg-mc",
        Engine="memcached",
        CacheNodeType=REDIS_NODE,
        NumCacheNodes=2,
        CacheParameterGroupName=name,
    )
    nodes = wait_cluster(ec, "pg-mc")["CacheNodes"]
    try:
        assert {_growth_factor(n) for n in nodes} == {1.5}
        ec.modify_cache_parameter_group(
            CacheParameterGroupName=name,
            ParameterNameValues=[
                {"ParameterName": "chunk_size_growth_factor", "ParameterValue": "1.75"}
            ],
        )
        wait_for(
            lambda: (
                cluster(ec, "pg-mc")["CacheParameterGroup"]["CacheNodeIdsToReboot"]
                == ["0001", "0002"]
            ),
            timeout=15,
        )
        assert {_growth_factor(n) for n in nodes} == {1.5}
        ec.reboot_cache_cluster(CacheClusterId="pg-mc", CacheNodeIdsToReboot=["0001"])
        wait_for(
            lambda: (
                cluster(ec, "pg-mc")["CacheParameterGroup"]["CacheNodeIdsToReboot"] == ["0002"]
                and cluster(ec, "pg-mc")["CacheClusterStatus"] == "available"
            ),
            timeout=30,
        )
        assert [_growth_factor(n) for n in nodes] == [1.75, 1.5]
    finally:
        ec.delete_cache_cluster(CacheClusterId="pg-mc")
        wait_for(lambda: _deleted(ec, name), timeout=60, interval=0.2)


def _growth_factor(node: dict[str, Any]) -> float:
    endpoint = node["Endpoint"]
    client = MemcacheClient((endpoint["Address"], endpoint["Port"]), timeout=5)
    try:
        return float(client.stats("settings")[b"growth_factor"])
    finally:
        client.close()


def test_rebooting_a_replica_member_applies_pending_values(ec: BaseClient, group: str) -> None:
    create_group(ec, "rg-reboot", members=2, CacheParameterGroupName=group)
    created = wait_group_available(ec, "rg-reboot")
    replica = [
        m for m in created["NodeGroups"][0]["NodeGroupMembers"] if m["CurrentRole"] == "replica"
    ]
    replica_id = replica[0]["CacheClusterId"]
    node = connect(replica[0]["ReadEndpoint"]["Address"])
    try:
        set_values(ec, group, databases="4")
        wait_for(
            lambda: (
                cluster(ec, replica_id)["CacheParameterGroup"]["ParameterApplyStatus"]
                == "pending-reboot"
            ),
            timeout=15,
        )
        ec.reboot_cache_cluster(CacheClusterId=replica_id, CacheNodeIdsToReboot=["0001"])
        wait_for(
            lambda: (
                cluster(ec, replica_id)["CacheClusterStatus"] == "available"
                and cluster(ec, replica_id)["CacheParameterGroup"]["ParameterApplyStatus"]
                == "in-sync"
            ),
            timeout=30,
        )
        node.close()  # the rebooted engine is a new process
        node = connect(replica[0]["ReadEndpoint"]["Address"])
        assert node.config_get("databases") == {"databases": "4"}
        assert node.info("replication")["role"] == "slave"
        other = "rg-reboot-001" if replica_id != "rg-reboot-001" else "rg-reboot-002"
        assert cluster(ec, other)["CacheParameterGroup"]["ParameterApplyStatus"] == "pending-reboot"
    finally:
        node.close()
        ec.delete_replication_group(ReplicationGroupId="rg-reboot")


def test_rebooting_the_primary_member_keeps_the_data(ec: BaseClient) -> None:
    create_group(ec, "rg-reboot-primary", members=2)
    created = wait_group_available(ec, "rg-reboot-primary")
    primary = next(
        m for m in created["NodeGroups"][0]["NodeGroupMembers"] if m["CurrentRole"] == "primary"
    )
    endpoint = created["NodeGroups"][0]["PrimaryEndpoint"]["Address"]
    writer = connect(endpoint)
    try:
        writer.mset({f"kept:{i}": i for i in range(1000)})
        writer.wait(1, 2000)
        writer.close()
        ec.reboot_cache_cluster(
            CacheClusterId=primary["CacheClusterId"], CacheNodeIdsToReboot=["0001"]
        )
        wait_for(
            lambda: (
                cluster(ec, primary["CacheClusterId"])["CacheClusterStatus"] == "available"
                and wait_group_available(ec, "rg-reboot-primary") is not None
            ),
            timeout=60,
        )
        writer = connect(endpoint)
        assert writer.dbsize() == 1000
        assert writer.get("kept:999") == b"999"
    finally:
        writer.close()
        ec.delete_replication_group(ReplicationGroupId="rg-reboot-primary")
