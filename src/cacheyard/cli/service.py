"""The composition root: builds the store, engines, controller, monitor and API,
then serves until stopped. Engines are left running on exit by design: the
next start adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import uvicorn

from cacheyard.api.app import Api, create_app
from cacheyard.api.handlers import Context
from cacheyard.api.handlers.parameter_groups import ensure_default_groups
from cacheyard.api.handlers.resources import ensure_default_subnet_group
from cacheyard.api.handlers.users import all_users
from cacheyard.api.principals import Directory
from cacheyard.cli import network_rules
from cacheyard.cli.credentials import KeyPair, new_key_pair, read_files, write_files
from cacheyard.cli.settings import Settings
from cacheyard.controller.faults import FaultInjector
from cacheyard.controller.keys import REPLICATION_GROUP
from cacheyard.controller.layout import Layout
from cacheyard.controller.manager import Controller
from cacheyard.domain import iam
from cacheyard.domain.arns import Arn
from cacheyard.domain.clock import SystemClock
from cacheyard.domain.engines import EngineCatalog
from cacheyard.domain.iam import ACTIVE, ADMIN_USER, ADMINISTRATOR_ACCESS, AccessKey, User
from cacheyard.domain.network import Network
from cacheyard.engines import control
from cacheyard.engines.certificates import CertificateAuthority
from cacheyard.engines.host import LocalEngineHost
from cacheyard.engines.parameter_probe import load_or_probe
from cacheyard.engines.versions import installed_versions
from cacheyard.ha.monitor import HealthMonitor
from cacheyard.store import SqlStore, Store
from cacheyard.store.snapshot_files import SnapshotFiles

log = logging.getLogger(__name__)

CONTROL_KEY = "control.key"
# How long a stopping service waits for its controller (and the IAM lock) at most.
SHUTDOWN_TIMEOUT = 10.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class Started:
    """What the person starting the service is told."""

    first_start: bool
    new_admin_key: bool  # on the first start, or because every key had been deleted


async def ensure_admin_key(store: Store, settings: Settings, now: datetime) -> Started:
    """With no access key at all, the administrator user ``admin`` gets one: on the
    first start the credentials file's pair if there is one, else a new pair (a key
    deleted through IAM never comes back). Otherwise the file keeps holding a stored
    pair: its own, or else the administrator's oldest."""
    pair = read_files(settings)
    async with store.transaction() as tx:
        keys = await tx.access_keys()
        first = not await tx.iam_users()
        if not keys:
            pair = (pair if first else None) or new_key_pair()
            if await tx.iam_user(ADMIN_USER) is None:
                await tx.add_iam_user(User(ADMIN_USER, iam.new_id("AIDA"), "/", now))
            await tx.attach_policy(ADMIN_USER, ADMINISTRATOR_ACCESS)
            await tx.add_access_key(
                AccessKey(pair.access_key_id, ADMIN_USER, pair.secret_access_key, ACTIVE, now)
            )
        elif pair not in [KeyPair(k.access_key_id, k.secret) for k in keys]:
            admin = [KeyPair(k.access_key_id, k.secret) for k in keys if k.user_name == ADMIN_USER]
            pair = admin[0] if admin else pair
    if pair is not None and read_files(settings) != pair:
        write_files(settings, pair)
    return Started(first_start=first, new_admin_key=not keys)


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
    # It holds every cache's data, keys and logs: private even when it existed before.
    settings.data_dir.chmod(0o700)
    lock = _lock_data_dir(settings)
    store = await SqlStore.open_sqlite(settings.database)
    clock = SystemClock()
    # Before any engine is started or probed: every control connection uses it.
    control.configure(control.load_or_create(settings.data_dir / CONTROL_KEY))
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
    controller.groups.iam_connection_max_age = settings.iam_connection_max_age
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
        started = await ensure_admin_key(store, settings, clock.now())
        directory = Directory(store, settings.account)
        await directory.refresh()
        await ensure_default_subnet_group(ctx)
        await ensure_default_groups(ctx)
        async with store.transaction() as tx:
            await all_users(ctx, tx)  # the built-in `default` user exists from the start
        await asyncio.to_thread(CertificateAuthority(settings.ca_dir).ensure)
        async with store.transaction() as tx:
            readers = {g.spec["reader_endpoint"] for g in await tx.all(REPLICATION_GROUP)}
        settings.address_base_file.write_text(f"{settings.address_base}\n")
        network_rules.forget_stale(settings.address_prefix, readers)
        await controller.start()
        monitor.start()
        config = uvicorn.Config(
            create_app(Api(ctx, directory, FaultInjector(store, host, layout, controller.enqueue))),
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
        try:
            async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                await monitor.stop()
                await controller.stop()
        except TimeoutError:
            log.warning("the controller did not stop within %.0f s", SHUTDOWN_TIMEOUT)
        await store.close()
        settings.pid_file.unlink(missing_ok=True)
        os.close(lock)


class _Server(uvicorn.Server):
    """uvicorn's server, telling us once it really listens, and returning from
    ``serve`` after SIGTERM or SIGINT instead of raising the signal again, so the
    service's own shutdown (controller, IAM lock, store, pid file) runs."""

    def __init__(self, config: uvicorn.Config, on_listening: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_listening = on_listening

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_listening()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        handlers = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)


def run(settings: Settings, announce: Callable[[Started], None]) -> None:
    asyncio.run(serve(settings, announce))
