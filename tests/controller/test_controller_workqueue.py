"""The keyed work queue: one key at a time, different keys in parallel, requeues."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from cacheyard.controller.workqueue import WorkQueue

pytestmark = pytest.mark.timeout(10)

Handler = Callable[[str], Awaitable[float | None]]


async def wait_until(check: Callable[[], bool], within: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        assert loop.time() < deadline, f"condition not met within {within}s"
        await asyncio.sleep(0.005)


class Recorder:
    """Counts calls per key and can hold the first run of a key until released."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.times: dict[str, list[float]] = {}
        self.active: Counter[str] = Counter()
        self.max_active: Counter[str] = Counter()
        self.gates: dict[str, asyncio.Event] = {}
        self.marker = asyncio.Event()

    async def handle(self, key: str) -> float | None:
        if key == "marker":
            self.marker.set()
            return None
        self.calls[key] += 1
        self.times.setdefault(key, []).append(asyncio.get_running_loop().time())
        self.active[key] += 1
        self.max_active[key] = max(self.max_active[key], self.active[key])
        try:
            gate = self.gates.get(key)
            if gate is not None and self.calls[key] == 1:
                await gate.wait()
            await asyncio.sleep(0)
        finally:
            self.active[key] -= 1
        return None


@pytest.fixture
async def make_queue() -> AsyncIterator[Callable[..., WorkQueue]]:
    queues: list[WorkQueue] = []

    def make(handler: Handler, workers: int = 4) -> WorkQueue:
        queue = WorkQueue(handler, workers=workers)
        queue.start()
        queues.append(queue)
        return queue

    yield make
    for queue in queues:
        await queue.stop()


async def drained(queue: WorkQueue, recorder: Recorder) -> None:
    """With one worker, the marker runs after everything queued before it."""
    recorder.marker.clear()
    queue.add("marker")
    await asyncio.wait_for(recorder.marker.wait(), 3)


async def test_a_key_is_never_handled_by_two_workers_at_once(
    make_queue: Callable[..., WorkQueue],
) -> None:
    recorder = Recorder()
    recorder.gates["k"] = asyncio.Event()
    queue = make_queue(recorder.handle, workers=8)
    queue.add("k")
    await wait_until(lambda: recorder.active["k"] == 1)
    for _ in range(20):
        queue.add("k")
        await asyncio.sleep(0)
    assert recorder.calls["k"] == 1
    recorder.gates["k"].set()
    await wait_until(lambda: recorder.calls["k"] == 2 and recorder.active["k"] == 0)
    assert recorder.max_active["k"] == 1


async def test_a_key_added_while_active_runs_once_more_afterwards(
    make_queue: Callable[..., WorkQueue],
) -> None:
    recorder = Recorder()
    recorder.gates["k"] = asyncio.Event()
    queue = make_queue(recorder.handle, workers=1)
    queue.add("k")
    await wait_until(lambda: recorder.active["k"] == 1)
    queue.add("k")
    queue.add("k")
    recorder.gates["k"].set()
    await wait_until(lambda: recorder.calls["k"] == 2)
    await wait_until(lambda: recorder.active["k"] == 0)
    await drained(queue, recorder)
    assert recorder.calls["k"] == 2


async def test_adding_a_queued_key_again_runs_it_once(
    make_queue: Callable[..., WorkQueue],
) -> None:
    recorder = Recorder()
    recorder.gates["block"] = asyncio.Event()
    queue = make_queue(recorder.handle, workers=1)
    queue.add("block")  # keeps the only worker busy
    await wait_until(lambda: recorder.active["block"] == 1)
    for _ in range(5):
        queue.add("k")
    recorder.gates["block"].set()
    await drained(queue, recorder)
    assert recorder.calls["k"] == 1


async def test_returning_a_delay_requeues_after_it(make_queue: Callable[..., WorkQueue]) -> None:
    times: list[float] = []

    async def handle(key: str) -> float | None:
        times.append(asyncio.get_running_loop().time())
        return 0.1 if len(times) < 3 else None

    make_queue(handle).add("k")
    await wait_until(lambda: len(times) == 3)
    assert times[1] - times[0] >= 0.099
    assert times[2] - times[1] >= 0.099


async def test_an_exception_requeues_with_growing_backoff(
    make_queue: Callable[..., WorkQueue],
) -> None:
    times: list[float] = []

    async def handle(key: str) -> float | None:
        times.append(asyncio.get_running_loop().time())
        if len(times) <= 3:
            raise RuntimeError(f"failure {len(times)}")
        return None

    make_queue(handle).add("k")
    await wait_until(lambda: len(times) == 4)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.099  # 0.05 * 2**1
    assert gaps[1] >= 0.199  # 0.05 * 2**2
    assert gaps[2] >= 0.399  # 0.05 * 2**3


async def test_success_resets_the_backoff(make_queue: Callable[..., WorkQueue]) -> None:
    times: list[float] = []
    outcomes = iter(["fail", "fail", "ok", "fail", "ok"])

    async def handle(key: str) -> float | None:
        times.append(asyncio.get_running_loop().time())
        outcome = next(outcomes)
        if outcome == "fail":
            raise RuntimeError(outcome)
        return 0.01 if len(times) == 3 else None

    make_queue(handle).add("k")
    await wait_until(lambda: len(times) == 5)
    # After the success the first failure waits the first step again, not the third.
    assert 0.099 <= times[4] - times[3] < 0.35


async def test_different_keys_run_in_parallel(make_queue: Callable[..., WorkQueue]) -> None:
    inside: set[str] = set()
    all_in = asyncio.Event()

    async def handle(key: str) -> float | None:
        inside.add(key)
        if len(inside) == 3:
            all_in.set()
        await all_in.wait()  # deadlocks unless all three run at the same time
        return None

    queue = make_queue(handle, workers=3)
    for key in ("a", "b", "c"):
        queue.add(key)
    await asyncio.wait_for(all_in.wait(), 3)


async def test_a_delayed_add_runs_later(make_queue: Callable[..., WorkQueue]) -> None:
    recorder = Recorder()
    queue = make_queue(recorder.handle, workers=1)
    loop = asyncio.get_running_loop()
    added_at = loop.time()
    queue.add("k", delay=0.1)
    await wait_until(lambda: recorder.calls["k"] == 1)
    assert recorder.times["k"][0] - added_at >= 0.099
