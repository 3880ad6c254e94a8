"""The store on SQLAlchemy Core: SQLite in WAL mode by default."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, and_, delete, event, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from cacheyard.domain.events import Event
from cacheyard.store import schema
from cacheyard.store.interface import EventQuery, Record

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
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

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

    async def access_key_secret(self, access_key_id: str) -> str | None:
        k = schema.access_keys
        row = (
            await self._conn.execute(select(k.c.secret).where(k.c.access_key_id == access_key_id))
        ).first()
        return None if row is None else str(row.secret)

    async def add_access_key(self, access_key_id: str, secret: str, principal: str) -> None:
        await self._conn.execute(
            insert(schema.access_keys).values(
                access_key_id=access_key_id, secret=secret, principal=principal
            )
        )

    async def access_keys(self) -> list[tuple[str, str, str]]:
        """Every key as (access key id, secret, principal)."""
        k = schema.access_keys
        rows = await self._conn.execute(select(k).order_by(k.c.access_key_id))
        return [(row.access_key_id, row.secret, row.principal) for row in rows]


class SqlStore:
    """One writer at a time: transactions are serialized by a lock in the process."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._lock = asyncio.Lock()

    @classmethod
    async def open_sqlite(cls, path: Path) -> SqlStore:
        engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _begin_immediate)
        store = cls(engine)
        async with engine.begin() as conn:
            await conn.run_sync(schema.migrate)
        return store

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlTransaction]:
        async with self._lock, self._engine.begin() as conn:
            yield SqlTransaction(conn)

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
    cursor.close()


def _begin_immediate(conn: Connection) -> None:
    """Every transaction takes the write lock up front: its reads are one snapshot
    and no other writer (another control plane on the file) can interleave."""
    conn.exec_driver_sql("BEGIN IMMEDIATE")
