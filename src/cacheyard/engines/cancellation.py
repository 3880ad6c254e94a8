"""Waiting and stopping that still end when an asyncio cancellation is lost.

On Python 3.11, ``asyncio.wait_for`` returns its result and drops a cancellation
that arrives in the loop iteration where the awaited call finishes; redis-py
wraps every socket write in it. So a poll loop bounded only by an enclosing
``asyncio.timeout`` may go on until its condition holds (CI once saw a
deliberately slow save outlive its timeout that way), and a task cancelled once
may keep running (CI once saw the controller's workers outlive a stop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

# How often a task that is still running is cancelled again.
RECANCEL = 0.1


def deadline_after(seconds: float) -> float:
    """The event loop's time ``seconds`` from now, for ``asyncio.timeout_at`` and pause."""
    return asyncio.get_running_loop().time() + seconds


async def pause(deadline: float, period: float) -> None:
    """Sleep one poll ``period``, or raise TimeoutError once ``deadline`` has passed."""
    if asyncio.get_running_loop().time() >= deadline:
        raise TimeoutError
    await asyncio.sleep(period)


async def stop_tasks(tasks: Iterable[asyncio.Task[object]]) -> None:
    """Cancel the tasks and wait until every one has ended, cancelling again any
    that swallowed the cancellation."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL)
