"""Tables and the versioned schema migrations."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Dialect,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    select,
)


class UtcTimestamp(TypeDecorator[datetime]):
    """An aware UTC datetime stored as fixed-width ISO text, so text order is time order."""

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)


metadata = MetaData()

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

resources = Table(
    "resources",
    metadata,
    Column("kind", String(64), primary_key=True),
    Column("id", String(255), primary_key=True),
    Column("arn", String(512), nullable=False, unique=True),
    Column("spec", JSON, nullable=False),
    Column("status", String(64), nullable=False),
    Column("observed", JSON, nullable=False),
    Column("generation", Integer, nullable=False),
    Column("observed_generation", Integer, nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
)

tags = Table(
    "tags",
    metadata,
    Column("arn", String(512), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("source_type", String(64), nullable=False, index=True),
    Column("source_id", String(255), nullable=False, index=True),
    Column("message", Text, nullable=False),
    Column("date", UtcTimestamp, nullable=False, index=True),
)

access_keys = Table(
    "access_keys",
    metadata,
    Column("access_key_id", String(128), primary_key=True),
    Column("secret", String(128), nullable=False),
    Column("principal", String(255), nullable=False),
)


def _v1(conn: Connection) -> None:
    metadata.create_all(conn)


MIGRATIONS: list[Callable[[Connection], None]] = [_v1]


def migrate(conn: Connection) -> int:
    """Bring the schema to the newest version; returns that version."""
    schema_version.create(conn, checkfirst=True)
    current = conn.execute(select(schema_version.c.version)).scalar()
    if current is None:
        conn.execute(schema_version.insert().values(version=0))
        current = 0
    for version, step in enumerate(MIGRATIONS, start=1):
        if version > current:
            step(conn)
            conn.execute(schema_version.update().values(version=version))
    return len(MIGRATIONS)
