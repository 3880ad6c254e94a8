"""The store on SQLAlchemy Core: SQLite in WAL mode by default."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, and_, delete, event, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from cacheyard.domain.events import Event
from cacheyard.domain.iam import AccessKey, InlinePolicy, ManagedPolicy, User
from cacheyard.store import schema
from cacheyard.store.interface import EventQuery, Record
from cacheyard.store.secret_box import KEY_FILE, SecretBox

R = schema.resources


def _record(row: Row[Any]) -> Record:
    return Record(
        kind=row.kind,
        id=row.id,
        arn=row.arn,
        spec=row.spec,
        status=row.status,
        observed=row.observed,
        generation=row.generation,
        observed_generation=row.observed_generation,
        created_at=row.created_at,
    )


class SqlTransaction:
    def __init__(self, conn: AsyncConnection, box: SecretBox) -> None:
        self._conn = conn
        self._box = box

    async def get(self, kind: str, id: str) -> Record | None:
        row = (await self._conn.execute(select(R).where(R.c.kind == kind, R.c.id == id))).first()
        return None if row is None else _record(row)

    async def all(self, kind: str) -> list[Record]:
        rows = await self._conn.execute(select(R).where(R.c.kind == kind).order_by(R.c.id))
        return [_record(row) for row in rows]

    async def insert(self, record: Record) -> None:
        await self._conn.execute(
            insert(R).values(
                kind=record.kind,
                id=record.id,
                arn=record.arn,
                spec=record.spec,
                status=record.status,
                observed=record.observed,
                generation=record.generation,
                observed_generation=record.observed_generation,
                created_at=record.created_at,
            )
        )

    async def update_spec(self, kind: str, id: str, spec: Mapping[str, Any], status: str) -> Record:
        await self._conn.execute(
            update(R)
            .where(R.c.kind == kind, R.c.id == id)
            .values(spec=dict(spec), status=status, generation=R.c.generation + 1)
        )
        record = await self.get(kind, id)
        if record is None:
            raise KeyError((kind, id))
        return record

    async def update_observed(
        self,
        kind: str,
        id: str,
        observed: Mapping[str, Any],
        *,
        status: str | None = None,
        generation: int | None = None,
    ) -> bool:
        where = and_(R.c.kind == kind, R.c.id == id)
        await self._conn.execute(update(R).where(where).values(observed=dict(observed)))
        if status is None or generation is None:
            return False
        result = await self._conn.execute(
            update(R)
            .where(where, R.c.generation == generation)
            .values(status=status, observed_generation=generation)
        )
        return bool(result.rowcount)

    async def delete(self, kind: str, id: str) -> None:
        record = await self.get(kind, id)
        if record is None:
            return
        await self._conn.execute(delete(schema.tags).where(schema.tags.c.arn == record.arn))
        await self._conn.execute(delete(R).where(R.c.kind == kind, R.c.id == id))

    async def add_event(self, event: Event) -> None:
        await self._conn.execute(
            insert(schema.events).values(
                source_type=event.source_type,
                source_id=event.source_id,
                message=event.message,
                date=event.date,
            )
        )

    async def events(self, query: EventQuery) -> list[tuple[int, Event]]:
        e = schema.events
        stmt = select(e).where(e.c.seq > query.after_seq)
        if query.source_type is not None:
            stmt = stmt.where(e.c.source_type == query.source_type)
        if query.source_id is not None:
            stmt = stmt.where(e.c.source_id == query.source_id)
        if query.start is not None:
            stmt = stmt.where(e.c.date >= query.start)
        if query.end is not None:
            stmt = stmt.where(e.c.date <= query.end)
        rows = await self._conn.execute(stmt.order_by(e.c.seq).limit(query.limit))
        return [
            (row.seq, Event(row.source_type, row.source_id, row.message, row.date)) for row in rows
        ]

    async def tags(self, arn: str) -> list[tuple[str, str]]:
        t = schema.tags
        rows = await self._conn.execute(select(t).where(t.c.arn == arn).order_by(t.c.key))
        return [(row.key, row.value) for row in rows]

    async def set_tags(self, arn: str, tags: Mapping[str, str]) -> None:
        t = schema.tags
        for key, value in tags.items():
            await self._conn.execute(delete(t).where(t.c.arn == arn, t.c.key == key))
            await self._conn.execute(insert(t).values(arn=arn, key=key, value=value))

    async def remove_tags(self, arn: str, keys: Sequence[str]) -> None:
        t = schema.tags
        await self._conn.execute(delete(t).where(t.c.arn == arn, t.c.key.in_(list(keys))))

    async def iam_user(self, name: str) -> User | None:
        u = schema.iam_users
        row = (await self._conn.execute(select(u).where(u.c.name == name))).first()
        return None if row is None else User(row.name, row.user_id, row.path, row.created_at)

    async def iam_users(self) -> list[User]:
        u = schema.iam_users
        rows = await self._conn.execute(select(u).order_by(u.c.name))
        return [User(row.name, row.user_id, row.path, row.created_at) for row in rows]

    async def add_iam_user(self, user: User) -> None:
        await self._conn.execute(
            insert(schema.iam_users).values(
                name=user.name, user_id=user.user_id, path=user.path, created_at=user.created_at
            )
        )

    async def delete_iam_user(self, name: str) -> None:
        await self._conn.execute(delete(schema.iam_users).where(schema.iam_users.c.name == name))

    async def access_key(self, access_key_id: str) -> AccessKey | None:
        k = schema.iam_access_keys
        row = (
            await self._conn.execute(select(k).where(k.c.access_key_id == access_key_id))
        ).first()
        return None if row is None else self._access_key(row)

    async def access_keys(self) -> list[AccessKey]:
        """Every key, oldest first."""
        k = schema.iam_access_keys
        rows = await self._conn.execute(select(k).order_by(k.c.created_at, k.c.access_key_id))
        return [self._access_key(row) for row in rows]

    def _access_key(self, row: Row[Any]) -> AccessKey:
        secret = self._box.unseal(row.secret, row.access_key_id)
        return AccessKey(row.access_key_id, row.user_name, secret, row.status, row.created_at)

    async def add_access_key(self, key: AccessKey) -> None:
        await self._conn.execute(
            insert(schema.iam_access_keys).values(
                access_key_id=key.access_key_id,
                user_name=key.user_name,
                secret=self._box.seal(key.secret, key.access_key_id),
                status=key.status,
                created_at=key.created_at,
            )
        )

    async def set_access_key_status(self, access_key_id: str, status: str) -> None:
        k = schema.iam_access_keys
        await self._conn.execute(
            update(k).where(k.c.access_key_id == access_key_id).values(status=status)
        )

    async def delete_access_key(self, access_key_id: str) -> None:
        k = schema.iam_access_keys
        await self._conn.execute(delete(k).where(k.c.access_key_id == access_key_id))

    async def inline_policies(self, user_name: str | None = None) -> list[InlinePolicy]:
        p = schema.iam_inline_policies
        stmt = select(p).order_by(p.c.user_name, p.c.name)
        if user_name is not None:
            stmt = stmt.where(p.c.user_name == user_name)
        rows = await self._conn.execute(stmt)
        return [InlinePolicy(row.user_name, row.name, row.document) for row in rows]

    async def put_inline_policy(self, policy: InlinePolicy) -> None:
        await self.delete_inline_policy(policy.user_name, policy.name)
        await self._conn.execute(
            insert(schema.iam_inline_policies).values(
                user_name=policy.user_name, name=policy.name, document=policy.document
            )
        )

    async def delete_inline_policy(self, user_name: str, name: str) -> None:
        p = schema.iam_inline_policies
        await self._conn.execute(delete(p).where(p.c.user_name == user_name, p.c.name == name))

    async def managed_policy(self, arn: str) -> ManagedPolicy | None:
        p = schema.iam_policies
        row = (await self._conn.execute(select(p).where(p.c.arn == arn))).first()
        return None if row is None else _managed_policy(row)

    async def managed_policies(self) -> list[ManagedPolicy]:
        p = schema.iam_policies
        rows = await self._conn.execute(select(p).order_by(p.c.name, p.c.arn))
        return [_managed_policy(row) for row in rows]

    async def add_managed_policy(self, policy: ManagedPolicy) -> None:
        await self._conn.execute(
            insert(schema.iam_policies).values(
                arn=policy.arn,
                name=policy.name,
                policy_id=policy.policy_id,
                path=policy.path,
                description=policy.description,
                document=policy.document,
                created_at=policy.created_at,
            )
        )

    async def delete_managed_policy(self, arn: str) -> None:
        await self._conn.execute(
            delete(schema.iam_policies).where(schema.iam_policies.c.arn == arn)
        )

    async def attachments(self, user_name: str | None = None) -> list[tuple[str, str]]:
        """(user name, policy ARN) of every attached managed policy, or of one user's."""
        a = schema.iam_attachments
        stmt = select(a).order_by(a.c.user_name, a.c.policy_arn)
        if user_name is not None:
            stmt = stmt.where(a.c.user_name == user_name)
        rows = await self._conn.execute(stmt)
        return [(row.user_name, row.policy_arn) for row in rows]

    async def attach_policy(self, user_name: str, arn: str) -> None:
        await self.detach_policy(user_name, arn)
        await self._conn.execute(
            insert(schema.iam_attachments).values(user_name=user_name, policy_arn=arn)
        )

    async def detach_policy(self, user_name: str, arn: str) -> None:
        a = schema.iam_attachments
        await self._conn.execute(delete(a).where(a.c.user_name == user_name, a.c.policy_arn == arn))

    async def user_passwords(self, user_id: str) -> list[str]:
        p = schema.user_passwords
        row = (await self._conn.execute(select(p).where(p.c.user_id == user_id))).first()
        if row is None:
            return []
        passwords: list[str] = json.loads(self._box.unseal(row.sealed, f"user:{user_id}"))
        return passwords

    async def set_user_passwords(self, user_id: str, passwords: Sequence[str]) -> None:
        p = schema.user_passwords
        await self._conn.execute(delete(p).where(p.c.user_id == user_id))
        if passwords:
            sealed = self._box.seal(json.dumps(list(passwords)), f"user:{user_id}")
            await self._conn.execute(insert(p).values(user_id=user_id, sealed=sealed))


def _managed_policy(row: Row[Any]) -> ManagedPolicy:
    return ManagedPolicy(
        arn=row.arn,
        name=row.name,
        policy_id=row.policy_id,
        path=row.path,
        description=row.description,
        document=row.document,
        created_at=row.created_at,
    )


class SqlStore:
    """One writer at a time: transactions are serialized by a lock in the process."""

    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box
        self._lock = asyncio.Lock()

    @classmethod
    async def open_sqlite(cls, path: Path) -> SqlStore:
        """The database at ``path``; its secrets are sealed with the key file beside it."""
        box = SecretBox.open(path.parent / KEY_FILE)
        # Owner-only, like the key; SQLite gives its -wal and -shm files the same mode.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
        engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _begin_immediate)
        store = cls(engine, box)
        async with engine.begin() as conn:
            await conn.run_sync(schema.migrate, box)
        return store

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlTransaction]:
        async with self._lock, self._engine.begin() as conn:
            yield SqlTransaction(conn, self._box)

    async def close(self) -> None:
        await self._engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver would otherwise send BEGIN only before the first write, leaving
    # a transaction's reads outside it; _begin_immediate takes over.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    # Deleted rows are overwritten, not left in free pages: no old secret lingers in the file.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _begin_immediate(conn: Connection) -> None:
    """Every transaction takes the write lock up front: its reads are one snapshot
    and no other writer (another control plane on the file) can interleave."""
    conn.exec_driver_sql("BEGIN IMMEDIATE")
