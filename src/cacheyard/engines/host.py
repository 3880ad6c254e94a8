"""The engine-host boundary, and its implementation for processes on this machine.

Identity rule: a process belongs to the node whose directory is its working
directory. Engines are spawned with ``cwd=node_dir`` in a session of their
own, so they outlive the control plane (even SIGKILL); a new control plane
finds them again by scanning ``/proc/*/cwd``. Nothing else is recorded, so
there is no pid file to lose or to trust after a crash.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from cacheyard.engines import launch, probes, procfs, sasl
from cacheyard.engines.discovery import DiscoverySpec, write_discovery_config
from cacheyard.engines.errors import EngineStartError, EngineStopError
from cacheyard.engines.spec import NodeSpec, RunningProcess
from cacheyard.engines.tls_front import CONFIG as FRONT_CONFIG
from cacheyard.engines.tls_front import FrontSpec, render_front_config

STOP_POLL = 0.01
SETTLE_POLL = 0.002
KILL_TIMEOUT = 5.0
ENGINE_BINARIES = {"redis": "redis-server", "memcached": "memcached"}


class EngineHost(Protocol):
    """Where engine processes run: this machine today, other hosts later."""

    def find(self, node_dir: Path) -> RunningProcess | None:
        """The live (non-zombie) process whose working directory is node_dir."""

    def find_all(self, root: Path) -> dict[Path, RunningProcess]:
        """Every live engine or endpoint process whose directory is below root."""

    def start(self, spec: NodeSpec) -> RunningProcess:
        """Write the node's configuration and spawn it; no readiness wait."""

    def start_discovery(self, spec: DiscoverySpec) -> RunningProcess:
        """Write the cluster map and spawn the configuration endpoint.

        Later maps only need write_discovery_config(); the address and port
        are read once, so changing them takes a stop and a start.
        """

    def start_front(self, spec: FrontSpec) -> RunningProcess:
        """Spawn a node's TransitEncryptionMode `preferred` front."""

    async def stop(self, node_dir: Path, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``grace``; returns once nothing runs there."""

    async def probe(self, spec: NodeSpec, timeout: float = 0.5) -> bool:  # noqa: ASYNC109
        """Whether the engine answers (redis PING without LOADING, memcached version;
        binary VERSION for a SASL node, which needs no authentication); over TLS,
        verified against the CA, for a TLS node."""

    async def probe_discovery(self, spec: DiscoverySpec, timeout: float = 0.5) -> bool:  # noqa: ASYNC109
        """Whether the configuration endpoint answers ``config get cluster`` (over
        TLS, verified against the CA, for a TLS cluster's endpoint)."""

    def kill(self, node_dir: Path, sig: int) -> bool:
        """Send ``sig`` to the node's process; False when none runs."""


class LocalEngineHost:
    """Engine processes on this machine, each on its own loopback address."""

    def __init__(
        self,
        *,
        redis_server: str | None = None,
        memcached: str | None = None,
        python: str | None = None,
        settle_timeout: float = 1.0,
    ) -> None:
        """Binaries default to PATH; ``settle_timeout`` bounds the wait in start()."""
        self._binaries = {
            "redis": redis_server or shutil.which(ENGINE_BINARIES["redis"]),
            "memcached": memcached or shutil.which(ENGINE_BINARIES["memcached"]),
        }
        # Debian's redis-server is a symlink to redis-check-rdb: /proc/pid/exe
        # shows the target, so match on resolved names as well.
        self._engine_names = set(ENGINE_BINARIES.values()) | {
            Path(os.path.realpath(b)).name for b in self._binaries.values() if b
        }
        self._python = python or sys.executable
        self._settle_timeout = settle_timeout
        # Our own children, kept to be reaped; adopted ones are not ours to reap.
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._known: dict[str, RunningProcess] = {}

    def find(self, node_dir: Path) -> RunningProcess | None:
        self._reap()
        where = _real(node_dir)
        known = self._known.get(where)
        if known is not None and procfs.is_running(known) and procfs.cwd(known.pid) == where:
            return known
        group = self._scan(lambda cwd: cwd == where).get(where)
        if not group:
            self._known.pop(where, None)
            return None
        self._known[where] = group[0]
        return group[0]

    def find_all(self, root: Path) -> dict[Path, RunningProcess]:
        self._reap()
        real_root = _real(root)
        prefix = real_root.rstrip(os.sep) + os.sep
        found = {}
        for where, group in self._scan(lambda cwd: cwd.startswith(prefix)).items():
            self._known[where] = group[0]
            found[root / Path(where).relative_to(real_root)] = group[0]
        return found

    def start(self, spec: NodeSpec) -> RunningProcess:
        binary = self._binaries[spec.engine]
        if binary is None:
            raise EngineStartError(f"{ENGINE_BINARIES[spec.engine]} is not installed")
        self._refuse_if_running(spec.node_dir)
        env = None
        if spec.engine == "redis":
            _write_atomically(spec.node_dir / launch.REDIS_CONF, launch.render_redis_conf(spec))
            argv = launch.redis_argv(binary, spec)
        else:
            _write_atomically(
                spec.node_dir / launch.MEMCACHED_OPTIONS, launch.render_memcached_options(spec)
            )
            sasl.write_files(spec)  # or removes them: the user list of this start
            argv = launch.memcached_argv(binary, spec)
            env = launch.memcached_env(spec)
        return self._spawn(argv, spec.node_dir, spec.address, spec.port, env)

    def start_discovery(self, spec: DiscoverySpec) -> RunningProcess:
        self._refuse_if_running(spec.node_dir)
        write_discovery_config(spec)
        argv = launch.discovery_argv(self._python, spec.node_dir)
        return self._spawn(argv, spec.node_dir, spec.address, spec.port, launch.discovery_env())

    def start_front(self, spec: FrontSpec) -> RunningProcess:
        """The `preferred`-mode front of a node (engines/tls_front.py)."""
        self._refuse_if_running(spec.front_dir)
        _write_atomically(spec.front_dir / FRONT_CONFIG, render_front_config(spec))
        argv = launch.front_argv(self._python, spec.front_dir)
        return self._spawn(argv, spec.front_dir, spec.address, spec.port, launch.discovery_env())

    async def stop(self, node_dir: Path, grace: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        where = _real(node_dir)
        kill_at = loop.time() + grace
        give_up_at = kill_at + KILL_TIMEOUT
        # Rescan after each wait: a fork (BGSAVE child) may outlive its parent.
        while group := self._scan(lambda cwd: cwd == where).get(where, []):
            now = loop.time()
            if now >= give_up_at:
                raise EngineStopError(f"pids {[p.pid for p in group]} in {where} survive SIGKILL")
            if now < kill_at:
                # The main process stops its own forks; a refused SIGTERM
                # ("Writing initial AOF, can't exit") is caught by the deadline.
                _send(group[0], signal.SIGTERM)
                until = kill_at
            else:
                for process in group:
                    _send(process, signal.SIGKILL)
                until = give_up_at
            while loop.time() < until and any(procfs.is_running(p) for p in group):
                await asyncio.sleep(STOP_POLL)
                self._reap()
        self._known.pop(where, None)

    async def probe(self, spec: NodeSpec, timeout: float = 0.5) -> bool:  # noqa: ASYNC109
        if spec.engine == "redis":
            return await probes.redis_ping(spec.address, spec.port, timeout, spec.tls)
        return await probes.memcached_version(
            spec.address, spec.port, timeout, binary=bool(spec.sasl_users), tls=spec.tls
        )

    async def probe_discovery(self, spec: DiscoverySpec, timeout: float = 0.5) -> bool:  # noqa: ASYNC109
        ca = spec.tls.ca if spec.tls is not None else None
        return await probes.config_endpoint(spec.address, spec.port, timeout, ca)

    def kill(self, node_dir: Path, sig: int) -> bool:
        process = self.find(node_dir)
        return process is not None and _send(process, sig)

    def _owns(self, pid: int) -> bool:
        exe = procfs.exe(pid)
        if exe is None:
            return False
        name = Path(exe).name
        if name in self._engine_names:
            return True
        return name.startswith("python") and launch.is_helper_cmdline(procfs.cmdline(pid))

    def _scan(self, wanted: Callable[[str], bool]) -> dict[str, list[RunningProcess]]:
        """Live processes of ours by directory, each list's main process first."""
        stats: dict[str, list[tuple[int, procfs.ProcStat]]] = defaultdict(list)
        for pid in procfs.pids():
            cwd = procfs.cwd(pid)
            if cwd is None or not wanted(cwd) or not self._owns(pid):
                continue
            stat = procfs.read_stat(pid)
            if stat is not None and procfs.is_live(pid, stat):
                stats[cwd].append((pid, stat))
        groups = {}
        for cwd, members in stats.items():
            pids = {pid for pid, _ in members}
            # The main process is the one whose parent is not in the same
            # directory (redis forks for BGSAVE and AOF rewrites); oldest first.
            members.sort(key=lambda m: (m[1].ppid in pids, m[1].start_ticks))
            groups[cwd] = [RunningProcess(pid, stat.start_ticks) for pid, stat in members]
        return groups

    def _refuse_if_running(self, node_dir: Path) -> None:
        running = self.find(node_dir)
        if running is not None:
            raise EngineStartError(f"{node_dir} already runs pid {running.pid}")

    def _spawn(
        self,
        argv: list[str],
        node_dir: Path,
        address: str,
        port: int,
        env: dict[str, str] | None = None,
    ) -> RunningProcess:
        node_dir.mkdir(parents=True, exist_ok=True)
        log_path = node_dir / launch.ENGINE_LOG
        try:
            with log_path.open("ab") as log:
                child = subprocess.Popen(
                    argv,
                    cwd=node_dir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    close_fds=True,
                    start_new_session=True,  # survives the control plane's death
                )
        except OSError as exc:
            raise EngineStartError(f"cannot run {argv[0]}: {exc}") from exc
        self._children[child.pid] = child
        stat = procfs.read_stat(child.pid)  # unreaped, so it cannot be gone
        assert stat is not None
        self._settle(child, argv[0], address, port, log_path)
        process = RunningProcess(child.pid, stat.start_ticks)
        self._known[_real(node_dir)] = process
        return process

    def _settle(
        self, child: subprocess.Popen[bytes], binary: str, address: str, port: int, log_path: Path
    ) -> None:
        """Return once the child holds its listening socket, raise if it exits first.

        Engines bind within milliseconds (before loading data), so this tells a
        refused start (address taken, bad configuration) from a good one
        without waiting for readiness. Past the deadline the probe decides.
        """
        deadline = time.monotonic() + self._settle_timeout
        while child.poll() is None:
            if procfs.listens(child.pid, address, port) or time.monotonic() >= deadline:
                return
            time.sleep(SETTLE_POLL)
        self._children.pop(child.pid, None)
        raise EngineStartError(
            f"{Path(binary).name} exited with status {child.returncode}"
            f" at start; {log_path} ends with: {_tail(log_path)}"
        )

    def _reap(self) -> None:
        for pid, child in list(self._children.items()):
            if child.poll() is not None:
                del self._children[pid]


def _send(process: RunningProcess, sig: int) -> bool:
    """Signal the process only if it is still the same one (not a reused pid)."""
    if not procfs.is_running(process):
        return False
    try:
        os.kill(process.pid, sig)
    except ProcessLookupError:
        return False
    return True


def _real(path: Path) -> str:
    """The path as /proc/<pid>/cwd shows it: absolute, symlinks resolved."""
    return os.path.realpath(path)


def _write_atomically(path: Path, text: str) -> None:
    """Mode 0600: a node's configuration may hold the control plane's password."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


def _tail(path: Path, limit: int = 600) -> str:
    try:
        with path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - limit))
            return log.read().decode(errors="replace").strip()
    except OSError:
        return "(no log)"
