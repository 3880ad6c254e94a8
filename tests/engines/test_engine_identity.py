"""Process identity: a node is the process whose working directory is its dir."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from engine_helpers import eventually

from cacheyard.engines import launch, procfs
from cacheyard.engines.host import LocalEngineHost
from cacheyard.engines.spec import NodeSpec, RunningProcess

SpecFactory = Callable[..., NodeSpec]


@pytest.mark.timeout(15)
async def test_find_all_lists_every_engine_below_the_root(
    host: LocalEngineHost,
    tmp_path: Path,
    redis_spec: SpecFactory,
    memcached_spec: SpecFactory,
) -> None:
    r1 = redis_spec("cluster-a/redis-1")
    r2 = redis_spec("cluster-a/redis-2")
    m1 = memcached_spec("cluster-b/memcached-1")
    started = {spec.node_dir: host.start(spec) for spec in (r1, r2, m1)}
    # A python process under the root that is not a configuration endpoint.
    bystander = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(30)", cwd=tmp_path
    )
    try:
        assert LocalEngineHost().find_all(tmp_path) == started
        assert LocalEngineHost().find_all(tmp_path / "cluster-a") == {
            r1.node_dir: started[r1.node_dir],
            r2.node_dir: started[r2.node_dir],
        }
        assert LocalEngineHost().find_all(tmp_path / "cluster-c") == {}
        assert LocalEngineHost().find(tmp_path) is None
    finally:
        bystander.kill()
        await bystander.wait()


@pytest.mark.timeout(10)
async def test_a_node_dir_behind_a_symlink_is_the_same_node(
    host: LocalEngineHost, tmp_path: Path, redis_spec: SpecFactory
) -> None:
    spec = redis_spec("real/redis-1")
    started = host.start(spec)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert LocalEngineHost().find(tmp_path / "link" / "redis-1") == started
    assert LocalEngineHost().find_all(tmp_path / "link") == {tmp_path / "link" / "redis-1": started}
    await host.stop(tmp_path / "link" / "redis-1")
    assert host.find(spec.node_dir) is None


@pytest.mark.timeout(10)
async def test_a_process_whose_directory_was_deleted_is_still_found(
    host: LocalEngineHost, memcached_spec: SpecFactory
) -> None:
    spec = memcached_spec()
    started = host.start(spec)
    await eventually(lambda: host.probe(spec))
    for written in spec.node_dir.iterdir():
        written.unlink()
    spec.node_dir.rmdir()
    assert procfs.cwd(started.pid) == str(spec.node_dir)
    assert LocalEngineHost().find(spec.node_dir) == started
    await host.stop(spec.node_dir)
    assert host.find(spec.node_dir) is None


def test_a_reused_pid_is_not_the_same_process() -> None:
    stat = procfs.read_stat(os.getpid())
    assert stat is not None and stat.state in "RS"
    assert procfs.is_running(RunningProcess(os.getpid(), stat.start_ticks))
    assert not procfs.is_running(RunningProcess(os.getpid(), stat.start_ticks + 1))
    assert not LocalEngineHost().kill(Path("/nonexistent/node"), 0)


def test_the_redis_configuration_uses_absolute_paths_and_quotes(
    redis_spec: SpecFactory,
) -> None:
    spec = redis_spec(redis_config={"notify-keyspace-events": 'Ex"\\'})
    conf = launch.render_redis_conf(spec)
    assert f'dir "{spec.node_dir}"\n' in conf
    assert f'logfile "{spec.node_dir}/engine.log"\n' in conf
    assert 'save ""\n' in conf
    assert 'maxmemory "64mb"\n' in conf
    assert 'notify-keyspace-events "Ex\\"\\\\"\n' in conf
    assert launch.quote_redis("a\nb\x01") == '"a\\nb\\x01"'
