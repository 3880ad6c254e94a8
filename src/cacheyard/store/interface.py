"""The store's interface: resources with spec and status, events, tags, keys.

A resource row keeps the user's *spec* (with a generation that grows on every
change) apart from what the reconciler *observed* (with the generation it
last brought the processes to). All changes happen in serialized transactions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cacheyard.domain.events import Event


@dataclass(frozen=True)
class Record:
    kind: str
    id: str
    arn: str
    spec: dict[str, Any]
    status: str
    observed: dict[str, Any]
    generation: int
    observed_generation: int
    created_at: datetime


@dataclass(frozen=True)
class EventQuery:
    source_type: str | None = None
    source_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    after_seq: int = 0
    limit: int = 100


class Transaction(Protocol):
    async def get(self, kind: str, id: str) -> Record | None: ...
    async def all(self, kind: str) -> list[Record]: ...
    async def insert(self, record: Record) -> None: ...
    async def update_spec(
        self, kind: str, id: str, spec: Mapping[str, Any], status: str
    ) -> Record: ...
    async def update_observed(
        self,
        kind: str,
        id: str,
        observed: Mapping[str, Any],
        *,
        status: str | None = None,
        generation: int | None = None,
    ) -> bool: ...
    async def delete(self, kind: str, id: str) -> None: ...
    async def add_event(self, event: Event) -> None: ...
    async def events(self, query: EventQuery) -> list[tuple[int, Event]]: ...
    async def tags(self, arn: str) -> list[tuple[str, str]]: ...
    async def set_tags(self, arn: str, tags: Mapping[str, str]) -> None: ...
    async def remove_tags(self, arn: str, keys: Sequence[str]) -> None: ...
    async def access_key_secret(self, access_key_id: str) -> str | None: ...
    async def add_access_key(self, access_key_id: str, secret: str, principal: str) -> None: ...
    async def access_keys(self) -> list[tuple[str, str, str]]: ...


class Store(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Transaction]: ...
    async def close(self) -> None: ...
