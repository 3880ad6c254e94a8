"""A keyed work queue: one key is handled by one worker at a time, in order;
different keys in parallel.

A handler returns ``None`` when its key has converged, or a delay after which
the key should be looked at again (polling a process that is still starting).
A key added while it is being handled runs once more afterwards, so no change
is missed; an exception requeues the key with exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from cacheyard.engines.cancellation import stop_tasks

log = logging.getLogger(__name__)

Handler = Callable[[str], Awaitable[float | None]]

MAX_BACKOFF = 5.0


class WorkQueue:
    def __init__(self, handler: Handler, workers: int = 8) -> None:
        self._handler = handler
        self._workers = workers
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._active: set[str] = set()
        self._dirty: set[str] = set()
        self._failures: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def add(self, key: str, delay: float = 0.0) -> None:
        if delay > 0:
            timer = self._timers.get(key)
            if timer is not None:
                timer.cancel()
            loop = asyncio.get_running_loop()
            self._timers[key] = loop.call_later(delay, self._add_now, key)
            return
        self._add_now(key)

    def _add_now(self, key: str) -> None:
        self._timers.pop(key, None)
        if key in self._active:
            self._dirty.add(key)
            return
        if key not in self._queued:
            self._queued.add(key)
            self._ready.put_nowait(key)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        await stop_tasks(self._tasks)
        self._tasks = []

    async def _work(self) -> None:
        while True:
            key = await self._ready.get()
            self._queued.discard(key)
            self._active.add(key)
            try:
                again = await self._handler(key)
            except asyncio.CancelledError:
                raise
            except Exception:
                failures = self._failures.get(key, 0) + 1
                self._failures[key] = failures
                again = min(MAX_BACKOFF, 0.05 * 2**failures)
                log.exception("reconciling %s failed (attempt %d)", key, failures)
            else:
                self._failures.pop(key, None)
            finally:
                self._active.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self._add_now(key)
            elif again is not None:
                self.add(key, again)
