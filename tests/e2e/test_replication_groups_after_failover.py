"""After a failover the promoted member owns the primary role for good.

A failover (TestFailover here) leaves the spec's original primary behind as a
replica. Later changes must treat the promoted member as the primary: no
phantom pending PrimaryClusterId, no unrequested switch back when automatic
failover is turned off, and the old primary can be removed like any replica.
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
    primary_address,
    primary_id,
    read_endpoints,
    replica_link_up,
    role,
    roles,
    run_id,
    wait_group_available,
)
from service_helpers import Service, wait_for

pytestmark = pytest.mark.timeout(90)


def _failed_over(client: BaseClient, group_id: str) -> tuple[str, str, dict[str, Any]]:
    """A 3-member group after one TestFailover: (old primary, new primary, group)."""
    create_group(client, group_id, members=3)
    old = primary_id(wait_group_available(client, group_id))
    client.test_failover(ReplicationGroupId=group_id, NodeGroupId="0001")
    wait_for(lambda: primary_id(describe_group(client, group_id)) != old, timeout=15)
    group = wait_group_available(client, group_id)
    own = read_endpoints(group)
    new = primary_id(group)
    wait_for(lambda: replica_link_up(own[old], own[new]), timeout=15)
    wait_for(lambda: all_members_available(client, group), timeout=15)
    return old, new, group


def _group_messages(client: BaseClient, group_id: str) -> list[str]:
    found = client.describe_events(SourceType="replication-group", SourceIdentifier=group_id)
    return [e["Message"] for e in found["Events"]]


def test_no_phantom_pending_primary_after_failover(service: Service) -> None:
    ec = service.client()
    group_id = "rg-phantom"
    _old, new, _group = _failed_over(ec, group_id)

    answer = ec.increase_replica_count(
        ReplicationGroupId=group_id, NewReplicaCount=3, ApplyImmediately=True
    )["ReplicationGroup"]
    grown = wait_group_available(ec, group_id)
    assert primary_id(grown) == new
    assert answer["Status"] == "modifying"
    assert answer["PendingModifiedValues"] == {}


def test_disabling_automatic_failover_keeps_the_promoted_primary(service: Service) -> None:
    ec = service.client()
    group_id = "rg-nofailback"
    old, new, group = _failed_over(ec, group_id)
    own = read_endpoints(group)
    new_run_id = run_id(own[new])

    answer = ec.modify_replication_group(
        ReplicationGroupId=group_id,
        AutomaticFailoverEnabled=False,
        MultiAZEnabled=False,
        ApplyImmediately=True,
    )["ReplicationGroup"]
    assert answer["AutomaticFailover"] == "disabled"
    # a change that needs a full reconciler pass: any switch back would be done by then
    ec.increase_replica_count(ReplicationGroupId=group_id, NewReplicaCount=3, ApplyImmediately=True)
    grown = wait_group_available(ec, group_id)
    moved = [m for m in _group_messages(ec, group_id) if m.startswith("Primary role moved")]
    assert moved == []
    assert primary_id(grown) == new
    assert run_id(primary_address(grown)) == new_run_id
    assert role(own[old]) == "slave"


def test_old_primary_can_be_removed_after_failover(service: Service) -> None:
    ec = service.client()
    group_id = "rg-dropold"
    old, new, _group = _failed_over(ec, group_id)

    ec.decrease_replica_count(
        ReplicationGroupId=group_id, ReplicasToRemove=[old], ApplyImmediately=True
    )
    shrunk = wait_group_available(ec, group_id)
    assert old not in shrunk["MemberClusters"]
    assert sorted(roles(shrunk).values()) == ["primary", "replica"]
    assert primary_id(shrunk) == new

    ec.modify_replication_group(
        ReplicationGroupId=group_id,
        AutomaticFailoverEnabled=False,
        MultiAZEnabled=False,
        ApplyImmediately=True,
    )

    def refuses_nothing() -> bool:
        client = connect(primary_address(shrunk))
        try:
            return client.config_get("min-replicas-to-write")["min-replicas-to-write"] == "0"
        finally:
            client.close()

    # without automatic failover a primary no longer needs a replica to take writes
    wait_for(refuses_nothing, timeout=3)
    ec.increase_replica_count(ReplicationGroupId=group_id, NewReplicaCount=2, ApplyImmediately=True)
    grown = wait_group_available(ec, group_id, timeout=5)
    assert len(grown["MemberClusters"]) == 3
    assert primary_id(grown) == new
