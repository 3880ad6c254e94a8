"""A writer that keeps writing through the primary endpoint and remembers what was
acknowledged (``WAIT 1``: at least one replica has it), for failover tests."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis
from botocore.client import BaseClient
from redis.backoff import NoBackoff
from redis.retry import Retry


@dataclass
class Writer:
    address: str
    port: int = 6379
    acknowledged: list[int] = field(default_factory=list)
    failures: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=10)

    def _client(self) -> redis.Redis:
        # No client-side retries: a WAIT retried on a new connection would count the
        # acknowledgements of another server, not of the write just sent.
        return redis.Redis(
            host=self.address,
            port=self.port,
            socket_timeout=0.3,
            socket_connect_timeout=0.3,
            retry=Retry(NoBackoff(), 0),
        )

    def _run(self) -> None:
        client = self._client()
        value = 0
        while not self._stop.is_set():
            value += 1
            try:
                # One round trip on one connection: the WAIT counts replicas of this write.
                pipe = client.pipeline(transaction=False)
                pipe.set(f"chaos:{value}", value)
                pipe.set("chaos:last", value)
                pipe.execute_command("WAIT", 1, 500)
                if int(pipe.execute()[-1]) >= 1:
                    self.acknowledged.append(value)
            except redis.RedisError:
                self.failures += 1
                client.close()
                client = self._client()
                self._stop.wait(0.005)
        client.close()

    def missing_on(self, address: str, port: int = 6379) -> list[int]:
        """Acknowledged writes that ``address`` does not have."""
        client = redis.Redis(host=address, port=port, socket_timeout=5)
        missing = []
        try:
            acked = list(self.acknowledged)
            for start in range(0, len(acked), 500):
                chunk = acked[start : start + 500]
                values = client.mget([f"chaos:{v}" for v in chunk])
                missing += [v for v, got in zip(chunk, values, strict=True) if got is None]
            last = client.get("chaos:last")
            if acked and (last is None or int(last) < acked[-1]):
                missing.append(-acked[-1])  # the newest value went backwards: stale data
        finally:
            client.close()
        return missing


def group(client: BaseClient, group_id: str) -> dict[str, Any]:
    return dict(
        client.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][0]
    )


def primary_member(client: BaseClient, group_id: str) -> str:
    members = group(client, group_id)["NodeGroups"][0]["NodeGroupMembers"]
    return next(m["CacheClusterId"] for m in members if m["CurrentRole"] == "primary")


def all_healthy(client: BaseClient, group_id: str, size: int) -> bool:
    described = group(client, group_id)
    if described["Status"] != "available" or len(described["MemberClusters"]) != size:
        return False
    clusters = client.describe_cache_clusters(ShowCacheNodeInfo=True)["CacheClusters"]
    members = [c for c in clusters if c.get("ReplicationGroupId") == group_id]
    return len(members) == size and all(c["CacheClusterStatus"] == "available" for c in members)


def wait_until(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout}s")
        time.sleep(0.05)
