"""Poll loops that end at their deadline even when asyncio.timeout's cancellation is lost.

On Python 3.11, ``asyncio.wait_for`` returns its result and drops a cancellation
that arrives in the loop iteration where the awaited call finishes; redis-py
wraps every socket write in it. A poll loop bounded only by an enclosing
``asyncio.timeout`` then goes on until its condition holds, which CI once saw
take the full 20 s of a deliberately slow save.
"""

from __future__ import annotations

import asyncio


def deadline_after(seconds: float) -> float:
    """The event loop's time ``seconds`` from now, for ``asyncio.timeout_at`` and pause."""
    return asyncio.get_running_loop().time() + seconds


async def pause(deadline: float, period: float) -> None:
    """Sleep one poll ``period``, or raise TimeoutError once ``deadline`` has passed."""
    if asyncio.get_running_loop().time() >= deadline:
        raise TimeoutError
    await asyncio.sleep(period)
