"""The whole life of a Redis and a Memcached cluster, through boto3, on real engines."""

from __future__ import annotations

import pytest
import redis
from engine_clients import config_get_cluster, memcached_roundtrip, redis_roundtrip
from pymemcache.client.base import Client as MemcacheClient
from service_helpers import Service, describe, messages, wait_available, wait_for

from cacheyard.domain.node_types import node_type

pytestmark = pytest.mark.timeout(180)


def test_redis_and_memcached_lifecycle(service: Service) -> None:
    ec = service.client()

    created = ec.create_cache_cluster(
        CacheClusterId="Life-Redis",
        Engine="redis",
        CacheNodeType="cache.t3.small",
        NumCacheNodes=1,
        Tags=[{"Key": "team", "Value": "games"}],
    )["CacheCluster"]
    assert created["CacheClusterId"] == "life-redis"
    assert created["CacheClusterStatus"] == "creating"
    ec.create_cache_cluster(
        CacheClusterId="life-mc",
        Engine="memcached",
        CacheNodeType="cache.m5.large",
        NumCacheNodes=3,
        AZMode="cross-az",
    )

    redis_cluster = wait_available(ec, "life-redis")
    memcached = wait_available(ec, "life-mc")

    # Redis: one node on its own loopback address and the standard port.
    (node,) = redis_cluster["CacheNodes"]
    assert node["CacheNodeStatus"] == "available"
    assert node["Endpoint"]["Port"] == 6379
    assert node["Endpoint"]["Address"].startswith(f"127.{service.address_base}.")
    redis_roundtrip(node["Endpoint"]["Address"], 6379, "greeting", "hello")
    # The node type's memory is the engine's limit.
    small = node_type("cache.t3.small")
    engine = redis.Redis(host=node["Endpoint"]["Address"], port=6379, socket_timeout=5)
    assert engine.config_get("maxmemory") == {"maxmemory": str(small.memory_mb * 1024 * 1024)}
    engine.close()

    # Memcached: three nodes across three zones, each answering.
    nodes = memcached["CacheNodes"]
    assert [n["CacheNodeId"] for n in nodes] == ["0001", "0002", "0003"]
    assert len({n["CustomerAvailabilityZone"] for n in nodes}) == 3
    assert memcached["PreferredAvailabilityZone"] == "Multiple"
    for n in nodes:
        memcached_roundtrip(n["Endpoint"]["Address"], 11211, f"k{n['CacheNodeId']}", "v")
    # Memory and worker threads come from the node type (cache.m5.large: 6.38 GiB, 2 vCPUs).
    large = node_type("cache.m5.large")
    settings = MemcacheClient((nodes[0]["Endpoint"]["Address"], 11211), timeout=5)
    stats = settings.stats("settings")
    settings.close()
    assert int(stats[b"maxbytes"]) == large.memory_mb * 1024 * 1024
    assert int(stats[b"num_threads"]) == large.vcpus
    config = memcached["ConfigurationEndpoint"]
    version, discovered = config_get_cluster(config["Address"], config["Port"])
    assert sorted(ip for _, ip, _ in discovered) == sorted(n["Endpoint"]["Address"] for n in nodes)
    # The usual commands sent to the configuration endpoint reach a node.
    memcached_roundtrip(config["Address"], config["Port"], "via-config", "yes")

    # Grow Memcached to five nodes: discovery shows five and a higher version.
    modified = ec.modify_cache_cluster(
        CacheClusterId="life-mc", NumCacheNodes=5, ApplyImmediately=True
    )["CacheCluster"]
    assert modified["CacheClusterStatus"] == "modifying"
    memcached = wait_available(ec, "life-mc")
    assert memcached["NumCacheNodes"] == 5
    grown_version, discovered = config_get_cluster(config["Address"], config["Port"])
    assert grown_version > version
    assert len(discovered) == 5
    for n in memcached["CacheNodes"]:
        memcached_roundtrip(n["Endpoint"]["Address"], 11211, "after-grow", n["CacheNodeId"])

    # Shrink by naming the node to remove.
    ec.modify_cache_cluster(
        CacheClusterId="life-mc",
        NumCacheNodes=4,
        CacheNodeIdsToRemove=["0002"],
        ApplyImmediately=True,
    )
    memcached = wait_available(ec, "life-mc")
    assert [n["CacheNodeId"] for n in memcached["CacheNodes"]] == ["0001", "0003", "0004", "0005"]
    shrunk_version, discovered = config_get_cluster(config["Address"], config["Port"])
    assert shrunk_version > grown_version and len(discovered) == 4

    # Reboot really restarts the chosen node's process.
    node_dir = service.data_dir / "clusters" / "life-redis" / "nodes" / "0001"
    pid_before = service.engines()[node_dir].pid
    rebooting = ec.reboot_cache_cluster(CacheClusterId="life-redis", CacheNodeIdsToReboot=["0001"])[
        "CacheCluster"
    ]
    assert rebooting["CacheClusterStatus"] == "rebooting cache cluster nodes"
    wait_available(ec, "life-redis")
    assert service.engines()[node_dir].pid != pid_before
    redis_roundtrip(node["Endpoint"]["Address"], 6379, "after-reboot", "ok")
    assert "Cache node 0001 restarted" in messages(ec, "life-redis")

    # Tags by ARN.
    tags = ec.list_tags_for_resource(ResourceName=redis_cluster["ARN"])["TagList"]
    assert tags == [{"Key": "team", "Value": "games"}]

    # Delete both: the waiter sees them gone, and so do we: no process, no directory.
    assert (
        ec.delete_cache_cluster(CacheClusterId="life-redis")["CacheCluster"]["CacheClusterStatus"]
        == "deleting"
    )
    ec.delete_cache_cluster(CacheClusterId="life-mc")
    for cluster_id in ("life-redis", "life-mc"):
        ec.get_waiter("cache_cluster_deleted").wait(
            CacheClusterId=cluster_id, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        assert not (service.data_dir / "clusters" / cluster_id).exists()
    assert service.engines() == {}
    assert "Cache cluster deleted" in messages(ec, "life-mc")


def test_events_tell_the_story(service: Service) -> None:
    ec = service.client()
    ec.create_cache_cluster(
        CacheClusterId="story", Engine="memcached", CacheNodeType="cache.t3.micro", NumCacheNodes=2
    )
    wait_available(ec, "story")
    wait_for(lambda: "Cache cluster created" in messages(ec, "story"))
    assert messages(ec, "story") == [
        "Added cache node 0001 in availability zone us-east-1a",
        "Added cache node 0002 in availability zone us-east-1a",
        "Cache cluster created",
    ]
    ec.delete_cache_cluster(CacheClusterId="story")
    ec.get_waiter("cache_cluster_deleted").wait(
        CacheClusterId="story", WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    with pytest.raises(ec.exceptions.CacheClusterNotFoundFault):
        describe(ec, "story")
