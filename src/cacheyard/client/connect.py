"""Connections to a Redis cache: the primary endpoint for writes, the reader for reads.

ElastiCache (and Cacheyard) gives a replication group two stable names: the
primary endpoint, which always reaches the current primary, and the reader
endpoint, which spreads over the replicas. An application that writes through
the first and reads through the second follows failovers without knowing node
addresses; what it still needs is to retry the few commands caught while the
primary endpoint moves. ``connect`` builds both clients with that retry
(``retry.RetryPolicy``) and with TLS, an AUTH token, an RBAC user or an IAM
token provider as the cache requires.

The description helpers accept what boto3 returns, either the whole
``Describe*`` response or one element of it, so ``CacheEndpoints`` can come
straight from the control plane without copying addresses by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import redis
import redis.asyncio
from redis.credentials import CredentialProvider

from cacheyard.client.retry import RetryPolicy

DEFAULT_PORT = 6379


def _split(address: str, default_port: int) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if sep and port.isdigit():
        return host, int(port)
    return address, default_port


def _only(desc: Mapping[str, Any], plural: str) -> Mapping[str, Any]:
    """One element of a Describe* response, or the element itself."""
    if plural in desc:
        items = desc[plural]
        if len(items) != 1:
            raise ValueError(f"expected one of {plural}, got {len(items)}")
        only: Mapping[str, Any] = items[0]
        return only
    return desc


@dataclass(frozen=True)
class CacheEndpoints:
    """Where writes and reads go; the reader falls back to the primary."""

    primary_host: str
    primary_port: int = DEFAULT_PORT
    reader_host: str | None = None
    reader_port: int = DEFAULT_PORT

    @classmethod
    def from_addresses(
        cls, primary: str, reader: str | None = None, port: int = DEFAULT_PORT
    ) -> CacheEndpoints:
        """From ``host`` or ``host:port`` strings."""
        primary_host, primary_port = _split(primary, port)
        if reader is None:
            return cls(primary_host, primary_port)
        reader_host, reader_port = _split(reader, port)
        return cls(primary_host, primary_port, reader_host, reader_port)

    @classmethod
    def from_replication_group(cls, desc: Mapping[str, Any]) -> CacheEndpoints:
        """From DescribeReplicationGroups (cluster mode disabled: one node group)."""
        group = _only(desc, "ReplicationGroups")
        node_groups = group.get("NodeGroups") or []
        if len(node_groups) != 1 or "PrimaryEndpoint" not in node_groups[0]:
            raise ValueError(
                f"replication group {group.get('ReplicationGroupId')} has no primary endpoint "
                "(not available yet, or cluster mode enabled)"
            )
        primary = node_groups[0]["PrimaryEndpoint"]
        reader = node_groups[0].get("ReaderEndpoint")
        return cls(
            primary["Address"],
            int(primary.get("Port", DEFAULT_PORT)),
            reader["Address"] if reader else None,
            int(reader.get("Port", DEFAULT_PORT)) if reader else DEFAULT_PORT,
        )

    @classmethod
    def from_cache_cluster(cls, desc: Mapping[str, Any]) -> CacheEndpoints:
        """From DescribeCacheClusters with ``ShowCacheNodeInfo=True`` (a Redis node)."""
        cluster = _only(desc, "CacheClusters")
        if cluster.get("Engine", "redis") not in ("redis", "valkey"):
            raise ValueError(f"cache cluster {cluster.get('CacheClusterId')} is not Redis")
        nodes = cluster.get("CacheNodes") or []
        if not nodes or "Endpoint" not in nodes[0]:
            raise ValueError(
                f"cache cluster {cluster.get('CacheClusterId')} has no node endpoint "
                "(describe it with ShowCacheNodeInfo=True once it is available)"
            )
        endpoint = nodes[0]["Endpoint"]
        return cls(endpoint["Address"], int(endpoint.get("Port", DEFAULT_PORT)))

    @property
    def reader(self) -> tuple[str, int]:
        if self.reader_host is None:
            return self.primary_host, self.primary_port
        return self.reader_host, self.reader_port


@dataclass(frozen=True)
class _Options:
    username: str | None
    password: str | None
    ssl: bool
    ssl_ca_certs: str | None
    credential_provider: CredentialProvider | None
    socket_timeout: float
    socket_connect_timeout: float

    def kwargs(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "username": self.username,
            "password": self.password,
            "credential_provider": self.credential_provider,
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_connect_timeout,
        }
        if self.ssl:
            found.update(ssl=True, ssl_ca_certs=self.ssl_ca_certs)
        return found


class Connection:
    """``writer`` reaches the primary endpoint, ``reader`` the reader endpoint."""

    def __init__(self, writer: redis.Redis, reader: redis.Redis) -> None:
        self.writer = writer
        self.reader = reader

    def set_acknowledged(self, key: str, value: str | bytes, replicas: int, timeout_ms: int) -> int:
        """SET then WAIT on one connection, never retried; the replicas that acknowledged."""
        return set_acknowledged(self.writer, key, value, replicas, timeout_ms)

    def close(self) -> None:
        self.writer.close()
        if self.reader is not self.writer:
            self.reader.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncConnection:
    """The asyncio twin of ``Connection``."""

    def __init__(self, writer: redis.asyncio.Redis, reader: redis.asyncio.Redis) -> None:
        self.writer = writer
        self.reader = reader

    async def set_acknowledged(
        self, key: str, value: str | bytes, replicas: int, timeout_ms: int
    ) -> int:
        """SET then WAIT on one connection, never retried; the replicas that acknowledged."""
        return await set_acknowledged_async(self.writer, key, value, replicas, timeout_ms)

    async def aclose(self) -> None:
        await self.writer.aclose()
        if self.reader is not self.writer:
            await self.reader.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def connect(
    endpoints: CacheEndpoints,
    *,
    username: str | None = None,
    password: str | None = None,
    ssl: bool = False,
    ssl_ca_certs: str | None = None,
    credential_provider: CredentialProvider | None = None,
    retry: RetryPolicy | None = None,
    socket_timeout: float = 5.0,
    socket_connect_timeout: float = 1.0,
) -> Connection:
    """Clients for writes and reads, retrying what a failover breaks (``RetryPolicy``).

    ``password`` is the AUTH token (with ``username`` for an RBAC user);
    ``credential_provider`` replaces both, e.g. ``iam_token.IamCredentialProvider``.
    """
    policy = retry or RetryPolicy()
    options = _Options(
        username, password, ssl, ssl_ca_certs, credential_provider,
        socket_timeout, socket_connect_timeout,
    ).kwargs()  # fmt: skip
    writer = redis.Redis(
        host=endpoints.primary_host,
        port=endpoints.primary_port,
        retry=policy.sync_retry(),
        **options,
    )
    if endpoints.reader_host is None:
        return Connection(writer, writer)
    host, port = endpoints.reader
    reader = redis.Redis(host=host, port=port, retry=policy.sync_retry(), **options)
    return Connection(writer, reader)


def connect_async(
    endpoints: CacheEndpoints,
    *,
    username: str | None = None,
    password: str | None = None,
    ssl: bool = False,
    ssl_ca_certs: str | None = None,
    credential_provider: CredentialProvider | None = None,
    retry: RetryPolicy | None = None,
    socket_timeout: float = 5.0,
    socket_connect_timeout: float = 1.0,
) -> AsyncConnection:
    """The asyncio twin of ``connect`` (connections open lazily, on first use)."""
    policy = retry or RetryPolicy()
    options = _Options(
        username, password, ssl, ssl_ca_certs, credential_provider,
        socket_timeout, socket_connect_timeout,
    ).kwargs()  # fmt: skip
    writer = redis.asyncio.Redis(
        host=endpoints.primary_host,
        port=endpoints.primary_port,
        retry=policy.async_retry(),
        **options,
    )
    if endpoints.reader_host is None:
        return AsyncConnection(writer, writer)
    host, port = endpoints.reader
    reader = redis.asyncio.Redis(host=host, port=port, retry=policy.async_retry(), **options)
    return AsyncConnection(writer, reader)


# ---- writes a replica acknowledged -------------------------------------------------------
#
# WAIT answers how many replicas acknowledged the writes sent *on its own
# connection*. Retried on a fresh connection (as the retry policy would do
# after a dropped connection) it would count acknowledgements of nothing
# written there, and report a write as replicated when it may be lost. So the
# write and its WAIT are sent together, pipelined on one pooled connection,
# outside the retry loop; any failure disconnects that connection and reaches
# the caller, who may send the pair again (SET is idempotent).


def set_acknowledged(
    client: redis.Redis, key: str, value: str | bytes, replicas: int, timeout_ms: int
) -> int:
    """SET ``key`` and WAIT for ``replicas`` within ``timeout_ms``; how many acknowledged."""
    pool: Any = client.connection_pool
    conn: Any = pool.get_connection()  # redis-py leaves Connection methods untyped
    try:
        conn.send_packed_command(
            conn.pack_commands([("SET", key, value), ("WAIT", replicas, timeout_ms)])
        )
        conn.read_response()  # raises the SET's error (e.g. READONLY)
        return int(conn.read_response())
    except BaseException:
        conn.disconnect()  # a reply may still be in flight: never reuse this connection
        raise
    finally:
        pool.release(conn)


async def set_acknowledged_async(
    client: redis.asyncio.Redis, key: str, value: str | bytes, replicas: int, timeout_ms: int
) -> int:
    """The asyncio twin of ``set_acknowledged``."""
    pool: Any = client.connection_pool
    conn: Any = await pool.get_connection()  # untyped in redis-py
    try:
        await conn.send_packed_command(
            conn.pack_commands([("SET", key, value), ("WAIT", replicas, timeout_ms)])
        )
        await conn.read_response()
        return int(await conn.read_response())
    except BaseException:
        await conn.disconnect()
        raise
    finally:
        await pool.release(conn)
