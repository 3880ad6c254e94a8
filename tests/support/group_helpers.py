"""Replication groups through boto3, and their engines through redis-py.

Waiters poll tightly (the AWS waiters sleep a whole Delay between polls), and
a background writer counts the writes a replica acknowledged (``WAIT``), so a
test can tell whether any acknowledged write was lost while roles moved.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from typing import Any

import pytest
import redis
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from redis.backoff import NoBackoff
from redis.retry import Retry
from service_helpers import wait_for

NODE_TYPE = "cache.t3.micro"
PORT = 6379


def create_group(
    client: BaseClient,
    group_id: str,
    members: int = 3,
    automatic_failover: bool = True,
    multi_az: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    answer = client.create_replication_group(
        ReplicationGroupId=group_id,
        ReplicationGroupDescription=f"{group_id} under test",
        Engine="redis",
        CacheNodeType=NODE_TYPE,
        NumCacheClusters=members,
        AutomaticFailoverEnabled=automatic_failover,
        MultiAZEnabled=multi_az,
        **extra,
    )
    return dict(answer["ReplicationGroup"])


def describe_group(client: BaseClient, group_id: str) -> dict[str, Any]:
    groups = client.describe_replication_groups(ReplicationGroupId=group_id)
    return dict(groups["ReplicationGroups"][0])


def wait_group_available(client: BaseClient, group_id: str, timeout: float = 30) -> dict[str, Any]:
    """Poll DescribeReplicationGroups until the group is available; the group."""

    def available() -> dict[str, Any] | None:
        group = describe_group(client, group_id)
        return group if group["Status"] == "available" else None

    group: dict[str, Any] = wait_for(available, timeout=timeout, interval=0.05)
    return group


def wait_group_gone(client: BaseClient, group_id: str, timeout: float = 30) -> None:
    def gone() -> bool:
        try:
            describe_group(client, group_id)
        except ClientError as exc:
            code: str = exc.response["Error"]["Code"]
            return code == "ReplicationGroupNotFoundFault"
        return False

    wait_for(gone, timeout=timeout)


def node_group(group: dict[str, Any]) -> dict[str, Any]:
    (only,) = group["NodeGroups"]
    return dict(only)


def roles(group: dict[str, Any]) -> dict[str, str]:
    """Member cluster id -> CurrentRole."""
    return {m["CacheClusterId"]: m["CurrentRole"] for m in node_group(group)["NodeGroupMembers"]}


def primary_id(group: dict[str, Any]) -> str:
    (primary,) = [member for member, role in roles(group).items() if role == "primary"]
    return primary


def read_endpoints(group: dict[str, Any]) -> dict[str, str]:
    """Member cluster id -> its own address (ReadEndpoint)."""
    return {
        m["CacheClusterId"]: m["ReadEndpoint"]["Address"]
        for m in node_group(group)["NodeGroupMembers"]
    }


def primary_address(group: dict[str, Any]) -> str:
    return str(node_group(group)["PrimaryEndpoint"]["Address"])


def reader_address(group: dict[str, Any]) -> str:
    return str(node_group(group)["ReaderEndpoint"]["Address"])


def cluster_statuses(client: BaseClient, cluster_ids: Iterable[str]) -> dict[str, str]:
    found = {}
    for cluster_id in cluster_ids:
        (cluster,) = client.describe_cache_clusters(
            CacheClusterId=cluster_id, ShowCacheNodeInfo=True
        )["CacheClusters"]
        nodes = {n["CacheNodeStatus"] for n in cluster.get("CacheNodes", [])}
        found[cluster_id] = cluster["CacheClusterStatus"] + "/" + ",".join(sorted(nodes))
    return found


def all_members_available(client: BaseClient, group: dict[str, Any]) -> bool:
    statuses = cluster_statuses(client, group["MemberClusters"])
    return set(statuses.values()) == {"available/available"}


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


# ---- the data plane -------------------------------------------------------------------------


def tls_redis(
    address: str, ca: str, user: str | None = None, password: str | None = None
) -> redis.Redis:
    """A TLS client of a node, verified against Cacheyard's CA; a refused AUTH is an
    answer, not a reason to retry."""
    return redis.Redis(
        address,
        PORT,
        ssl=True,
        ssl_ca_certs=ca,
        username=user,
        password=password,
        socket_timeout=5,
        retry=Retry(NoBackoff(), 0),
    )


def connect(address: str, port: int = PORT, timeout: float = 2.0) -> redis.Redis:
    """One connection, never retried behind the caller's back: a retried ``WAIT`` on a new
    connection would count replicas for nothing written on it."""
    return redis.Redis(
        host=address,
        port=port,
        socket_timeout=timeout,
        socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 0),
        single_connection_client=True,
    )


def info(address: str, section: str, port: int = PORT) -> dict[str, Any]:
    client = connect(address, port)
    try:
        return dict(client.info(section))
    finally:
        client.close()


def run_id(address: str, port: int = PORT) -> str:
    return str(info(address, "server", port)["run_id"])


def role(address: str, port: int = PORT) -> str:
    return str(info(address, "replication", port)["role"])


def replica_link_up(address: str, primary: str, port: int = PORT) -> bool:
    """The node at ``address`` is a replica of ``primary`` with its link up and synced."""
    try:
        seen = info(address, "replication", port)
    except redis.RedisError:
        return False
    return (
        seen["role"] == "slave"
        and seen.get("master_host") == primary
        and seen.get("master_link_status") == "up"
        and not seen.get("master_sync_in_progress")
    )


def missing_keys(address: str, keys: list[str], port: int = PORT) -> list[str]:
    client = connect(address, port)
    try:
        missing: list[str] = []
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            values = client.mget(chunk)
            missing.extend(k for k, v in zip(chunk, values, strict=True) if v != k.encode())
        return missing
    finally:
        client.close()


def has_keys(address: str, keys: list[str]) -> bool:
    try:
        return not missing_keys(address, keys)
    except redis.RedisError:
        return False


class Writer(threading.Thread):
    """Writes ``prefix:N`` = ``prefix:N`` through one address without pause.

    A write counts as acknowledged once ``WAIT 1 500`` says a replica has it;
    any error drops the connection and the writer reconnects (through the same
    address, as an application following the primary endpoint would).
    """

    def __init__(self, address: str, prefix: str, replicas: int = 1) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.prefix = prefix
        self.replicas = replicas
        self.acknowledged: list[str] = []
        self.errors: list[str] = []
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        client: redis.Redis | None = None
        for n in itertools.count():
            if self._halt.is_set():
                break
            key = f"{self.prefix}:{n}"
            try:
                if client is None:
                    client = connect(self.address, timeout=1.0)
                client.set(key, key)
                if int(client.execute_command("WAIT", self.replicas, 500)) >= self.replicas:
                    with self._lock:
                        self.acknowledged.append(key)
            except (redis.RedisError, OSError) as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
                if client is not None:
                    client.close()
                client = None
                self._halt.wait(0.002)
        if client is not None:
            client.close()

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def keys(self) -> list[str]:
        with self._lock:
            return list(self.acknowledged)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)
        assert not self.is_alive(), "writer did not stop"


def wait_more_writes(writer: Writer, than: int, timeout: float = 10) -> None:
    wait_for(lambda: writer.count() > than, timeout=timeout)
