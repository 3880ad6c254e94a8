"""SIGKILL of the control plane at any moment loses nothing and orphans nothing.

The kill lands at several points after the API answered (the reconciler is
starting processes, probing them, or writing status); after a restart each
cluster converges with exactly one process per node, and a cache that was
already running is adopted, not restarted.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest
import redis
from engine_clients import config_get_cluster
from service_helpers import Service, describe, wait_available

pytestmark = pytest.mark.timeout(240)

KILL_DELAYS = (0.0, 0.01, 0.04)


def processes_per_directory(root: Path) -> Counter[Path]:
    """Every live process whose working directory is below ``root``, counted by directory."""
    found: Counter[Path] = Counter()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(proc / "cwd"))
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and cwd.is_relative_to(root):
            found[cwd] += 1
    return found


@pytest.mark.parametrize("delay", KILL_DELAYS)
def test_kill_during_create_converges_without_duplicates(
    fresh_service: Service, delay: float
) -> None:
    ec = fresh_service.client()
    ec.create_cache_cluster(
        CacheClusterId="crash-create",
        Engine="memcached",
        CacheNodeType="cache.t3.micro",
        NumCacheNodes=3,
        AZMode="cross-az",
    )
    time.sleep(delay)  # where the kill lands is the point of the test, not a wait
    fresh_service.kill()
    fresh_service.start()

    cluster = wait_available(fresh_service.client(), "crash-create")
    assert [n["CacheNodeStatus"] for n in cluster["CacheNodes"]] == ["available"] * 3
    running = fresh_service.engines()
    nodes_dir = fresh_service.data_dir / "clusters" / "crash-create" / "nodes"
    assert sorted(p.name for p in running if p.parent == nodes_dir) == ["0001", "0002", "0003"]
    # three nodes plus the configuration endpoint, one process each, nothing else
    assert len(running) == 4
    assert set(processes_per_directory(fresh_service.data_dir).values()) == {1}
    config = cluster["ConfigurationEndpoint"]
    _, discovered = config_get_cluster(config["Address"], config["Port"])
    assert len(discovered) == 3


@pytest.mark.parametrize("delay", KILL_DELAYS)
def test_kill_during_delete_finishes_the_delete(fresh_service: Service, delay: float) -> None:
    ec = fresh_service.client()
    ec.create_cache_cluster(
        CacheClusterId="crash-delete",
        Engine="memcached",
        CacheNodeType="cache.t3.micro",
        NumCacheNodes=3,
    )
    wait_available(ec, "crash-delete")
    ec.delete_cache_cluster(CacheClusterId="crash-delete")
    time.sleep(delay)  # where the kill lands is the point of the test, not a wait
    fresh_service.kill()
    fresh_service.start()

    ec = fresh_service.client()
    ec.get_waiter("cache_cluster_deleted").wait(
        CacheClusterId="crash-delete", WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    assert fresh_service.engines() == {}
    assert not (fresh_service.data_dir / "clusters" / "crash-delete").exists()
    with pytest.raises(ec.exceptions.CacheClusterNotFoundFault):
        describe(ec, "crash-delete")


def test_running_cache_is_adopted_not_restarted(fresh_service: Service) -> None:
    ec = fresh_service.client()
    ec.create_cache_cluster(
        CacheClusterId="adopt", Engine="redis", CacheNodeType="cache.t3.micro", NumCacheNodes=1
    )
    node = wait_available(ec, "adopt")["CacheNodes"][0]["Endpoint"]
    client = redis.Redis(host=node["Address"], port=node["Port"], socket_timeout=5)
    client.set("survives", "yes")
    before = fresh_service.engines()

    fresh_service.kill()
    # With the control plane gone, the cache keeps serving.
    assert client.get("survives") == b"yes"
    fresh_service.start()

    ec = fresh_service.client()
    assert describe(ec, "adopt")["CacheClusterStatus"] == "available"
    assert fresh_service.engines() == before
    assert client.get("survives") == b"yes"
    client.close()
