"""Chaos: the primary is killed or hung again and again while a client writes.

Every round must end with the group `available` and all members healthy, and no
write acknowledged with ``WAIT 1`` may be lost; the newest value never goes
back (a resumed old primary brings back no stale data). `make test` runs a
few rounds; set CACHEYARD_CHAOS_ROUNDS for the long run, e.g.
``CACHEYARD_CHAOS_ROUNDS=50 .venv/bin/pytest tests/e2e/test_chaos.py``.
"""

from __future__ import annotations

import os
import signal

import pytest
from chaos_helpers import Writer, all_healthy, group, primary_member, wait_until
from service_helpers import Service

from cacheyard.engines import isolation
from cacheyard.engines.host import LocalEngineHost

ROUNDS = int(os.environ.get("CACHEYARD_CHAOS_ROUNDS", "2"))
pytestmark = pytest.mark.timeout(60 + ROUNDS * 40)


def _create(service: Service, group_id: str) -> Writer:
    ec = service.client()
    ec.create_replication_group(
        ReplicationGroupId=group_id,
        ReplicationGroupDescription="chaos",
        CacheNodeType="cache.t3.micro",
        NumCacheClusters=3,
        AutomaticFailoverEnabled=True,
        MultiAZEnabled=True,
    )
    wait_until(lambda: all_healthy(ec, group_id, 3))
    endpoint = group(ec, group_id)["NodeGroups"][0]["PrimaryEndpoint"]["Address"]
    return Writer(endpoint)


@pytest.mark.parametrize("fault", [signal.SIGKILL, signal.SIGSTOP], ids=["kill", "hang"])
def test_primary_faults_lose_no_acknowledged_write(service: Service, fault: int) -> None:
    ec = service.client()
    group_id = f"chaos-{signal.Signals(fault).name.lower()}"
    writer = _create(service, group_id)
    host = LocalEngineHost()
    writer.start()
    try:
        for _ in range(ROUNDS):
            before = len(writer.acknowledged)
            wait_until(lambda before=before: len(writer.acknowledged) > before + 20)
            victim = primary_member(ec, group_id)
            victim_dir = service.data_dir / "clusters" / victim / "nodes" / "0001"
            hung = host.find(victim_dir)
            assert host.kill(victim_dir, fault)
            wait_until(lambda victim=victim: primary_member(ec, group_id) != victim)
            if hung is not None and fault == signal.SIGSTOP:
                # A hung primary is fenced for good: it never serves again.
                assert host.find(victim_dir) != hung
            after = len(writer.acknowledged)
            wait_until(lambda after=after: len(writer.acknowledged) > after + 20)
            wait_until(lambda: all_healthy(ec, group_id, 3))
    finally:
        writer.stop()
    primary = group(ec, group_id)["NodeGroups"][0]["PrimaryEndpoint"]["Address"]
    assert writer.missing_on(primary) == []
    ec.delete_replication_group(ReplicationGroupId=group_id)
    wait_until(
        lambda: (
            group_id
            not in [
                g["ReplicationGroupId"]
                for g in ec.describe_replication_groups()["ReplicationGroups"]
            ]
        )
    )


@pytest.mark.skipif(
    isolation.unavailable_reason() is not None, reason=str(isolation.unavailable_reason())
)
def test_isolated_primary_is_replaced_and_stale_writes_never_return(service: Service) -> None:
    ec = service.client()
    writer = _create(service, "chaos-isolate")
    old = primary_member(ec, "chaos-isolate")
    old_address = next(
        c["CacheNodes"][0]["Endpoint"]["Address"]
        for c in ec.describe_cache_clusters(ShowCacheNodeInfo=True)["CacheClusters"]
        if c["CacheClusterId"] == old
    )
    writer.start()
    try:
        wait_until(lambda: len(writer.acknowledged) > 20)
        isolation.isolate(old_address)
        try:
            wait_until(lambda: primary_member(ec, "chaos-isolate") != old)
            after = len(writer.acknowledged)
            wait_until(lambda: len(writer.acknowledged) > after + 20)
        finally:
            isolation.heal(old_address)
        wait_until(lambda: all_healthy(ec, "chaos-isolate", 3))
    finally:
        writer.stop()
    described = group(ec, "chaos-isolate")["NodeGroups"][0]
    assert [m["CurrentRole"] for m in described["NodeGroupMembers"]].count("primary") == 1
    assert writer.missing_on(described["PrimaryEndpoint"]["Address"]) == []
