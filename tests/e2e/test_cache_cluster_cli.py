"""The same life of a cluster through the real AWS CLI."""

from __future__ import annotations

import pytest
from engine_clients import config_get_cluster, memcached_roundtrip, redis_roundtrip
from service_helpers import Service

pytestmark = pytest.mark.timeout(240)


def test_aws_cli_lifecycle(service: Service) -> None:
    created = service.aws(
        "create-cache-cluster",
        "--cache-cluster-id",
        "cli-redis",
        "--engine",
        "redis",
        "--cache-node-type",
        "cache.t3.micro",
        "--num-cache-nodes",
        "1",
    )
    assert created["CacheCluster"]["CacheClusterStatus"] == "creating"
    service.aws(
        "create-cache-cluster",
        "--cache-cluster-id",
        "cli-mc",
        "--engine",
        "memcached",
        "--cache-node-type",
        "cache.t3.micro",
        "--num-cache-nodes",
        "3",
        "--az-mode",
        "cross-az",
        "--preferred-availability-zones",
        "us-east-1a",
        "us-east-1b",
        "us-east-1c",
    )
    for cluster_id in ("cli-redis", "cli-mc"):
        service.aws("wait", "cache-cluster-available", "--cache-cluster-id", cluster_id)

    described = service.aws("describe-cache-clusters", "--show-cache-node-info")
    by_id = {c["CacheClusterId"]: c for c in described["CacheClusters"]}
    redis_node = by_id["cli-redis"]["CacheNodes"][0]["Endpoint"]
    redis_roundtrip(redis_node["Address"], redis_node["Port"], "cli", "works")
    mc = by_id["cli-mc"]
    assert [n["CustomerAvailabilityZone"] for n in mc["CacheNodes"]] == [
        "us-east-1a",
        "us-east-1b",
        "us-east-1c",
    ]
    for node in mc["CacheNodes"]:
        memcached_roundtrip(node["Endpoint"]["Address"], 11211, "cli", node["CacheNodeId"])
    config = mc["ConfigurationEndpoint"]
    version, _ = config_get_cluster(config["Address"], config["Port"])

    service.aws(
        "modify-cache-cluster",
        "--cache-cluster-id",
        "cli-mc",
        "--num-cache-nodes",
        "5",
        "--apply-immediately",
    )
    service.aws("wait", "cache-cluster-available", "--cache-cluster-id", "cli-mc")
    grown_version, discovered = config_get_cluster(config["Address"], config["Port"])
    assert len(discovered) == 5 and grown_version > version

    rebooted = service.aws(
        "reboot-cache-cluster",
        "--cache-cluster-id",
        "cli-mc",
        "--cache-node-ids-to-reboot",
        "0001",
        "0003",
    )
    assert rebooted["CacheCluster"]["CacheClusterStatus"] == "rebooting cache cluster nodes"
    service.aws("wait", "cache-cluster-available", "--cache-cluster-id", "cli-mc")

    events = service.aws(
        "describe-events", "--source-type", "cache-cluster", "--source-identifier", "cli-mc"
    )
    assert "Cache node 0001 restarted" in [e["Message"] for e in events["Events"]]

    for cluster_id in ("cli-redis", "cli-mc"):
        service.aws("delete-cache-cluster", "--cache-cluster-id", cluster_id)
    for cluster_id in ("cli-redis", "cli-mc"):
        service.aws("wait", "cache-cluster-deleted", "--cache-cluster-id", cluster_id)
        assert not (service.data_dir / "clusters" / cluster_id).exists()
    assert service.engines() == {}

    failed = service.aws("describe-cache-clusters", "--cache-cluster-id", "cli-mc", check=False)
    assert failed.returncode != 0
    assert "CacheClusterNotFound" in failed.stderr
