"""Lazy loading (cache-aside) in front of a database, sync and asyncio.

Why each piece exists:

- **Keys** are ``{namespace}:v{version}:{generation}:{key}``. ``version`` is
  bumped in code when the shape of cached values changes (old entries are
  simply never read again); ``generation`` lives in Redis
  (``{namespace}:v{version}:~gen``) and :meth:`CacheAside.invalidate_namespace`
  increments it: one O(1) INCR forgets every entry of the namespace, which
  then expire on their own. Keys must not contain ``":~"`` (reserved for the
  library's own keys: ``~gen``, ``~stale``, ``~lock``).
- **TTL with jitter**: each entry lives ``ttl * (1 - U(0, jitter))`` seconds,
  never longer than ``ttl`` (so ``ttl`` stays an upper bound on staleness)
  but spread out, so entries filled together do not all expire together.
- **Negative caching**: a loader returning ``None`` stores a "missing"
  marker for ``negative_ttl`` seconds (0 turns it off), so lookups of absent
  rows do not all reach the database.
- **Stampede protection across processes**: on a miss one caller takes a
  short lock (``SET ~lock token NX PX lock_timeout``), checks again, loads and
  fills; the others serve the stale copy if ``serve_stale`` keeps one (the
  last value, under ``~stale`` with a longer TTL), or poll for the value
  until ``wait_timeout``. A waiter that sees the lock released without a
  value (the loader failed) tries to take it itself; one that runs out of
  time calls the loader itself, so a stuck holder slows callers down but
  never fails them. The lock expires on its own if its holder dies, and is
  released by compare-and-delete so a holder never removes a lock that
  expired and was taken by someone else.
- **Fills use SET NX**: a loader that read the database before a
  write-through (:mod:`cacheyard.client.write_through`) committed cannot
  overwrite the newer value that write put in the cache.

A hit is one round trip without Lua: ``MGET`` of the generation and of the
entry under the generation this instance saw last (atomic, so an entry is
never read across a namespace invalidation); a miss, or a generation that
moved, takes a Lua script that reads the generation, the entry and the stale
copy together. Lua scripts build the
entry keys from the generation, so they suit a single node or a replication
group (cluster mode disabled), not Redis Cluster.

The Redis client must return bytes (``decode_responses=False``, redis-py's
default): cached payloads are the serializer's bytes.
"""

from __future__ import annotations

import asyncio
import functools
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, cast, overload

import redis
import redis.asyncio

from cacheyard.client.serialization import JSON, Serializer

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

_VALUE = b"v"  # payload prefix: a value follows
_MISSING = b"n"  # the whole payload: the loader found nothing
POLL_FIRST = 0.005  # seconds between a waiter's first polls, doubling ...
POLL_MAX = 0.05  # ... up to this

# KEYS[1] generation key ("<prefix>~gen"); ARGV[1] key. A hit answers the payload
# alone; a miss answers {generation, stale or nil}. (The slow path: hits use MGET.)
_FETCH = """
local gen = redis.call('GET', KEYS[1]) or '0'
local base = string.sub(KEYS[1], 1, -5) .. gen .. ':' .. ARGV[1]
local value = redis.call('GET', base)
if value then return value end
return {gen, redis.call('GET', base .. ':~stale')}
"""

# KEYS[1] generation key; ARGV prefix, key, payload, ttl ms, stale ttl ms (0: none),
# "nx" or "", generation ("" reads the current one). Returns 1 when stored.
_STORE = """
local gen = ARGV[7]
if gen == '' then gen = redis.call('GET', KEYS[1]) or '0' end
local base = ARGV[1] .. gen .. ':' .. ARGV[2]
local ok
if ARGV[6] == 'nx' then
  ok = redis.call('SET', base, ARGV[3], 'PX', ARGV[4], 'NX')
else
  ok = redis.call('SET', base, ARGV[3], 'PX', ARGV[4])
end
if not ok then return 0 end
if tonumber(ARGV[5]) > 0 then
  redis.call('SET', base .. ':~stale', ARGV[3], 'PX', ARGV[5])
end
return 1
"""

# KEYS[1] generation key; ARGV prefix, key. Deletes the entry and its stale copy.
_INVALIDATE = """
local gen = redis.call('GET', KEYS[1]) or '0'
local base = ARGV[1] .. gen .. ':' .. ARGV[2]
return redis.call('DEL', base, base .. ':~stale')
"""

# KEYS[1] lock; ARGV[1] token. Deletes the lock only if we still hold it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True)
class _Seen:
    """The namespace generation this instance saw last, and its entries' key prefix.

    A hit reads the generation and the entry under the generation seen last
    in one MGET (atomic): if the generation is still that one, the entry is
    current; if it moved, the answer is discarded and the Lua path reads again.
    """

    generation: bytes
    entry_prefix: str

    @staticmethod
    def of(policy: _Policy, generation: bytes | None) -> _Seen:
        current = generation or b"0"
        return _Seen(current, policy.entry_key(current.decode(), ""))


@dataclass(frozen=True)
class _Missed:
    generation: str
    stale: bytes | None


class _Decorator(Protocol):
    """``cache.cached()`` without a key function: generic in the decorated function."""

    def __call__(self, fn: Callable[P, R], /) -> CachedFunction[P, R]: ...


class _AsyncDecorator(Protocol):
    def __call__(self, fn: Callable[P, Awaitable[R]], /) -> AsyncCachedFunction[P, R]: ...


class _Policy:
    """What the sync and async classes share: keys, encoding, TTLs (no I/O)."""

    def __init__(
        self,
        namespace: str,
        version: int,
        ttl: float,
        jitter: float,
        negative_ttl: float,
        serializer: Serializer,
        lock_timeout: float,
        wait_timeout: float,
        serve_stale: bool,
        stale_ttl: float | None,
    ) -> None:
        if not namespace or ":" in namespace:
            raise ValueError("namespace must be non-empty and without ':'")
        if ttl <= 0 or negative_ttl < 0 or lock_timeout <= 0 or wait_timeout < 0:
            raise ValueError("ttl and lock_timeout must be > 0, negative_ttl and wait_timeout >= 0")
        if not 0 <= jitter < 1:
            raise ValueError("jitter must be within [0, 1)")
        self.prefix = f"{namespace}:v{version}:"
        self.generation_key = f"{namespace}:v{version}:~gen"
        self.ttl = ttl
        self.jitter = jitter
        self.negative_ttl = negative_ttl
        self.serializer = serializer
        self.lock_ms = max(1, round(lock_timeout * 1000))
        self.wait_timeout = wait_timeout
        self.serve_stale = serve_stale
        self.stale_ttl = (10 * ttl) if stale_ttl is None else stale_ttl

    @staticmethod
    def check(key: str) -> str:
        if ":~" in key:
            raise ValueError(f"cache keys must not contain ':~' (reserved): {key!r}")
        return key

    def entry_key(self, generation: str, key: str) -> str:
        return f"{self.prefix}{generation}:{key}"

    def encode(self, value: Any) -> bytes:
        return _MISSING if value is None else _VALUE + self.serializer.dumps(value)

    def decode(self, payload: bytes) -> Any:
        return None if payload == _MISSING else self.serializer.loads(payload[1:])

    def expiry_ms(self, seconds: float) -> int:
        """``seconds`` shortened by up to ``jitter`` of it, in milliseconds."""
        return max(1, round(seconds * 1000 * (1 - random.uniform(0, self.jitter))))

    def store_args(self, key: str, value: Any, *, nx: bool, generation: str) -> list[Any]:
        """ARGV of ``_STORE``, or [] when nothing is to be stored (negative caching off)."""
        if value is None and self.negative_ttl == 0:
            return []
        ttl = self.negative_ttl if value is None else self.ttl
        stale_ms = max(1, round(self.stale_ttl * 1000)) if self.serve_stale else 0
        payload = self.encode(value)
        expiry = self.expiry_ms(ttl)
        return [self.prefix, key, payload, expiry, stale_ms, "nx" if nx else "", generation]

    def missed(self, reply: list[Any]) -> _Missed:
        generation = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        stale = reply[1] if self.serve_stale and len(reply) > 1 else None
        return _Missed(generation, stale)

    @staticmethod
    def default_key(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """``module.qualname:(args, sorted kwargs)``: the arguments' reprs must be stable."""
        return f"{fn.__module__}.{fn.__qualname__}:{args!r}:{sorted(kwargs.items())!r}"


def _check_bytes_client(client: Any) -> None:
    if client.get_connection_kwargs().get("decode_responses"):
        raise ValueError("the Redis client must return bytes (decode_responses=False)")


class CacheAside:
    """Lazy loading over a ``redis.Redis`` (see the module docstring for the behaviour).

    ``get(key, loader)`` returns the cached value or calls ``loader()`` once
    across every process sharing the cache, caches its result (``None``
    included, as a miss marker) and returns it. Redis errors propagate.
    ``serve_stale`` keeps a second copy of each entry for ``stale_ttl``
    (default ``10 * ttl``): that memory buys answers without waiting while
    one caller reloads an expired entry.
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        namespace: str = "app",
        version: int = 1,
        ttl: float = 300.0,
        jitter: float = 0.1,
        negative_ttl: float = 30.0,
        serializer: Serializer = JSON,
        lock_timeout: float = 10.0,
        wait_timeout: float = 10.0,
        serve_stale: bool = True,
        stale_ttl: float | None = None,
    ) -> None:
        _check_bytes_client(redis_client)
        self.redis = redis_client
        self.policy = _Policy(
            namespace,
            version,
            ttl,
            jitter,
            negative_ttl,
            serializer,
            lock_timeout,
            wait_timeout,
            serve_stale,
            stale_ttl,
        )
        self._fetch_script = redis_client.register_script(_FETCH)
        self._execute: Callable[..., Any] = redis_client.execute_command
        self._seen = _Seen.of(self.policy, None)
        self._store_script = redis_client.register_script(_STORE)
        self._invalidate_script = redis_client.register_script(_INVALIDATE)
        self._release_script = redis_client.register_script(_RELEASE)

    def get(self, key: str, loader: Callable[[], T | None]) -> T | None:
        """The cached value of ``key``, or ``loader()``'s (then cached); ``None`` = missing."""
        # The hit path is kept as close to a hand-written GET as it goes: one MGET
        # (no Lua), straight through execute_command, checks and decoding inlined.
        policy = self.policy
        if ":~" in key:
            policy.check(key)
        seen, entry_prefix = self._seen.generation, self._seen.entry_prefix
        current, payload = self._execute("MGET", policy.generation_key, entry_prefix + key)
        if (current or b"0") == seen:
            if payload is not None:
                if payload == _MISSING:
                    return None
                return cast("T | None", policy.serializer.loads(payload[1:]))
        else:
            self._seen = _Seen.of(policy, current)
        reply = self._fetch_script([policy.generation_key], [key])
        if type(reply) is bytes:  # filled since the MGET
            return cast("T | None", policy.decode(reply))
        return self._miss(key, policy.missed(reply), loader)

    def _miss(self, key: str, fetched: _Missed, loader: Callable[[], T | None]) -> T | None:
        policy = self.policy
        entry = policy.entry_key(fetched.generation, key)
        lock = f"{entry}:~lock"
        token = secrets.token_hex(16)
        deadline = time.monotonic() + policy.wait_timeout
        delay = POLL_FIRST
        while True:
            if self.redis.set(lock, token, nx=True, px=policy.lock_ms):
                try:
                    # Filled while we were taking the lock?
                    found = cast("bytes | None", self.redis.get(entry))
                    if found is not None:
                        return cast("T | None", policy.decode(found))
                    value = loader()
                    self._store(key, value, nx=True, generation=fetched.generation)
                    return value
                finally:
                    self._release_script([lock], [token])
            if fetched.stale is not None:
                return cast("T | None", policy.decode(fetched.stale))
            while True:  # someone else loads: wait for the value or for the lock to go
                if time.monotonic() >= deadline:
                    value = loader()  # the holder is stuck: do not fail the caller
                    self._store(key, value, nx=True, generation=fetched.generation)
                    return value
                time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, POLL_MAX)
                pipe = self.redis.pipeline(transaction=False)
                pipe.get(entry)
                pipe.exists(lock)
                found, held = pipe.execute()
                if found is not None:
                    return cast("T | None", policy.decode(found))
                if not held:
                    break  # released without a value (the loader failed): try ourselves

    def _store(self, key: str, value: Any, *, nx: bool, generation: str = "") -> bool:
        args = self.policy.store_args(key, value, nx=nx, generation=generation)
        if not args:
            return False
        return bool(self._store_script([self.policy.generation_key], args))

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` (and its stale copy) now, replacing what is cached."""
        self._store(self.policy.check(key), value, nx=False)

    def invalidate(self, key: str) -> None:
        """Forget ``key`` and its stale copy: the next read goes to the loader."""
        policy = self.policy
        self._invalidate_script([policy.generation_key], [policy.prefix, policy.check(key)])

    def invalidate_namespace(self) -> int:
        """Forget every entry of the namespace in O(1); returns the new generation."""
        return int(self.redis.incr(self.policy.generation_key))

    @overload
    def cached(self, key: None = None) -> _Decorator: ...

    @overload
    def cached(self, key: Callable[P, str]) -> Callable[[Callable[P, R]], CachedFunction[P, R]]: ...

    def cached(self, key: Callable[..., str] | None = None) -> Any:
        """Decorator: ``fn(*a, **kw)`` read through the cache under ``key(*a, **kw)``.

        Without ``key`` the entry key is ``module.qualname:(args):(kwargs)``
        from the arguments' reprs, which must then be stable across processes.
        """

        def decorate(fn: Callable[..., Any]) -> CachedFunction[..., Any]:
            return CachedFunction(self, fn, key)

        return decorate


class CachedFunction(Generic[P, R]):
    """A function read through a :class:`CacheAside`; ``.invalidate(*a, **kw)`` forgets a call."""

    def __init__(self, cache: CacheAside, fn: Callable[P, R], key: Callable[P, str] | None):
        self.cache = cache
        self.fn = fn
        self.key = key
        functools.update_wrapper(self, fn)

    def cache_key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        if self.key is not None:
            return self.key(*args, **kwargs)
        return _Policy.default_key(self.fn, args, kwargs)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        loaded = self.cache.get(self.cache_key(*args, **kwargs), lambda: self.fn(*args, **kwargs))
        return cast(R, loaded)

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> None:
        self.cache.invalidate(self.cache_key(*args, **kwargs))


class AsyncCacheAside:
    """:class:`CacheAside` over ``redis.asyncio.Redis``: same keys, same behaviour.

    Loaders are coroutine functions. Sync and async instances with the same
    namespace and version share entries, generations and locks.
    """

    def __init__(
        self,
        redis_client: redis.asyncio.Redis,
        namespace: str = "app",
        version: int = 1,
        ttl: float = 300.0,
        jitter: float = 0.1,
        negative_ttl: float = 30.0,
        serializer: Serializer = JSON,
        lock_timeout: float = 10.0,
        wait_timeout: float = 10.0,
        serve_stale: bool = True,
        stale_ttl: float | None = None,
    ) -> None:
        _check_bytes_client(redis_client)
        self.redis = redis_client
        self.policy = _Policy(
            namespace,
            version,
            ttl,
            jitter,
            negative_ttl,
            serializer,
            lock_timeout,
            wait_timeout,
            serve_stale,
            stale_ttl,
        )
        self._fetch_script = redis_client.register_script(_FETCH)
        self._execute: Callable[..., Any] = redis_client.execute_command
        self._seen = _Seen.of(self.policy, None)
        self._store_script = redis_client.register_script(_STORE)
        self._invalidate_script = redis_client.register_script(_INVALIDATE)
        self._release_script = redis_client.register_script(_RELEASE)

    async def get(self, key: str, loader: Callable[[], Awaitable[T | None]]) -> T | None:
        """The cached value of ``key``, or ``await loader()``'s (then cached)."""
        policy = self.policy
        if ":~" in key:
            policy.check(key)
        seen, entry_prefix = self._seen.generation, self._seen.entry_prefix
        current, payload = await self._execute("MGET", policy.generation_key, entry_prefix + key)
        if (current or b"0") == seen:
            if payload is not None:
                return cast("T | None", policy.decode(payload))
        else:
            self._seen = _Seen.of(policy, current)
        reply = await self._fetch_script([policy.generation_key], [key])
        if type(reply) is bytes:
            return cast("T | None", policy.decode(reply))
        return await self._miss(key, policy.missed(reply), loader)

    async def _miss(
        self, key: str, fetched: _Missed, loader: Callable[[], Awaitable[T | None]]
    ) -> T | None:
        policy = self.policy
        entry = policy.entry_key(fetched.generation, key)
        lock = f"{entry}:~lock"
        token = secrets.token_hex(16)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + policy.wait_timeout
        delay = POLL_FIRST
        while True:
            if await self.redis.set(lock, token, nx=True, px=policy.lock_ms):
                try:
                    found = cast("bytes | None", await self.redis.get(entry))
                    if found is not None:
                        return cast("T | None", policy.decode(found))
                    value = await loader()
                    await self._store(key, value, nx=True, generation=fetched.generation)
                    return value
                finally:
                    await self._release_script([lock], [token])
            if fetched.stale is not None:
                return cast("T | None", policy.decode(fetched.stale))
            while True:
                if loop.time() >= deadline:
                    value = await loader()
                    await self._store(key, value, nx=True, generation=fetched.generation)
                    return value
                await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
                delay = min(delay * 2, POLL_MAX)
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.get(entry)
                    pipe.exists(lock)
                    found, held = await pipe.execute()
                if found is not None:
                    return cast("T | None", policy.decode(found))
                if not held:
                    break

    async def _store(self, key: str, value: Any, *, nx: bool, generation: str = "") -> bool:
        args = self.policy.store_args(key, value, nx=nx, generation=generation)
        if not args:
            return False
        return bool(await self._store_script([self.policy.generation_key], args))

    async def set(self, key: str, value: Any) -> None:
        """Store ``value`` (and its stale copy) now, replacing what is cached."""
        await self._store(self.policy.check(key), value, nx=False)

    async def invalidate(self, key: str) -> None:
        """Forget ``key`` and its stale copy: the next read goes to the loader."""
        policy = self.policy
        await self._invalidate_script([policy.generation_key], [policy.prefix, policy.check(key)])

    async def invalidate_namespace(self) -> int:
        """Forget every entry of the namespace in O(1); returns the new generation."""
        return int(await self.redis.incr(self.policy.generation_key))

    @overload
    def cached(self, key: None = None) -> _AsyncDecorator: ...

    @overload
    def cached(
        self, key: Callable[P, str]
    ) -> Callable[[Callable[P, Awaitable[R]]], AsyncCachedFunction[P, R]]: ...

    def cached(self, key: Callable[..., str] | None = None) -> Any:
        """Decorator for coroutine functions: ``await fn(*a, **kw)`` read through the cache."""

        def decorate(fn: Callable[..., Awaitable[Any]]) -> AsyncCachedFunction[..., Any]:
            return AsyncCachedFunction(self, fn, key)

        return decorate


class AsyncCachedFunction(Generic[P, R]):
    """A coroutine function read through an :class:`AsyncCacheAside`."""

    def __init__(
        self,
        cache: AsyncCacheAside,
        fn: Callable[P, Awaitable[R]],
        key: Callable[P, str] | None,
    ):
        self.cache = cache
        self.fn = fn
        self.key = key
        functools.update_wrapper(self, fn)

    def cache_key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        if self.key is not None:
            return self.key(*args, **kwargs)
        return _Policy.default_key(self.fn, args, kwargs)

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        async def load() -> R:
            return await self.fn(*args, **kwargs)

        return cast(R, await self.cache.get(self.cache_key(*args, **kwargs), load))

    async def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> None:
        await self.cache.invalidate(self.cache_key(*args, **kwargs))
