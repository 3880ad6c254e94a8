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
straight from the control plane without copying addresses by hand; a cache
described with ``TransitEncryptionEnabled`` turns TLS on by itself.

TLS always verifies the server: the certificate must chain to the CA given
(Cacheyard's, printed by ``cacheyard ca``) and name the address connected to
(Cacheyard's node certificates carry IP subject alternative names, so an
endpoint address is checked like a host name).

Authentication, one of:

- an AUTH token: ``password`` alone (the ``default`` user);
- an RBAC user: ``username`` and ``password``;
- rotating credentials: ``credential_provider``, e.g.
  ``iam_token.IamCredentialProvider`` for IAM authentication (the user id and
  a token it renews before the 15-minute expiry).

redis-py asks for credentials only when it opens a connection; an open
connection stays authenticated. ElastiCache closes IAM-authenticated
connections after 12 hours, so with a credential provider every pooled
connection is reopened (and so authenticated again with a fresh token) once it
is ``max_connection_age`` old, 11 hours by default, when it is next taken from
the pool. A connection held outside the pool for longer (a long-lived pub/sub
subscription, a blocking read) is not reopened; the server drops it and the
retry policy reconnects.

Failures that no retry can heal are raised at once instead of being retried
like a failover: a refused AUTH (``redis.AuthenticationError``) and a server
certificate that does not verify (``retry.is_failover_error``).

Passwords and tokens never appear in the ``repr`` of these objects nor of the
redis-py clients and pools they hold.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

import redis
import redis.asyncio
import redis.asyncio.connection
import redis.connection
from redis.credentials import CredentialProvider

from cacheyard.client.retry import AsyncPolicyRetry, PolicyRetry, RetryPolicy

DEFAULT_PORT = 6379
#: How long a connection authenticated by a credential provider is reused by
#: default: under ElastiCache's 12-hour limit for IAM-authenticated connections.
ROTATING_CREDENTIALS_MAX_AGE = 11 * 3600.0


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
    """Where writes and reads go; the reader falls back to the primary.

    ``tls`` says the cache requires TLS (``TransitEncryptionEnabled``);
    ``connect`` then uses TLS unless told otherwise.
    """

    primary_host: str
    primary_port: int = DEFAULT_PORT
    reader_host: str | None = None
    reader_port: int = DEFAULT_PORT
    tls: bool = False

    @classmethod
    def from_addresses(
        cls,
        primary: str,
        reader: str | None = None,
        port: int = DEFAULT_PORT,
        *,
        tls: bool = False,
    ) -> CacheEndpoints:
        """From ``host`` or ``host:port`` strings."""
        primary_host, primary_port = _split(primary, port)
        if reader is None:
            return cls(primary_host, primary_port, tls=tls)
        reader_host, reader_port = _split(reader, port)
        return cls(primary_host, primary_port, reader_host, reader_port, tls=tls)

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
            tls=bool(group.get("TransitEncryptionEnabled")),
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
        return cls(
            endpoint["Address"],
            int(endpoint.get("Port", DEFAULT_PORT)),
            tls=bool(cluster.get("TransitEncryptionEnabled")),
        )

    @property
    def reader(self) -> tuple[str, int]:
        if self.reader_host is None:
            return self.primary_host, self.primary_port
        return self.reader_host, self.reader_port


# ---- connections reopened when old ---------------------------------------------------------


class _Age:
    """When a connection was opened (authenticated), and whether it is past its limit."""

    __slots__ = ("limit", "opened_at")

    def __init__(self, limit: float | None) -> None:
        self.limit = limit
        self.opened_at: float | None = None

    def opened(self) -> None:
        self.opened_at = time.monotonic()

    def closed(self) -> None:
        self.opened_at = None

    def expired(self) -> bool:
        if self.limit is None or self.opened_at is None:
            return False
        return time.monotonic() - self.opened_at >= self.limit


# redis-py calls ``connect()`` on every connection it takes from the pool (a
# no-op when connected) and ``on_connect_check_health()`` once a new socket is
# up, to authenticate: the first is where an old connection is dropped, so the
# usual connect (with the credential provider's current token) follows.


class _Connection(redis.connection.Connection):
    # redis-py leaves these methods untyped, hence the ignores.
    def __init__(self, *, max_connection_age: float | None = None, **kwargs: Any) -> None:
        self.age = _Age(max_connection_age)
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]

    def connect(self) -> None:
        if self.age.expired():
            self.disconnect()
        super().connect()  # type: ignore[no-untyped-call]

    def on_connect_check_health(self, check_health: bool = True) -> None:
        super().on_connect_check_health(check_health)
        self.age.opened()

    def disconnect(self, *args: Any, **kwargs: Any) -> None:
        self.age.closed()
        super().disconnect(*args, **kwargs)  # type: ignore[no-untyped-call]


class _SSLConnection(_Connection, redis.connection.SSLConnection):
    pass


class _AsyncConnection(redis.asyncio.connection.Connection):
    def __init__(self, *, max_connection_age: float | None = None, **kwargs: Any) -> None:
        self.age = _Age(max_connection_age)
        super().__init__(**kwargs)

    async def connect(self) -> None:
        if self.age.expired():
            await self.disconnect()
        await super().connect()  # type: ignore[no-untyped-call]

    async def on_connect_check_health(self, check_health: bool = True) -> None:
        await super().on_connect_check_health(check_health)
        self.age.opened()

    async def disconnect(self, *args: Any, **kwargs: Any) -> None:
        self.age.closed()
        await super().disconnect(*args, **kwargs)


class _AsyncSSLConnection(_AsyncConnection, redis.asyncio.connection.SSLConnection):
    pass


# ---- options -------------------------------------------------------------------------------

SslOption = bool | str | os.PathLike[str] | None


@dataclass(frozen=True)
class _Options:
    """What every connection of one ``connect`` call is opened with."""

    tls: bool
    ssl_ca_certs: str | None
    username: str | None
    password: str | None = field(repr=False)
    credential_provider: CredentialProvider | None = field(repr=False)
    max_connection_age: float | None
    socket_timeout: float
    socket_connect_timeout: float

    @classmethod
    def resolve(
        cls,
        endpoints: CacheEndpoints,
        *,
        ssl: SslOption,
        ssl_ca_certs: str | os.PathLike[str] | None,
        username: str | None,
        password: str | None,
        credential_provider: CredentialProvider | None,
        max_connection_age: float | Literal["auto"] | None,
        socket_timeout: float,
        socket_connect_timeout: float,
    ) -> _Options:
        if credential_provider is not None and (username is not None or password is not None):
            raise ValueError(
                "pass username/password or a credential_provider (which names the user), not both"
            )
        if isinstance(ssl, bool):
            tls = ssl
        elif ssl is None:
            tls = endpoints.tls
        else:  # a CA file
            tls, ssl_ca_certs = True, ssl
        if max_connection_age == "auto":
            rotating = credential_provider is not None
            max_connection_age = ROTATING_CREDENTIALS_MAX_AGE if rotating else None
        if max_connection_age is not None and max_connection_age <= 0:
            raise ValueError("max_connection_age must be positive (or None for no limit)")
        return cls(
            tls=tls,
            ssl_ca_certs=os.fspath(ssl_ca_certs) if ssl_ca_certs is not None else None,
            username=username,
            password=password,
            credential_provider=credential_provider,
            max_connection_age=max_connection_age,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
        )

    @property
    def auth(self) -> str:
        """How connections authenticate, for ``repr`` (never the secret itself)."""
        if self.credential_provider is not None:
            return type(self.credential_provider).__name__
        if self.username is not None:
            return f"user {self.username}"
        return "token" if self.password is not None else "none"

    def pool_kwargs(self, host: str, port: int) -> dict[str, Any]:
        """Connection pool arguments, as ``redis.Redis`` would build them."""
        found: dict[str, Any] = {
            "host": host,
            "port": port,
            "username": self.username,
            "password": self.password,
            "credential_provider": self.credential_provider,
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_connect_timeout,
            "socket_keepalive": True,
            "max_connection_age": self.max_connection_age,
        }
        if self.tls:
            found.update(
                ssl_ca_certs=self.ssl_ca_certs,
                ssl_cert_reqs="required",
                ssl_check_hostname=True,
            )
        return found

    def client(self, host: str, port: int, policy: RetryPolicy) -> redis.Redis:
        pool = redis.ConnectionPool(
            connection_class=_SSLConnection if self.tls else _Connection,
            retry=PolicyRetry(policy),
            **self.pool_kwargs(host, port),
        )
        return redis.Redis.from_pool(pool)

    def async_client(self, host: str, port: int, policy: RetryPolicy) -> redis.asyncio.Redis:
        pool = redis.asyncio.ConnectionPool(
            connection_class=_AsyncSSLConnection if self.tls else _AsyncConnection,
            retry=AsyncPolicyRetry(policy),
            **self.pool_kwargs(host, port),
        )
        return redis.asyncio.Redis.from_pool(pool)


def _describe(kind: str, endpoints: CacheEndpoints, options: _Options) -> str:
    reader = "" if endpoints.reader_host is None else " reader={}:{}".format(*endpoints.reader)
    return (
        f"<{kind} writer={endpoints.primary_host}:{endpoints.primary_port}{reader} "
        f"tls={options.tls} auth={options.auth}>"
    )


class Connection:
    """``writer`` reaches the primary endpoint, ``reader`` the reader endpoint."""

    def __init__(self, writer: redis.Redis, reader: redis.Redis, description: str = "") -> None:
        self.writer = writer
        self.reader = reader
        self._description = description

    def __repr__(self) -> str:
        return self._description or super().__repr__()

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

    def __init__(
        self, writer: redis.asyncio.Redis, reader: redis.asyncio.Redis, description: str = ""
    ) -> None:
        self.writer = writer
        self.reader = reader
        self._description = description

    def __repr__(self) -> str:
        return self._description or super().__repr__()

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
    ssl: SslOption = None,
    ssl_ca_certs: str | os.PathLike[str] | None = None,
    username: str | None = None,
    password: str | None = None,
    credential_provider: CredentialProvider | None = None,
    max_connection_age: float | Literal["auto"] | None = "auto",
    retry: RetryPolicy | None = None,
    socket_timeout: float = 5.0,
    socket_connect_timeout: float = 1.0,
) -> Connection:
    """Clients for writes and reads, retrying what a failover breaks (``RetryPolicy``).

    ``ssl``: ``None`` uses TLS when the endpoints say the cache requires it,
    ``True``/``False`` force it on/off, a path turns it on with that CA file.
    ``ssl_ca_certs`` is the CA file used whenever TLS is on (without one, the
    system's trusted CAs). The server certificate is always verified, address
    included.

    ``password`` alone is the AUTH token; with ``username`` an RBAC user's
    password. ``credential_provider`` replaces both, e.g.
    ``iam_token.IamCredentialProvider``.

    ``max_connection_age`` (seconds): a pooled connection this old is reopened,
    and so authenticated again, when next taken from the pool. ``"auto"``:
    ``ROTATING_CREDENTIALS_MAX_AGE`` with a credential provider, else no limit.
    """
    options = _Options.resolve(
        endpoints,
        ssl=ssl,
        ssl_ca_certs=ssl_ca_certs,
        username=username,
        password=password,
        credential_provider=credential_provider,
        max_connection_age=max_connection_age,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_connect_timeout,
    )
    policy = retry or RetryPolicy()
    description = _describe("Connection", endpoints, options)
    writer = options.client(endpoints.primary_host, endpoints.primary_port, policy)
    if endpoints.reader_host is None:
        return Connection(writer, writer, description)
    reader = options.client(*endpoints.reader, policy)
    return Connection(writer, reader, description)


def connect_async(
    endpoints: CacheEndpoints,
    *,
    ssl: SslOption = None,
    ssl_ca_certs: str | os.PathLike[str] | None = None,
    username: str | None = None,
    password: str | None = None,
    credential_provider: CredentialProvider | None = None,
    max_connection_age: float | Literal["auto"] | None = "auto",
    retry: RetryPolicy | None = None,
    socket_timeout: float = 5.0,
    socket_connect_timeout: float = 1.0,
) -> AsyncConnection:
    """The asyncio twin of ``connect`` (connections open lazily, on first use)."""
    options = _Options.resolve(
        endpoints,
        ssl=ssl,
        ssl_ca_certs=ssl_ca_certs,
        username=username,
        password=password,
        credential_provider=credential_provider,
        max_connection_age=max_connection_age,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_connect_timeout,
    )
    policy = retry or RetryPolicy()
    description = _describe("AsyncConnection", endpoints, options)
    writer = options.async_client(endpoints.primary_host, endpoints.primary_port, policy)
    if endpoints.reader_host is None:
        return AsyncConnection(writer, writer, description)
    reader = options.async_client(*endpoints.reader, policy)
    return AsyncConnection(writer, reader, description)


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
