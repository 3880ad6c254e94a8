"""Connections from cache descriptions, retries that ride through a failover, and WAIT.

Against caches created through a real Cacheyard service; the retry rules are
also pinned against a scripted RESP server, where every connection and every
command can be counted.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from group_helpers import all_members_available, describe_group, primary_id
from service_helpers import describe, wait_for

from cacheyard.client.connect import (
    CacheEndpoints,
    Connection,
    connect,
    connect_async,
    set_acknowledged,
)
from cacheyard.client.iam_token import AwsCredentials, IamCredentialProvider
from cacheyard.client.retry import NO_RETRY, RetryPolicy

pytestmark = pytest.mark.timeout(180)

# ---- a scripted RESP server ---------------------------------------------------------------


class ScriptedServer(threading.Thread):
    """Answers RESP commands; ``script(connection_number, command)`` says how.

    The script returns the raw reply bytes, or None to drop the connection.
    """

    def __init__(self, script: Callable[[int, list[bytes]], bytes | None]) -> None:
        super().__init__(daemon=True)
        self.script = script
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.commands: list[tuple[int, list[bytes]]] = []
        self.connections = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            number = self.connections
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        reader = conn.makefile("rb")
        try:
            while True:
                header = reader.readline()
                if not header:
                    return
                assert header.startswith(b"*"), header
                args = []
                for _ in range(int(header[1:])):
                    length = int(reader.readline()[1:])
                    args.append(reader.read(length + 2)[:-2])
                self.commands.append((number, args))
                reply = self.script(number, args)
                if reply is None:
                    return
                conn.sendall(reply)
        finally:
            reader.close()
            conn.close()

    def names(self) -> list[tuple[int, bytes]]:
        """(connection, command) for everything but the handshake."""
        return [
            (n, a[0].upper()) for n, a in self.commands if a[0].upper() not in (b"CLIENT", b"HELLO")
        ]

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)
        self.sock.close()


@pytest.fixture
def scripted() -> Iterator[Callable[[Callable[[int, list[bytes]], bytes | None]], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Callable[[int, list[bytes]], bytes | None]) -> ScriptedServer:
        server = ScriptedServer(script)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def handshake(args: list[bytes]) -> bytes | None:
    """Replies to what redis-py sends on connect (HELLO 3, CLIENT SETINFO)."""
    if args[0].upper() == b"HELLO":
        return b"%1\r\n$5\r\nproto\r\n:3\r\n"
    if args[0].upper() == b"CLIENT":
        return b"+OK\r\n"
    return None


FAST = RetryPolicy(attempts=5, total_seconds=5, base_backoff=0.001, max_backoff=0.01)


def test_readonly_is_retried_on_a_fresh_connection(scripted: Any) -> None:
    def script(number: int, args: list[bytes]) -> bytes | None:
        if (reply := handshake(args)) is not None:
            return reply
        if number == 0:  # the node just became a replica
            return b"-READONLY You can't write against a read only replica.\r\n"
        return b"+OK\r\n"

    server = scripted(script)
    client = connect(CacheEndpoints("127.0.0.1", server.port), retry=FAST).writer
    assert client.set("k", "v") is True
    assert server.names() == [(0, b"SET"), (1, b"SET")]


def test_noreplicas_from_a_just_promoted_primary_is_retried(scripted: Any) -> None:
    def script(number: int, args: list[bytes]) -> bytes | None:
        if (reply := handshake(args)) is not None:
            return reply
        if number == 0:  # refused, not applied: no replica has caught up yet
            return b"-NOREPLICAS Not enough good replicas to write.\r\n"
        return b"+OK\r\n"

    server = scripted(script)
    client = connect(CacheEndpoints("127.0.0.1", server.port), retry=FAST).writer
    assert client.set("k", "v") is True
    assert server.names() == [(0, b"SET"), (1, b"SET")]


def test_other_errors_are_not_retried(scripted: Any) -> None:
    def script(number: int, args: list[bytes]) -> bytes | None:
        return handshake(args) or b"-WRONGTYPE Operation against a key\r\n"

    server = scripted(script)
    client = connect(CacheEndpoints("127.0.0.1", server.port), retry=FAST).writer
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        client.set("k", "v")
    assert server.names() == [(0, b"SET")]


def test_retries_are_bounded_by_attempts(scripted: Any) -> None:
    server = scripted(lambda number, args: handshake(args))  # drops every command
    client = connect(CacheEndpoints("127.0.0.1", server.port), retry=FAST).writer
    with pytest.raises(redis.ConnectionError):
        client.set("k", "v")
    assert [n for n, _ in server.names()] == [0, 1, 2, 3, 4]


def test_retries_are_bounded_by_total_time() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = int(probe.getsockname()[1])  # closed again: connections are refused
    policy = RetryPolicy(attempts=10_000, total_seconds=0.5, base_backoff=0.01, max_backoff=0.05)
    client = connect(CacheEndpoints("127.0.0.1", port), retry=policy).writer
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    assert 0.4 < time.monotonic() - started < 3


def test_no_retry_policy_fails_at_once(scripted: Any) -> None:
    server = scripted(lambda number, args: handshake(args))
    client = connect(CacheEndpoints("127.0.0.1", server.port), retry=NO_RETRY).writer
    with pytest.raises(redis.ConnectionError):
        client.set("k", "v")
    assert len(server.names()) == 1


def test_wait_is_never_retried_on_another_connection(scripted: Any) -> None:
    """The SET and its WAIT go out together on one connection; a drop is not retried."""

    def script(number: int, args: list[bytes]) -> bytes | None:
        if (reply := handshake(args)) is not None:
            return reply
        if args[0].upper() == b"SET":
            return b"+OK\r\n"
        return None  # the connection dies while WAIT is pending

    server = scripted(script)
    connection = connect(CacheEndpoints("127.0.0.1", server.port), retry=FAST)
    with pytest.raises(redis.ConnectionError):
        connection.set_acknowledged("k", "v", replicas=1, timeout_ms=100)
    assert server.names() == [(0, b"SET"), (0, b"WAIT")]
    # the connection was discarded; the pool hands out a fresh one that works
    server.script = lambda number, args: (
        handshake(args) or (b"+OK\r\n" if args[0].upper() == b"SET" else b":1\r\n")
    )
    assert connection.set_acknowledged("k", "v", replicas=1, timeout_ms=100) == 1
    assert server.names()[2:] == [(1, b"SET"), (1, b"WAIT")]


async def test_async_readonly_is_retried_and_wait_is_not(scripted: Any) -> None:
    calls = itertools.count()

    def script(number: int, args: list[bytes]) -> bytes | None:
        if (reply := handshake(args)) is not None:
            return reply
        if args[0].upper() == b"SET":
            return b"-READONLY no\r\n" if next(calls) == 0 else b"+OK\r\n"
        return None

    server = scripted(script)
    async with connect_async(CacheEndpoints("127.0.0.1", server.port), retry=FAST) as conn:
        assert await conn.writer.set("k", "v") is True
        with pytest.raises(redis.ConnectionError):
            await conn.set_acknowledged("k", "v", 1, 100)
    assert server.names() == [(0, b"SET"), (1, b"SET"), (1, b"SET"), (1, b"WAIT")]


def test_iam_token_provider_authenticates_each_new_connection(scripted: Any) -> None:
    provider = IamCredentialProvider(
        "lib-group", "iam-user", "us-east-1", AwsCredentials("AKID", "secret")
    )
    server = scripted(lambda number, args: handshake(args) or b"+PONG\r\n")
    with connect(CacheEndpoints("127.0.0.1", server.port), credential_provider=provider) as conn:
        assert conn.writer.ping() is True
    (hello,) = [args for _, args in server.commands if args[0].upper() == b"HELLO"]
    assert hello[2:] == [b"AUTH", b"iam-user", provider.token().encode()]


# ---- endpoints from descriptions ----------------------------------------------------------


def test_endpoints_from_addresses() -> None:
    assert CacheEndpoints.from_addresses("10.0.0.1") == CacheEndpoints("10.0.0.1", 6379)
    found = CacheEndpoints.from_addresses("a.example:6380", "b.example")
    assert found == CacheEndpoints("a.example", 6380, "b.example", 6379)
    assert CacheEndpoints("p", 1).reader == ("p", 1)


def test_endpoints_reject_what_has_none() -> None:
    with pytest.raises(ValueError, match="no primary endpoint"):
        CacheEndpoints.from_replication_group({"ReplicationGroupId": "g", "NodeGroups": []})
    with pytest.raises(ValueError, match="not Redis"):
        CacheEndpoints.from_cache_cluster({"CacheClusterId": "m", "Engine": "memcached"})
    with pytest.raises(ValueError, match="ShowCacheNodeInfo"):
        CacheEndpoints.from_cache_cluster({"CacheClusterId": "r", "Engine": "redis"})


def test_single_node_cluster_reads_and_writes_through_one_client(caches: Any) -> None:
    ec = caches.service.client()
    response = ec.describe_cache_clusters(CacheClusterId="lib-redis", ShowCacheNodeInfo=True)
    endpoints = CacheEndpoints.from_cache_cluster(response)
    assert endpoints.primary_host == caches.redis_address
    assert endpoints == CacheEndpoints.from_cache_cluster(describe(ec, "lib-redis"))
    with connect(endpoints) as conn:
        assert conn.reader is conn.writer
        conn.writer.set("connect:single", "1")
        assert conn.reader.get("connect:single") == b"1"


def group_connection(caches: Any, **options: Any) -> Connection:
    response = caches.service.client().describe_replication_groups(
        ReplicationGroupId=caches.group_id
    )
    endpoints = CacheEndpoints.from_replication_group(response)
    assert (endpoints.primary_host, endpoints.reader_host) == (
        caches.primary_endpoint,
        caches.reader_endpoint,
    )
    return connect(endpoints, **options)


def test_reader_sees_what_the_writer_wrote(caches: Any) -> None:
    with group_connection(caches) as conn:
        assert conn.reader.info("replication")["role"] == "slave"
        conn.writer.set("connect:rw", "written")
        assert wait_for(lambda: conn.reader.get("connect:rw") == b"written", timeout=10)


def test_set_acknowledged_counts_replicas(caches: Any) -> None:
    with group_connection(caches) as conn:
        assert conn.set_acknowledged("connect:acked", "v", replicas=2, timeout_ms=2000) == 2
        assert set_acknowledged(conn.writer, "connect:acked", "w", 1, 2000) >= 1
        assert conn.reader.get("connect:acked") == b"w"  # acknowledged: already there


async def test_async_connection_reads_and_writes(caches: Any) -> None:
    group = describe_group(caches.service.client(), caches.group_id)
    async with connect_async(CacheEndpoints.from_replication_group(group)) as conn:
        await conn.writer.set("connect:async", "a")
        assert await conn.set_acknowledged("connect:async2", "b", 1, 2000) >= 1
        deadline = time.monotonic() + 10
        while await conn.reader.get("connect:async") != b"a":
            assert time.monotonic() < deadline, "reader never saw the write"
            await asyncio.sleep(0.02)


# ---- through a failover -------------------------------------------------------------------


class Writes(threading.Thread):
    """Writes ``prefix:N`` through a ``write`` callable until stopped; keeps any error."""

    def __init__(self, write: Callable[[str], None]) -> None:
        super().__init__(daemon=True)
        self.write = write
        self.done: list[str] = []
        self.errors: list[BaseException] = []
        self.halt = threading.Event()

    def run(self) -> None:
        for n in itertools.count():
            if self.halt.is_set():
                return
            key = f"failover:{id(self)}:{n}"
            try:
                self.write(key)
            except BaseException as exc:
                self.errors.append(exc)
                return
            self.done.append(key)


def test_writes_ride_through_a_test_failover(caches: Any) -> None:
    ec = caches.service.client()
    before = describe_group(ec, caches.group_id)
    old_primary = primary_id(before)
    conn = group_connection(caches)
    node_before = conn.writer.info("server")["run_id"]
    async_conn = connect_async(CacheEndpoints.from_replication_group(before))
    loop = asyncio.new_event_loop()
    loop_thread = threading.Thread(target=loop.run_forever, daemon=True)
    loop_thread.start()

    async def set_async(key: str) -> None:
        await async_conn.writer.set(key, key)

    def async_write(key: str) -> None:
        asyncio.run_coroutine_threadsafe(set_async(key), loop).result()

    def sync_write(key: str) -> None:
        conn.writer.set(key, key)

    sync_writes = Writes(sync_write)
    async_writes = Writes(async_write)
    try:
        for writes in (sync_writes, async_writes):
            writes.start()
        wait_for(lambda: len(sync_writes.done) > 20 and len(async_writes.done) > 20, timeout=10)

        ec.test_failover(ReplicationGroupId=caches.group_id, NodeGroupId="0001")

        def failed_over() -> dict[str, Any] | None:
            group = describe_group(ec, caches.group_id)
            done = group["Status"] == "available" and primary_id(group) != old_primary
            return group if done else None

        wait_for(failed_over, timeout=90, interval=0.1)
        counts = len(sync_writes.done), len(async_writes.done)
        wait_for(
            lambda: (
                len(sync_writes.done) > counts[0] + 50 and len(async_writes.done) > counts[1] + 50
            ),
            timeout=30,
        )
    finally:
        for writes in (sync_writes, async_writes):
            writes.halt.set()
            writes.join(timeout=30)
        asyncio.run_coroutine_threadsafe(async_conn.aclose(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        loop_thread.join(timeout=10)
        loop.close()
        # leave the group as found: available, every member (the replacement too) serving
        wait_for(
            lambda: all_members_available(ec, describe_group(ec, caches.group_id)), timeout=120
        )
    assert sync_writes.errors == []
    assert async_writes.errors == []
    # the new primary serves the writes made after the move, and the reader sees them
    assert conn.writer.info("server")["run_id"] != node_before  # another node serves it
    last = sync_writes.done[-1]
    assert conn.writer.get(last) == last.encode()
    assert wait_for(lambda: conn.reader.get(last) == last.encode(), timeout=10)
    conn.close()
