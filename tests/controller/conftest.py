"""Fixtures for controller tests: a real store, real engines, a fake clock.

Every process started below the test's directory is killed at teardown,
whichever host object started it.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from controller_helpers import FakeClock, new_network, new_placement

from cacheyard.controller.cache_clusters import CacheClusterReconciler
from cacheyard.controller.layout import Layout
from cacheyard.domain.cache_clusters import Placement
from cacheyard.domain.network import Network
from cacheyard.domain.parameters import ParameterCatalog
from cacheyard.engines.host import LocalEngineHost
from cacheyard.engines.parameter_probe import probe_catalog
from cacheyard.store import SqlStore
from cacheyard.store.snapshot_files import SnapshotFiles


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[LocalEngineHost]:
    engine_host = LocalEngineHost()
    yield engine_host
    leftovers = engine_host.find_all(tmp_path)
    await asyncio.gather(*(engine_host.stop(node_dir, grace=0) for node_dir in leftovers))
    assert engine_host.find_all(tmp_path) == {}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    opened = await SqlStore.open_sqlite(tmp_path / "state.db")
    yield opened
    await opened.close()


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path / "data")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def network() -> Network:
    return new_network()


@pytest.fixture
def placement(network: Network) -> Placement:
    return new_placement(network)


@pytest.fixture(scope="session")
def parameters(tmp_path_factory: pytest.TempPathFactory) -> ParameterCatalog:
    """The installed engines' parameters, probed once per run."""
    workdir = tmp_path_factory.mktemp("probe")
    return asyncio.run(
        probe_catalog(shutil.which("redis-server"), shutil.which("memcached"), workdir)
    )


@pytest.fixture
def snapshot_files(tmp_path: Path) -> SnapshotFiles:
    return SnapshotFiles(tmp_path / "snapshots")


@pytest.fixture
def reconciler(
    store: SqlStore,
    host: LocalEngineHost,
    layout: Layout,
    clock: FakeClock,
    parameters: ParameterCatalog,
    snapshot_files: SnapshotFiles,
) -> CacheClusterReconciler:
    return CacheClusterReconciler(store, host, layout, clock, parameters, snapshot_files)
