"""Fixtures for engine tests: real processes on random loopback addresses.

Addresses come from 127.226-250.x.y so tests never collide with a running
Cacheyard (or with each other); every process started under the test's
tmp_path is stopped at teardown, whichever host object started it.
"""

from __future__ import annotations

import asyncio
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
    # SIGKILL: cleanup only, and memcached takes up to a second to honour SIGTERM.
    await asyncio.gather(*(engine_host.stop(node_dir, grace=0) for node_dir in leftovers))


@pytest.fixture
def redis_spec(tmp_path: Path) -> Callable[..., NodeSpec]:
    def make(name: str = "redis-1", **overrides: object) -> NodeSpec:
        fields: dict[str, object] = {
            "engine": "redis",
            "node_dir": tmp_path / name,
            "address": new_address(),
            "port": 6379,
            "max_memory_mb": 64,
        }
        fields.update(overrides)
        return NodeSpec(**fields)  # type: ignore[arg-type]

    return make


@pytest.fixture
def memcached_spec(tmp_path: Path) -> Callable[..., NodeSpec]:
    def make(name: str = "memcached-1", **overrides: object) -> NodeSpec:
        fields: dict[str, object] = {
            "engine": "memcached",
            "node_dir": tmp_path / name,
            "address": new_address(),
            "port": 11211,
            "max_memory_mb": 32,
            "threads": 2,
        }
        fields.update(overrides)
        return NodeSpec(**fields)  # type: ignore[arg-type]

    return make
