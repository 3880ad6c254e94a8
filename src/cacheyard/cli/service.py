"""The composition root: builds the store, engines, controller, monitor and API,
then serves until stopped. Engines are left running on exit by design: the
next start adopts them.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn

from cacheyard.api.app import ElastiCacheApi, create_app
from cacheyard.api.handlers import Context
from cacheyard.api.handlers.parameter_groups import ensure_default_groups
from cacheyard.api.handlers.resources import ensure_default_subnet_group
from cacheyard.cli import network_rules
from cacheyard.cli.credentials import KeyPair, new_key_pair, read_files, write_files
from cacheyard.cli.settings import Settings
from cacheyard.controller.faults import FaultInjector
from cacheyard.controller.keys import REPLICATION_GROUP
from cacheyard.controller.layout import Layout
from cacheyard.controller.manager import Controller
from cacheyard.domain.arns import Arn
from cacheyard.domain.clock import SystemClock
from cacheyard.domain.engines import EngineCatalog
from cacheyard.domain.network import Network
from cacheyard.engines.host import LocalEngineHost
from cacheyard.engines.parameter_probe import load_or_probe
from cacheyard.engines.versions import installed_versions
from cacheyard.ha.monitor import HealthMonitor
from cacheyard.store import SqlStore, Store
from cacheyard.store.snapshot_files import SnapshotFiles

log = logging.getLogger(__name__)

ADMIN = "admin"


@dataclass(frozen=True)
class Started:
    """What the person starting the service is told."""

    key_pair: KeyPair
    first_start: bool


async def ensure_admin_key(store: Store, settings: Settings) -> Started:
    async with store.transaction() as tx:
        keys = await tx.access_keys()
        first = not keys
        if first:
            pair = read_files(settings) or new_key_pair()
            await tx.add_access_key(pair.access_key_id, pair.secret_access_key, ADMIN)
        else:
            pair = KeyPair(keys[0][0], keys[0][1])
    if read_files(settings) != pair:
        write_files(settings, pair)
    return Started(pair, first)


class AlreadyRunning(Exception):
    """Another service holds the data directory."""


def _lock_data_dir(settings: Settings) -> int:
    """One control plane per data directory: two would fight over the same engines."""
    fd = os.open(settings.data_dir / "service.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AlreadyRunning(
            f"Another Cacheyard service is already running on {settings.data_dir}."
        ) from None
    return fd


async def serve(settings: Settings, announce: Callable[[Started], None]) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = _lock_data_dir(settings)
    store = await SqlStore.open_sqlite(settings.database)
    clock = SystemClock()
    host = LocalEngineHost()
    layout = Layout(settings.data_dir)
    parameters = await load_or_probe(
        shutil.which("redis-server"),
        shutil.which("memcached"),
        settings.data_dir,
        settings.parameter_cache,
    )
    snapshots = SnapshotFiles(settings.snapshots_dir)
    network = Network(settings.region, settings.address_base)
    controller = Controller(
        store,
        host,
        layout,
        clock,
        parameters,
        snapshots,
        lambda name: str(Arn(settings.region, settings.account, "snapshot", name)),
    )
    ctx = Context(
        store=store,
        controller=controller,
        clock=clock,
        network=network,
        catalog=EngineCatalog(installed_versions()),
        account=settings.account,
        parameters=parameters,
        snapshots=snapshots,
        buckets=settings.buckets,
    )
    monitor = HealthMonitor(host, controller.nodes_to_watch, controller.notify, layout.clusters)
    try:
        started = await ensure_admin_key(store, settings)
        await ensure_default_subnet_group(ctx)
        await ensure_default_groups(ctx)
        async with store.transaction() as tx:
            secrets = {key: secret for key, secret, _ in await tx.access_keys()}
            readers = {g.spec["reader_endpoint"] for g in await tx.all(REPLICATION_GROUP)}
        settings.address_base_file.write_text(f"{settings.address_base}\n")
        network_rules.forget_stale(settings.address_prefix, readers)
        await controller.start()
        monitor.start()
        config = uvicorn.Config(
            create_app(
                ElastiCacheApi(
                    ctx, secrets.get, FaultInjector(store, host, layout, controller.enqueue)
                )
            ),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            lifespan="off",
        )

        def on_listening() -> None:
            settings.pid_file.write_text(f"{os.getpid()}\n")
            settings.endpoint_file.write_text(f"{settings.endpoint_url}\n")
            announce(started)

        await _Server(config, on_listening).serve()
    finally:
        await monitor.stop()
        await controller.stop()
        await store.close()
        settings.pid_file.unlink(missing_ok=True)
        os.close(lock)


class _Server(uvicorn.Server):
    """uvicorn's server, telling us once it really listens."""

    def __init__(self, config: uvicorn.Config, on_listening: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_listening = on_listening

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_listening()


def run(settings: Settings, announce: Callable[[Started], None]) -> None:
    asyncio.run(serve(settings, announce))
