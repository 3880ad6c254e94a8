"""An engine process killed with SIGKILL comes back on the same address, with events."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest
from engine_clients import memcached_roundtrip, redis_roundtrip
from service_helpers import Service, messages, wait_available, wait_for

from cacheyard.engines.host import LocalEngineHost

pytestmark = pytest.mark.timeout(120)

Roundtrip = Callable[[str, int, str, str], None]


@pytest.mark.parametrize(
    ("engine", "roundtrip"), [("redis", redis_roundtrip), ("memcached", memcached_roundtrip)]
)
def test_killed_engine_restarts_in_place(
    service: Service, engine: str, roundtrip: Roundtrip
) -> None:
    ec = service.client()
    cluster_id = f"recover-{engine}"
    ec.create_cache_cluster(
        CacheClusterId=cluster_id, Engine=engine, CacheNodeType="cache.t3.micro", NumCacheNodes=1
    )
    endpoint = wait_available(ec, cluster_id)["CacheNodes"][0]["Endpoint"]
    node_dir = service.data_dir / "clusters" / cluster_id / "nodes" / "0001"
    killed = service.engines()[node_dir]

    assert LocalEngineHost().kill(node_dir, signal.SIGKILL)

    def restarted() -> bool:
        current = service.engines().get(node_dir)
        return current is not None and current.pid != killed.pid

    wait_for(restarted, timeout=30)
    wait_for(lambda: "Finished recovery for cache nodes 0001" in messages(ec, cluster_id))
    assert "Recovering cache nodes 0001" in messages(ec, cluster_id)
    again = wait_available(ec, cluster_id)["CacheNodes"][0]["Endpoint"]
    assert again == endpoint
    roundtrip(endpoint["Address"], endpoint["Port"], "back", "again")
    ec.delete_cache_cluster(CacheClusterId=cluster_id)
    ec.get_waiter("cache_cluster_deleted").wait(
        CacheClusterId=cluster_id, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
