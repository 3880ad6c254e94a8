"""Chaos: the primary is killed or hung again and again while a client writes.

Every round must end with the group `available` and all members healthy, and no
write acknowledged with ``WAIT 1`` may be lost (a stale primary coming back
would show as missing keys). `make test` runs a few rounds; set
CACHEYARD_CHAOS_ROUNDS for the long run, e.g.
``CACHEYARD_CHAOS_ROUNDS=50 .venv/bin/pytest tests/e2e/test_chaos.py``.
"""

from __future__ import annotations

import os
import signal

import pytest
from botocore.client import BaseClient
from group_helpers import (
    Writer,
    all_members_available,
    connect,
    create_group,
    describe_group,
    missing_keys,
    primary_address,
    primary_id,
    read_endpoints,
    roles,
    wait_group_available,
    wait_more_writes,
)
from service_helpers import Service, wait_for

from cacheyard.controller.replication_groups import MIN_REPLICAS_MAX_LAG
from cacheyard.engines import isolation
from cacheyard.engines.host import LocalEngineHost

ROUNDS = int(os.environ.get("CACHEYARD_CHAOS_ROUNDS", "2"))
pytestmark = pytest.mark.timeout(60 + ROUNDS * 40)


def healthy(ec: BaseClient, group_id: str) -> bool:
    group = describe_group(ec, group_id)
    return group["Status"] == "available" and all_members_available(ec, group)


def start_group(ec: BaseClient, group_id: str) -> Writer:
    create_group(ec, group_id)
    group = wait_group_available(ec, group_id)
    wait_for(lambda: healthy(ec, group_id))
    writer = Writer(primary_address(group), group_id)
    writer.start()
    return writer


@pytest.mark.parametrize("fault", [signal.SIGKILL, signal.SIGSTOP], ids=["kill", "hang"])
def test_primary_faults_lose_no_acknowledged_write(service: Service, fault: int) -> None:
    ec = service.client()
    group_id = f"chaos-{signal.Signals(fault).name.lower()}"
    writer = start_group(ec, group_id)
    host = LocalEngineHost()
    try:
        for _ in range(ROUNDS):
            wait_more_writes(writer, writer.count() + 20)
            victim = primary_id(describe_group(ec, group_id))
            victim_dir = service.data_dir / "clusters" / victim / "nodes" / "0001"
            before = host.find(victim_dir)
            assert host.kill(victim_dir, fault)
            wait_for(lambda victim=victim: primary_id(describe_group(ec, group_id)) != victim)
            # The old primary, dead or hung, is replaced: a hung one is fenced for good.
            wait_for(lambda victim_dir=victim_dir, before=before: host.find(victim_dir) != before)
            wait_more_writes(writer, writer.count() + 20)
            wait_for(lambda: healthy(ec, group_id), timeout=30)
    finally:
        writer.stop()
    assert missing_keys(primary_address(describe_group(ec, group_id)), writer.keys()) == []


@pytest.mark.skipif(
    isolation.unavailable_reason() is not None, reason=str(isolation.unavailable_reason())
)
def test_isolated_primary_is_replaced_and_stale_writes_never_return(service: Service) -> None:
    ec = service.client()
    writer = start_group(ec, "chaos-isolate")
    group = describe_group(ec, "chaos-isolate")
    old = primary_id(group)
    old_address = read_endpoints(group)[old]
    old_dir = service.data_dir / "clusters" / old / "nodes" / "0001"
    host = LocalEngineHost()
    isolated_process = host.find(old_dir)
    try:
        wait_more_writes(writer, 20)
        isolation.isolate(old_address)
        try:
            # Within the bound, the isolated primary can take no more writes: it is
            # fenced (killed); min-replicas-to-write would refuse them after the lag.
            wait_for(
                lambda: host.find(old_dir) != isolated_process,
                timeout=MIN_REPLICAS_MAX_LAG + 1,
            )
            wait_for(lambda: primary_id(describe_group(ec, "chaos-isolate")) != old)
            wait_more_writes(writer, writer.count() + 20)
        finally:
            isolation.heal(old_address)
        wait_for(lambda: healthy(ec, "chaos-isolate"), timeout=30)
    finally:
        writer.stop()
    group = describe_group(ec, "chaos-isolate")
    assert list(roles(group).values()).count("primary") == 1
    assert roles(group)[old] == "replica"
    assert missing_keys(primary_address(group), writer.keys()) == []


def test_new_primary_dying_right_after_a_failover_keeps_the_data(service: Service) -> None:
    """Two failures in a row: the second primary dies while the last replica is still
    being repointed to it. That replica still has every byte and must be promoted,
    not wiped by a fresh empty primary."""
    ec = service.client()
    create_group(ec, "chaos-double")
    group = wait_group_available(ec, "chaos-double")
    wait_for(lambda: healthy(ec, "chaos-double"))
    client = connect(primary_address(group))
    keys = [f"double:{i}" for i in range(100)]
    for key in keys:
        client.set(key, key)
    assert int(client.execute_command("WAIT", 2, 2000)) == 2
    client.close()
    host = LocalEngineHost()
    first = primary_id(group)
    assert host.kill(service.data_dir / "clusters" / first / "nodes" / "0001", signal.SIGKILL)
    wait_for(lambda: primary_id(describe_group(ec, "chaos-double")) != first)
    second = primary_id(describe_group(ec, "chaos-double"))
    assert host.kill(service.data_dir / "clusters" / second / "nodes" / "0001", signal.SIGKILL)
    wait_for(lambda: primary_id(describe_group(ec, "chaos-double")) != second)
    wait_for(lambda: healthy(ec, "chaos-double"), timeout=30)
    assert missing_keys(primary_address(describe_group(ec, "chaos-double")), keys) == []
