"""One-shot readiness checks over the wire, each bounded by a timeout.

A probe answers only "serving now?": any error, refusal or timeout is False,
so the health monitor can call them at sub-second intervals without handling
exceptions (which is why the time limit is a parameter rather than the
caller's asyncio.timeout). A hung (SIGSTOPped) engine shows up as a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
from pathlib import Path

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from cacheyard.engines import control
from cacheyard.engines.spec import TlsFiles


def _client(address: str, port: int, seconds: float, tls: TlsFiles | None) -> aioredis.Redis:
    return aioredis.Redis(
        host=address,
        port=port,
        socket_timeout=seconds,
        socket_connect_timeout=seconds,
        retry=Retry(NoBackoff(), 0),  # a probe must not retry behind our back
        single_connection_client=True,
        **control.credentials(),
        **({"ssl": True, **tls.client_options()} if tls is not None else {}),
    )


async def redis_ping(address: str, port: int, seconds: float, tls: TlsFiles | None = None) -> bool:
    """PING answered with PONG; a server still loading its data says LOADING."""
    client = _client(address, port, seconds, tls)
    try:
        async with asyncio.timeout(seconds):
            return bool(await client.ping())
    except (RedisError, OSError, TimeoutError):
        return False
    finally:
        with contextlib.suppress(RedisError, OSError):
            await client.aclose()


# The binary protocol's VERSION: a 24-byte request header, no key, extras or value.
# memcached answers it before authentication, so it probes SASL (-S) nodes,
# which refuse the text protocol; nodes started with ``-B ascii`` answer only
# text, so the text ``version`` stays the probe of nodes without SASL.
_BINARY_HEADER = struct.Struct(">BBHBBHIIQ")
_BINARY_REQUEST, _BINARY_RESPONSE = 0x80, 0x81
_BINARY_VERSION = 0x0B
_PROBE_OPAQUE = 0x43594431  # echoed by the server: the answer is to this request
_MAX_VERSION_LENGTH = 64
_BINARY_VERSION_REQUEST = _BINARY_HEADER.pack(
    _BINARY_REQUEST, _BINARY_VERSION, 0, 0, 0, 0, 0, _PROBE_OPAQUE, 0
)


async def memcached_version(
    address: str,
    port: int,
    seconds: float,
    binary: bool = False,
    tls: TlsFiles | None = None,
) -> bool:
    """``version`` answered; ``binary``: the binary protocol's VERSION (SASL nodes);
    ``tls``: over TLS, the node verified against the CA by its address."""
    if not binary:
        reply = await _exchange(address, port, b"version\r\n", b"\r\n", seconds, _ca(tls))
        return reply.startswith(b"VERSION ")
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(seconds):
            reader, writer = await _open(address, port, _ca(tls))
            return await _binary_version(reader, writer)
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return False
    finally:
        if writer is not None:
            writer.close()


def _ca(tls: TlsFiles | None) -> Path | None:
    return tls.ca if tls is not None else None


async def _open(
    address: str, port: int, ca: Path | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection, over TLS when ``ca`` is given: the server's certificate must
    come from that CA and name ``address`` (ssl.SSLError is an OSError)."""
    if ca is None:
        return await asyncio.open_connection(address, port)
    context = ssl.create_default_context(cafile=str(ca))
    return await asyncio.open_connection(address, port, ssl=context, server_hostname=address)


async def _binary_version(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """One binary VERSION exchange; False if the answer is not a version, and then
    the stream is out of step and must not be used again."""
    writer.write(_BINARY_VERSION_REQUEST)
    header = _BINARY_HEADER.unpack(await reader.readexactly(_BINARY_HEADER.size))
    magic, opcode, key_length, extras_length, _, status, body_length, opaque, _ = header
    if (magic, opcode, opaque) != (_BINARY_RESPONSE, _BINARY_VERSION, _PROBE_OPAQUE):
        return False
    if not 0 < body_length <= _MAX_VERSION_LENGTH or key_length or extras_length:
        return False
    await reader.readexactly(body_length)  # "1.6.18"
    return bool(status == 0)


async def config_endpoint(
    address: str,
    port: int,
    seconds: float,
    ca: Path | None = None,
) -> bool:
    """``config get cluster`` answered; over TLS verified with ``ca`` when given."""
    reply = await _exchange(address, port, b"config get cluster\r\n", b"END\r\n", seconds, ca)
    return reply.startswith(b"CONFIG cluster ")


async def relays_redis(address: str, port: int, seconds: float) -> bool:
    """A plain-text PING on the port answered with any RESP status or error line
    (``-NOAUTH`` too): whatever holds the port, such as a front
    (engines/tls_front.py), relays to a live Redis."""
    reply = await _exchange(address, port, b"PING\r\n", b"\r\n", seconds)
    return reply[:1] in (b"+", b"-")


async def _exchange(
    address: str, port: int, request: bytes, until: bytes, seconds: float, ca: Path | None = None
) -> bytes:
    """Send one request, read up to ``until``; b"" on any failure."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(seconds):
            reader, writer = await _open(address, port, ca)
            writer.write(request)
            return await reader.readuntil(until)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return b""
    finally:
        if writer is not None:
            writer.close()


class KeptRedisProbes:
    """PING over one kept connection per node, for the health monitor's many probes.

    A fresh connection costs a TCP handshake and redis-py's set-up commands; on a
    two-core machine, probing every node ten times a second that way takes CPU
    from the engines. A connection that fails once is dropped and made anew on
    the next probe, so a restarted engine is found again.
    """

    def __init__(self) -> None:
        self._clients: dict[tuple[str, int], aioredis.Redis] = {}

    async def ping(
        self, address: str, port: int, seconds: float, tls: TlsFiles | None = None
    ) -> bool:
        key = (address, port)
        client = self._clients.get(key)
        if client is None:
            client = _client(address, port, seconds, tls)
            self._clients[key] = client
        try:
            async with asyncio.timeout(seconds):
                return bool(await client.ping())
        except (RedisError, OSError, TimeoutError):
            await self._drop(key)
            return False

    async def forget_all_but(self, keep: set[tuple[str, int]]) -> None:
        for key in [k for k in self._clients if k not in keep]:
            await self._drop(key)

    async def _drop(self, key: tuple[str, int]) -> None:
        client = self._clients.pop(key, None)
        if client is not None:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()


class KeptMemcachedProbes:
    """``version`` over one kept connection per Memcached node, for the same reason
    as KeptRedisProbes: a fresh connection per probe costs CPU and leaves sockets
    in TIME_WAIT by the thousand when many nodes are watched (and, over TLS, a
    handshake each time).

    ``binary`` (SASL nodes) probes with the binary protocol's VERSION; ``tls``
    speaks TLS, verifying the node against the CA by address. A node probed
    another way than before gets a new connection."""

    def __init__(self) -> None:
        self._streams: dict[
            tuple[str, int],
            tuple[asyncio.StreamReader, asyncio.StreamWriter, tuple[bool, Path | None]],
        ] = {}

    async def version(
        self,
        address: str,
        port: int,
        seconds: float,
        binary: bool = False,
        tls: TlsFiles | None = None,
    ) -> bool:
        key = (address, port)
        how = (binary, _ca(tls))
        stream = self._streams.get(key)
        if stream is not None and stream[2] != how:
            self._drop(key)
            stream = None
        try:
            async with asyncio.timeout(seconds):
                if stream is None:
                    stream = (*await _open(address, port, _ca(tls)), how)
                    self._streams[key] = stream
                reader, writer, _ = stream
                if binary:
                    answered = await _binary_version(reader, writer)
                    if not answered:
                        self._drop(key)
                    return answered
                writer.write(b"version\r\n")
                return (await reader.readuntil(b"\r\n")).startswith(b"VERSION ")
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            self._drop(key)
            return False

    def forget_all_but(self, keep: set[tuple[str, int]]) -> None:
        for key in [k for k in self._streams if k not in keep]:
            self._drop(key)

    def _drop(self, key: tuple[str, int]) -> None:
        stream = self._streams.pop(key, None)
        if stream is not None:
            stream[1].close()
