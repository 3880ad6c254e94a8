"""The session store against caches created through Cacheyard: TTLs, atomic
updates, the asyncio twin, and sessions that outlive a TestFailover."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aioredis
from client_caches import Caches
from group_helpers import (
    all_members_available,
    describe_group,
    primary_id,
    wait_group_available,
)
from service_helpers import wait_for

from cacheyard.client.sessions import (
    AsyncSessionStore,
    SessionData,
    SessionStore,
    is_valid_session_id,
)

pytestmark = pytest.mark.timeout(150)


@pytest.fixture
def client(caches: Caches) -> Iterator[redis.Redis]:
    connection = redis.Redis(host=caches.redis_address, port=6379, socket_timeout=5)
    yield connection
    connection.close()


def prefix() -> str:
    return f"sess-test-{uuid.uuid4().hex}"


def test_create_load_save_delete(client: redis.Redis) -> None:
    store = SessionStore(client, prefix=prefix())
    session_id = store.create({"user": "ann", "cart": [1, 2]})
    assert is_valid_session_id(session_id) and not is_valid_session_id("../x")
    assert store.load(session_id) == {"user": "ann", "cart": [1, 2]}
    store.save(session_id, {"user": "ann", "cart": []})
    assert store.load(session_id) == {"user": "ann", "cart": []}
    assert 1790 < int(client.ttl(store.key(session_id))) <= 1800
    assert store.delete(session_id) and not store.delete(session_id)
    assert store.load(session_id) is None
    assert store.update(session_id, lambda d: d) is None
    assert not store.touch(session_id)
    assert store.create() != store.create()


def test_rotate_moves_the_data_to_a_new_id(client: redis.Redis) -> None:
    store = SessionStore(client, prefix=prefix(), ttl=60)
    old = store.create({"user": "ann"})
    client.expire(store.key(old), 30)
    new = store.rotate(old)
    assert new is not None and new != old and is_valid_session_id(new)
    assert 0 < int(client.ttl(store.key(new))) <= 30  # the TTL moves with the data
    assert store.load(old) is None
    assert store.load(new) == {"user": "ann"}
    assert store.rotate(old) is None


def test_a_session_expires_on_time(client: redis.Redis) -> None:
    store = SessionStore(client, prefix=prefix(), ttl=1)
    started = time.monotonic()
    session_id = store.create({"user": "ben"})
    wait_for(lambda: not client.exists(store.key(session_id)), timeout=5)
    assert 0.8 < time.monotonic() - started < 3
    assert store.load(session_id) is None


def test_loading_slides_the_ttl_and_touch_renews_it(client: redis.Redis) -> None:
    sliding = SessionStore(client, prefix=prefix(), ttl=2)
    fixed = SessionStore(client, prefix=prefix(), ttl=2, sliding=False)
    slid, kept = sliding.create({"n": 1}), fixed.create({"n": 2})

    def pttl(store: SessionStore, session_id: str) -> int:
        return int(client.pttl(store.key(session_id)))

    wait_for(lambda: pttl(sliding, slid) < 1500 and pttl(fixed, kept) < 1500, timeout=5)
    assert sliding.load(slid) == {"n": 1} and fixed.load(kept) == {"n": 2}
    assert pttl(sliding, slid) > 1900
    assert pttl(fixed, kept) < 1500  # without sliding, reading does not renew
    assert fixed.touch(kept)
    assert pttl(fixed, kept) > 1900
    # kept alive by loads well past its first TTL: every load renews it
    started = time.monotonic()
    while time.monotonic() - started < 3:
        assert sliding.load(slid) == {"n": 1}
        wait_for(lambda: pttl(sliding, slid) < 1700, timeout=5)
    # and once nobody loads it, it expires
    wait_for(lambda: not client.exists(sliding.key(slid)), timeout=5)
    assert sliding.load(slid) is None


def test_atomic_update_from_20_threads_loses_nothing(client: redis.Redis) -> None:
    store = SessionStore(client, prefix=prefix())
    session_id = store.create({"count": 0, "seen": []})
    per_thread = 25
    start = threading.Barrier(20)
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):

                def bump(data: SessionData, mark: str = f"{thread}-{i}") -> None:
                    data["count"] += 1
                    data["seen"].append(mark)

                assert store.update(session_id, bump) is not None
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and not any(t.is_alive() for t in threads)
    final = store.load(session_id)
    assert final is not None
    assert final["count"] == 20 * per_thread
    assert sorted(final["seen"]) == sorted(f"{t}-{i}" for t in range(20) for i in range(25))


def test_update_may_return_a_replacement(client: redis.Redis) -> None:
    store = SessionStore(client, prefix=prefix())
    session_id = store.create({"a": 1})
    assert store.update(session_id, lambda d: {"b": d["a"] + 1}) == {"b": 2}
    assert store.load(session_id) == {"b": 2}


async def test_asyncio_store(caches: Caches) -> None:
    connection = aioredis.Redis(host=caches.redis_address, port=6379, decode_responses=True)
    try:
        store = AsyncSessionStore(connection, prefix=prefix(), ttl=60)
        session_id = await store.create({"count": 0})
        assert await store.load(session_id) == {"count": 0}

        def bump(data: SessionData) -> None:
            data["count"] += 1

        await asyncio.gather(*(store.update(session_id, bump) for _ in range(20)))
        assert await store.load(session_id) == {"count": 20}
        await store.save(session_id, {"count": -1})
        assert await store.load(session_id) == {"count": -1}
        assert await store.touch(session_id)
        rotated = await store.rotate(session_id)
        assert rotated is not None and await store.rotate(session_id) is None
        session_id = rotated
        assert await store.delete(session_id)
        assert await store.load(session_id) is None
        assert await store.update(session_id, bump) is None
        assert not await store.touch(session_id)
    finally:
        await connection.aclose()


def test_sessions_survive_a_failover(caches: Caches) -> None:
    ec = caches.service.client()
    before = wait_group_available(ec, caches.group_id)
    wait_for(lambda: all_members_available(ec, before), timeout=60)
    old = primary_id(before)

    namespace = prefix()
    writer = redis.Redis(host=caches.primary_endpoint, port=6379, socket_timeout=5)
    store = SessionStore(writer, prefix=namespace)
    sessions = {store.create({"user": f"user-{i}", "n": i}): i for i in range(200)}
    # replication is asynchronous: make sure both replicas have the sessions
    assert int(writer.wait(2, 5000)) == 2
    writer.close()

    ec.test_failover(ReplicationGroupId=caches.group_id, NodeGroupId="0001")
    try:
        wait_for(lambda: primary_id(describe_group(ec, caches.group_id)) != old, timeout=30)
    finally:
        after = wait_group_available(ec, caches.group_id, timeout=60)
        wait_for(lambda: all_members_available(ec, after), timeout=60)
    assert describe_group(ec, caches.group_id)["Status"] == "available"

    reader = redis.Redis(host=caches.primary_endpoint, port=6379, socket_timeout=5)
    try:
        fresh = SessionStore(reader, prefix=namespace)

        def read_back() -> dict[str, SessionData | None] | None:
            try:
                return {sid: fresh.load(sid) for sid in sessions}
            except redis.RedisError:  # the endpoint may still be moving
                return None

        found = wait_for(read_back, timeout=30)
        assert found == {sid: {"user": f"user-{i}", "n": i} for sid, i in sessions.items()}
    finally:
        reader.close()
