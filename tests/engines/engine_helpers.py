"""Helpers shared by the engine tests (a unique module name, imported directly)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

from cacheyard.engines.host import LocalEngineHost
from cacheyard.engines.launch import ENGINE_LOG
from cacheyard.engines.spec import NodeSpec


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    """Poll ``check`` until it holds, failing after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        assert loop.time() < deadline, f"condition not met within {within}s"
        await asyncio.sleep(0.01)


async def seconds_until(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> float:
    """How long ``check`` took to hold (polled as by ``eventually``), for reports."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    await eventually(check, within)
    return loop.time() - started


async def answering(host: LocalEngineHost, spec: NodeSpec, within: float = 5.0) -> None:
    """Wait until the node answers its probe; on failure, show the end of its log."""
    try:
        await eventually(functools.partial(host.probe, spec), within)
    except AssertionError as exc:
        log = spec.node_dir / ENGINE_LOG
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
        raise AssertionError(f"{spec.address}:{spec.port} does not answer: {exc}\n{tail}") from None
