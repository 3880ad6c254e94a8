"""One-shot readiness checks over the wire, each bounded by a timeout.

A probe answers only "serving now?": any error, refusal or timeout is False,
so the health monitor can call them at sub-second intervals without handling
exceptions (which is why the time limit is a parameter rather than the
caller's asyncio.timeout). A hung (SIGSTOPped) engine shows up as a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib

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


async def memcached_version(address: str, port: int, seconds: float) -> bool:
    reply = await _exchange(address, port, b"version\r\n", b"\r\n", seconds)
    return reply.startswith(b"VERSION ")


async def config_endpoint(address: str, port: int, seconds: float) -> bool:
    reply = await _exchange(address, port, b"config get cluster\r\n", b"END\r\n", seconds)
    return reply.startswith(b"CONFIG cluster ")


async def _exchange(address: str, port: int, request: bytes, until: bytes, seconds: float) -> bytes:
    """Send one request, read up to ``until``; b"" on any failure."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(seconds):
            reader, writer = await asyncio.open_connection(address, port)
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
    in TIME_WAIT by the thousand when many nodes are watched."""

    def __init__(self) -> None:
        self._streams: dict[tuple[str, int], tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

    async def version(self, address: str, port: int, seconds: float) -> bool:
        key = (address, port)
        try:
            async with asyncio.timeout(seconds):
                stream = self._streams.get(key)
                if stream is None:
                    stream = await asyncio.open_connection(address, port)
                    self._streams[key] = stream
                reader, writer = stream
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
