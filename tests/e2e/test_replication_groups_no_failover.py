"""Without automatic failover a failed primary is rebuilt from a replica and takes its
role back, as ElastiCache replaces a failed primary: the data survives and the
same member ends up primary again."""

from __future__ import annotations

import signal

import pytest
from group_helpers import (
    connect,
    create_group,
    describe_group,
    missing_keys,
    primary_address,
    primary_id,
    wait_group_available,
)
from service_helpers import Service, wait_for

from cacheyard.engines.host import LocalEngineHost

pytestmark = pytest.mark.timeout(90)


def test_failed_primary_is_rebuilt_from_a_replica(service: Service) -> None:
    ec = service.client()
    create_group(ec, "manual", members=2, automatic_failover=False, multi_az=False)
    group = wait_group_available(ec, "manual")
    primary = primary_id(group)
    keys = [f"manual:{i}" for i in range(200)]
    client = connect(primary_address(group))
    for key in keys:
        client.set(key, key)
    assert int(client.execute_command("WAIT", 1, 2000)) == 1
    client.close()

    node_dir = service.data_dir / "clusters" / primary / "nodes" / "0001"
    host = LocalEngineHost()
    killed = host.find(node_dir)
    assert host.kill(node_dir, signal.SIGKILL)

    def rebuilt() -> bool:
        current = host.find(node_dir)
        if current is None or current == killed:
            return False
        group = describe_group(ec, "manual")
        return group["Status"] == "available" and primary_id(group) == primary

    wait_for(rebuilt, timeout=30)
    wait_for(lambda: missing_keys(primary_address(describe_group(ec, "manual")), keys) == [])
    ec.delete_replication_group(ReplicationGroupId="manual")
