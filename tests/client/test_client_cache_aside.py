"""Cache-aside against a Redis created through Cacheyard, in front of a real SQLite database.

Each test works in a namespace of its own, so tests never see each other's
keys. Expiry is observed by polling Redis with a deadline, never by sleeping
for a TTL.
"""

from __future__ import annotations

import asyncio
import datetime
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from client_caches import Caches
from service_helpers import wait_for

from cacheyard.client.cache_aside import AsyncCacheAside, CacheAside
from cacheyard.client.serialization import PICKLE

pytestmark = pytest.mark.timeout(60)

SLOW_QUERY = 0.2  # seconds a "slow" loader takes, so that concurrent misses overlap


class Database:
    """A SQLite file of products; every query is counted (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.queries = 0
        self._lock = threading.Lock()
        with self.connect() as db:
            db.execute("CREATE TABLE products (id TEXT PRIMARY KEY, name TEXT, price REAL)")
            db.executemany(
                "INSERT INTO products VALUES (?, ?, ?)",
                [(f"p{i}", f"product {i}", float(i)) for i in range(20)],
            )

    def connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def product(self, product_id: str, delay: float = 0.0) -> dict[str, Any] | None:
        with self._lock:
            self.queries += 1
        db = self.connect()
        try:
            row = db.execute(
                "SELECT id, name, price FROM products WHERE id = ?", (product_id,)
            ).fetchone()
        finally:
            db.close()
        if delay:
            time.sleep(delay)  # the query's cost, not a wait for something
        return None if row is None else {"id": row[0], "name": row[1], "price": row[2]}


@pytest.fixture
def namespace() -> str:
    return f"ca{uuid.uuid4().hex[:12]}"


@pytest.fixture
def database(tmp_path: Path) -> Database:
    return Database(tmp_path / "shop.db")


def test_miss_loads_then_hits(client: redis.Redis, namespace: str, database: Database) -> None:
    cache = CacheAside(client, namespace=namespace)
    first = cache.get("product:p3", lambda: database.product("p3"))
    second = cache.get("product:p3", lambda: database.product("p3"))
    assert first == second == {"id": "p3", "name": "product 3", "price": 3.0}
    assert database.queries == 1
    assert client.exists(f"{namespace}:v1:0:product:p3")


def test_entries_expire(client: redis.Redis, namespace: str, database: Database) -> None:
    cache = CacheAside(client, namespace=namespace, ttl=0.3, jitter=0, serve_stale=False)
    cache.get("product:p1", lambda: database.product("p1"))
    assert 0 < client.pttl(f"{namespace}:v1:0:product:p1") <= 300
    wait_for(lambda: not client.exists(f"{namespace}:v1:0:product:p1"))
    cache.get("product:p1", lambda: database.product("p1"))
    assert database.queries == 2


def test_ttl_jitter_stays_within_bounds(client: redis.Redis, namespace: str) -> None:
    cache = CacheAside(client, namespace=namespace, ttl=100, jitter=0.2)
    for i in range(60):
        cache.get(f"k{i}", lambda: "v")
    ttls = [int(client.pttl(f"{namespace}:v1:0:k{i}")) for i in range(60)]
    assert all(80_000 - 1_000 <= ttl <= 100_000 for ttl in ttls), ttls
    assert max(ttls) - min(ttls) > 5_000  # really spread, not one TTL for all


def test_missing_rows_are_cached_for_negative_ttl(
    client: redis.Redis, namespace: str, database: Database
) -> None:
    cache = CacheAside(client, namespace=namespace, negative_ttl=0.3, jitter=0)
    assert cache.get("product:nope", lambda: database.product("nope")) is None
    assert cache.get("product:nope", lambda: database.product("nope")) is None
    assert database.queries == 1
    assert 0 < client.pttl(f"{namespace}:v1:0:product:nope") <= 300
    wait_for(lambda: not client.exists(f"{namespace}:v1:0:product:nope"))
    assert cache.get("product:nope", lambda: database.product("nope")) is None
    assert database.queries == 2


def test_negative_caching_can_be_turned_off(
    client: redis.Redis, namespace: str, database: Database
) -> None:
    cache = CacheAside(client, namespace=namespace, negative_ttl=0)
    for _ in range(3):
        assert cache.get("product:nope", lambda: database.product("nope")) is None
    assert database.queries == 3


def test_explicit_invalidation(client: redis.Redis, namespace: str, database: Database) -> None:
    cache = CacheAside(client, namespace=namespace)
    cache.get("product:p2", lambda: database.product("p2"))
    with database.connect() as db:
        db.execute("UPDATE products SET price = 99 WHERE id = 'p2'")
    cache.invalidate("product:p2")
    assert not client.exists(f"{namespace}:v1:0:product:p2", f"{namespace}:v1:0:product:p2:~stale")
    assert cache.get("product:p2", lambda: database.product("p2")) == {
        "id": "p2",
        "name": "product 2",
        "price": 99.0,
    }
    assert database.queries == 2


def test_namespace_invalidation_and_versions(
    client: redis.Redis, namespace: str, database: Database
) -> None:
    cache = CacheAside(client, namespace=namespace)
    other = CacheAside(client, namespace=f"{namespace}x")
    for i in range(5):
        cache.get(f"product:p{i}", lambda i=i: database.product(f"p{i}"))  # type: ignore[misc]
    other.get("product:p0", lambda: database.product("p0"))
    assert database.queries == 6

    assert cache.invalidate_namespace() == 1
    for i in range(5):
        cache.get(f"product:p{i}", lambda i=i: database.product(f"p{i}"))  # type: ignore[misc]
    other.get("product:p0", lambda: database.product("p0"))  # another namespace: still cached
    assert database.queries == 11
    assert client.exists(f"{namespace}:v1:1:product:p0")

    CacheAside(client, namespace=namespace, version=2).get("product:p0", lambda: "v2 shape")
    assert database.queries == 11
    assert cache.get("product:p0", lambda: database.product("p0"))["price"] == 0.0  # type: ignore[index]


def test_namespace_invalidation_reaches_other_processes(
    client: redis.Redis, namespace: str, database: Database
) -> None:
    here = CacheAside(client, namespace=namespace)  # two instances: as two processes would
    there = CacheAside(client, namespace=namespace)
    here.get("product:p1", lambda: database.product("p1"))
    there.get("product:p2", lambda: database.product("p2"))
    assert there.get("product:p1", lambda: database.product("p1")) is not None
    assert database.queries == 2

    there.invalidate_namespace()
    here.get("product:p1", lambda: database.product("p1"))  # not the old generation's entry
    assert database.queries == 3
    there.get("product:p1", lambda: database.product("p1"))  # the new one, filled by `here`
    here.get("product:p1", lambda: database.product("p1"))
    assert database.queries == 3


def test_decorator(client: redis.Redis, namespace: str, database: Database) -> None:
    cache = CacheAside(client, namespace=namespace)

    @cache.cached(key=lambda product_id: f"product:{product_id}")
    def product(product_id: str) -> dict[str, Any] | None:
        return database.product(product_id)

    assert product("p4") == product("p4") == {"id": "p4", "name": "product 4", "price": 4.0}
    assert product("p5") is not None
    assert database.queries == 2
    assert vars(product)["__name__"] == "product"  # functools.update_wrapper
    product.invalidate("p4")
    product("p4")
    assert database.queries == 3

    @cache.cached()
    def add(a: int, b: int = 0) -> int:
        database.queries += 1
        return a + b

    assert add(1, b=2) == add(1, b=2) == 3
    assert add(2) == 2
    assert database.queries == 5


def test_serializers(client: redis.Redis, namespace: str) -> None:
    cache = CacheAside(client, namespace=namespace)
    cache.get("doc", lambda: {"a": [1, 2], "é": None})
    assert client.get(f"{namespace}:v1:0:doc") == b'v{"a":[1,2],"\xc3\xa9":null}'  # readable JSON
    assert cache.get("doc", lambda: None) == {"a": [1, 2], "é": None}

    pickled = CacheAside(client, namespace=f"{namespace}p", serializer=PICKLE)
    value = {"when": datetime.date(2026, 1, 2), "tags": {"x", "y"}, "pair": (1, 2)}
    pickled.get("obj", lambda: value)
    assert pickled.get("obj", lambda: None) == value


def test_rejects_reserved_keys_and_text_clients(caches: Caches, client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="reserved"):
        CacheAside(client).get("a:~lock", lambda: 1)
    text = redis.Redis(host=caches.redis_address, port=6379, decode_responses=True)
    with pytest.raises(ValueError, match="bytes"):
        CacheAside(text)
    text.close()


def test_stampede_of_50_threads_makes_one_database_call(
    client: redis.Redis, namespace: str, database: Database
) -> None:
    cache = CacheAside(client, namespace=namespace, serve_stale=False)
    barrier = threading.Barrier(50)
    results: list[Any] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            barrier.wait()
            results.append(cache.get("product:p7", lambda: database.product("p7", SLOW_QUERY)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert len(results) == 50
    assert all(result == {"id": "p7", "name": "product 7", "price": 7.0} for result in results)
    assert database.queries == 1


async def test_stampede_of_50_tasks_makes_one_database_call(
    aclient: aioredis.Redis, namespace: str, database: Database
) -> None:
    cache = AsyncCacheAside(aclient, namespace=namespace, serve_stale=False)

    async def load() -> dict[str, Any] | None:
        return await asyncio.to_thread(database.product, "p8", SLOW_QUERY)

    results = await asyncio.wait_for(
        asyncio.gather(*(cache.get("product:p8", load) for _ in range(50))), 30
    )
    assert all(result == {"id": "p8", "name": "product 8", "price": 8.0} for result in results)
    assert database.queries == 1


def test_serves_stale_while_one_caller_reloads(
    client: redis.Redis, namespace: str, database: Database
) -> None:
    cache = CacheAside(client, namespace=namespace, ttl=0.3, jitter=0, stale_ttl=60)
    cache.get("product:p9", lambda: database.product("p9"))
    with database.connect() as db:
        db.execute("UPDATE products SET price = 90 WHERE id = 'p9'")
    wait_for(lambda: not client.exists(f"{namespace}:v1:0:product:p9"))

    loading = threading.Event()
    release = threading.Event()

    def slow_loader() -> dict[str, Any] | None:
        loading.set()
        assert release.wait(20)
        return database.product("p9")

    holder = threading.Thread(target=lambda: cache.get("product:p9", slow_loader))
    holder.start()
    try:
        assert loading.wait(10)
        started = time.monotonic()
        stale = cache.get("product:p9", lambda: database.product("p9"))
        assert stale == {"id": "p9", "name": "product 9", "price": 9.0}
        assert time.monotonic() - started < 1.0  # served, not waited for the loader
    finally:
        release.set()
        holder.join(timeout=20)
    assert cache.get("product:p9", lambda: None) == {"id": "p9", "name": "product 9", "price": 90.0}
    assert database.queries == 2


def test_waiters_take_over_when_the_loader_fails(
    client: redis.Redis, namespace: str, database: Database
) -> None:
    cache = CacheAside(client, namespace=namespace, serve_stale=False)
    loading = threading.Event()
    fail = threading.Event()

    def failing_loader() -> dict[str, Any] | None:
        loading.set()
        assert fail.wait(20)
        raise RuntimeError("database down")

    errors: list[BaseException] = []

    def holder_run() -> None:
        try:
            cache.get("product:p1", failing_loader)
        except RuntimeError as exc:
            errors.append(exc)

    holder = threading.Thread(target=holder_run)
    holder.start()
    assert loading.wait(10)
    results: list[Any] = []
    waiter = threading.Thread(
        target=lambda: results.append(cache.get("product:p1", lambda: database.product("p1")))
    )
    waiter.start()
    fail.set()
    holder.join(timeout=20)
    waiter.join(timeout=20)
    assert len(errors) == 1
    assert results == [{"id": "p1", "name": "product 1", "price": 1.0}]
    assert not client.exists(f"{namespace}:v1:0:product:p1:~lock")


async def test_async_hits_misses_invalidation_and_decorator(
    aclient: aioredis.Redis, client: redis.Redis, namespace: str, database: Database
) -> None:
    cache = AsyncCacheAside(aclient, namespace=namespace, negative_ttl=60)

    @cache.cached(key=lambda product_id: f"product:{product_id}")
    async def product(product_id: str) -> dict[str, Any] | None:
        return database.product(product_id)

    assert await product("p2") == await product("p2")
    assert await product("none") is None
    assert await product("none") is None
    assert database.queries == 2
    await product.invalidate("p2")
    await product("p2")
    assert database.queries == 3
    await cache.invalidate_namespace()
    await product("p2")
    assert database.queries == 4

    sync = CacheAside(client, namespace=namespace)  # same keys: sync and async share entries
    assert sync.get("product:p2", lambda: None) == {"id": "p2", "name": "product 2", "price": 2.0}
