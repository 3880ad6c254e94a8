"""What every bench needs: a Cacheyard service of its own, engine probes, statistics.

Benches are scripts, not tests: they use only the standard library, boto3,
redis and pymemcache, and never import from ``tests/``. Each one runs its own
service in a temporary directory, on a free API port and its own loopback
/16, so it never touches a Cacheyard a developer runs (127.10 by default) or
the test suite's (127.100-250 apart from the bench's base).
"""

from __future__ import annotations

import configparser
import contextlib
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import boto3
import redis
from botocore.config import Config
from botocore.exceptions import ClientError
from pymemcache.client.base import Client as MemcacheClient
from pymemcache.exceptions import MemcacheError
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

REGION = "us-east-1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 60.0


R = TypeVar("R")


class BenchError(RuntimeError):
    """The bench could not measure what it set out to (not a slow result)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """``cacheyard up`` in a subprocess, on a data directory of its own.

    The process runs with ``work_dir`` as its working directory and keeps its
    engines below it, so :func:`processes_under` finds anything left behind.
    """

    def __init__(self, work_dir: Path, address_base: int) -> None:
        self.work_dir = work_dir
        self.data_dir = work_dir / "data"
        self.log_path = work_dir / "service.log"
        self.address_base = address_base
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def _command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "cacheyard", *args, "--data-dir", str(self.data_dir)]

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    *self._command("up"),
                    *("--port", str(self.port)),
                    *("--address-base", str(self.address_base)),
                ],
                cwd=self.work_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._listening():
            if time.monotonic() > deadline:
                raise BenchError(f"the service did not listen within {START_TIMEOUT:.0f} s")
            time.sleep(0.02)

    def _listening(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            raise BenchError(f"the service exited:\n{self.log_path.read_text(errors='replace')}")
        if not (self.data_dir / "service.pid").exists():
            return False
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
        except OSError:
            return False
        return True

    def down(self) -> None:
        """``cacheyard down`` (the service and its engines), then reap our child."""
        try:
            subprocess.run(
                self._command("down"),
                check=False,
                capture_output=True,
                timeout=STOP_TIMEOUT,
                cwd=self.work_dir,
            )
        finally:
            if self._process is not None:
                try:
                    self._process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
                self._process = None

    def client(self) -> Any:
        """A boto3 ElastiCache client with the service's keys and no hidden retries."""
        credentials = configparser.ConfigParser()
        credentials.read(self.data_dir / "credentials")
        profile = credentials["default"]
        return boto3.client(
            "elasticache",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=profile["aws_access_key_id"],
            aws_secret_access_key=profile["aws_secret_access_key"],
            config=Config(retries={"total_max_attempts": 1}),
        )


def redis_answers(address: str, port: int, timeout: float = 0.2) -> bool:
    """PING answered (a server still loading its data answers LOADING: not yet)."""
    client = redis.Redis(
        host=address,
        port=port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),  # one attempt per probe, the bench does the polling
    )
    try:
        return bool(client.ping())
    except (RedisError, OSError):
        return False
    finally:
        client.close()


def memcached_answers(address: str, port: int, timeout: float = 0.2) -> bool:
    """``version`` answered."""
    client = MemcacheClient((address, port), connect_timeout=timeout, timeout=timeout)
    try:
        return bool(client.version())
    except (MemcacheError, OSError):
        return False
    finally:
        client.close()


def engine_answers(engine: str, address: str, port: int) -> bool:
    if engine == "redis":
        return redis_answers(address, port)
    return memcached_answers(address, port)


def median(samples: list[float]) -> float:
    ordered = sorted(samples)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile: a value that was really measured."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def processes_under(root: Path) -> list[int]:
    """Pids of live processes whose working directory is ``root`` or below it."""
    prefix = str(root.resolve()).rstrip(os.sep) + os.sep
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
            with open(f"/proc/{entry}/stat") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (cwd + os.sep).startswith(prefix):
            found.append(int(entry))
    return found


def kill_leftovers(root: Path) -> list[int]:
    """SIGKILL whatever still runs below ``root`` (only the bench's own processes live there)."""
    leftovers = processes_under(root)
    for pid in leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return leftovers


def engine_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not installed"
    words = done.stdout.split()
    return words[2] if words[:2] == ["Redis", "server"] else " ".join(words[:2])


# -- Added for failover.py and datapath.py ----------------------------------------------------


def poll_until(done: Callable[[], bool], timeout: float, poll: float, what: str) -> float:
    """Call ``done`` every ``poll`` seconds until it is true; seconds waited, BenchError after
    ``timeout``."""
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > timeout:
            raise BenchError(f"{what} took more than {timeout:.0f} s")
        time.sleep(poll)
    return time.monotonic() - started


def redis_client(address: str, port: int, timeout: float = 0.2) -> redis.Redis:
    """A client that tries once per command: connect and reply each within ``timeout``."""
    return redis.Redis(
        host=address,
        port=port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


def redis_info(address: str, port: int, section: str, timeout: float = 0.2) -> dict[str, Any]:
    """``INFO section`` as a dict, or {} when the server does not answer."""
    client = redis_client(address, port, timeout)
    try:
        info: dict[str, Any] = client.info(section)
        return info
    except (RedisError, OSError):
        return {}
    finally:
        client.close()


def online_replicas(info: dict[str, Any]) -> int:
    """Replicas with ``state=online`` in a primary's ``INFO replication``."""
    count = 0
    for name, value in info.items():
        if name.startswith("slave") and isinstance(value, dict) and value.get("state") == "online":
            count += 1
    return count


def bare_redis_conf(address: str, port: int, node_dir: Path, memory_mb: int) -> dict[str, str]:
    """What a Cacheyard node runs with (engines/launch.py), for a hand-started baseline.

    Replicas announce their own address and replicate from it (not from
    127.0.0.1, loopback's default source), as Cacheyard's nodes do; a primary
    then lists them by addresses that reach them.
    """
    return {
        "bind": address,
        "port": str(port),
        "replica-announce-ip": address,
        "bind-source-addr": address,
        "dir": str(node_dir),
        "logfile": str(node_dir / "engine.log"),
        "daemonize": "no",
        "protected-mode": "no",
        "save": '""',
        "appendonly": "no",
        "maxmemory": f"{memory_mb}mb",
        "maxmemory-policy": "volatile-lru",
        "repl-diskless-sync-delay": "0",
    }


def start_process(argv: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    """Spawn a baseline process with ``cwd`` as its directory (kill_leftovers finds it)."""
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_redis(
    address: str,
    port: int,
    node_dir: Path,
    memory_mb: int,
    extra: dict[str, str] | None = None,
    *,
    sentinel: bool = False,
) -> subprocess.Popen[bytes]:
    """Write ``node_dir/redis.conf`` (``bare_redis_conf`` plus ``extra``) and run it.

    ``extra`` values are written as they are; ``sentinel`` runs the file with
    ``--sentinel`` (the file must then be writable: Sentinel rewrites it).
    """
    node_dir.mkdir(parents=True, exist_ok=True)
    directives = bare_redis_conf(address, port, node_dir, memory_mb)
    directives.update(extra or {})
    config = node_dir / "redis.conf"
    config.write_text("".join(f"{name} {value}\n" for name, value in directives.items()))
    argv = ["redis-server", str(config)]
    if sentinel:
        argv.append("--sentinel")
    return start_process(argv, node_dir)


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGCONT (a stopped one cannot act on SIGTERM) and SIGKILL each still running, then reap."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)
                process.kill()
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT)


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/pid/stat`` after the command name (field 3 onward), None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks: with the pid, its identity (pids are reused)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields is not None and fields[0] != "Z" else None


def process_in(directory: Path) -> int | None:
    """The main live process whose working directory is exactly ``directory``.

    That is how Cacheyard ties a node to its engine (``engines/host.py``); a
    redis fork (BGSAVE) shares the directory, so the one whose parent is not
    there is the main process.
    """
    where = os.path.realpath(directory)
    found: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            if os.readlink(f"/proc/{pid}/cwd") != where:
                continue
        except OSError:
            continue
        fields = _stat_fields(pid)
        if fields is not None and fields[0] != "Z":
            found[pid] = int(fields[1])
    main = [pid for pid, parent in found.items() if parent not in found]
    return min(main) if main else None


def signal_if_same(pid: int, ticks: int | None, sig: int) -> bool:
    """Send ``sig`` only if ``pid`` is still the process that started at ``ticks``."""
    if ticks is None or start_ticks(pid) != ticks:
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def missing_binaries(*names: str) -> bool:
    """Say which engine binaries are missing; True when any is."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        print(f"missing {', '.join(missing)} (run `make engines`)", file=sys.stderr)
    return bool(missing)


def in_work_dir(name: str, keep: bool, body: Callable[[Path], R]) -> R | None:
    """Run ``body`` in a fresh temporary directory and always clean up after it: every
    process left under it is killed; the directory is kept on failure or with --keep.
    None when the bench failed (the reason is printed)."""
    work_dir = Path(tempfile.mkdtemp(prefix=f"cacheyard-bench-{name}-"))
    failed = False
    try:
        return body(work_dir)
    except BenchError as exc:
        print(f"bench failed: {exc} (logs in {work_dir})", file=sys.stderr)
        failed = True
        return None
    finally:
        leftovers = kill_leftovers(work_dir)
        if leftovers:
            print(f"warning: killed leftover processes {leftovers}", file=sys.stderr)
        if keep or failed:
            print(f"kept {work_dir}", file=sys.stderr)
        else:
            shutil.rmtree(work_dir, ignore_errors=True)


BENCH_BASE = 150  # benches take loopback ranges from here up, tests 100-199 at random


def busy_bases() -> set[int]:
    """Second octets of the 127.x.0.0/16 ranges with a listening TCP socket."""
    busy: set[int] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] != "0A":  # LISTEN
            continue
        address = bytes.fromhex(fields[1].split(":")[0])[::-1]  # little-endian
        if address[0] == 127:
            busy.add(address[1])
    return busy


def free_base() -> int | None:
    """The first loopback /16 from 150 upward (then 11-149) that nobody listens on: not a
    developer's Cacheyard (127.10), another bench or a test run."""
    busy = busy_bases()
    candidates: list[int] = [*range(BENCH_BASE, 255), *range(11, BENCH_BASE)]
    for base in candidates:
        if base not in busy:
            return base
    return None


def say(verbose: bool, message: str) -> None:
    """A progress line, printed only with --verbose."""
    if verbose:
        print(f"  {message}", flush=True)


def delete_group(client: Any, group_id: str, timeout: float = 60.0) -> None:
    """Delete a replication group and wait until it is gone, so it idles through no
    later scenario."""
    client.delete_replication_group(ReplicationGroupId=group_id)

    def gone() -> bool:
        try:
            client.describe_replication_groups(ReplicationGroupId=group_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ReplicationGroupNotFoundFault":
                return True
            raise
        return False

    poll_until(gone, timeout, 0.05, f"deleting {group_id}")
