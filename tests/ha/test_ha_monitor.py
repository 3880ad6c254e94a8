"""The health monitor: hands the owner's key over when a node dies or hangs."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from cacheyard.engines.host import LocalEngineHost
from cacheyard.engines.spec import NodeSpec
from cacheyard.ha.monitor import HealthMonitor, Watched

pytestmark = pytest.mark.timeout(30)

Factory = Callable[..., NodeSpec]


class Targets:
    """What the monitor watches, and every key it was told about."""

    def __init__(self, watched: list[Watched]) -> None:
        self.watched = watched
        self.notified: list[str] = []

    async def __call__(self) -> list[Watched]:
        return list(self.watched)

    def notify(self, key: str) -> None:
        self.notified.append(key)


async def started(host: LocalEngineHost, *specs: NodeSpec) -> None:
    for spec in specs:
        host.start(spec)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    for spec in specs:
        while not await host.probe(spec, timeout=0.5):
            assert loop.time() < deadline, f"{spec.node_dir} never answered"
            await asyncio.sleep(0.01)


def monitor(host: LocalEngineHost, targets: Targets, root: Path) -> HealthMonitor:
    return HealthMonitor(
        host, targets, targets.notify, root, interval=0.05, probe_timeout=0.2, failures_to_report=2
    )


async def test_healthy_nodes_are_not_reported(
    host: LocalEngineHost, node_spec: Factory, tmp_path: Path
) -> None:
    redis, memcached = node_spec("r", "redis"), node_spec("m", "memcached")
    await started(host, redis, memcached)
    targets = Targets([("cache-cluster/r", redis), ("cache-cluster/m", memcached)])
    watcher = monitor(host, targets, tmp_path / "clusters")
    for _ in range(3):
        await watcher.check_once()
    assert targets.notified == []


async def test_killed_node_is_reported(
    host: LocalEngineHost, node_spec: Factory, tmp_path: Path
) -> None:
    dead, alive = node_spec("dead"), node_spec("alive")
    await started(host, dead, alive)
    targets = Targets([("cache-cluster/dead", dead), ("cache-cluster/alive", alive)])
    watcher = monitor(host, targets, tmp_path / "clusters")
    assert host.kill(dead.node_dir, signal.SIGKILL)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while "cache-cluster/dead" not in targets.notified:
        assert loop.time() < deadline, "the killed node was never reported"
        await watcher.check_once()
    assert set(targets.notified) == {"cache-cluster/dead"}


async def test_node_that_was_never_started_is_reported_at_once(
    host: LocalEngineHost, node_spec: Factory, tmp_path: Path
) -> None:
    missing = node_spec("missing")
    targets = Targets([("cache-cluster/missing", missing)])
    await monitor(host, targets, tmp_path / "clusters").check_once()
    assert targets.notified == ["cache-cluster/missing"]


@pytest.mark.parametrize("engine", ["redis", "memcached"])
async def test_hung_node_is_reported_after_consecutive_failures(
    host: LocalEngineHost, node_spec: Factory, tmp_path: Path, engine: str
) -> None:
    hung, alive = node_spec("hung", engine), node_spec("alive", engine)
    await started(host, hung, alive)
    targets = Targets([("cache-cluster/hung", hung), ("cache-cluster/alive", alive)])
    watcher = monitor(host, targets, tmp_path / "clusters")
    assert host.kill(hung.node_dir, signal.SIGSTOP)
    try:
        await watcher.check_once()
        assert targets.notified == []  # one failure is not enough
        await watcher.check_once()
        assert targets.notified == ["cache-cluster/hung"]
        await watcher.check_once()
        assert targets.notified == ["cache-cluster/hung"] * 2  # reported while it lasts
    finally:
        host.kill(hung.node_dir, signal.SIGCONT)


async def test_an_answer_resets_the_failure_count(
    host: LocalEngineHost, node_spec: Factory, tmp_path: Path
) -> None:
    flaky = node_spec("flaky")
    await started(host, flaky)
    targets = Targets([("cache-cluster/flaky", flaky)])
    watcher = monitor(host, targets, tmp_path / "clusters")
    try:
        assert host.kill(flaky.node_dir, signal.SIGSTOP)
        await watcher.check_once()
        assert host.kill(flaky.node_dir, signal.SIGCONT)
        await watcher.check_once()  # answers again
        assert host.kill(flaky.node_dir, signal.SIGSTOP)
        await watcher.check_once()
        assert targets.notified == []
    finally:
        host.kill(flaky.node_dir, signal.SIGCONT)


async def test_running_monitor_reports_a_killed_node(
    host: LocalEngineHost, node_spec: Factory, tmp_path: Path
) -> None:
    node = node_spec("r")
    await started(host, node)
    reported = asyncio.Event()
    targets = Targets([("cache-cluster/r", node)])

    def notify(key: str) -> None:
        targets.notify(key)
        reported.set()

    watcher = HealthMonitor(host, targets, notify, tmp_path / "clusters", interval=0.05)
    watcher.start()
    try:
        await watcher.check_once()
        assert not reported.is_set()
        assert host.kill(node.node_dir, signal.SIGKILL)
        await asyncio.wait_for(reported.wait(), 5)
    finally:
        await watcher.stop()
    assert set(targets.notified) == {"cache-cluster/r"}


async def test_a_failing_target_source_does_not_stop_the_loop(
    host: LocalEngineHost, node_spec: Factory, tmp_path: Path
) -> None:
    missing = node_spec("missing")
    calls = 0
    reported = asyncio.Event()

    async def targets() -> list[Watched]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("store unavailable")
        return [("cache-cluster/missing", missing)]

    watcher = HealthMonitor(host, targets, lambda key: reported.set(), tmp_path, interval=0.01)
    watcher.start()
    try:
        await asyncio.wait_for(reported.wait(), 5)
    finally:
        await watcher.stop()
    assert calls >= 2
