"""Failover: write unavailability after the primary dies or hangs, against Redis Sentinel.

Two sides, measured in the same run on the same machine, rounds alternating:

- Cacheyard: one replication group of 3 (``cache.t3.micro``, automatic
  failover, Multi-AZ). A client writes through the group's primary endpoint,
  the stable address that moves to the new primary.
- Redis Sentinel: 1 primary and 2 replicas (plain redis-server, each on a
  loopback address of its own, configured like a Cacheyard node) watched by 3
  sentinels (quorum 2, ``down-after-milliseconds 1000``, ``failover-timeout
  5000``, ``parallel-syncs 1``). The client finds the primary through the
  sentinels, as Sentinel clients do (redis-py's ``Sentinel.master_for``).

Each round and scenario: find the current primary's process, check that a
write through the client path lands on it (and that both replicas
acknowledge it: WAIT), send the fault (SIGKILL, or SIGSTOP for a hung
primary), then write until one succeeds. Every attempt is a fresh connection
with short timeouts (``--timeout``, default 100 ms); the result is the time
from the signal to the first successful SET. Then the stopped process is
continued, a killed Sentinel node is restarted as a replica (Cacheyard
replaces its own), the next round waits until the setup is whole again (a
primary with 2 replicas following it, and the control plane, Describe or
every sentinel, agreeing with the processes), and the write acknowledged
before the fault and the first one after it are read back: a round that lost
either is counted and reported.

    .venv/bin/python bench/failover.py --rounds 10
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import redis
from bench_helpers import (
    BenchError,
    Service,
    engine_version,
    in_work_dir,
    median,
    missing_binaries,
    online_replicas,
    poll_until,
    process_in,
    redis_client,
    redis_info,
    signal_if_same,
    start_redis,
    start_ticks,
    stop_processes,
)
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError
from redis.retry import Retry
from redis.sentinel import Sentinel

NODE_TYPE = "cache.t3.micro"
MEMORY_MB = 512
PORT = 6379
SENTINEL_PORT = 26379
GROUP_ID = "bench-failover"
MASTER_NAME = "m"
KEY = "bench:failover"
DURABLE_KEY = "bench:failover:replicated"
# Sentinel's nodes live on 127.<base>.250.x and its sentinels on .251.x, outside every
# subnet Cacheyard allocates from (127.<base>.10-63.0/24).
SENTINEL_NODES_OCTET = 250
SENTINELS_OCTET = 251
SENTINEL_SETTINGS = {
    "down-after-milliseconds": "1000",
    "failover-timeout": "5000",
    "parallel-syncs": "1",
}
GOALS = {"SIGKILL": 0.5, "SIGSTOP": 1.5}
SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGSTOP": signal.SIGSTOP}
PRE_FAULT_TIMEOUT = 5.0
HEALTHY_TIMEOUT = 90.0
HEALTHY_POLL = 0.1


@dataclass
class Samples:
    cacheyard: list[float] = field(default_factory=list)
    sentinel: list[float] = field(default_factory=list)
    # Rounds in which an acknowledged write was gone afterwards, per side.
    lost: dict[str, int] = field(default_factory=lambda: {"cacheyard": 0, "sentinel": 0})


@dataclass(frozen=True)
class Victim:
    """The process that is primary when the round starts."""

    pid: int
    ticks: int | None
    label: str


def attempt_write(connect: Callable[[], redis.Redis], key: str, value: str) -> str | None:
    """One SET on a fresh connection: None if the server said OK, else what went wrong
    (the error's first word for a server error such as NOREPLICAS, else its class)."""
    try:
        client = connect()
    except (RedisError, OSError) as exc:  # Sentinel discovery can fail before any connection
        return type(exc).__name__
    try:
        return None if client.set(key, value) is True else "not OK"
    except ResponseError as exc:
        return str(exc).split(" ", 1)[0] or type(exc).__name__
    except (RedisError, OSError) as exc:
        return type(exc).__name__
    finally:
        client.close()


def replicated_write(connect: Callable[[], redis.Redis], key: str, value: str) -> bool:
    """SET, then WAIT until both replicas have it: a write no single failure may lose."""
    try:
        client = connect()
    except (RedisError, OSError):
        return False
    try:
        return client.set(key, value) is True and int(client.wait(2, 1000)) == 2
    except (RedisError, OSError):
        return False
    finally:
        client.close()


def read(connect: Callable[[], redis.Redis], key: str) -> str | None:
    """GET through the client path; the value, "(none)" for a missing key, None on failure."""
    try:
        client = connect()
    except (RedisError, OSError):
        return None
    try:
        value = client.get(key)
    except (RedisError, OSError):
        return None
    finally:
        client.close()
    if value is None:
        return "(none)"
    return value.decode() if isinstance(value, bytes) else str(value)


def served_by(connect: Callable[[], redis.Redis]) -> int | None:
    """The pid of the server the client path reaches (``INFO server``), None if none answers."""
    try:
        client = connect()
    except (RedisError, OSError):
        return None
    try:
        info: dict[str, Any] = client.info("server")
        return int(info["process_id"])
    except (RedisError, OSError, KeyError, ValueError):
        return None
    finally:
        client.close()


@dataclass
class Outcome:
    """One side's round: seconds from the fault to the first good write; the failed
    attempts before it as runs of one kind (kind, count, first offset, last offset);
    the acknowledged writes that must survive (key -> value) and those that did not."""

    seconds: float = 0.0
    failures: list[tuple[str, int, float, float]] = field(default_factory=list)
    acknowledged: dict[str, str] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)

    def failed(self, kind: str, offset: float) -> None:
        if self.failures and self.failures[-1][0] == kind:
            _, count, first, _ = self.failures[-1]
            self.failures[-1] = (kind, count + 1, first, offset)
        else:
            self.failures.append((kind, 1, offset, offset))

    def trace(self) -> str:
        return ", ".join(
            f"{kind} x{count} {first * 1000:.0f}-{last * 1000:.0f}"
            for kind, count, first, last in self.failures
        )


def measure(
    connect: Callable[[], redis.Redis],
    victim: Victim,
    sig: int,
    timeout: float,
    interval: float,
) -> Outcome:
    """Time from the signal to the first successful write through ``connect``.

    Before the fault, a write must succeed through the same path and the path must
    reach the victim, so the round starts from a working primary and kills the
    right process. That write is one both replicas acknowledged (WAIT), so no
    single failure may lose it; neither may the first write after the fault be
    lost once the setup is whole again (see :func:`check_kept`).
    """
    token = uuid.uuid4().hex[:12]
    poll_until(
        lambda: replicated_write(connect, DURABLE_KEY, token) and served_by(connect) == victim.pid,
        PRE_FAULT_TIMEOUT,
        interval,
        f"a replicated write through {victim.label} before the fault",
    )
    if not signal_if_same(victim.pid, victim.ticks, sig):
        raise BenchError(f"{victim.label} (pid {victim.pid}) was gone before the fault")
    fault = time.perf_counter()
    outcome = Outcome(acknowledged={DURABLE_KEY: token})
    attempt = 0
    while True:
        attempt += 1
        started = time.perf_counter() - fault
        value = f"{token}-after-{attempt}"
        failure = attempt_write(connect, KEY, value)
        if failure is None:
            outcome.seconds = time.perf_counter() - fault
            outcome.acknowledged[KEY] = value
            return outcome
        outcome.failed(failure, started)
        if time.perf_counter() - fault > timeout:
            raise BenchError(
                f"no write succeeded within {timeout:.0f} s after the fault: {outcome.trace()}"
            )
        time.sleep(interval)


def read_back(connect: Callable[[], redis.Redis], key: str) -> str:
    deadline = time.monotonic() + PRE_FAULT_TIMEOUT
    while (value := read(connect, key)) is None:
        if time.monotonic() > deadline:
            raise BenchError(f"reading {key} back took more than {PRE_FAULT_TIMEOUT:.0f} s")
        time.sleep(0.01)
    return value


def check_kept(connect: Callable[[], redis.Redis], outcome: Outcome) -> None:
    """Once the setup is whole again, record every acknowledged write it no longer has."""
    for key, wanted in outcome.acknowledged.items():
        found = read_back(connect, key)
        if found != wanted:
            outcome.lost.append(f"{key}: wrote {wanted}, reads {found}")


# -- Cacheyard ---------------------------------------------------------------------------


class CacheyardSide:
    def __init__(self, service: Service, args: argparse.Namespace) -> None:
        self._service = service
        self._client = service.client()
        self._args = args

    def create(self) -> None:
        self._client.create_replication_group(
            ReplicationGroupId=GROUP_ID,
            ReplicationGroupDescription="failover bench",
            CacheNodeType=NODE_TYPE,
            Engine="redis",
            NumCacheClusters=3,
            AutomaticFailoverEnabled=True,
            MultiAZEnabled=True,
        )
        self.wait_whole()

    def _group(self) -> dict[str, Any]:
        groups: list[dict[str, Any]] = self._client.describe_replication_groups(
            ReplicationGroupId=GROUP_ID
        )["ReplicationGroups"]
        return groups[0]

    def _primary(self, group: dict[str, Any]) -> tuple[str, str] | None:
        """(member cluster id, node id) of the member Describe shows as primary."""
        primaries = [
            (m["CacheClusterId"], m["CacheNodeId"])
            for m in group["NodeGroups"][0].get("NodeGroupMembers", [])
            if m.get("CurrentRole") == "primary"
        ]
        return primaries[0] if len(primaries) == 1 else None

    def _endpoint(self, group: dict[str, Any]) -> str:
        return str(group["NodeGroups"][0]["PrimaryEndpoint"]["Address"])

    def whole(self) -> bool:
        """Describe and the processes agree on a whole group.

        Describe: the group and its 3 members available, one of them primary. The
        processes: the one in the primary member's directory answers on the primary
        endpoint (Describe can lag a failover that clients already see: a round
        must not start from that), has 2 online replicas, and each other member
        follows it with its link up.
        """
        group = self._group()
        primary = self._primary(group)
        node_group = group["NodeGroups"][0]
        if group["Status"] != "available" or primary is None:
            return False
        if node_group.get("Status") != "available" or len(node_group["NodeGroupMembers"]) != 3:
            return False
        clusters = self._client.describe_cache_clusters(ShowCacheNodeInfo=True)["CacheClusters"]
        members = [c for c in clusters if c.get("ReplicationGroupId") == GROUP_ID]
        if len(members) != 3 or any(c["CacheClusterStatus"] != "available" for c in members):
            return False
        endpoint = self._endpoint(group)
        pid = process_in(self._node_dir(*primary))
        if pid is None or redis_info(endpoint, PORT, "server").get("process_id") != pid:
            return False
        info = redis_info(endpoint, PORT, "replication")
        if info.get("role") != "master" or online_replicas(info) != 2:
            return False
        addresses = {
            m["CacheClusterId"]: m["ReadEndpoint"]["Address"]
            for m in node_group["NodeGroupMembers"]
        }
        for member_id, address in addresses.items():
            if member_id == primary[0]:
                continue
            seen = redis_info(address, PORT, "replication")
            if (
                seen.get("role") != "slave"
                or seen.get("master_host") != addresses[primary[0]]
                or seen.get("master_link_status") != "up"
            ):
                return False
        return True

    def _node_dir(self, cluster_id: str, node_id: str) -> Path:
        return self._service.data_dir / "clusters" / cluster_id / "nodes" / node_id

    def wait_whole(self) -> float:
        return poll_until(self.whole, HEALTHY_TIMEOUT, HEALTHY_POLL, f"{GROUP_ID} becoming whole")

    def round(self, scenario: str) -> Outcome:
        group = self._group()
        primary = self._primary(group)
        if primary is None:
            raise BenchError(f"{GROUP_ID} shows no single primary")
        cluster_id, node_id = primary
        node_dir = self._node_dir(cluster_id, node_id)
        pid = process_in(node_dir)
        if pid is None:
            raise BenchError(f"no process runs in {node_dir}")
        victim = Victim(pid, start_ticks(pid), f"Cacheyard primary {cluster_id}")
        endpoint = self._endpoint(group)
        timeout = self._args.timeout

        def connect() -> redis.Redis:
            return redis_client(endpoint, PORT, timeout)

        try:
            outcome = measure(connect, victim, SIGNALS[scenario], self._args.round_timeout, 0.005)
        finally:
            # Cacheyard kills a hung primary; if this one still lives, let it go on.
            signal_if_same(victim.pid, victim.ticks, signal.SIGCONT)
            self.wait_whole()
        check_kept(connect, outcome)
        return outcome


# -- Redis Sentinel ----------------------------------------------------------------------


class SentinelSide:
    def __init__(self, work_dir: Path, args: argparse.Namespace) -> None:
        self._dir = work_dir / "sentinel"
        self._args = args
        base = args.address_base
        self.nodes = [f"127.{base}.{SENTINEL_NODES_OCTET}.{n}" for n in (1, 2, 3)]
        self.sentinels = [f"127.{base}.{SENTINELS_OCTET}.{n}" for n in (1, 2, 3)]
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._all: list[subprocess.Popen[bytes]] = []
        timeout = args.timeout
        retry = Retry(NoBackoff(), 0)
        # redis.sentinel is not annotated: its objects are used as Any.
        self._sentinel: Any = cast(Any, Sentinel)(
            [(address, SENTINEL_PORT) for address in self.sentinels],
            sentinel_kwargs={
                "socket_timeout": timeout,
                "socket_connect_timeout": timeout,
                "retry": retry,
            },
        )
        self._connect_kwargs = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry": retry,
        }

    def _start_node(self, address: str, primary: str | None) -> None:
        extra = {"replicaof": f"{primary} {PORT}"} if primary else {}
        process = start_redis(address, PORT, self._dir / address, MEMORY_MB, extra)
        self._processes[address] = process
        self._all.append(process)

    def start(self) -> None:
        primary = self.nodes[0]
        for address in self.nodes:
            self._start_node(address, None if address == primary else primary)
        poll_until(
            lambda: online_replicas(redis_info(primary, PORT, "replication")) == 2,
            HEALTHY_TIMEOUT,
            HEALTHY_POLL,
            "the Sentinel setup's replicas syncing",
        )
        for address in self.sentinels:
            extra = {
                "port": str(SENTINEL_PORT),
                # Hello messages must carry an address that reaches this sentinel.
                "sentinel announce-ip": address,
                "sentinel resolve-hostnames": "no",
                "sentinel monitor": f"{MASTER_NAME} {primary} {PORT} 2",
                **{f"sentinel {k}": f"{MASTER_NAME} {v}" for k, v in SENTINEL_SETTINGS.items()},
            }
            process = start_redis(
                address, SENTINEL_PORT, self._dir / address, MEMORY_MB, extra, sentinel=True
            )
            self._all.append(process)
        self.wait_whole()

    def stop(self) -> None:
        stop_processes(self._all)

    def _sentinel_client(self, address: str) -> redis.Redis:
        return redis_client(address, SENTINEL_PORT, 0.5)

    def _master(self) -> str | None:
        """The primary's address if every sentinel names the same one."""
        named = set()
        for address in self.sentinels:
            client = self._sentinel_client(address)
            try:
                found = client.sentinel_get_master_addr_by_name(MASTER_NAME)
            except (RedisError, OSError):
                return None
            finally:
                client.close()
            if not isinstance(found, tuple):  # no such master: None
                return None
            named.add(str(found[0]))
        return named.pop() if len(named) == 1 else None

    def _sentinel_sees_whole(self, address: str, primary: str) -> bool:
        client = self._sentinel_client(address)
        try:
            master = cast(dict[str, Any], client.sentinel_master(MASTER_NAME))
            replicas = client.sentinel_slaves(MASTER_NAME)
        except (RedisError, OSError):
            return False
        finally:
            client.close()
        if master.get("flags") not in ("master", {"master"}):
            return False
        if master.get("num-other-sentinels") != 2:
            return False
        healthy = [
            r
            for r in replicas
            if r.get("flags") in ("slave", {"slave"})
            and r.get("master-link-status") == "ok"
            and r.get("master-host") == primary
        ]
        return len(healthy) == 2

    def whole(self) -> bool:
        """Every sentinel names the same primary, knows the other 2, and sees 2 healthy
        replicas; the primary itself has 2 online replicas, which follow it with their
        links up."""
        primary = self._master()
        if primary is None:
            return False
        info = redis_info(primary, PORT, "replication")
        if info.get("role") != "master" or online_replicas(info) != 2:
            return False
        for address in self.nodes:
            if address == primary:
                continue
            seen = redis_info(address, PORT, "replication")
            if (
                seen.get("role") != "slave"
                or seen.get("master_host") != primary
                or seen.get("master_link_status") != "up"
            ):
                return False
        return all(self._sentinel_sees_whole(a, primary) for a in self.sentinels)

    def wait_whole(self) -> float:
        return poll_until(
            self.whole, HEALTHY_TIMEOUT, HEALTHY_POLL, "Sentinel setup becoming whole"
        )

    def round(self, scenario: str) -> Outcome:
        primary = self._master()
        if primary is None:
            raise BenchError("the sentinels do not agree on a primary")
        process = self._processes[primary]
        victim = Victim(process.pid, start_ticks(process.pid), f"Sentinel primary {primary}")

        def connect() -> redis.Redis:
            client: redis.Redis = self._sentinel.master_for(MASTER_NAME, **self._connect_kwargs)
            return client

        try:
            outcome = measure(connect, victim, SIGNALS[scenario], self._args.round_timeout, 0.005)
        finally:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGCONT)  # it rejoins as a replica
            else:
                # Killed: bring the node back as a replica of the new primary, as an
                # operator (or Cacheyard, for its own nodes) would.
                new_primary = self._master_soon()
                self._start_node(primary, new_primary)
            self.wait_whole()
        check_kept(connect, outcome)
        return outcome

    def _master_soon(self) -> str:
        found: list[str] = []

        def named() -> bool:
            primary = self._master()
            if primary is not None:
                found.append(primary)
            return primary is not None

        poll_until(named, HEALTHY_TIMEOUT, HEALTHY_POLL, "the sentinels agreeing on a primary")
        return found[-1]


# -- The run -----------------------------------------------------------------------------


def run(args: argparse.Namespace, work_dir: Path, results: dict[str, Samples]) -> None:
    service = Service(work_dir, args.address_base)
    sentinel = SentinelSide(work_dir, args)
    try:
        service.start()
        cacheyard = CacheyardSide(service, args)
        cacheyard.create()
        sentinel.start()
        for index in range(args.warmup + args.rounds):
            warmup = index < args.warmup
            tag = f"w{index + 1}" if warmup else str(index - args.warmup + 1)
            for scenario in GOALS:
                # Alternate which side goes first, so neither always meets a warmer machine.
                sides: list[tuple[str, Callable[[str], Outcome]]] = [
                    ("cacheyard", cacheyard.round),
                    ("sentinel", sentinel.round),
                ]
                if index % 2:
                    sides.reverse()
                measured = {name: round_(scenario) for name, round_ in sides}
                if not warmup:
                    results[scenario].cacheyard.append(measured["cacheyard"].seconds)
                    results[scenario].sentinel.append(measured["sentinel"].seconds)
                    for name, outcome in measured.items():
                        results[scenario].lost[name] += bool(outcome.lost)
                for name, outcome in measured.items():
                    for what in outcome.lost:
                        print(
                            f"  round {tag:>3} {scenario:<8} {name}: LOST an acknowledged"
                            f" write: {what}",
                            file=sys.stderr,
                            flush=True,
                        )
                if args.verbose:
                    print(
                        f"  round {tag:>3} {scenario:<8}"
                        f" cacheyard {_ms(measured['cacheyard'].seconds)}"
                        f"  sentinel {_ms(measured['sentinel'].seconds)}"
                        + ("  (warm-up, not counted)" if warmup else ""),
                        flush=True,
                    )
                    for name, outcome in measured.items():
                        print(
                            f"      {name:<9} failed writes (ms after the fault): "
                            f"{outcome.trace() or 'none'}",
                            flush=True,
                        )
    finally:
        sentinel.stop()
        service.down()


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def report(results: dict[str, Samples], args: argparse.Namespace) -> bool:
    """Print the table; True when every goal is met."""
    print()
    print(
        "Failover: write unavailability, from the fault to the first successful write,"
        " vs. Redis Sentinel"
        f"\n{len(results['SIGKILL'].cacheyard)} rounds (+{args.warmup} warm-up) per scenario;"
        f" group of 3 {NODE_TYPE}, primary endpoint; Sentinel: 1+2 nodes, 3 sentinels,"
        f" down-after 1000 ms; client timeouts {args.timeout * 1000:g} ms"
    )
    print(
        f"redis-server {engine_version(['redis-server', '--version'])}, redis-py"
        f" {redis.__version__}, Python {platform.python_version()},"
        f" {os.cpu_count()} CPUs, {platform.machine()}"
    )
    print()
    header = f"{'':<16} {'Cacheyard':^28}   {'Sentinel':^28}   {'ratio':>8}   {'goal':>18}"
    sub = (
        f"{'scenario':<16} {'median':>11} {'worst':>11} {'lost':>4}   "
        f"{'median':>11} {'worst':>11} {'lost':>4}   {'(median)':>8}   {'(Cacheyard median)':>18}"
    )
    print(header)
    print(sub)
    print("-" * len(sub))
    met_all = True
    for scenario, goal in GOALS.items():
        samples = results[scenario]
        if not samples.cacheyard:
            continue
        cy_median, cy_worst = median(samples.cacheyard), max(samples.cacheyard)
        se_median, se_worst = median(samples.sentinel), max(samples.sentinel)
        ratio = cy_median / se_median if se_median > 0 else float("inf")
        met = cy_median < goal
        met_all = met_all and met
        label = "SIGKILL (dies)" if scenario == "SIGKILL" else "SIGSTOP (hangs)"
        verdict = f"< {goal:g} s {'MET' if met else 'NOT MET'}"
        print(
            f"{label:<16} {_ms(cy_median):>11} {_ms(cy_worst):>11} {samples.lost['cacheyard']:>4}"
            f"   {_ms(se_median):>11} {_ms(se_worst):>11} {samples.lost['sentinel']:>4}"
            f"   {ratio:>7.2f}x   {verdict:>18}"
        )
    print()
    print(
        "lost: rounds after which an acknowledged write was gone (the write before the fault,"
        "\nacknowledged by both replicas, or the first write after it)"
    )
    print(f"Goals (median under 0.5 s killed, 1.5 s hung): {'MET' if met_all else 'NOT MET'}")
    lost = sum(samples.lost["cacheyard"] for samples in results.values())
    print(
        "Acknowledged writes through Cacheyard: "
        + (f"LOST in {lost} round(s), see the messages above" if lost else "all kept")
    )
    return met_all


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Write unavailability after a primary is killed or hung, vs. Redis Sentinel."
    )
    parser.add_argument("--rounds", type=int, default=10, help="measured rounds (default 10)")
    parser.add_argument(
        "--warmup", type=int, default=0, help="rounds run first and not counted (default 0)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=0.1,
        help="client connect and reply timeout in seconds, per attempt (default 0.1)",
    )
    parser.add_argument(
        "--round-timeout",
        type=float,
        default=30.0,
        help="give up when no write succeeds this many seconds after the fault (default 30)",
    )
    parser.add_argument(
        "--address-base",
        type=int,
        default=150,
        help="the service and the Sentinel setup use 127.<base>.0.0/16 (default 150)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (logs, data)"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print every round and its failed writes"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0 or args.timeout <= 0 or args.round_timeout <= 0:
        parser.error("--rounds must be at least 1, --warmup at least 0, timeouts positive")
    if not 1 <= args.address_base <= 254:
        parser.error("--address-base must be within 1-254")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if missing_binaries("redis-server"):
        return 2
    results = {scenario: Samples() for scenario in GOALS}

    def all_rounds(work_dir: Path) -> bool:
        run(args, work_dir, results)
        return True

    completed = in_work_dir("failover", args.keep, all_rounds)
    if results["SIGKILL"].cacheyard or results["SIGSTOP"].cacheyard:
        if completed is None:
            print("partial results, rounds completed before the failure:", file=sys.stderr)
        report(results, args)
    return 0 if completed is not None else 1


if __name__ == "__main__":
    sys.exit(main())
