"""Helpers shared by the engine tests (a unique module name, imported directly)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


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
