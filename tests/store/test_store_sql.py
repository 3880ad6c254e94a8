"""SqlStore on a real SQLite file: records, generations, events, tags and IAM."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from cacheyard.domain.events import Event
from cacheyard.domain.iam import (
    ACTIVE,
    ADMINISTRATOR_ACCESS,
    INACTIVE,
    AccessKey,
    InlinePolicy,
    ManagedPolicy,
    User,
)
from cacheyard.store import EventQuery, Record, SqlStore
from cacheyard.store.schema import MIGRATIONS
from cacheyard.store.secret_box import KEY_FILE, SecretKeyError

pytestmark = pytest.mark.timeout(20)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ARN = "arn:aws:elasticache:us-east-1:000000000000:cluster:{}"


def record(id: str = "c1", kind: str = "cache-cluster", **changes: object) -> Record:
    fields: dict[str, object] = {
        "kind": kind,
        "id": id,
        "arn": ARN.format(id) if kind == "cache-cluster" else f"arn:{kind}:{id}",
        "spec": {"engine": "redis", "nodes": [{"node_id": "0001"}]},
        "status": "creating",
        "observed": {},
        "generation": 1,
        "observed_generation": 0,
        "created_at": T0,
    }
    fields.update(changes)
    return Record(**fields)  # type: ignore[arg-type]


def sqlite_rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def files_holding(directory: Path, data: bytes) -> list[Path]:
    return [path for path in directory.iterdir() if data in path.read_bytes()]


# schema


async def test_schema_version_is_recorded_and_reopen_is_idempotent(db_path: Path) -> None:
    first = await SqlStore.open_sqlite(db_path)
    async with first.transaction() as tx:
        await tx.insert(record())
    await first.close()
    for _ in range(2):
        again = await SqlStore.open_sqlite(db_path)
        async with again.transaction() as tx:
            assert (await tx.get("cache-cluster", "c1")) == record()
        await again.close()
    assert sqlite_rows(db_path, "SELECT version FROM schema_version") == [(len(MIGRATIONS),)]


async def test_wal_mode_is_on(store: SqlStore, db_path: Path) -> None:
    async with store.transaction() as tx:
        await tx.insert(record())
    assert sqlite_rows(db_path, "PRAGMA journal_mode") == [("wal",)]
    assert (db_path.parent / f"{db_path.name}-wal").exists()


# records


async def test_insert_get_and_all(store: SqlStore) -> None:
    async with store.transaction() as tx:
        await tx.insert(record("b"))
        await tx.insert(record("a"))
        await tx.insert(record("a", kind="cache-subnet-group"))
    async with store.transaction() as tx:
        got = await tx.get("cache-cluster", "a")
        assert got == record("a")
        assert got is not None and got.created_at.tzinfo is not None
        assert await tx.get("cache-cluster", "missing") is None
        assert [r.id for r in await tx.all("cache-cluster")] == ["a", "b"]
        assert [r.kind for r in await tx.all("cache-subnet-group")] == ["cache-subnet-group"]
        assert await tx.all("nothing") == []


async def test_duplicate_insert_is_refused(store: SqlStore) -> None:
    async with store.transaction() as tx:
        await tx.insert(record())
    with pytest.raises(IntegrityError):
        async with store.transaction() as tx:
            await tx.insert(record())


async def test_created_at_in_another_zone_comes_back_as_utc(store: SqlStore) -> None:
    local = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    async with store.transaction() as tx:
        await tx.insert(record(created_at=local))
        got = await tx.get("cache-cluster", "c1")
    assert got is not None
    assert got.created_at == T0
    assert got.created_at.utcoffset() == timedelta(0)


async def test_update_spec_bumps_generation(store: SqlStore) -> None:
    async with store.transaction() as tx:
        await tx.insert(record())
        updated = await tx.update_spec(
            "cache-cluster", "c1", {"engine": "redis", "v": 2}, "modifying"
        )
    assert updated.generation == 2
    assert updated.spec == {"engine": "redis", "v": 2}
    assert updated.status == "modifying"
    assert updated.observed_generation == 0
    async with store.transaction() as tx:
        again = await tx.update_spec("cache-cluster", "c1", {"v": 3}, "available")
        assert again.generation == 3
        assert await tx.get("cache-cluster", "c1") == again
        with pytest.raises(KeyError):
            await tx.update_spec("cache-cluster", "missing", {}, "available")


async def test_update_observed_is_a_compare_and_set_on_generation(store: SqlStore) -> None:
    async with store.transaction() as tx:
        await tx.insert(record())
        await tx.update_spec("cache-cluster", "c1", {"v": 2}, "modifying")  # generation 2

        stale = await tx.update_observed(
            "cache-cluster", "c1", {"seen": 1}, status="available", generation=1
        )
        got = await tx.get("cache-cluster", "c1")
        assert stale is False
        assert got is not None
        assert (got.status, got.observed_generation, got.observed) == ("modifying", 0, {"seen": 1})

        fresh = await tx.update_observed(
            "cache-cluster", "c1", {"seen": 2}, status="available", generation=2
        )
        got = await tx.get("cache-cluster", "c1")
        assert fresh is True
        assert got is not None
        assert (got.status, got.observed_generation, got.observed) == ("available", 2, {"seen": 2})
        assert got.generation == 2


async def test_update_observed_without_status_only_writes_observed(store: SqlStore) -> None:
    async with store.transaction() as tx:
        await tx.insert(record())
        assert not await tx.update_observed("cache-cluster", "c1", {"x": 1})
        assert not await tx.update_observed("cache-cluster", "c1", {"x": 2}, generation=1)
        got = await tx.get("cache-cluster", "c1")
    assert got is not None
    assert (got.status, got.observed_generation, got.observed) == ("creating", 0, {"x": 2})


async def test_delete_removes_the_record_and_its_tags_only(store: SqlStore, db_path: Path) -> None:
    async with store.transaction() as tx:
        await tx.insert(record("c1"))
        await tx.insert(record("c2"))
        await tx.set_tags(ARN.format("c1"), {"team": "a"})
        await tx.set_tags(ARN.format("c2"), {"team": "b"})
    async with store.transaction() as tx:
        await tx.delete("cache-cluster", "c1")
        await tx.delete("cache-cluster", "never-there")
    async with store.transaction() as tx:
        assert await tx.get("cache-cluster", "c1") is None
        assert await tx.tags(ARN.format("c1")) == []
        assert await tx.tags(ARN.format("c2")) == [("team", "b")]
    assert sqlite_rows(db_path, "SELECT count(*) FROM tags") == [(1,)]


# transactions


async def test_a_transaction_that_raises_writes_nothing(store: SqlStore) -> None:
    async with store.transaction() as tx:
        await tx.insert(record("kept"))
    with pytest.raises(RuntimeError, match="boom"):
        async with store.transaction() as tx:
            await tx.insert(record("lost"))
            await tx.update_spec("cache-cluster", "kept", {"v": 9}, "modifying")
            await tx.add_event(Event("cache-cluster", "lost", "never", T0))
            await tx.set_tags(ARN.format("lost"), {"k": "v"})
            await tx.add_access_key(AccessKey("AKIALOST", "admin", "secret", ACTIVE, T0))
            raise RuntimeError("boom")
    async with store.transaction() as tx:  # the lock was released
        assert await tx.get("cache-cluster", "lost") is None
        kept = await tx.get("cache-cluster", "kept")
        assert kept is not None and (kept.generation, kept.spec) == (1, record().spec)
        assert await tx.events(EventQuery()) == []
        assert await tx.tags(ARN.format("lost")) == []
        assert await tx.access_key("AKIALOST") is None


async def test_a_transaction_holds_the_write_lock_until_it_ends(db_path: Path) -> None:
    """Reads in one transaction are one snapshot: another writer on the file waits."""
    first = await SqlStore.open_sqlite(db_path)
    other = await SqlStore.open_sqlite(db_path)  # e.g. a second control plane on the file
    try:
        async with first.transaction() as tx:
            await tx.insert(record())

        async def write_from_other() -> None:
            async with other.transaction() as tx2:
                await tx2.update_spec("cache-cluster", "c1", {"by": "other"}, "modifying")

        async with first.transaction() as tx:
            before = await tx.get("cache-cluster", "c1")
            writer = asyncio.create_task(write_from_other())
            done, _ = await asyncio.wait({writer}, timeout=0.3)
            assert not done, "the other writer got in while a transaction was open"
            again = await tx.get("cache-cluster", "c1")
            assert before is not None and again is not None
            assert again.generation == before.generation
        await writer
        async with first.transaction() as tx:
            after = await tx.get("cache-cluster", "c1")
        assert after is not None and after.generation == before.generation + 1
    finally:
        await first.close()
        await other.close()


# events


async def _add_events(store: SqlStore) -> None:
    async with store.transaction() as tx:
        for i, (kind, id) in enumerate(
            [
                ("cache-cluster", "a"),
                ("cache-cluster", "b"),
                ("cache-subnet-group", "a"),
                ("cache-cluster", "a"),
                ("cache-cluster", "a"),
            ]
        ):
            await tx.add_event(Event(kind, id, f"m{i}", T0 + timedelta(minutes=i)))


async def test_events_in_order_with_sequence_numbers(store: SqlStore) -> None:
    await _add_events(store)
    async with store.transaction() as tx:
        found = await tx.events(EventQuery())
    assert [e.message for _, e in found] == ["m0", "m1", "m2", "m3", "m4"]
    seqs = [seq for seq, _ in found]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert found[0][1] == Event("cache-cluster", "a", "m0", T0)


async def test_events_filter_by_type_and_id(store: SqlStore) -> None:
    await _add_events(store)
    async with store.transaction() as tx:
        by_type = await tx.events(EventQuery(source_type="cache-cluster"))
        by_id = await tx.events(EventQuery(source_id="a"))
        both = await tx.events(EventQuery(source_type="cache-cluster", source_id="a"))
    assert [e.message for _, e in by_type] == ["m0", "m1", "m3", "m4"]
    assert [e.message for _, e in by_id] == ["m0", "m2", "m3", "m4"]
    assert [e.message for _, e in both] == ["m0", "m3", "m4"]


async def test_events_filter_by_time_inclusive(store: SqlStore) -> None:
    await _add_events(store)
    plus2 = timezone(timedelta(hours=2))
    async with store.transaction() as tx:
        window = await tx.events(
            EventQuery(start=T0 + timedelta(minutes=1), end=T0 + timedelta(minutes=3))
        )
        # The same instants written in another zone select the same events.
        shifted = await tx.events(
            EventQuery(
                start=(T0 + timedelta(minutes=1)).astimezone(plus2),
                end=(T0 + timedelta(minutes=3)).astimezone(plus2),
            )
        )
        after = await tx.events(EventQuery(start=T0 + timedelta(minutes=3, seconds=1)))
    assert [e.message for _, e in window] == ["m1", "m2", "m3"]
    assert shifted == window
    assert [e.message for _, e in after] == ["m4"]


async def test_events_page_by_after_seq_and_limit(store: SqlStore) -> None:
    await _add_events(store)
    async with store.transaction() as tx:
        first = await tx.events(EventQuery(limit=2))
        second = await tx.events(EventQuery(after_seq=first[-1][0], limit=2))
        third = await tx.events(EventQuery(after_seq=second[-1][0], limit=2))
        rest = await tx.events(EventQuery(after_seq=third[-1][0], limit=2))
    assert [e.message for _, e in first + second + third] == ["m0", "m1", "m2", "m3", "m4"]
    assert rest == []


# tags and keys


async def test_tags_set_overwrite_and_remove(store: SqlStore) -> None:
    arn = ARN.format("c1")
    async with store.transaction() as tx:
        await tx.set_tags(arn, {"b": "2", "a": "1"})
        await tx.set_tags(arn, {"b": "two", "c": ""})
        assert await tx.tags(arn) == [("a", "1"), ("b", "two"), ("c", "")]
        await tx.remove_tags(arn, ["a", "missing"])
        assert await tx.tags(arn) == [("b", "two"), ("c", "")]
        await tx.remove_tags(arn, [])
        assert await tx.tags(arn) == [("b", "two"), ("c", "")]
        assert await tx.tags(ARN.format("other")) == []


async def test_access_keys(store: SqlStore) -> None:
    b = AccessKey("AKIAB", "admin", "secret-b", ACTIVE, T0)
    a = AccessKey("AKIAA", "reader", "secret-a", ACTIVE, T0 + timedelta(seconds=1))
    async with store.transaction() as tx:
        await tx.add_access_key(b)
        await tx.add_access_key(a)
    async with store.transaction() as tx:
        assert await tx.access_key("AKIAA") == a
        assert await tx.access_key("AKIAZ") is None
        assert await tx.access_keys() == [b, a]  # oldest first
        await tx.set_access_key_status("AKIAB", INACTIVE)
        await tx.delete_access_key("AKIAA")
    async with store.transaction() as tx:
        assert await tx.access_keys() == [replace(b, status=INACTIVE)]


async def test_secrets_are_sealed_at_rest(db_path: Path) -> None:
    """The database file never holds a secret; the key file beside it is owner-only."""
    store = await SqlStore.open_sqlite(db_path)
    async with store.transaction() as tx:
        await tx.add_access_key(AccessKey("AKIASEALED", "admin", "very-secret-value", ACTIVE, T0))
    await store.close()
    assert mode(db_path.parent / KEY_FILE) == mode(db_path) == 0o600
    assert not files_holding(db_path.parent, b"very-secret-value")
    (sealed,) = sqlite_rows(db_path, "SELECT secret FROM iam_access_keys")[0]
    assert isinstance(sealed, bytes) and b"very-secret-value" not in sealed
    reopened = await SqlStore.open_sqlite(db_path)
    async with reopened.transaction() as tx:
        key = await tx.access_key("AKIASEALED")
        assert key is not None and key.secret == "very-secret-value"
        assert "very-secret-value" not in repr(key)
    await reopened.close()


async def test_a_sealed_secret_moved_to_another_key_does_not_open(db_path: Path) -> None:
    store = await SqlStore.open_sqlite(db_path)
    async with store.transaction() as tx:
        await tx.add_access_key(AccessKey("AKIAONE", "a", "one", ACTIVE, T0))
        await tx.add_access_key(AccessKey("AKIATWO", "b", "two", ACTIVE, T0))
    await store.close()
    conn = sqlite3.connect(db_path)
    conn.execute(
        "UPDATE iam_access_keys SET secret = "
        "(SELECT secret FROM iam_access_keys WHERE access_key_id = 'AKIAONE') "
        "WHERE access_key_id = 'AKIATWO'"
    )
    conn.commit()
    conn.close()
    store = await SqlStore.open_sqlite(db_path)
    try:
        async with store.transaction() as tx:
            with pytest.raises(SecretKeyError, match="AKIATWO"):
                await tx.access_key("AKIATWO")
    finally:
        await store.close()


async def test_another_key_file_does_not_open_the_secrets(db_path: Path) -> None:
    store = await SqlStore.open_sqlite(db_path)
    async with store.transaction() as tx:
        await tx.add_access_key(AccessKey("AKIAONE", "a", "one", ACTIVE, T0))
    await store.close()
    (db_path.parent / KEY_FILE).unlink()
    store = await SqlStore.open_sqlite(db_path)  # makes a new key
    try:
        async with store.transaction() as tx:
            with pytest.raises(SecretKeyError, match="another secrets\\.key"):
                await tx.access_keys()
    finally:
        await store.close()


async def test_a_corrupt_key_file_is_refused(db_path: Path) -> None:
    (db_path.parent / KEY_FILE).write_text("not a key")
    with pytest.raises(SecretKeyError, match="256-bit"):
        await SqlStore.open_sqlite(db_path)


async def test_iam_users_policies_and_attachments(store: SqlStore) -> None:
    bob = User("bob", "AIDABOB", "/eng/", T0)
    policy = ManagedPolicy("arn:aws:iam::0:policy/p", "p", "ANPAP", "/", "d", "{}", T0)
    async with store.transaction() as tx:
        await tx.add_iam_user(bob)
        await tx.add_iam_user(User("amy", "AIDAAMY", "/", T0))
        await tx.put_inline_policy(InlinePolicy("bob", "two", "{2}"))
        await tx.put_inline_policy(InlinePolicy("bob", "one", "{1}"))
        await tx.put_inline_policy(InlinePolicy("bob", "one", "{1b}"))  # replaces
        await tx.put_inline_policy(InlinePolicy("amy", "one", "{a}"))
        await tx.add_managed_policy(policy)
        await tx.attach_policy("bob", policy.arn)
        await tx.attach_policy("bob", policy.arn)  # once only
        await tx.attach_policy("amy", "arn:aws:iam::aws:policy/ReadOnlyAccess")
    async with store.transaction() as tx:
        assert await tx.iam_user("bob") == bob
        assert [u.name for u in await tx.iam_users()] == ["amy", "bob"]
        assert await tx.inline_policies("bob") == [
            InlinePolicy("bob", "one", "{1b}"),
            InlinePolicy("bob", "two", "{2}"),
        ]
        assert len(await tx.inline_policies()) == 3
        assert await tx.managed_policy(policy.arn) == policy
        assert await tx.managed_policies() == [policy]
        assert await tx.attachments("bob") == [("bob", policy.arn)]
        assert len(await tx.attachments()) == 2
        await tx.detach_policy("bob", policy.arn)
        await tx.delete_inline_policy("bob", "one")
        await tx.delete_managed_policy(policy.arn)
        await tx.delete_iam_user("amy")
    async with store.transaction() as tx:
        assert await tx.attachments("bob") == []
        assert [p.name for p in await tx.inline_policies("bob")] == ["two"]
        assert await tx.managed_policies() == []
        assert await tx.iam_user("amy") is None


async def test_version_1_keys_become_sealed_keys_of_administrators(db_path: Path) -> None:
    """A database of version 1 held plain secrets of the principal "admin" and no policies."""
    conn = sqlite3.connect(db_path)
    conn.executescript(
        """
        CREATE TABLE schema_version (version INTEGER NOT NULL);
        INSERT INTO schema_version VALUES (1);
        CREATE TABLE resources (kind VARCHAR(64), id VARCHAR(255), arn VARCHAR(512),
            spec JSON, status VARCHAR(64), observed JSON, generation INTEGER,
            observed_generation INTEGER, created_at VARCHAR(32), PRIMARY KEY (kind, id));
        CREATE TABLE tags (arn VARCHAR(512), key VARCHAR(128), value VARCHAR(256),
            PRIMARY KEY (arn, key));
        CREATE TABLE events (seq INTEGER PRIMARY KEY, source_type VARCHAR(64),
            source_id VARCHAR(255), message TEXT, date VARCHAR(32));
        CREATE TABLE access_keys (access_key_id VARCHAR(128) PRIMARY KEY,
            secret VARCHAR(128) NOT NULL, principal VARCHAR(255) NOT NULL);
        INSERT INTO access_keys VALUES ('AKIAOLD', 'old-plain-secret', 'admin');
        """
    )
    conn.commit()
    conn.close()
    store = await SqlStore.open_sqlite(db_path)
    async with store.transaction() as tx:
        (key,) = await tx.access_keys()
        assert (key.access_key_id, key.user_name, key.secret, key.status) == (
            "AKIAOLD",
            "admin",
            "old-plain-secret",
            ACTIVE,
        )
        admin = await tx.iam_user("admin")
        assert admin is not None and admin.user_id.startswith("AIDA")
        assert await tx.attachments("admin") == [("admin", ADMINISTRATOR_ACCESS)]
    await store.close()
    assert sqlite_rows(db_path, "SELECT version FROM schema_version") == [(len(MIGRATIONS),)]
    assert not sqlite_rows(db_path, "SELECT name FROM sqlite_master WHERE name = 'access_keys'")
    assert not files_holding(db_path.parent, b"old-plain-secret")  # not even in free pages
