"""Write-through against a Redis created through Cacheyard and a real SQLite database.

What matters most: after a database failure the cache holds no value (the
next read goes to the database), and after a commit the cache has the new
value at once.
"""

from __future__ import annotations

import socket
import sqlite3
import uuid
import warnings
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.retry import Retry

from cacheyard.client.cache_aside import AsyncCacheAside, CacheAside
from cacheyard.client.write_through import (
    AsyncWriteThrough,
    CacheWriteError,
    CacheWriteWarning,
    WriteThrough,
)

pytestmark = pytest.mark.timeout(60)


class Accounts:
    """Balances in SQLite; a CHECK constraint makes the database reject bad writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reads = 0
        with self.connect() as db:
            db.execute(
                "CREATE TABLE accounts (id TEXT PRIMARY KEY, balance INTEGER CHECK (balance >= 0))"
            )
            db.execute("INSERT INTO accounts VALUES ('alice', 100), ('bob', 5)")

    def connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def balance(self, account: str) -> int | None:
        self.reads += 1
        db = self.connect()
        try:
            row = db.execute("SELECT balance FROM accounts WHERE id = ?", (account,)).fetchone()
        finally:
            db.close()
        return None if row is None else int(row[0])

    def set_balance(self, account: str, balance: int) -> int:
        db = self.connect()
        try:
            with db:  # commits, or rolls back and raises
                db.execute("UPDATE accounts SET balance = ? WHERE id = ?", (balance, account))
        finally:
            db.close()
        return balance


@pytest.fixture
def namespace() -> str:
    return f"wt{uuid.uuid4().hex[:12]}"


@pytest.fixture
def accounts(tmp_path: Path) -> Accounts:
    return Accounts(tmp_path / "bank.db")


def test_write_through_success_updates_the_cache(
    client: redis.Redis, namespace: str, accounts: Accounts
) -> None:
    writer = WriteThrough(client, namespace=namespace)
    assert writer.cache.get("alice", lambda: accounts.balance("alice")) == 100
    assert writer.write("alice", 70, lambda: accounts.set_balance("alice", 70)) == 70
    assert accounts.balance("alice") == 70
    reads = accounts.reads
    assert writer.cache.get("alice", lambda: accounts.balance("alice")) == 70  # from the cache
    assert accounts.reads == reads
    assert client.get(f"{namespace}:v1:0:alice:~stale") == b"v70"  # stale copy is new too


def test_database_failure_leaves_no_stale_value(
    client: redis.Redis, namespace: str, accounts: Accounts
) -> None:
    cache = CacheAside(client, namespace=namespace)
    writer = WriteThrough(cache)
    assert cache.get("bob", lambda: accounts.balance("bob")) == 5
    with pytest.raises(sqlite3.IntegrityError):
        writer.write("bob", -10, lambda: accounts.set_balance("bob", -10))
    assert not client.exists(f"{namespace}:v1:0:bob", f"{namespace}:v1:0:bob:~stale")
    reads = accounts.reads
    assert cache.get("bob", lambda: accounts.balance("bob")) == 5  # read went to the database
    assert accounts.reads == reads + 1


def test_cache_failure_after_commit_invalidates_and_raises(
    client: redis.Redis, namespace: str, accounts: Accounts
) -> None:
    writer = WriteThrough(client, namespace=namespace)
    writer.cache.get("alice", lambda: accounts.balance("alice"))
    unencodable = {"not", "json"}  # the serializer fails after the database committed
    with pytest.raises(CacheWriteError) as raised:
        writer.write("alice", unencodable, lambda: accounts.set_balance("alice", 1))
    assert raised.value.result == 1 and raised.value.invalidated
    assert isinstance(raised.value.__cause__, TypeError)
    assert accounts.balance("alice") == 1
    assert writer.cache.get("alice", lambda: accounts.balance("alice")) == 1


def test_unreachable_cache_after_commit_is_reported(accounts: Accounts) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    dead = redis.Redis(port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    writer = WriteThrough(dead)
    with pytest.raises(CacheWriteError) as raised:
        writer.write("alice", 60, lambda: accounts.set_balance("alice", 60))
    assert not raised.value.invalidated
    assert isinstance(raised.value.__cause__, redis.ConnectionError)
    assert accounts.balance("alice") == 60

    lenient = WriteThrough(dead, raise_on_cache_error=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert lenient.write("alice", 50, lambda: accounts.set_balance("alice", 50)) == 50
    assert [w.category for w in caught] == [CacheWriteWarning]
    dead.close()


def test_delete_through(client: redis.Redis, namespace: str, accounts: Accounts) -> None:
    writer = WriteThrough(client, namespace=namespace)
    writer.cache.get("bob", lambda: accounts.balance("bob"))

    def remove() -> None:
        with accounts.connect() as db:
            db.execute("DELETE FROM accounts WHERE id = 'bob'")

    writer.delete("bob", remove)
    assert writer.cache.get("bob", lambda: accounts.balance("bob")) is None


async def test_async_write_through(
    aclient: aioredis.Redis, namespace: str, accounts: Accounts
) -> None:
    cache = AsyncCacheAside(aclient, namespace=namespace)
    writer = AsyncWriteThrough(cache)

    async def balance(account: str) -> int | None:
        return accounts.balance(account)

    async def set_balance(account: str, value: int) -> int:
        return accounts.set_balance(account, value)

    assert await cache.get("alice", lambda: balance("alice")) == 100
    assert await writer.write("alice", 80, lambda: set_balance("alice", 80)) == 80
    reads = accounts.reads
    assert await cache.get("alice", lambda: balance("alice")) == 80
    assert accounts.reads == reads

    with pytest.raises(sqlite3.IntegrityError):
        await writer.write("alice", -1, lambda: set_balance("alice", -1))
    assert not await aclient.exists(f"{namespace}:v1:0:alice")
    assert await cache.get("alice", lambda: balance("alice")) == 80
    assert accounts.reads == reads + 1
