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
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    select,
)

from cacheyard.domain import iam
from cacheyard.store.secret_box import SecretBox


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

iam_users = Table(
    "iam_users",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("user_id", String(128), nullable=False, unique=True),
    Column("path", String(512), nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
)

# The secret is sealed by the SecretBox (store/secret_box.py), never stored in clear.
iam_access_keys = Table(
    "iam_access_keys",
    metadata,
    Column("access_key_id", String(128), primary_key=True),
    Column("user_name", String(64), nullable=False, index=True),
    Column("secret", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
)

iam_inline_policies = Table(
    "iam_inline_policies",
    metadata,
    Column("user_name", String(64), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("document", Text, nullable=False),
)

iam_policies = Table(
    "iam_policies",
    metadata,
    Column("arn", String(2048), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("policy_id", String(128), nullable=False, unique=True),
    Column("path", String(512), nullable=False),
    Column("description", String(1000), nullable=False),
    Column("document", Text, nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
)

iam_attachments = Table(
    "iam_attachments",
    metadata,
    Column("user_name", String(64), primary_key=True),
    Column("policy_arn", String(2048), primary_key=True),
)

# RBAC users' passwords in clear for the engines that need them (Memcached SASL),
# sealed as a JSON list; Redis needs only the hashes kept in the user's spec.
user_passwords = Table(
    "user_passwords",
    metadata,
    Column("user_id", String(40), primary_key=True),
    Column("sealed", LargeBinary, nullable=False),
)

# Tables of earlier versions, known only to the migrations that create and drop them.
_earlier = MetaData()
_v1_access_keys = Table(
    "access_keys",
    _earlier,
    Column("access_key_id", String(128), primary_key=True),
    Column("secret", String(128), nullable=False),
    Column("principal", String(255), nullable=False),
)


def _v1(conn: Connection, box: SecretBox) -> None:
    for table in (resources, tags, events, _v1_access_keys):
        table.create(conn)


def _v2(conn: Connection, box: SecretBox) -> None:
    """IAM users and policies; the keys of version 1 (all held by administrators, as
    there were no policies) become keys of users with AdministratorAccess, sealed."""
    for table in (iam_users, iam_access_keys, iam_inline_policies, iam_policies, iam_attachments):
        table.create(conn)
    keys = conn.execute(select(_v1_access_keys)).all()
    now = datetime.now(UTC)
    for principal in sorted({key.principal for key in keys}):
        conn.execute(
            iam_users.insert().values(
                name=principal, user_id=iam.new_id("AIDA"), path="/", created_at=now
            )
        )
        conn.execute(
            iam_attachments.insert().values(
                user_name=principal, policy_arn=iam.ADMINISTRATOR_ACCESS
            )
        )
    for key in keys:
        conn.execute(
            iam_access_keys.insert().values(
                access_key_id=key.access_key_id,
                user_name=key.principal,
                secret=box.seal(key.secret, key.access_key_id),
                status=iam.ACTIVE,
                created_at=now,
            )
        )
    _v1_access_keys.drop(conn)


def _v3(conn: Connection, box: SecretBox) -> None:
    """Sealed user passwords (Memcached SASL); users made before keep only hashes."""
    user_passwords.create(conn)


MIGRATIONS: list[Callable[[Connection, SecretBox], None]] = [_v1, _v2, _v3]


def migrate(conn: Connection, box: SecretBox) -> int:
    """Bring the schema to the newest version; returns that version."""
    schema_version.create(conn, checkfirst=True)
    current = conn.execute(select(schema_version.c.version)).scalar()
    if current is None:
        conn.execute(schema_version.insert().values(version=0))
        current = 0
    for version, step in enumerate(MIGRATIONS, start=1):
        if version > current:
            step(conn, box)
            conn.execute(schema_version.update().values(version=version))
    return len(MIGRATIONS)
