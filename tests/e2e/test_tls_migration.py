"""Migrating a live replication group to TLS, as on ElastiCache: plain text, then
TransitEncryptionMode preferred (TLS and plain text on the same port while clients
move over), then required; and back. No key is lost on the way."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
import redis
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from group_helpers import (
    create_group,
    error_of,
    primary_address,
    primary_id,
    read_endpoints,
    reader_address,
    tls_redis,
    wait_group_available,
)
from redis.backoff import NoBackoff
from redis.retry import Retry
from service_helpers import Service, wait_for

pytestmark = pytest.mark.timeout(240)

GROUP = "tls-move"
KEYS = 200


def plain(address: str) -> redis.Redis:
    return redis.Redis(address, 6379, socket_timeout=5, retry=Retry(NoBackoff(), 0))


def answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False


def modify(ec: BaseClient, **params: Any) -> dict[str, Any]:
    answer = ec.modify_replication_group(ReplicationGroupId=GROUP, ApplyImmediately=True, **params)
    return dict(answer["ReplicationGroup"])


def test_a_live_group_moves_to_tls_and_back(ec: BaseClient, ca: str) -> None:
    create_group(ec, GROUP, members=3)
    group = wait_group_available(ec, GROUP)
    endpoint, reader = primary_address(group), reader_address(group)
    writer = plain(endpoint)
    writer.mset({f"k{i}": i for i in range(KEYS)})
    try:
        # Straight to required, or a mode without TLS: refused, as on AWS.
        for params in (
            {"TransitEncryptionEnabled": True, "TransitEncryptionMode": "required"},
            {"TransitEncryptionEnabled": True},
            {"TransitEncryptionMode": "preferred"},
        ):
            with pytest.raises(ClientError) as raised:
                modify(ec, **params)
            assert error_of(raised)[0] == "InvalidParameterCombination", params

        moving = modify(ec, TransitEncryptionEnabled=True, TransitEncryptionMode="preferred")
        assert moving["Status"] == "modifying"
        group = wait_group_available(ec, GROUP, timeout=120)
        assert (group["TransitEncryptionEnabled"], group["TransitEncryptionMode"]) == (
            True,
            "preferred",
        )
        # Both kinds of client on the same port of every address, with every key.
        for address in [endpoint, reader, *read_endpoints(group).values()]:
            wait_for(lambda a=address: answers(plain(a)) and answers(tls_redis(a, ca)), 20)
            assert plain(address).dbsize() == KEYS
            assert tls_redis(address, ca).dbsize() == KEYS
        wait_for(lambda: answers(writer), timeout=10)
        writer.set("written", "plain")
        tls_redis(endpoint, ca).set("written-tls", "tls")

        # A failover in preferred mode keeps both working on the primary endpoint.
        before = primary_id(group)
        ec.test_failover(ReplicationGroupId=GROUP, NodeGroupId="0001")
        wait_for(lambda: primary_id(wait_group_available(ec, GROUP)) != before, timeout=60)
        wait_for(lambda: answers(plain(endpoint)) and answers(tls_redis(endpoint, ca)), 20)
        wait_for(lambda: _writes(plain(endpoint)) and _writes(tls_redis(endpoint, ca)), 20)

        # Snapshots are read over the members' internal port meanwhile.
        ec.create_snapshot(ReplicationGroupId=GROUP, SnapshotName="tls-move-snap")
        wait_for(
            lambda: (
                ec.describe_snapshots(SnapshotName="tls-move-snap")["Snapshots"][0][
                    "SnapshotStatus"
                ]
                == "available"
            ),
            timeout=30,
        )
        ec.delete_snapshot(SnapshotName="tls-move-snap")
        wait_group_available(ec, GROUP)

        modify(ec, TransitEncryptionMode="required")
        group = wait_group_available(ec, GROUP, timeout=120)
        assert group["TransitEncryptionMode"] == "required"
        for address in [endpoint, *read_endpoints(group).values()]:
            wait_for(lambda a=address: answers(tls_redis(a, ca)), 20)
            assert not answers(plain(address))  # TLS only now
            client = tls_redis(address, ca)
            assert client.get("written") == b"plain" and client.get("written-tls") == b"tls"
            assert client.dbsize() >= KEYS + 2

        # And back: required -> preferred -> plain text.
        with pytest.raises(ClientError) as raised:
            modify(ec, TransitEncryptionEnabled=False)
        assert error_of(raised)[0] == "InvalidParameterCombination"
        modify(ec, TransitEncryptionMode="preferred")
        wait_group_available(ec, GROUP, timeout=120)
        modify(ec, TransitEncryptionEnabled=False)
        group = wait_group_available(ec, GROUP, timeout=120)
        assert group["TransitEncryptionEnabled"] is False
        assert "TransitEncryptionMode" not in group
        wait_for(lambda: answers(plain(endpoint)), 20)
        assert plain(endpoint).get("written-tls") == b"tls"
        assert not answers(tls_redis(endpoint, ca))
    finally:
        ec.delete_replication_group(ReplicationGroupId=GROUP)


def _writes(client: redis.Redis) -> bool:
    try:
        return bool(client.set("after-failover", "yes"))
    except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError):
        return False


def test_a_front_that_died_or_hung_is_started_again(
    service: Service, ec: BaseClient, ca: str
) -> None:
    """In preferred mode a front holds each member's public port; one that was killed,
    or that stopped relaying (SIGSTOP) while its Redis answers, is replaced by a pass of
    the group's reconciler, with an event. Leaving the mode removes fronts and their
    directories (their configuration holds the control password)."""
    group_id = "front-keep"
    create_group(
        ec,
        group_id,
        members=2,
        multi_az=False,
        TransitEncryptionEnabled=True,
        TransitEncryptionMode="preferred",
    )
    group = wait_group_available(ec, group_id, timeout=60)
    try:
        for member, address in read_endpoints(group).items():
            for sig, name in ((signal.SIGKILL, "killed"), (signal.SIGSTOP, "hung")):
                front = service.data_dir / "clusters" / member / "nodes" / "0001" / "front"
                old = service.engines()[front]
                os.kill(old.pid, sig)
                started = time.monotonic()
                wait_for(lambda a=address: answers(plain(a)), timeout=40)
                print(f"\n{member}: front {name}, answering again after", end=" ")
                print(f"{time.monotonic() - started:.2f} s", end="")
                assert answers(tls_redis(address, ca)), name
                assert service.engines()[front].pid != old.pid, name
            restarts = [
                e["Message"]
                for e in ec.describe_events(SourceType="cache-cluster", SourceIdentifier=member)[
                    "Events"
                ]
                if "front" in e["Message"]
            ]
            assert len(restarts) == 2, restarts

        ec.modify_replication_group(
            ReplicationGroupId=group_id, TransitEncryptionMode="required", ApplyImmediately=True
        )
        wait_group_available(ec, group_id, timeout=120)
        clusters = service.data_dir / "clusters"
        wait_for(lambda: not list(clusters.glob("front-keep-*/nodes/0001/front")), timeout=20)
        assert not [path for path in service.engines() if path.name == "front"]
    finally:
        ec.delete_replication_group(ReplicationGroupId=group_id)
