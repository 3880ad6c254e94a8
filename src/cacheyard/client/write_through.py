"""Write-through: the database first, then the cache, as one call (sync and asyncio).

Behaviour of ``write(key, value, db_write)``, in order:

1. ``db_write()`` runs; it must commit before it returns (its return value
   is passed back to the caller).
2. If it raises, the cache entry of ``key`` is deleted (best effort) and the
   database's exception is re-raised unchanged. The new value was never put
   in the cache, so the cache cannot hold a value the database rejected;
   deleting the entry as well covers a write whose outcome is unknown (a
   commit that went through before the connection dropped): the next read
   goes to the database. If that delete fails too, a note is added to the
   exception; the cache then holds at most the old value.
3. If it commits, ``value`` replaces the cached entry (and its stale copy,
   so a cache-aside reader never serves an older value after the write).
4. If that cache update fails (Redis unreachable, a timeout, a value the
   serializer cannot encode), the entry is deleted (best effort) and
   :class:`CacheWriteError` is raised from that error, carrying the
   database's result: **the database has the new
   value**, do not retry the database write blindly. With
   ``raise_on_cache_error=False`` a :class:`CacheWriteWarning` is emitted
   instead and the database's result returned. Either way, an entry that
   could not be deleted expires within the cache's ``ttl``.

Readers use the same :class:`~cacheyard.client.cache_aside.CacheAside`
(``write_through.cache.get``); its fills use ``SET NX``, so a loader that
read the database before this write committed does not overwrite the value
written here.
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis
import redis.asyncio
from redis.exceptions import RedisError

from cacheyard.client.cache_aside import AsyncCacheAside, CacheAside

R = TypeVar("R")

CACHE_ERRORS = (RedisError, OSError)


class CacheWriteError(Exception):
    """The database committed, the cache could not be updated (see the module docstring).

    ``result`` is what ``db_write`` returned; ``invalidated`` says whether the
    stale entry could be deleted (if not, it expires within the cache's TTL).
    """

    def __init__(self, key: str, result: Any, invalidated: bool) -> None:
        state = "deleted" if invalidated else "could not be deleted either (expires with its TTL)"
        super().__init__(f"database committed {key!r} but the cache update failed; entry {state}")
        self.key = key
        self.result = result
        self.invalidated = invalidated


class CacheWriteWarning(UserWarning):
    """Emitted instead of :class:`CacheWriteError` when ``raise_on_cache_error`` is False."""


def _cache_failed(
    key: str, result: R, invalidated: bool, error: BaseException, raise_on_cache_error: bool
) -> R:
    failure = CacheWriteError(key, result, invalidated)
    if raise_on_cache_error:
        raise failure from error
    warnings.warn(f"{failure} ({error!r})", CacheWriteWarning, stacklevel=3)
    return result


class WriteThrough:
    """Database-then-cache writes over a :class:`CacheAside` (or a ``redis.Redis``).

    Given a Redis client, a :class:`CacheAside` is made with ``cache_options``.
    """

    def __init__(
        self,
        cache: CacheAside | redis.Redis,
        *,
        raise_on_cache_error: bool = True,
        **cache_options: Any,
    ) -> None:
        self.cache = cache if isinstance(cache, CacheAside) else CacheAside(cache, **cache_options)
        self.raise_on_cache_error = raise_on_cache_error

    def write(self, key: str, value: Any, db_write: Callable[[], R]) -> R:
        """Commit through ``db_write()``, then cache ``value`` under ``key``."""
        try:
            result = db_write()
        except BaseException as exc:
            if self._forget(key) is not None:
                exc.add_note(f"the cache entry {key!r} could not be deleted either")
            raise
        try:
            self.cache.set(key, value)
        except Exception as exc:  # Redis, or a value the serializer cannot encode
            invalidated = self._forget(key) is None
            return _cache_failed(key, result, invalidated, exc, self.raise_on_cache_error)
        return result

    def delete(self, key: str, db_delete: Callable[[], R]) -> R:
        """Delete through ``db_delete()``, then forget ``key`` (whatever the outcome)."""
        try:
            result = db_delete()
        finally:
            error = self._forget(key)
        if error is not None:
            return _cache_failed(key, result, False, error, self.raise_on_cache_error)
        return result

    def _forget(self, key: str) -> Exception | None:
        """Delete the entry; the Redis error if that failed."""
        try:
            self.cache.invalidate(key)
        except CACHE_ERRORS as exc:
            return exc
        return None


class AsyncWriteThrough:
    """:class:`WriteThrough` over an :class:`AsyncCacheAside`; ``db_write`` is awaited."""

    def __init__(
        self,
        cache: AsyncCacheAside | redis.asyncio.Redis,
        *,
        raise_on_cache_error: bool = True,
        **cache_options: Any,
    ) -> None:
        self.cache = (
            cache if isinstance(cache, AsyncCacheAside) else AsyncCacheAside(cache, **cache_options)
        )
        self.raise_on_cache_error = raise_on_cache_error

    async def write(self, key: str, value: Any, db_write: Callable[[], Awaitable[R]]) -> R:
        """Commit through ``await db_write()``, then cache ``value`` under ``key``."""
        try:
            result = await db_write()
        except BaseException as exc:
            if await self._forget(key) is not None:
                exc.add_note(f"the cache entry {key!r} could not be deleted either")
            raise
        try:
            await self.cache.set(key, value)
        except Exception as exc:  # Redis, or a value the serializer cannot encode
            invalidated = await self._forget(key) is None
            return _cache_failed(key, result, invalidated, exc, self.raise_on_cache_error)
        return result

    async def delete(self, key: str, db_delete: Callable[[], Awaitable[R]]) -> R:
        """Delete through ``await db_delete()``, then forget ``key``."""
        try:
            result = await db_delete()
        finally:
            error = await self._forget(key)
        if error is not None:
            return _cache_failed(key, result, False, error, self.raise_on_cache_error)
        return result

    async def _forget(self, key: str) -> Exception | None:
        try:
            await self.cache.invalidate(key)
        except CACHE_ERRORS as exc:
            return exc
        return None
