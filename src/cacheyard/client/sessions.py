"""Server-side sessions in Redis, so web servers stay stateless.

Storage choice: one JSON string per session at ``{prefix}:{session_id}`` with
a TTL. A string (rather than a hash) keeps a session one value that is read,
replaced and expired as a whole: ``GETEX`` loads it and renews its TTL in one
command (the sliding window), ``SET ... EX`` saves it, and there is never a
half-written session. Nested values (lists, dicts) survive unchanged, which a
hash of flat fields would not allow.

Updates that read-modify-write use ``WATCH``/``MULTI`` with a bounded
optimistic retry and jittered backoff: the caller's mutation is arbitrary
Python, so it cannot run inside a Lua script, and a concurrent writer makes
``EXEC`` abort instead of one update silently overwriting another.

Session ids come from :func:`secrets.token_urlsafe` (256 bits), so
they cannot be guessed; ``create`` uses ``SET NX`` so an id is never reused.

Durability: Redis replication is asynchronous. A session written just before
a failover may be lost unless the caller waits for replicas
(``client.wait(replicas, timeout_ms)``); the store does not do this itself
because it would add a replication round trip to every write.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis
import redis.asyncio as aioredis

SessionData = dict[str, Any]
Mutation = Callable[[SessionData], SessionData | None]

_ID_BYTES = 32
_UPDATE_ATTEMPTS = 64
_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")
_BACKOFF_CAP = 0.05  # seconds


def _backoff(attempt: int) -> float:
    """A full-jitter pause after a lost race, so contenders spread out instead
    of colliding again in lockstep (20 writers on one session otherwise starve
    some of them)."""
    return random.uniform(0, min(_BACKOFF_CAP, 0.0005 * 2**attempt))


def is_valid_session_id(value: str) -> bool:
    """Whether ``value`` could be an id this module issued.

    Web integrations check cookies with it, so arbitrary client input never
    becomes part of a Redis key.
    """
    return _ID_PATTERN.fullmatch(value) is not None


class SessionConflictError(RuntimeError):
    """An atomic update kept losing the race to other writers and gave up."""


class _Keys:
    """Key layout and (de)serialization shared by the sync and asyncio stores."""

    def __init__(self, prefix: str, ttl: int, sliding: bool) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be a positive number of seconds")
        self.prefix = prefix
        self.ttl = ttl
        self.sliding = sliding

    def key(self, session_id: str) -> str:
        if not session_id:
            raise ValueError("empty session id")
        return f"{self.prefix}:{session_id}"

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(_ID_BYTES)

    @staticmethod
    def dump(data: Mapping[str, Any]) -> str:
        return json.dumps(dict(data), separators=(",", ":"), sort_keys=True)

    @staticmethod
    def load(raw: Any) -> SessionData | None:
        if raw is None:
            return None
        value = json.loads(raw)
        if not isinstance(value, dict):
            return None
        return value

    @staticmethod
    def mutate(fn: Mutation, current: SessionData) -> SessionData:
        """Apply ``fn``: it may change the dict in place or return a new one."""
        changed = fn(current)
        return current if changed is None else changed


class SessionStore:
    """Sessions over a synchronous ``redis.Redis`` client."""

    def __init__(
        self,
        redis_client: redis.Redis,
        prefix: str = "session",
        ttl: int = 1800,
        sliding: bool = True,
    ) -> None:
        self.redis = redis_client
        self._keys = _Keys(prefix, ttl, sliding)

    @property
    def ttl(self) -> int:
        return self._keys.ttl

    def key(self, session_id: str) -> str:
        """The Redis key holding ``session_id`` (for inspection and tests)."""
        return self._keys.key(session_id)

    def create(self, data: Mapping[str, Any] | None = None) -> str:
        """Store a new session; its fresh, unguessable id."""
        payload = self._keys.dump(data or {})
        while True:
            session_id = self._keys.new_id()
            if self.redis.set(self._keys.key(session_id), payload, ex=self.ttl, nx=True):
                return session_id

    def load(self, session_id: str) -> SessionData | None:
        """The session's data, or ``None`` if it expired or never existed.

        With ``sliding=True`` the same command renews the TTL.
        """
        key = self._keys.key(session_id)
        raw = self.redis.getex(key, ex=self.ttl) if self._keys.sliding else self.redis.get(key)
        return self._keys.load(raw)

    def save(self, session_id: str, data: Mapping[str, Any]) -> None:
        """Replace the session's data and restart its TTL."""
        self.redis.set(self._keys.key(session_id), self._keys.dump(data), ex=self.ttl)

    def update(self, session_id: str, mutate_fn: Mutation) -> SessionData | None:
        """Atomically read, change and write a session; the new data.

        ``mutate_fn`` gets the current dict and changes it in place or returns
        a replacement. It may run several times if other writers interfere, so
        it must not have side effects. ``None`` if the session does not exist
        (it is not created).
        """
        key = self._keys.key(session_id)
        with self.redis.pipeline(transaction=True) as pipe:
            for attempt in range(_UPDATE_ATTEMPTS):
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]  # untyped in redis-py
                    current = self._keys.load(pipe.get(key))
                    if current is None:
                        pipe.unwatch()
                        return None
                    new = self._keys.mutate(mutate_fn, current)
                    pipe.multi()
                    pipe.set(key, self._keys.dump(new), ex=self.ttl)
                    pipe.execute()
                    return new
                except redis.WatchError:
                    time.sleep(_backoff(attempt))
        raise SessionConflictError(f"session update lost {_UPDATE_ATTEMPTS} races")

    def rotate(self, session_id: str) -> str | None:
        """Move the session to a fresh id (its data and TTL kept); the new id,
        or ``None`` if it does not exist. Call it on login, so an id an
        attacker planted before authentication is worthless after it."""
        while True:
            new_id = self._keys.new_id()
            try:
                moved = self.redis.renamenx(self._keys.key(session_id), self._keys.key(new_id))
            except redis.ResponseError:  # "no such key"
                return None
            if moved:
                return new_id

    def delete(self, session_id: str) -> bool:
        """End the session; whether it existed."""
        return bool(self.redis.delete(self._keys.key(session_id)))

    def touch(self, session_id: str) -> bool:
        """Restart the TTL without reading the data; whether the session exists."""
        return bool(self.redis.expire(self._keys.key(session_id), self.ttl))


class AsyncSessionStore:
    """The same sessions over a ``redis.asyncio.Redis`` client."""

    def __init__(
        self,
        redis_client: aioredis.Redis,
        prefix: str = "session",
        ttl: int = 1800,
        sliding: bool = True,
    ) -> None:
        self.redis = redis_client
        self._keys = _Keys(prefix, ttl, sliding)

    @property
    def ttl(self) -> int:
        return self._keys.ttl

    def key(self, session_id: str) -> str:
        return self._keys.key(session_id)

    async def create(self, data: Mapping[str, Any] | None = None) -> str:
        payload = self._keys.dump(data or {})
        while True:
            session_id = self._keys.new_id()
            if await self.redis.set(self._keys.key(session_id), payload, ex=self.ttl, nx=True):
                return session_id

    async def load(self, session_id: str) -> SessionData | None:
        key = self._keys.key(session_id)
        if self._keys.sliding:
            raw = await self.redis.getex(key, ex=self.ttl)
        else:
            raw = await self.redis.get(key)
        return self._keys.load(raw)

    async def save(self, session_id: str, data: Mapping[str, Any]) -> None:
        await self.redis.set(self._keys.key(session_id), self._keys.dump(data), ex=self.ttl)

    async def update(self, session_id: str, mutate_fn: Mutation) -> SessionData | None:
        """See :meth:`SessionStore.update`; ``mutate_fn`` stays synchronous."""
        key = self._keys.key(session_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            for attempt in range(_UPDATE_ATTEMPTS):
                try:
                    await pipe.watch(key)
                    current = self._keys.load(await pipe.get(key))
                    if current is None:
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        return None
                    new = self._keys.mutate(mutate_fn, current)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(key, self._keys.dump(new), ex=self.ttl)
                    await pipe.execute()
                    return new
                except redis.WatchError:
                    await asyncio.sleep(_backoff(attempt))
        raise SessionConflictError(f"session update lost {_UPDATE_ATTEMPTS} races")

    async def rotate(self, session_id: str) -> str | None:
        """See :meth:`SessionStore.rotate`."""
        while True:
            new_id = self._keys.new_id()
            old_key, new_key = self._keys.key(session_id), self._keys.key(new_id)
            try:
                moved = await self.redis.renamenx(old_key, new_key)
            except redis.ResponseError:  # "no such key"
                return None
            if moved:
                return new_id

    async def delete(self, session_id: str) -> bool:
        return bool(await self.redis.delete(self._keys.key(session_id)))

    async def touch(self, session_id: str) -> bool:
        return bool(await self.redis.expire(self._keys.key(session_id), self.ttl))
