"""A running node's configuration: CONFIG SET, and the redis.conf it was started with."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from engine_addresses import new_address
from engine_helpers import eventually

from cacheyard.engines import launch
from cacheyard.engines.errors import EngineError
from cacheyard.engines.host import LocalEngineHost
from cacheyard.engines.live_config import started_config
from cacheyard.engines.replication import set_config
from cacheyard.engines.spec import NodeSpec

SpecFactory = Callable[..., NodeSpec]
AWKWARD = {
    "quotes": 'say "hi"',
    "spaces": " two  words ",
    "backslashes": "\\ \\\\ \\x41 \\n",
    "empty": "",
    "controls": "line\nfeed\r\ttab \x01 \x7f",
    "unicode": "é ß \u2028 \x85 —",
}


async def start(host: LocalEngineHost, spec: NodeSpec) -> aioredis.Redis:
    host.start(spec)
    await eventually(lambda: host.probe(spec))
    return aioredis.Redis(host=spec.address, port=spec.port, decode_responses=True)


@pytest.mark.timeout(10)
async def test_config_set_changes_a_running_node(
    host: LocalEngineHost, redis_spec: SpecFactory
) -> None:
    spec = redis_spec()
    async with await start(host, spec) as r:
        values = {
            "maxmemory-policy": "allkeys-lfu",
            "timeout": "30",
            "notify-keyspace-events": "Ex",
            "appendonly": "yes",
        }
        await set_config(spec.address, spec.port, values)
        assert {name: (await r.config_get(name))[name] for name in values} == {
            **values,
            "notify-keyspace-events": "xE",  # redis' own order of the flags
        }


@pytest.mark.timeout(10)
async def test_a_refused_value_changes_nothing(
    host: LocalEngineHost, redis_spec: SpecFactory
) -> None:
    spec = redis_spec()
    async with await start(host, spec) as r:
        with pytest.raises(EngineError, match="maxmemory-policy"):
            await set_config(spec.address, spec.port, {"timeout": "30", "maxmemory-policy": "no"})
        assert await r.config_get("timeout") == {"timeout": "0"}


@pytest.mark.timeout(10)
async def test_a_node_that_does_not_answer_is_an_engine_error() -> None:
    with pytest.raises(EngineError, match="CONFIG SET"):
        await set_config(new_address(), 6379, {"timeout": "30"}, timeout=0.5)


def test_started_config_reads_back_what_was_rendered(
    redis_spec: SpecFactory, tmp_path: Path
) -> None:
    spec = redis_spec(redis_config=AWKWARD)
    spec.node_dir.mkdir()
    (spec.node_dir / launch.REDIS_CONF).write_text(launch.render_redis_conf(spec), encoding="utf-8")
    assert started_config(spec.node_dir) == launch.redis_directives(spec)
    assert started_config(tmp_path / "never-started") == {}


@pytest.mark.timeout(10)
async def test_started_config_is_what_the_node_runs_with(
    host: LocalEngineHost, redis_spec: SpecFactory
) -> None:
    config = {"client-output-buffer-limit": "normal 0 0 0", "databases": "4", "save": "900 1"}
    spec = redis_spec(redis_config=config)
    async with await start(host, spec) as r:
        running = await r.config_get("*")
    started = started_config(spec.node_dir)
    assert started == launch.redis_directives(spec)
    assert started["databases"] == running["databases"] == "4"
    assert started["save"] == running["save"] == "900 1"
    assert str(running["client-output-buffer-limit"]).startswith("normal 0 0 0 ")
