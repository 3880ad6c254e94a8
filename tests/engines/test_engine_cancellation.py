"""engines.cancellation: poll loops and stops that end even when a cancellation is lost."""

from __future__ import annotations

import asyncio

import pytest

from cacheyard.engines.cancellation import deadline_after, pause, stop_tasks


async def test_pause_sleeps_one_period_before_the_deadline() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()

    await pause(deadline_after(10.0), 0.05)

    assert loop.time() - started >= 0.05


async def test_pause_raises_once_the_deadline_has_passed() -> None:
    deadline = deadline_after(0.0)
    await asyncio.sleep(0.01)

    with pytest.raises(TimeoutError):
        await pause(deadline, 0.05)


async def test_a_poll_loop_ends_at_its_deadline_even_if_the_timeout_never_fires() -> None:
    """The loop stands for one whose asyncio.timeout cancellation was lost."""
    deadline = deadline_after(0.1)
    polls = 0

    with pytest.raises(TimeoutError):
        while True:
            polls += 1
            await pause(deadline, 0.01)

    assert 1 < polls < 100


async def test_stop_tasks_ends_a_task_that_swallowed_its_cancellation() -> None:
    """The worker stands for one whose cancellation asyncio.wait_for dropped."""
    swallowed = 0

    async def worker() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1

    tasks = [asyncio.create_task(worker()), asyncio.create_task(asyncio.sleep(10))]
    await asyncio.sleep(0)

    await stop_tasks(tasks)

    assert swallowed == 1
    assert all(task.cancelled() for task in tasks)
