"""Memcached with auto discovery, asyncio-native: the twin of :mod:`.memcached`.

pymemcache has no asyncio API, so this client speaks Memcached's text
protocol itself over asyncio streams (``get`` with many keys, ``set``,
``delete``, ``version``); no thread, no dependency beyond pymemcache's
rendezvous hash. What it shares with :class:`.memcached.AutoDiscoveryClient`,
so that the two can be used side by side on one cluster:

- discovery: ``config get cluster`` through the configuration endpoint, parsed
  by :func:`.memcached.parse_cluster_config`, asked again every
  ``refresh_interval`` seconds by a background task (and on ``refresh()``);
  the node list is swapped only when the version grew. An endpoint briefly
  unreachable keeps the known nodes.
- placement: pymemcache's ``RendezvousHash`` over nodes named ``host:port``,
  exactly as ``HashClient`` builds it, so a key lands on the same node with
  either client.
- values: what the sync client stores with pymemcache's default serde: flags
  0, ``bytes`` as given, ``str`` encoded (UTF-8 here; pymemcache's default
  encoding is ASCII, which UTF-8 extends, so every value the sync client can
  store is stored identically), read back as ``bytes`` whatever the flags.
- keys: ASCII ``str``, 1 to 250 bytes, no whitespace or control character
  (pymemcache checks whitespace and NUL; memcached forbids all control
  characters), checked before anything is sent.
- defaults: ``timeout=2.0`` seconds, ``noreply`` never (a failed store is
  reported, not assumed), errors raised rather than turned into ``None``.
- TLS: ``ssl_ca_certs`` (a CA file, such as the one ``cacheyard ca`` prints)
  or ``ssl_context`` for a cluster created with ``TransitEncryptionEnabled``:
  the configuration endpoint and every node, each verified by its address.

Where it differs: a node that fails raises :class:`NodeError` (its
:class:`NodeTimeoutError` and :class:`ServerError` kinds) every time, naming
the node; it is never skipped, answered for with a default, or taken out of
the ring (pymemcache's ``HashClient`` answers ``None``/``False`` for a node
that failed less than ``retry_timeout`` ago and drops it from the ring after
``retry_attempts`` failures). ``timeout`` bounds a whole operation on a node:
waiting for a pooled connection, connecting, sending and reading the answer.

Each node has a small pool of stream pairs, opened lazily and bounded by
``max_pool_size``: a connection serves one command at a time and goes back to
the pool only after a complete, expected answer; any error or timeout closes
it, since the stream's position is then unknown.

Use it as ``client = await AsyncAutoDiscoveryClient.connect(endpoint)`` ...
``await client.aclose()``, or ``async with AsyncAutoDiscoveryClient(endpoint)
as client:``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar

from pymemcache.client.rendezvous import RendezvousHash

from cacheyard.client.memcached import (
    CONFIG_COMMAND,
    DEFAULT_PORT,
    ClusterConfig,
    ClusterNode,
    DiscoveryError,
    config_reply_complete,
    node_name,
    parse_cluster_config,
    split_endpoint,
    tls_context,
)

__all__ = [
    "AsyncAutoDiscoveryClient",
    "ClusterConfig",
    "ClusterNode",
    "DiscoveryError",
    "InvalidKeyError",
    "MemcachedError",
    "NodeError",
    "NodeTimeoutError",
    "ServerError",
    "check_key",
    "fetch_cluster_config",
]

MAX_KEY_LENGTH = 250
DEFAULT_POOL_SIZE = 4
_FORBIDDEN_IN_KEY = re.compile(rb"[\x00-\x20\x7f]")
_ERROR_REPLIES = (b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")

T = TypeVar("T")
Address = tuple[str, int]


class MemcachedError(Exception):
    """Something the asyncio Memcached client could not do."""


class InvalidKeyError(MemcachedError, ValueError):
    """A key memcached would refuse: not ASCII, empty, too long, or with a space."""


class NodeError(MemcachedError):
    """A node could not be reached, or did not answer as memcached does."""

    def __init__(self, address: Address, reason: str) -> None:
        super().__init__(f"memcached node {node_name(address)}: {reason}")
        self.address = address
        self.reason = reason


class NodeTimeoutError(NodeError, TimeoutError):
    """A node did not complete an operation within the client's ``timeout``."""


class ServerError(NodeError):
    """A node refused a command: ``ERROR``, ``CLIENT_ERROR ...`` or ``SERVER_ERROR ...``."""


def check_key(key: str) -> bytes:
    """The key as sent on the wire, or :class:`InvalidKeyError` if memcached would refuse it."""
    if not isinstance(key, str):
        raise TypeError(f"keys are str, not {type(key).__name__}")
    if not key.isascii():
        raise InvalidKeyError(f"non-ASCII key: {key!r}")
    raw = key.encode("ascii")
    if not raw:
        raise InvalidKeyError("empty key")
    if len(raw) > MAX_KEY_LENGTH:
        raise InvalidKeyError(f"key longer than {MAX_KEY_LENGTH} bytes: {key[:40]!r}...")
    if _FORBIDDEN_IN_KEY.search(raw):
        raise InvalidKeyError(f"key contains whitespace or a control character: {key!r}")
    return raw


def _encode_value(value: bytes | str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"values are bytes or str, not {type(value).__name__}")


def _check_expire(expire: int) -> int:
    if isinstance(expire, bool) or not isinstance(expire, int):
        raise TypeError(f"expire is an int of seconds, not {type(expire).__name__}")
    return expire


async def fetch_cluster_config(
    host: str,
    port: int = DEFAULT_PORT,
    timeout: float = 2.0,  # noqa: ASYNC109 (the sync twin's signature)
    ssl_context: ssl.SSLContext | None = None,
) -> ClusterConfig:
    """Ask a configuration endpoint for the cluster's nodes (asyncio; over TLS
    with ``ssl_context``, the endpoint verified by ``host``).

    Raises ``OSError`` (``TimeoutError`` past ``timeout``; ``ssl.SSLError`` for
    a failed TLS handshake) if the endpoint cannot be asked,
    :class:`DiscoveryError` if its answer is not a cluster configuration.
    """
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port, ssl=ssl_context)
        try:
            writer.write(CONFIG_COMMAND)
            await writer.drain()
            reply = b""
            while not config_reply_complete(reply):
                chunk = await reader.read(65536)
                if not chunk:
                    break
                reply += chunk
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    return parse_cluster_config(reply)


@dataclass(eq=False)
class _Connection:
    """One stream pair to a node; protocol errors name the node."""

    address: Address
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @property
    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def readline(self) -> bytes:
        try:
            line = await self.reader.readuntil(b"\r\n")
        except asyncio.IncompleteReadError:
            raise NodeError(self.address, "connection closed by the node") from None
        except asyncio.LimitOverrunError:
            raise NodeError(self.address, "answer line too long") from None
        line = line[:-2]
        if line.split(b" ", 1)[0] in _ERROR_REPLIES:
            raise ServerError(self.address, line.decode("ascii", "replace"))
        return line

    async def read_block(self, size: int) -> bytes:
        try:
            data = await self.reader.readexactly(size + 2)
        except asyncio.IncompleteReadError:
            raise NodeError(self.address, "connection closed by the node") from None
        if data[-2:] != b"\r\n":
            raise NodeError(self.address, "value not followed by CRLF")
        return data[:-2]

    def unexpected(self, line: bytes) -> NodeError:
        return NodeError(self.address, f"unexpected answer {line[:80]!r}")

    def close(self) -> None:
        self.writer.close()


@dataclass(eq=False)
class _NodePool:
    """At most ``size`` connections to one node, opened when first needed."""

    address: Address
    size: int
    ssl_context: ssl.SSLContext | None = None
    _idle: list[_Connection] = field(default_factory=list)
    _open: set[_Connection] = field(default_factory=set)
    _closed: bool = False

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.size)

    @property
    def open_connections(self) -> int:
        return len(self._open)

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[_Connection]:
        async with self._slots:
            conn = await self._take()
            done = False
            try:
                yield conn
                done = True
            finally:
                if done and not self._closed and conn.usable:
                    self._idle.append(conn)
                else:
                    self._discard(conn)

    async def _take(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if conn.usable:
                return conn
            self._discard(conn)  # closed by the node while idle
        if self._closed:
            raise NodeError(self.address, "not in use any more (client closed or node removed)")
        reader, writer = await asyncio.open_connection(*self.address, ssl=self.ssl_context)
        conn = _Connection(self.address, reader, writer)
        if self._closed:  # closed while connecting
            conn.close()
            raise NodeError(self.address, "not in use any more (client closed or node removed)")
        self._open.add(conn)
        return conn

    def _discard(self, conn: _Connection) -> None:
        conn.close()
        self._open.discard(conn)

    async def aclose(self, *, in_use: bool = True) -> None:
        """Close the idle connections, and those in use unless ``in_use`` is false.

        Closing one in use fails the operation in flight; left alone, it is
        closed when the operation gives it back.
        """
        self._closed = True
        conns = list(self._open) if in_use else list(self._idle)
        self._idle.clear()
        self._open.difference_update(conns)
        for conn in conns:
            conn.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                await conn.writer.wait_closed()


async def _fetch(conn: _Connection, keys: list[bytes]) -> dict[bytes, bytes]:
    """``get k1 k2 ...``: the values found, by key (flags are not interpreted)."""
    await conn.send(b"get " + b" ".join(keys) + b"\r\n")
    wanted = set(keys)
    found: dict[bytes, bytes] = {}
    while True:
        line = await conn.readline()
        if line == b"END":
            return found
        parts = line.split(b" ")
        # VALUE <key> <flags> <bytes> [<cas unique>]
        if (
            len(parts) not in (4, 5)
            or parts[0] != b"VALUE"
            or parts[1] not in wanted
            or not parts[2].isdigit()
            or not parts[3].isdigit()
        ):
            raise conn.unexpected(line)
        found[parts[1]] = await conn.read_block(int(parts[3]))


async def _command(conn: _Connection, command: bytes, answers: dict[bytes, bool]) -> bool:
    await conn.send(command)
    line = await conn.readline()
    if line not in answers:
        raise conn.unexpected(line)
    return answers[line]


async def _version(conn: _Connection) -> str:
    await conn.send(b"version\r\n")
    line = await conn.readline()
    if not line.startswith(b"VERSION "):
        raise conn.unexpected(line)
    return line[len(b"VERSION ") :].decode("ascii", "replace")


class AsyncAutoDiscoveryClient:
    """get/set/delete/get_many over the cluster's nodes, following node changes.

    ``refresh_interval`` seconds between background refreshes (0 for none),
    ``timeout`` seconds for each operation on a node and for each discovery,
    ``max_pool_size`` connections at most per node. ``ssl_ca_certs`` (a CA
    file) or ``ssl_context``: TLS to the configuration endpoint and every node.
    Nothing is opened until :meth:`connect`, :meth:`start` or ``async with``.
    """

    def __init__(
        self,
        config_endpoint: str,
        port: int = DEFAULT_PORT,
        refresh_interval: float = 60.0,
        *,
        timeout: float = 2.0,
        max_pool_size: int = DEFAULT_POOL_SIZE,
        ssl_context: ssl.SSLContext | None = None,
        ssl_ca_certs: str | os.PathLike[str] | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if max_pool_size < 1:
            raise ValueError("max_pool_size must be at least 1")
        self.endpoint = split_endpoint(config_endpoint, port)
        self.refresh_interval = refresh_interval
        self.timeout = timeout
        self.max_pool_size = max_pool_size
        self._tls = tls_context(ssl_context, ssl_ca_certs)
        self._config: ClusterConfig | None = None
        self._ring: Any = RendezvousHash()
        self._pools: dict[str, _NodePool] = {}
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    async def connect(
        cls,
        config_endpoint: str,
        port: int = DEFAULT_PORT,
        refresh_interval: float = 60.0,
        *,
        timeout: float = 2.0,  # noqa: ASYNC109 (the client's, kept for every operation)
        max_pool_size: int = DEFAULT_POOL_SIZE,
        ssl_context: ssl.SSLContext | None = None,
        ssl_ca_certs: str | os.PathLike[str] | None = None,
    ) -> Self:
        """A client that has read the node list and refreshes it in the background."""
        client = cls(
            config_endpoint,
            port,
            refresh_interval,
            timeout=timeout,
            max_pool_size=max_pool_size,
            ssl_context=ssl_context,
            ssl_ca_certs=ssl_ca_certs,
        )
        await client.start()
        return client

    async def start(self) -> None:
        """Read the node list and start the background refresh (once; idempotent)."""
        if self._closed:
            raise MemcachedError("client closed")
        if self._config is not None:
            return
        config = await fetch_cluster_config(
            *self.endpoint, timeout=self.timeout, ssl_context=self._tls
        )
        if self._config is None and not self._closed:
            self._install(config)
            if self.refresh_interval > 0:
                self._task = asyncio.create_task(self._refresh_loop(), name="memcached-discovery")

    # -- discovery ----------------------------------------------------------------

    def _current(self) -> ClusterConfig:
        if self._closed:
            raise MemcachedError("client closed")
        if self._config is None:
            raise MemcachedError("not connected: use connect(), start() or async with")
        return self._config

    @property
    def version(self) -> int:
        """The version of the node list in use (the configuration endpoint's)."""
        return self._current().version

    @property
    def nodes(self) -> tuple[ClusterNode, ...]:
        return self._current().nodes

    def _install(self, config: ClusterConfig) -> list[_NodePool]:
        """Use ``config``'s nodes from now on; the pools of the nodes that left."""
        ring = RendezvousHash()
        pools: dict[str, _NodePool] = {}
        for node in config.nodes:
            name = node_name(node.address)
            ring.add_node(name)  # as HashClient.add_server: names deduplicated
            pools[name] = self._pools.get(name) or _NodePool(
                node.address, self.max_pool_size, self._tls
            )
        gone = [pool for name, pool in self._pools.items() if name not in pools]
        self._config, self._ring, self._pools = config, ring, pools
        return gone

    async def refresh(self) -> bool:
        """Ask the endpoint now; whether the node list changed (its version grew)."""
        self._current()
        config = await fetch_cluster_config(
            *self.endpoint, timeout=self.timeout, ssl_context=self._tls
        )
        current = self._current()  # closed meanwhile: raise, do not resurrect pools
        if config.version <= current.version:
            return False
        gone = self._install(config)
        # operations in flight on a node that left may finish; nothing new goes there
        await asyncio.gather(*(pool.aclose(in_use=False) for pool in gone))
        return True

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval)
            # An endpoint briefly unreachable: keep the known nodes, ask again later.
            with contextlib.suppress(OSError, DiscoveryError):
                await self.refresh()

    # -- placement ----------------------------------------------------------------

    def _pool_for(self, key: str) -> _NodePool:
        self._current()
        name = self._ring.get_node(key)
        if name is None:
            raise MemcachedError("the cluster has no nodes")
        return self._pools[name]

    def node_for(self, key: str) -> tuple[str, int]:
        """The node address a key hashes to (for tests and diagnostics)."""
        check_key(key)
        return self._pool_for(key).address

    def open_connections(self) -> dict[tuple[str, int], int]:
        """Connections open now, by node (for tests and diagnostics)."""
        return {pool.address: pool.open_connections for pool in self._pools.values()}

    async def _call(self, pool: _NodePool, exchange: Callable[[_Connection], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(self.timeout), pool.lease() as conn:
                return await exchange(conn)
        except NodeError:
            raise
        except TimeoutError as exc:
            raise NodeTimeoutError(pool.address, f"no answer within {self.timeout:g}s") from exc
        except OSError as exc:
            raise NodeError(pool.address, f"{type(exc).__name__}: {exc}") from exc

    async def _on_every_node(
        self, batches: list[tuple[_NodePool, Callable[[_Connection], Awaitable[T]]]]
    ) -> list[T]:
        """Run one exchange per node in parallel; all finish, then the first error is raised."""
        outcomes = await asyncio.gather(
            *(self._call(pool, exchange) for pool, exchange in batches),
            return_exceptions=True,
        )
        errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if errors:
            first = errors[0]
            for other in errors[1:]:
                first.add_note(f"also: {other}")
            raise first
        return [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]

    # -- commands -----------------------------------------------------------------

    async def get(self, key: str, default: bytes | None = None) -> bytes | None:
        raw = check_key(key)
        found = await self._call(self._pool_for(key), lambda conn: _fetch(conn, [raw]))
        return found.get(raw, default)

    async def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The keys found, one multi-key ``get`` per node, the nodes asked in parallel."""
        self._current()
        by_node: dict[_NodePool, dict[bytes, str]] = {}
        for key in keys:
            raw = check_key(key)
            by_node.setdefault(self._pool_for(key), {})[raw] = key

        def exchange(
            wanted: dict[bytes, str],
        ) -> Callable[[_Connection], Awaitable[dict[bytes, bytes]]]:
            return lambda conn: _fetch(conn, list(wanted))

        results = await self._on_every_node(
            [(pool, exchange(wanted)) for pool, wanted in by_node.items()]
        )
        found: dict[str, bytes] = {}
        for (_, wanted), values in zip(by_node.items(), results, strict=True):
            found.update((wanted[raw], value) for raw, value in values.items())
        return found

    async def set(self, key: str, value: bytes | str, expire: int = 0) -> bool:
        """Store ``value`` (flags 0) for ``expire`` seconds (0: no expiry); whether stored."""
        raw = check_key(key)
        data = _encode_value(value)
        command = b"set %b 0 %d %d\r\n%b\r\n" % (raw, _check_expire(expire), len(data), data)
        answers = {b"STORED": True, b"NOT_STORED": False}
        return await self._call(self._pool_for(key), lambda conn: _command(conn, command, answers))

    async def delete(self, key: str) -> bool:
        """Whether the key was there."""
        command = b"delete %b\r\n" % check_key(key)
        answers = {b"DELETED": True, b"NOT_FOUND": False}
        return await self._call(self._pool_for(key), lambda conn: _command(conn, command, answers))

    async def server_versions(self) -> dict[tuple[str, int], str]:
        """Every node's memcached ``version``, asked in parallel (a health check)."""
        self._current()
        pools = list(self._pools.values())
        versions = await self._on_every_node([(pool, _version) for pool in pools])
        return {pool.address: version for pool, version in zip(pools, versions, strict=True)}

    # -- lifetime -----------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop the background refresh and close every connection (idempotent)."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        pools, self._pools = list(self._pools.values()), {}
        await asyncio.gather(*(pool.aclose() for pool in pools))

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
