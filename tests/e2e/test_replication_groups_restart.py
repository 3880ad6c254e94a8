"""A control plane killed after (or during) a TestFailover keeps the roles it found.

Which member is primary is observed state: a restarted control plane adopts the
running engines, keeps the promoted member as primary (no second failover, no
switch back), and the primary endpoint still reaches it with the data intact.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.client import BaseClient
from group_helpers import (
    all_members_available,
    connect,
    create_group,
    describe_group,
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
)
from service_helpers import Service, wait_for

pytestmark = pytest.mark.timeout(120)

GROUP = "rg-restart"


def _seed(address: str, count: int = 500) -> list[str]:
    keys = [f"restart:{n}" for n in range(count)]
    client = connect(address)
    try:
        client.mset({k: k for k in keys})
        assert client.execute_command("WAIT", 2, 2000) == 2
    finally:
        client.close()
    return keys


def _failover_events(client: BaseClient) -> list[str]:
    found = client.describe_events(SourceType="replication-group", SourceIdentifier=GROUP)
    return [e["Message"] for e in found["Events"] if "ailover" in e["Message"]]


def _run_ids(group: dict[str, Any]) -> dict[str, str]:
    return {member: run_id(address) for member, address in read_endpoints(group).items()}


def test_roles_survive_a_control_plane_kill_after_test_failover(fresh_service: Service) -> None:
    ec = fresh_service.client()
    create_group(ec, GROUP, members=3)
    group = wait_group_available(ec, GROUP)
    old = primary_id(group)
    endpoint = primary_address(group)
    keys = _seed(endpoint)

    ec.test_failover(ReplicationGroupId=GROUP, NodeGroupId="0001")
    after = wait_group_available(ec, GROUP)
    new = primary_id(after)
    assert new != old
    own = read_endpoints(after)
    wait_for(lambda: replica_link_up(own[old], own[new]), timeout=15)
    wait_for(lambda: all_members_available(ec, after), timeout=15)
    before_kill = _run_ids(after)
    events_before = _failover_events(ec)
    assert events_before == [
        "Test Failover API called for node group 0001",
        f"Failover from primary node {old} to replica node {new} completed",
    ]

    fresh_service.kill()
    fresh_service.start()
    ec = fresh_service.client()

    restarted = wait_group_available(ec, GROUP)
    assert primary_id(restarted) == new
    assert roles(restarted) == roles(after)
    assert primary_address(restarted) == endpoint
    # the engines were adopted, not restarted, and nobody failed over again
    assert _run_ids(restarted) == before_kill
    assert run_id(endpoint) == before_kill[new]
    assert role(endpoint) == "master"
    assert role(reader_address(restarted)) == "slave"
    for member, address in own.items():
        if member != new:
            assert replica_link_up(address, own[new]), member
    assert _failover_events(ec) == events_before
    assert missing_keys(endpoint, keys) == []
    # and the group keeps working: writes through the endpoint reach the replicas
    client = connect(endpoint)
    try:
        client.set("restart:after", "yes")
        assert client.execute_command("WAIT", 2, 2000) == 2
    finally:
        client.close()
    wait_for(lambda: all_members_available(ec, restarted), timeout=10)
    assert describe_group(ec, GROUP)["Status"] == "available"


def test_control_plane_killed_right_after_test_failover_finishes_it_once(
    fresh_service: Service,
) -> None:
    ec = fresh_service.client()
    create_group(ec, GROUP, members=3)
    group = wait_group_available(ec, GROUP)
    old = primary_id(group)
    endpoint = primary_address(group)
    keys = _seed(endpoint)

    ec.test_failover(ReplicationGroupId=GROUP, NodeGroupId="0001")
    fresh_service.kill()
    fresh_service.start()
    ec = fresh_service.client()

    after = wait_group_available(ec, GROUP)
    new = primary_id(after)
    own = read_endpoints(after)
    assert sorted(roles(after).values()) == ["primary", "replica", "replica"]
    assert primary_address(after) == endpoint
    assert run_id(endpoint) == run_id(own[new])
    for member, address in own.items():
        if member != new:
            wait_for(lambda a=address: replica_link_up(a, own[new]), timeout=15)
    wait_for(lambda: all_members_available(ec, after), timeout=15)
    assert missing_keys(endpoint, keys) == []
    completed = [m for m in _failover_events(ec) if m.startswith("Failover from")]
    assert completed == [f"Failover from primary node {old} to replica node {new} completed"]
