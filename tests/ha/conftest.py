"""Fixtures for health monitor tests: real engines on random loopback addresses.

Addresses come from 127.226-250.x.y; every process started under the test's
directory is continued (if stopped) and killed at teardown.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from engine_addresses import new_address

from cacheyard.engines.host import LocalEngineHost
from cacheyard.engines.spec import NodeSpec


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[LocalEngineHost]:
    engine_host = LocalEngineHost()
    yield engine_host
    leftovers = engine_host.find_all(tmp_path)
    for node_dir in leftovers:
        engine_host.kill(node_dir, signal.SIGCONT)
    await asyncio.gather(*(engine_host.stop(node_dir, grace=0) for node_dir in leftovers))
    assert engine_host.find_all(tmp_path) == {}


@pytest.fixture
def node_spec(tmp_path: Path) -> Callable[..., NodeSpec]:
    def make(name: str, engine: str = "redis") -> NodeSpec:
        return NodeSpec(
            engine=engine,  # type: ignore[arg-type]
            node_dir=tmp_path / "clusters" / name / "nodes" / "0001",
            address=new_address(),
            port=6379 if engine == "redis" else 11211,
            max_memory_mb=32,
            threads=1,
        )

    return make
