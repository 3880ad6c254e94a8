"""The health monitor: probes every node several times a second.

It decides nothing by itself; when a node's process is gone or stops
answering, it hands the owning resource's key to the reconciler, which looks
at the whole picture and acts (restart in place, later failover).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from cacheyard.engines.cancellation import stop_tasks
from cacheyard.engines.host import EngineHost
from cacheyard.engines.probes import KeptMemcachedProbes, KeptRedisProbes
from cacheyard.engines.spec import NodeSpec
from cacheyard.engines.tls_front import FRONT_DIR, PLAIN_OFFSET

log = logging.getLogger(__name__)

TARGETS_EVERY = 10


# One node to watch and the work-queue key of the resource it belongs to.
Watched = tuple[str, NodeSpec]


class HealthMonitor:
    def __init__(
        self,
        host: EngineHost,
        targets: Callable[[], Awaitable[list[Watched]]],
        notify: Callable[[str], None],
        root: Path,
        interval: float = 0.1,
        probe_timeout: float = 0.25,
        failures_to_report: int = 2,
    ) -> None:
        self._host = host
        self._targets = targets
        self._notify = notify
        self._root = root
        self._interval = interval
        self._probe_timeout = probe_timeout
        self._failures_to_report = failures_to_report
        self._failures: dict[Path, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._redis = KeptRedisProbes()
        self._memcached = KeptMemcachedProbes()
        self._watched: list[Watched] = []
        self._ticks = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            await stop_tasks([self._task])
        await self._redis.forget_all_but(set())
        self._memcached.forget_all_but(set())

    async def _run(self) -> None:
        while True:
            try:
                await self.check_once()
            except Exception:
                log.exception("health check failed")
            await asyncio.sleep(self._interval)

    async def _probe(self, node: NodeSpec) -> bool:
        if node.engine == "redis":
            return await self._redis.ping(node.address, node.port, self._probe_timeout, node.tls)
        return await self._memcached.version(
            node.address,
            node.port,
            self._probe_timeout,
            binary=bool(node.sasl_users),
            tls=node.tls,
        )

    async def _probe_front(self, node: NodeSpec) -> bool:
        """A PING in plain text through the front of a node in TransitEncryptionMode
        preferred, on the public port it holds for the node's Redis."""
        return await self._redis.ping(node.address, node.port - PLAIN_OFFSET, self._probe_timeout)

    async def check_once(self) -> None:
        # What to watch changes rarely: re-read it once a second, not every tick.
        if self._ticks % TARGETS_EVERY == 0:
            self._watched = await self._targets()
            watched_now = {(n.address, n.port) for _, n in self._watched}
            watched_now |= {
                (n.address, n.port - PLAIN_OFFSET)
                for _, n in self._watched
                if n.preferred_tls is not None
            }
            await self._redis.forget_all_but(watched_now)
            self._memcached.forget_all_but(watched_now)
        self._ticks += 1
        watched = self._watched
        running = self._host.find_all(self._root)
        alive = [(key, node) for key, node in watched if node.node_dir in running]
        for key, node in watched:
            if node.node_dir not in running:
                self._failures.pop(node.node_dir, None)
                self._notify(key)
        fronted = [(key, node) for key, node in alive if node.preferred_tls is not None]
        for key, node in fronted:
            if node.node_dir / FRONT_DIR not in running:
                self._notify(key)
        answers = await asyncio.gather(
            *(self._probe(node) for _, node in alive),
            *(self._probe_front(node) for _, node in fronted),
        )
        checks = [(key, node.node_dir) for key, node in alive]
        checks += [(key, node.node_dir / FRONT_DIR) for key, node in fronted]
        for (key, where), ok in zip(checks, answers, strict=True):
            if ok:
                self._failures.pop(where, None)
                continue
            count = self._failures.get(where, 0) + 1
            self._failures[where] = count
            if count >= self._failures_to_report:
                self._notify(key)
