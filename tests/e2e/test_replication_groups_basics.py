"""A replication group of a primary and two replicas across three zones, through boto3.

Writes go through the primary endpoint, reads through the reader endpoint and
each replica, all on real redis-server processes. TestFailover kills the
primary as a real failure would: another member takes the role, the primary
endpoint keeps its address and follows it, writes continue, the events come
in AWS's order and the lost node comes back as a replica.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
from botocore.exceptions import ClientError
from group_helpers import (
    PORT,
    Writer,
    all_members_available,
    create_group,
    describe_group,
    error_of,
    info,
    missing_keys,
    node_group,
    primary_address,
    primary_id,
    read_endpoints,
    reader_address,
    replica_link_up,
    role,
    roles,
    run_id,
    wait_group_available,
    wait_more_writes,
)
from service_helpers import Service, wait_for

pytestmark = pytest.mark.timeout(120)

GROUP = "rg-basic"
ZONE_LETTERS = "abcdef"


@pytest.fixture(scope="module")
def created(service: Service) -> tuple[dict[str, Any], dict[str, Any]]:
    """The CreateReplicationGroup answer and the group once available."""
    ec = service.client()
    answer = create_group(ec, GROUP, members=3, automatic_failover=True, multi_az=True)
    return answer, wait_group_available(ec, GROUP)


def _zone_of_address(address: str) -> str:
    """Zone z owns 127.base.(10*z + j).0/24: placement is visible in the address."""
    return ZONE_LETTERS[int(address.split(".")[2]) // 10 - 1]


def test_create_places_primary_and_two_replicas_in_three_zones(
    service: Service, created: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    answer, group = created
    assert answer["Status"] == "creating"
    assert answer["ReplicationGroupId"] == GROUP
    assert group["Status"] == "available"
    assert group["AutomaticFailover"] == "enabled"
    assert group["MultiAZ"] == "enabled"
    assert group["ClusterEnabled"] is False
    members = [f"{GROUP}-001", f"{GROUP}-002", f"{GROUP}-003"]
    assert group["MemberClusters"] == members

    shard = node_group(group)
    assert shard["NodeGroupId"] == "0001"
    primary, reader = shard["PrimaryEndpoint"], shard["ReaderEndpoint"]
    assert primary["Port"] == reader["Port"] == PORT
    assert primary["Address"] != reader["Address"]
    own = read_endpoints(group)
    assert {primary["Address"], reader["Address"]}.isdisjoint(own.values())
    for address in [primary["Address"], reader["Address"], *own.values()]:
        assert address.startswith("127."), address
    assert len(set(own.values())) == 3

    assert sorted(roles(group).values()) == ["primary", "replica", "replica"]
    assert sorted(roles(group)) == members
    zones = {m["CacheClusterId"]: m["PreferredAvailabilityZone"] for m in shard["NodeGroupMembers"]}
    assert len(set(zones.values())) == 3
    for member_id, zone in zones.items():
        assert zone[-1] == _zone_of_address(own[member_id])

    ec = service.client()
    for member_id in members:
        (cluster,) = ec.describe_cache_clusters(CacheClusterId=member_id, ShowCacheNodeInfo=True)[
            "CacheClusters"
        ]
        assert cluster["ReplicationGroupId"] == GROUP
        assert cluster["CacheClusterStatus"] == "available"
        assert cluster["Engine"] == "redis"
        assert cluster["PreferredAvailabilityZone"] == zones[member_id]
        (node,) = cluster["CacheNodes"]
        assert node["CacheNodeStatus"] == "available"
        assert node["Endpoint"] == {"Address": own[member_id], "Port": PORT}
    assert {m["CacheClusterId"] for m in shard["NodeGroupMembers"]} == set(members)
    # every member is a live engine in the role the API shows
    for member_id, shown in roles(group).items():
        assert role(own[member_id]) == ("master" if shown == "primary" else "slave")


def test_writes_through_primary_endpoint_are_read_everywhere(
    service: Service, created: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    group = wait_group_available(service.client(), GROUP)
    keys = [f"basic:{n}" for n in range(200)]
    writer = redis.Redis(host=primary_address(group), port=PORT, socket_timeout=5)
    try:
        writer.mset({k: k for k in keys})
        assert writer.execute_command("WAIT", 2, 1000) == 2
    finally:
        writer.close()

    assert info(reader_address(group), "replication")["role"] == "slave"
    assert missing_keys(reader_address(group), keys) == []
    for member_id, address in read_endpoints(group).items():
        assert missing_keys(address, keys) == [], member_id

    primary = primary_id(group)
    for member_id, address in read_endpoints(group).items():
        if member_id == primary:
            continue
        replica = redis.Redis(host=address, port=PORT, socket_timeout=5)
        try:
            with pytest.raises(redis.exceptions.ReadOnlyError):
                replica.set("basic:on-a-replica", "no")
        finally:
            replica.close()
    reader = redis.Redis(host=reader_address(group), port=PORT, socket_timeout=5)
    try:
        with pytest.raises(redis.exceptions.ReadOnlyError):
            reader.set("basic:on-the-reader", "no")
    finally:
        reader.close()


def _events(client: Any, source_ids: set[str]) -> list[tuple[str, str, str]]:
    """(source type, source id, message) of the given sources, oldest first."""
    found = client.describe_events(Duration=60)["Events"]
    return [
        (e["SourceType"], e["SourceIdentifier"], e["Message"])
        for e in found
        if e["SourceIdentifier"] in source_ids
    ]


def test_test_failover_moves_primary_behind_the_same_endpoint(
    service: Service, created: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    ec = service.client()
    before = wait_group_available(ec, GROUP)
    old = primary_id(before)
    endpoint = primary_address(before)
    own = read_endpoints(before)
    old_run_id = run_id(own[old])

    writer = Writer(endpoint, "failover")
    writer.start()
    try:
        wait_more_writes(writer, 100)
        answer = ec.test_failover(ReplicationGroupId=GROUP, NodeGroupId="0001")
        assert answer["ReplicationGroup"]["Status"] == "modifying"

        def moved() -> dict[str, Any] | None:
            group = describe_group(ec, GROUP)
            return group if primary_id(group) != old else None

        new = primary_id(wait_for(moved, timeout=15))
        after = wait_group_available(ec, GROUP)
        # writes are acknowledged again through the same address, now on the new primary
        wait_more_writes(writer, writer.count() + 100)
    finally:
        writer.stop()

    assert new != old and new in own
    assert primary_id(after) == new
    assert sorted(roles(after).values()) == ["primary", "replica", "replica"]
    assert primary_address(after) == endpoint
    assert read_endpoints(after) == own
    assert role(endpoint) == "master"
    assert run_id(endpoint) == run_id(own[new])
    assert info(endpoint, "server")["run_id"] != old_run_id
    # the reader endpoint left the promoted member for a replica
    assert role(reader_address(after)) == "slave"
    assert run_id(reader_address(after)) != run_id(own[new])

    acknowledged = writer.keys()
    assert len(acknowledged) > 200
    assert missing_keys(own[new], acknowledged) == []

    # the lost node is replaced: the old primary is back as a replica of the new one
    wait_for(lambda: replica_link_up(own[old], own[new]), timeout=15)
    assert run_id(own[old]) != old_run_id
    wait_for(lambda: all_members_available(ec, after), timeout=15)
    assert len(after["MemberClusters"]) == 3
    assert wait_group_available(ec, GROUP)["Status"] == "available"

    finished = "Finished recovery for cache nodes 0001"
    wait_for(lambda: ("cache-cluster", old, finished) in _events(ec, {GROUP, old}), timeout=15)
    wanted = [
        ("replication-group", GROUP, "Test Failover API called for node group 0001"),
        (
            "replication-group",
            GROUP,
            f"Failover from primary node {old} to replica node {new} completed",
        ),
        ("cache-cluster", old, "Recovering cache nodes 0001"),
        ("cache-cluster", old, finished),
    ]
    seen = [e for e in _events(ec, {GROUP, old}) if e in wanted]
    assert seen == wanted

    # the same order through the per-type filters boto3 users reach for
    group_messages = [
        e["Message"]
        for e in ec.describe_events(SourceType="replication-group", SourceIdentifier=GROUP)[
            "Events"
        ]
    ]
    assert group_messages[-2:] == [wanted[0][2], wanted[1][2]]
    member_messages = [
        e["Message"]
        for e in ec.describe_events(SourceType="cache-cluster", SourceIdentifier=old)["Events"]
    ]
    assert member_messages[-2:] == [wanted[2][2], wanted[3][2]]


def test_test_failover_is_limited_to_five_calls_a_day(service: Service) -> None:
    ec = service.client()
    group_id = "rg-limit"
    create_group(ec, group_id, members=2, automatic_failover=True, multi_az=False)
    group = wait_group_available(ec, group_id)
    primaries = [primary_id(group)]
    for _ in range(5):
        ec.test_failover(ReplicationGroupId=group_id, NodeGroupId="0001")
        group = wait_group_available(ec, group_id)
        primaries.append(primary_id(group))
    # with two members every failover hands the role to the other one
    assert primaries == [f"{group_id}-001", f"{group_id}-002"] * 3

    with pytest.raises(ClientError) as exc:
        ec.test_failover(ReplicationGroupId=group_id, NodeGroupId="0001")
    assert error_of(exc) == ("TestFailoverNotAvailableFault", 400)
    group = describe_group(ec, group_id)
    assert group["Status"] == "available"
    assert primary_id(group) == primaries[-1]
    ec.delete_replication_group(ReplicationGroupId=group_id)


def test_test_failover_needs_automatic_failover_and_a_known_node_group(
    service: Service,
) -> None:
    ec = service.client()
    group_id = "rg-manual"
    create_group(ec, group_id, members=2, automatic_failover=False, multi_az=False)
    group = wait_group_available(ec, group_id)
    assert group["AutomaticFailover"] == "disabled"

    with pytest.raises(ClientError) as exc:
        ec.test_failover(ReplicationGroupId=group_id, NodeGroupId="0001")
    assert error_of(exc) == ("InvalidReplicationGroupState", 400)
    assert "automatic failover" in exc.value.response["Error"]["Message"].lower()

    with pytest.raises(ClientError) as exc:
        ec.test_failover(ReplicationGroupId=group_id, NodeGroupId="0002")
    assert error_of(exc) == ("NodeGroupNotFoundFault", 404)

    with pytest.raises(ClientError) as exc:
        ec.test_failover(ReplicationGroupId="rg-nowhere", NodeGroupId="0001")
    assert error_of(exc) == ("ReplicationGroupNotFoundFault", 404)

    # nothing moved and nothing was recorded
    after = describe_group(ec, group_id)
    assert after["Status"] == "available"
    assert primary_id(after) == primary_id(group)
    messages = [
        e["Message"]
        for e in ec.describe_events(SourceType="replication-group", SourceIdentifier=group_id)[
            "Events"
        ]
    ]
    assert not [m for m in messages if "Failover" in m]
    ec.delete_replication_group(ReplicationGroupId=group_id)
