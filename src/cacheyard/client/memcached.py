"""Memcached with auto discovery: the node list comes from the configuration endpoint.

An ElastiCache Memcached cluster has one stable name, the configuration
endpoint, which answers ``config get cluster`` with the current node list and
a version that grows by one on every node added or removed. Applications that
hard-code node addresses miss every scale-out; this client asks the endpoint
instead, spreads keys over the nodes with pymemcache's ``HashClient``
(rendezvous hashing, so adding a node moves only the keys that land on it),
and asks again periodically (and on ``refresh()``), rebuilding the hash ring
only when the version grew.

A cluster created with ``TransitEncryptionEnabled`` speaks TLS only, on the
configuration endpoint and on every node: give ``ssl_ca_certs`` (the CA file
that ``cacheyard ca`` prints) or an ``ssl_context`` of your own. Every server
is verified against the CA and by the address it is reached at.

pymemcache has no asyncio client: the asyncio twin,
:mod:`cacheyard.client.memcached_async`, speaks the text protocol itself and
shares the parser, the endpoint syntax and the key-to-node mapping with this one.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from pymemcache.client.hash import HashClient

DEFAULT_PORT = 11211
CONFIG_COMMAND = b"config get cluster\r\n"


class DiscoveryError(Exception):
    """The configuration endpoint's answer was not a cluster configuration."""


@dataclass(frozen=True)
class ClusterNode:
    hostname: str
    ip: str
    port: int

    @property
    def address(self) -> tuple[str, int]:
        """Where to connect: the IP when the endpoint gave one, else the name."""
        return (self.ip or self.hostname, self.port)


@dataclass(frozen=True)
class ClusterConfig:
    version: int
    nodes: tuple[ClusterNode, ...]


def parse_cluster_config(reply: bytes) -> ClusterConfig:
    """Parse ``CONFIG cluster 0 <n>\\r\\n<version>\\n<host|ip|port ...>\\n\\r\\nEND\\r\\n``.

    ``<n>`` is the body's length in bytes, as for a ``VALUE`` item: the body is
    read by length, not by lines, exactly as AWS's cluster clients do.
    """
    if not reply:
        raise DiscoveryError(
            "the configuration endpoint closed the connection without answering (as a TLS "
            "endpoint does to a plaintext client: give ssl_ca_certs or ssl_context)"
        )
    header, sep, rest = reply.partition(b"\r\n")
    fields = header.split()
    if not sep or len(fields) != 4 or fields[:2] != [b"CONFIG", b"cluster"]:
        raise DiscoveryError(f"not a cluster configuration: {header[:80]!r}")
    try:
        length = int(fields[3])
    except ValueError:
        raise DiscoveryError(f"bad length in {header!r}") from None
    body, trailer = rest[:length], rest[length:]
    if len(body) != length or trailer != b"\r\nEND\r\n":
        raise DiscoveryError("cluster configuration truncated or not followed by END")
    try:
        lines = body.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise DiscoveryError(f"cluster configuration not ASCII: {body[:80]!r}") from None
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise DiscoveryError(f"bad cluster configuration body: {body[:80]!r}")
    nodes = []
    for item in lines[1].split():
        parts = item.split("|")
        if len(parts) != 3 or not parts[2].isdigit():
            raise DiscoveryError(f"bad node entry {item!r}")
        nodes.append(ClusterNode(parts[0], parts[1], int(parts[2])))
    return ClusterConfig(int(lines[0]), tuple(nodes))


def config_reply_complete(reply: bytes) -> bool:
    """Whether a ``config get cluster`` answer read so far is whole (or an error)."""
    return reply.endswith(b"END\r\n") or reply.startswith(b"ERROR")


def split_endpoint(config_endpoint: str, port: int = DEFAULT_PORT) -> tuple[str, int]:
    """``host`` or ``host:port``; ``port`` when the endpoint names none."""
    host, sep, given_port = config_endpoint.rpartition(":")
    if sep and given_port.isdigit():
        return host, int(given_port)
    return config_endpoint, port


def node_name(address: tuple[str, int]) -> str:
    """A node's name in the hash ring: ``host:port``, as pymemcache's ``HashClient`` names it.

    Rendezvous hashing scores ``f"{name}-{key}"``, so clients that agree on the
    names (and the hash) put every key on the same node.
    """
    return f"{address[0]}:{address[1]}"


def node_address(name: str) -> tuple[str, int]:
    host, _, port = name.rpartition(":")
    return host, int(port)


def tls_context(
    ssl_context: ssl.SSLContext | None = None,
    ssl_ca_certs: str | os.PathLike[str] | None = None,
) -> ssl.SSLContext | None:
    """The TLS context of a client: ``ssl_context`` as given, or one trusting the
    CA file ``ssl_ca_certs`` (certificate and address verified); None: no TLS."""
    if ssl_context is not None and ssl_ca_certs is not None:
        raise ValueError("pass ssl_context or ssl_ca_certs, not both")
    if ssl_ca_certs is not None:
        return ssl.create_default_context(cafile=os.fspath(ssl_ca_certs))
    return ssl_context


def fetch_cluster_config(
    host: str,
    port: int = DEFAULT_PORT,
    timeout: float = 2.0,
    ssl_context: ssl.SSLContext | None = None,
) -> ClusterConfig:
    """Ask a configuration endpoint for the cluster's nodes (over TLS with
    ``ssl_context``, the endpoint verified by ``host``)."""
    with socket.create_connection((host, port), timeout=timeout) as raw:
        sock = ssl_context.wrap_socket(raw, server_hostname=host) if ssl_context else raw
        with sock:
            sock.sendall(CONFIG_COMMAND)
            reply = b""
            while not config_reply_complete(reply):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
    return parse_cluster_config(reply)


class AutoDiscoveryClient:
    """get/set/delete/get_many over the cluster's nodes, following node changes.

    Every operation and every refresh holds one lock: pymemcache clients are
    not thread-safe, and the ring is replaced as a whole on a node change (the
    ``HashClient`` can only mark nodes dead, not remove them).
    ``refresh_interval`` seconds between background refreshes; 0 for none.
    ``ssl_ca_certs`` (a CA file) or ``ssl_context``: TLS to the configuration
    endpoint and to every node, each verified by its address.
    """

    def __init__(
        self,
        config_endpoint: str,
        port: int = DEFAULT_PORT,
        refresh_interval: float = 60.0,
        *,
        timeout: float = 2.0,
        ssl_context: ssl.SSLContext | None = None,
        ssl_ca_certs: str | os.PathLike[str] | None = None,
        **client_options: Any,
    ) -> None:
        self.endpoint = split_endpoint(config_endpoint, port)
        self.refresh_interval = refresh_interval
        self._timeout = timeout
        self._tls = tls_context(ssl_context, ssl_ca_certs)
        self._options = {
            "connect_timeout": timeout,
            "timeout": timeout,
            **({"tls_context": self._tls} if self._tls is not None else {}),
            **client_options,
        }
        self._lock = threading.Lock()
        self._config = fetch_cluster_config(*self.endpoint, timeout=timeout, ssl_context=self._tls)
        self._client = self._build(self._config)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if refresh_interval > 0:
            self._thread = threading.Thread(
                target=self._refresh_loop, name="memcached-discovery", daemon=True
            )
            self._thread.start()

    def _build(self, config: ClusterConfig) -> HashClient:
        return HashClient([node.address for node in config.nodes], **self._options)

    @property
    def version(self) -> int:
        return self._config.version

    @property
    def nodes(self) -> tuple[ClusterNode, ...]:
        return self._config.nodes

    def refresh(self) -> bool:
        """Ask the endpoint now; whether the node list changed (its version grew)."""
        config = fetch_cluster_config(*self.endpoint, timeout=self._timeout, ssl_context=self._tls)
        with self._lock:
            if config.version <= self._config.version:
                return False
            old, self._client = self._client, self._build(config)
            self._config = config
        old.close()
        return True

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.refresh_interval):
            # An endpoint briefly unreachable: keep the known nodes, ask again later.
            with contextlib.suppress(OSError, DiscoveryError):
                self.refresh()

    def node_for(self, key: str) -> tuple[str, int]:
        """The node address a key hashes to (for tests and diagnostics)."""
        with self._lock:
            server: str = self._client.hasher.get_node(key)
        return node_address(server)

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self._client.get(key, default)

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        with self._lock:
            found: dict[str, Any] = self._client.get_many(keys)
            return found

    def set(self, key: str, value: Any, expire: int = 0, noreply: bool | None = False) -> bool:
        """``noreply=False`` by default: a failed store is reported, not assumed."""
        with self._lock:
            return bool(self._client.set(key, value, expire=expire, noreply=noreply))

    def delete(self, key: str, noreply: bool | None = False) -> bool:
        with self._lock:
            return bool(self._client.delete(key, noreply=noreply))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._timeout + 1)
        with self._lock:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
