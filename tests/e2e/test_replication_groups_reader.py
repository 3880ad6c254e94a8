"""The reader endpoint spreads new connections over every synced replica (nftables),
and never over the primary, also after a failover."""

from __future__ import annotations

import pytest
from group_helpers import (
    connect,
    create_group,
    describe_group,
    info,
    primary_id,
    read_endpoints,
    reader_address,
    wait_group_available,
    wait_group_gone,
)
from service_helpers import Service, wait_for

from cacheyard.engines import reader_spread

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(not reader_spread.available(), reason="needs root and nftables"),
]


def servers_behind(address: str, connections: int = 6) -> set[str]:
    """The run_id of the server each new connection to ``address`` reaches."""
    seen = set()
    for _ in range(connections):
        client = connect(address)
        try:
            seen.add(str(client.info("server")["run_id"]))
            assert client.info("replication")["role"] == "slave"
        finally:
            client.close()
    return seen


def replica_run_ids(group: dict[str, object]) -> set[str]:
    primary = primary_id(group)
    return {
        str(info(address, "server")["run_id"])
        for member, address in read_endpoints(group).items()
        if member != primary
    }


def test_reader_endpoint_reaches_every_replica(service: Service) -> None:
    ec = service.client()
    create_group(ec, "readers")
    group = wait_group_available(ec, "readers")
    endpoint = reader_address(group)
    wait_for(lambda: servers_behind(endpoint) == replica_run_ids(describe_group(ec, "readers")))

    ec.test_failover(ReplicationGroupId="readers", NodeGroupId="0001")
    wait_for(lambda: primary_id(describe_group(ec, "readers")) != primary_id(group))
    group = wait_group_available(ec, "readers")
    wait_for(lambda: servers_behind(endpoint) == replica_run_ids(describe_group(ec, "readers")))

    ec.delete_replication_group(ReplicationGroupId="readers")
    wait_group_gone(ec, "readers")
    assert reader_spread.targets(endpoint) is None


def test_down_leaves_no_reader_rule_behind(fresh_service: Service) -> None:
    """Rules outlive processes; `cacheyard down` removes its range's, so a reused address
    is never sent elsewhere."""
    ec = fresh_service.client()
    create_group(ec, "leftover")
    endpoint = reader_address(wait_group_available(ec, "leftover"))
    wait_for(lambda: reader_spread.targets(endpoint) is not None)
    fresh_service.down()
    assert reader_spread.targets(endpoint) is None
