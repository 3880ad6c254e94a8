"""Changing a replication group through boto3: a planned switchover, more and fewer
replicas, a replica added and removed as a cache cluster, a group grown from a
standalone cluster, deletion (with and without keeping the primary) and the
faults AWS answers for bad requests. Every change is checked on the engines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from group_helpers import (
    NODE_TYPE,
    Writer,
    all_members_available,
    connect,
    create_group,
    describe_group,
    error_of,
    has_keys,
    missing_keys,
    primary_address,
    primary_id,
    read_endpoints,
    reader_address,
    replica_link_up,
    role,
    roles,
    run_id,
    wait_group_available,
    wait_group_gone,
    wait_more_writes,
)
from service_helpers import Service, wait_available, wait_for

pytestmark = pytest.mark.timeout(120)


def _seed(address: str, prefix: str, count: int = 100, replicas: int = 0) -> list[str]:
    keys = [f"{prefix}:{n}" for n in range(count)]
    client = connect(address)
    try:
        client.mset({k: k for k in keys})
        if replicas:
            assert client.execute_command("WAIT", replicas, 2000) >= replicas
    finally:
        client.close()
    return keys


def _engine_dirs(service: Service, cluster_id: str) -> list[Any]:
    cluster_dir = service.data_dir / "clusters" / cluster_id
    return [path for path in service.engines() if path.is_relative_to(cluster_dir)]


def _gone(service: Service, client: BaseClient, cluster_id: str) -> bool:
    """No process, no directory and no DescribeCacheClusters answer for the cluster."""
    if _engine_dirs(service, cluster_id) or (service.data_dir / "clusters" / cluster_id).exists():
        return False
    try:
        client.describe_cache_clusters(CacheClusterId=cluster_id)
    except ClientError as exc:
        code: str = exc.response["Error"]["Code"]
        return code == "CacheClusterNotFound"
    return False


def _refused(address: str) -> bool:
    try:
        connect(address, timeout=0.5).ping()
    except redis.ConnectionError:
        return True
    return False


def test_modify_primary_cluster_id_switches_over_without_losing_writes(
    service: Service,
) -> None:
    ec = service.client()
    group_id = "rg-switch"
    create_group(ec, group_id, members=3)
    group = wait_group_available(ec, group_id)
    old = primary_id(group)
    target = next(m for m, r in roles(group).items() if r == "replica")
    endpoint = primary_address(group)
    own = read_endpoints(group)

    writer = Writer(endpoint, "switch")
    writer.start()
    try:
        wait_more_writes(writer, 100)
        answer = ec.modify_replication_group(
            ReplicationGroupId=group_id, PrimaryClusterId=target, ApplyImmediately=True
        )["ReplicationGroup"]
        assert answer["Status"] == "modifying"
        assert answer["PendingModifiedValues"].get("PrimaryClusterId") == target
        after = wait_group_available(ec, group_id)
        wait_more_writes(writer, writer.count() + 100)
    finally:
        writer.stop()

    assert primary_id(after) == target
    assert after["PendingModifiedValues"] == {}
    assert primary_address(after) == endpoint
    assert role(endpoint) == "master"
    assert run_id(endpoint) == run_id(own[target])
    assert missing_keys(own[target], writer.keys()) == []
    # a planned switchover restarts nothing: the old primary simply follows the new one
    wait_for(lambda: replica_link_up(own[old], own[target]), timeout=10)
    wait_for(lambda: all_members_available(ec, after), timeout=10)
    assert role(reader_address(after)) == "slave"

    # asking for the member that is primary already changes nothing
    again = ec.modify_replication_group(
        ReplicationGroupId=group_id, PrimaryClusterId=target, ApplyImmediately=True
    )["ReplicationGroup"]
    assert again["Status"] == "available"
    assert again["PendingModifiedValues"] == {}
    with pytest.raises(ClientError) as exc:
        ec.modify_replication_group(
            ReplicationGroupId=group_id, PrimaryClusterId="rg-elsewhere-001", ApplyImmediately=True
        )
    assert error_of(exc) == ("InvalidParameterValue", 400)
    assert primary_id(wait_group_available(ec, group_id)) == target


def test_replica_count_up_and_down(service: Service) -> None:
    ec = service.client()
    group_id = "rg-scale"
    create_group(ec, group_id, members=2)
    group = wait_group_available(ec, group_id)
    primary = primary_id(group)
    keys = _seed(primary_address(group), "scale", replicas=1)

    answer = ec.increase_replica_count(
        ReplicationGroupId=group_id, NewReplicaCount=3, ApplyImmediately=True
    )["ReplicationGroup"]
    assert answer["Status"] == "modifying"
    grown = wait_group_available(ec, group_id)
    members = [f"{group_id}-00{n}" for n in range(1, 5)]
    assert grown["MemberClusters"] == members
    assert primary_id(grown) == primary
    assert sorted(roles(grown).values()) == ["primary"] + ["replica"] * 3
    own = read_endpoints(grown)
    assert len(set(own.values())) == 4
    for new in members[2:]:
        wait_for(lambda new=new: has_keys(own[new], keys), timeout=10)
        assert replica_link_up(own[new], own[primary])
        assert _engine_dirs(service, new)
    wait_for(lambda: all_members_available(ec, grown), timeout=10)

    answer = ec.decrease_replica_count(
        ReplicationGroupId=group_id, NewReplicaCount=1, ApplyImmediately=True
    )["ReplicationGroup"]
    assert answer["Status"] == "modifying"
    shrunk = wait_group_available(ec, group_id)
    assert len(shrunk["MemberClusters"]) == 2
    assert primary in shrunk["MemberClusters"]
    assert primary_id(shrunk) == primary
    removed = set(members) - set(shrunk["MemberClusters"])
    assert len(removed) == 2
    for member_id in removed:
        wait_for(lambda member_id=member_id: _gone(service, ec, member_id), timeout=10)
        assert _refused(own[member_id])
    (kept,) = set(shrunk["MemberClusters"]) - {primary}
    assert replica_link_up(own[kept], own[primary])
    assert missing_keys(primary_address(shrunk), keys) == []


def test_replica_added_and_removed_as_a_cache_cluster(service: Service) -> None:
    ec = service.client()
    group_id = "rg-member"
    create_group(ec, group_id, members=2)
    group = wait_group_available(ec, group_id)
    primary = primary_id(group)
    keys = _seed(primary_address(group), "member", replicas=1)

    extra = "rg-member-extra"
    answer = ec.create_cache_cluster(CacheClusterId=extra, ReplicationGroupId=group_id)
    assert answer["CacheCluster"]["CacheClusterStatus"] == "creating"
    assert answer["CacheCluster"]["ReplicationGroupId"] == group_id
    grown = wait_group_available(ec, group_id)
    assert grown["MemberClusters"] == [f"{group_id}-001", f"{group_id}-002", extra]
    assert roles(grown)[extra] == "replica"
    own = read_endpoints(grown)
    wait_for(lambda: has_keys(own[extra], keys), timeout=10)
    assert replica_link_up(own[extra], own[primary])
    wait_for(lambda: all_members_available(ec, grown), timeout=10)

    answer = ec.delete_cache_cluster(CacheClusterId=extra)
    assert answer["CacheCluster"]["CacheClusterStatus"] == "deleting"
    shrunk = wait_group_available(ec, group_id)
    assert shrunk["MemberClusters"] == [f"{group_id}-001", f"{group_id}-002"]
    wait_for(lambda: _gone(service, ec, extra), timeout=10)
    assert _refused(own[extra])
    assert missing_keys(primary_address(shrunk), keys) == []


def test_deleting_the_primary_cluster_is_refused(service: Service) -> None:
    ec = service.client()
    group_id = "rg-keepprimary"
    create_group(ec, group_id, members=3)
    group = wait_group_available(ec, group_id)
    primary = primary_id(group)
    try:
        with pytest.raises(ClientError) as exc:
            ec.delete_cache_cluster(CacheClusterId=primary)
        after = describe_group(ec, group_id)
        assert after["Status"] == "available"
        assert primary_id(after) == primary
        assert error_of(exc) == ("InvalidCacheClusterState", 400)
    finally:
        ec.delete_replication_group(ReplicationGroupId=group_id)


def test_group_grown_from_a_standalone_cluster_keeps_its_data(service: Service) -> None:
    ec = service.client()
    seed = "cc-seed"
    ec.create_cache_cluster(
        CacheClusterId=seed, Engine="redis", CacheNodeType=NODE_TYPE, NumCacheNodes=1
    )

    def seed_node() -> dict[str, Any] | None:
        (cluster,) = ec.describe_cache_clusters(CacheClusterId=seed, ShowCacheNodeInfo=True)[
            "CacheClusters"
        ]
        return cluster["CacheNodes"][0] if cluster["CacheClusterStatus"] == "available" else None

    address = wait_for(seed_node, timeout=20)["Endpoint"]["Address"]
    keys = _seed(address, "seed", count=300)
    seed_run_id = run_id(address)

    group_id = "rg-adopt"
    answer = ec.create_replication_group(
        ReplicationGroupId=group_id,
        ReplicationGroupDescription="grown from cc-seed",
        PrimaryClusterId=seed,
        NumCacheClusters=3,
        AutomaticFailoverEnabled=True,
    )["ReplicationGroup"]
    assert answer["Status"] == "creating"
    group = wait_group_available(ec, group_id)
    assert len(group["MemberClusters"]) == 3
    assert seed in group["MemberClusters"]
    assert primary_id(group) == seed
    own = read_endpoints(group)
    assert own[seed] == address
    # the running engine was adopted, not replaced
    assert run_id(address) == seed_run_id
    assert run_id(primary_address(group)) == seed_run_id
    assert missing_keys(primary_address(group), keys) == []
    for member_id, member_address in own.items():
        wait_for(lambda a=member_address: has_keys(a, keys), timeout=10)
        if member_id != seed:
            assert replica_link_up(member_address, address)
    (cluster,) = ec.describe_cache_clusters(CacheClusterId=seed)["CacheClusters"]
    assert cluster["ReplicationGroupId"] == group_id
    wait_for(lambda: all_members_available(ec, group), timeout=10)


def test_delete_group_removes_members_processes_and_directories(service: Service) -> None:
    ec = service.client()
    group_id = "rg-gone"
    create_group(ec, group_id, members=3)
    group = wait_group_available(ec, group_id)
    members = group["MemberClusters"]
    addresses = [primary_address(group), reader_address(group), *read_endpoints(group).values()]
    assert all(_engine_dirs(service, m) for m in members)

    answer = ec.delete_replication_group(ReplicationGroupId=group_id)
    assert answer["ReplicationGroup"]["Status"] == "deleting"
    ec.get_waiter("replication_group_deleted").wait(
        ReplicationGroupId=group_id, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    for member_id in members:
        wait_for(lambda m=member_id: _gone(service, ec, m), timeout=10)
    for address in addresses:
        assert _refused(address), address
    with pytest.raises(ClientError) as exc:
        describe_group(ec, group_id)
    assert error_of(exc) == ("ReplicationGroupNotFoundFault", 404)


def test_delete_group_retaining_the_primary_keeps_it_with_its_data(service: Service) -> None:
    ec = service.client()
    group_id = "rg-retain"
    create_group(ec, group_id, members=3)
    group = wait_group_available(ec, group_id)
    primary = primary_id(group)
    own = read_endpoints(group)
    keys = _seed(primary_address(group), "retain", replicas=2)
    primary_run_id = run_id(own[primary])

    answer = ec.delete_replication_group(ReplicationGroupId=group_id, RetainPrimaryCluster=True)
    assert answer["ReplicationGroup"]["Status"] == "deleting"
    wait_group_gone(ec, group_id)

    for member_id in set(group["MemberClusters"]) - {primary}:
        wait_for(lambda m=member_id: _gone(service, ec, m), timeout=10)
        assert _refused(own[member_id])
    # `available` once the cluster's own reconciler has seen its engine answer
    cluster = wait_available(ec, primary)
    assert "ReplicationGroupId" not in cluster
    assert cluster["CacheNodes"][0]["Endpoint"]["Address"] == own[primary]
    assert _engine_dirs(service, primary)
    assert run_id(own[primary]) == primary_run_id
    assert role(own[primary]) == "master"
    assert missing_keys(own[primary], keys) == []
    # a standalone primary takes writes with no replica to acknowledge them
    client = connect(own[primary])
    try:
        client.set("retain:after", "yes")
        assert client.get("retain:after") == b"yes"
    finally:
        client.close()
    for address in (primary_address(group), reader_address(group)):
        assert _refused(address), address


@pytest.mark.parametrize(
    ("settings", "code"),
    [
        (
            {"NumCacheClusters": 1, "AutomaticFailoverEnabled": True},
            "InvalidParameterCombination",
        ),
        (
            {"NumCacheClusters": 2, "AutomaticFailoverEnabled": False, "MultiAZEnabled": True},
            "InvalidParameterCombination",
        ),
        ({"NumCacheClusters": 7}, "InvalidParameterValue"),
    ],
    ids=["failover-needs-a-replica", "multi-az-needs-failover", "seven-clusters"],
)
def test_create_refuses_bad_settings(service: Service, settings: dict[str, Any], code: str) -> None:
    ec = service.client()
    with pytest.raises(ClientError) as exc:
        ec.create_replication_group(
            ReplicationGroupId="rg-bad",
            ReplicationGroupDescription="refused",
            Engine="redis",
            CacheNodeType=NODE_TYPE,
            **settings,
        )
    assert error_of(exc) == (code, 400)
    with pytest.raises(ClientError) as exc:
        describe_group(ec, "rg-bad")
    assert error_of(exc) == ("ReplicationGroupNotFoundFault", 404)
    with pytest.raises(ClientError):
        ec.describe_cache_clusters(CacheClusterId="rg-bad-001")


def test_duplicate_and_unknown_groups(service: Service) -> None:
    ec = service.client()
    group_id = "rg-twice"
    create_group(ec, group_id, members=1, automatic_failover=False, multi_az=False)
    with pytest.raises(ClientError) as exc:
        create_group(ec, group_id, members=2, automatic_failover=False, multi_az=False)
    assert error_of(exc) == ("ReplicationGroupAlreadyExists", 400)
    group = wait_group_available(ec, group_id)
    assert group["MemberClusters"] == [f"{group_id}-001"]
    assert roles(group) == {f"{group_id}-001": "primary"}
    assert role(primary_address(group)) == "master"

    unknown = "rg-unknown"
    calls: list[Callable[[], Any]] = [
        lambda: ec.describe_replication_groups(ReplicationGroupId=unknown),
        lambda: ec.modify_replication_group(
            ReplicationGroupId=unknown, ApplyImmediately=True, ReplicationGroupDescription="x"
        ),
        lambda: ec.delete_replication_group(ReplicationGroupId=unknown),
        lambda: ec.increase_replica_count(
            ReplicationGroupId=unknown, NewReplicaCount=2, ApplyImmediately=True
        ),
        lambda: ec.decrease_replica_count(
            ReplicationGroupId=unknown, NewReplicaCount=0, ApplyImmediately=True
        ),
        lambda: ec.test_failover(ReplicationGroupId=unknown, NodeGroupId="0001"),
        lambda: ec.create_cache_cluster(CacheClusterId="rg-unknown-x", ReplicationGroupId=unknown),
    ]
    for call in calls:
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc) == ("ReplicationGroupNotFoundFault", 404)
