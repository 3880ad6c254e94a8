"""Provisioning time: CreateCacheCluster until the cluster serves, against bare engines.

For each scenario (Redis with 1 node, Memcached with 3 nodes), every round
measures, in alternating order:

- Cacheyard: wall time from sending CreateCacheCluster (boto3) until
  DescribeCacheClusters shows ``available`` and every node endpoint answers
  (redis PING, memcached ``version``). Describe is polled every ``--poll``
  seconds, not through boto3's waiter (whose delay is 15 s). The cluster is
  then deleted and the time until Describe no longer finds it is reported as
  a separate column.
- Bare engines: the same engines started by hand with the same memory and
  threads (``redis-server`` with a small config file, ``memcached -l addr -p
  11211 -U 0 -m 512 -t 2``), each on its own loopback address of the same
  /16; wall time from exec until every one answers, then they are killed.

The service runs in a temporary directory on a free port and is stopped with
``cacheyard down`` at the end, whatever happens. Run:

    .venv/bin/python bench/provision.py --rounds 10
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_helpers import (
    BenchError,
    Service,
    engine_answers,
    engine_version,
    in_work_dir,
    median,
    missing_binaries,
    percentile,
)
from botocore.exceptions import ClientError

GOAL_SECONDS = 1.0
# 2 vCPUs and 0.5 GiB: Cacheyard runs it as redis maxmemory 512mb and
# memcached -m 512 -t 2, which is what the bare engines get.
NODE_TYPE = "cache.t3.micro"
MEMORY_MB = 512
MEMCACHED_THREADS = 2
ROUND_TIMEOUT = 30.0
STOP_GRACE = 5.0
# Bare engines live on 127.<base>.250.0/24, outside every subnet Cacheyard
# allocates from (127.<base>.10-63.0/24), so the two never share an address.
BARE_THIRD_OCTET = 250


@dataclass(frozen=True)
class Scenario:
    label: str
    key: str
    engine: str
    nodes: int
    port: int


SCENARIOS = (
    Scenario("Redis, 1 node", "redis", "redis", 1, 6379),
    Scenario("Memcached, 3 nodes", "memcached", "memcached", 3, 11211),
)


@dataclass
class Samples:
    cacheyard: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)
    delete: list[float] = field(default_factory=list)


# -- Cacheyard -------------------------------------------------------------------------------


def _describe(client: Any, cluster_id: str) -> dict[str, Any] | None:
    try:
        found = client.describe_cache_clusters(CacheClusterId=cluster_id, ShowCacheNodeInfo=True)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "CacheClusterNotFound":
            return None
        raise
    clusters: list[dict[str, Any]] = found["CacheClusters"]
    return clusters[0]


def _endpoints(cluster: dict[str, Any]) -> list[tuple[str, int]]:
    return [
        (node["Endpoint"]["Address"], int(node["Endpoint"]["Port"]))
        for node in cluster.get("CacheNodes", [])
        if node.get("Endpoint")
    ]


def _poll_until(done: Callable[[], bool], poll: float, what: str) -> None:
    deadline = time.monotonic() + ROUND_TIMEOUT
    while not done():
        if time.monotonic() > deadline:
            raise BenchError(f"{what} took more than {ROUND_TIMEOUT:.0f} s")
        time.sleep(poll)


def cacheyard_round(
    client: Any, scenario: Scenario, cluster_id: str, poll: float
) -> tuple[float, float]:
    """Seconds from CreateCacheCluster to serving, and from DeleteCacheCluster to gone."""
    answered: set[tuple[str, int]] = set()

    def serving() -> bool:
        cluster = _describe(client, cluster_id)
        if cluster is None or cluster["CacheClusterStatus"] != "available":
            return False
        endpoints = _endpoints(cluster)
        if len(endpoints) != scenario.nodes:
            return False
        for endpoint in endpoints:
            if endpoint not in answered and engine_answers(scenario.engine, *endpoint):
                answered.add(endpoint)
        return answered.issuperset(endpoints)

    started = time.perf_counter()
    client.create_cache_cluster(
        CacheClusterId=cluster_id,
        Engine=scenario.engine,
        CacheNodeType=NODE_TYPE,
        NumCacheNodes=scenario.nodes,
    )
    _poll_until(serving, poll, f"creating {cluster_id}")
    created = time.perf_counter() - started

    started = time.perf_counter()
    client.delete_cache_cluster(CacheClusterId=cluster_id)
    _poll_until(lambda: _describe(client, cluster_id) is None, poll, f"deleting {cluster_id}")
    deleted = time.perf_counter() - started
    return created, deleted


# -- Bare engines ----------------------------------------------------------------------------


def _bare_argv(scenario: Scenario, address: str, node_dir: Path) -> list[str]:
    if scenario.engine == "redis":
        config = node_dir / "redis.conf"
        config.write_text(
            "\n".join(
                [
                    f"bind {address}",
                    f"port {scenario.port}",
                    f'dir "{node_dir}"',
                    f'logfile "{node_dir / "engine.log"}"',
                    "daemonize no",
                    "protected-mode no",
                    'save ""',
                    "appendonly no",
                    f"maxmemory {MEMORY_MB}mb",
                    "maxmemory-policy volatile-lru",
                ]
            )
            + "\n"
        )
        return ["redis-server", str(config)]
    argv = [
        "memcached",
        *("-l", address, "-p", str(scenario.port), "-U", "0"),
        *("-m", str(MEMORY_MB), "-t", str(MEMCACHED_THREADS)),
    ]
    if os.geteuid() == 0:
        argv += ["-u", "root"]  # memcached refuses to run as root without it
    return argv


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def bare_round(scenario: Scenario, address_base: int, work_dir: Path, poll: float) -> float:
    """Seconds from exec of the first engine until every one answers."""
    addresses = [f"127.{address_base}.{BARE_THIRD_OCTET}.{n + 1}" for n in range(scenario.nodes)]
    argvs = []
    for address in addresses:
        node_dir = work_dir / "bare" / scenario.key / address
        node_dir.mkdir(parents=True, exist_ok=True)
        argvs.append((_bare_argv(scenario, address, node_dir), node_dir))
    processes: list[subprocess.Popen[bytes]] = []
    pending = set(addresses)

    def serving() -> bool:
        for process in processes:
            if process.poll() is not None:
                raise BenchError(f"{process.args!r} exited with {process.returncode}")
        pending.difference_update(
            [a for a in pending if engine_answers(scenario.engine, a, scenario.port)]
        )
        return not pending

    try:
        started = time.perf_counter()
        for argv, node_dir in argvs:
            processes.append(
                subprocess.Popen(
                    argv,
                    cwd=node_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        _poll_until(serving, poll, f"bare {scenario.key}")
        return time.perf_counter() - started
    finally:
        _stop(processes)


# -- The run ---------------------------------------------------------------------------------


def run(args: argparse.Namespace, work_dir: Path) -> dict[str, Samples]:
    results = {scenario.key: Samples() for scenario in SCENARIOS}
    service = Service(work_dir, args.address_base)
    try:
        service.start()
        client = service.client()
        total = args.warmup + args.rounds
        for index in range(total):
            warmup = index < args.warmup
            tag = f"w{index}" if warmup else str(index - args.warmup + 1)
            for scenario in SCENARIOS:
                cluster_id = f"bench-{scenario.key}-{tag}"
                # Alternate which side goes first, so neither always runs on a warmer machine.
                if index % 2:
                    bare = bare_round(scenario, args.address_base, work_dir, args.poll)
                    created, deleted = cacheyard_round(client, scenario, cluster_id, args.poll)
                else:
                    created, deleted = cacheyard_round(client, scenario, cluster_id, args.poll)
                    bare = bare_round(scenario, args.address_base, work_dir, args.poll)
                if not warmup:
                    samples = results[scenario.key]
                    samples.cacheyard.append(created)
                    samples.bare.append(bare)
                    samples.delete.append(deleted)
                if args.verbose:
                    print(
                        f"  round {tag:>3} {scenario.label:<20} cacheyard {_ms(created)}"
                        f"  bare {_ms(bare)}  delete {_ms(deleted)}"
                        + ("  (warm-up, not counted)" if warmup else ""),
                        flush=True,
                    )
    finally:
        service.down()
    return results


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def report(results: dict[str, Samples], args: argparse.Namespace) -> bool:
    """Print the table; True when the goal is met."""
    print()
    print(
        f"Provisioning: CreateCacheCluster -> available and answering, vs. the same bare engines"
        f"\n{args.rounds} rounds (+{args.warmup} warm-up), node type {NODE_TYPE}, "
        f"describe polled every {args.poll * 1000:g} ms"
    )
    print(
        f"redis-server {engine_version(['redis-server', '--version'])}, "
        f"{engine_version(['memcached', '-V'])}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}"
    )
    print()
    header = f"{'':<20} {'Cacheyard':^23}   {'bare engines':^23}   {'ratio':>8}   {'delete':>11}"
    sub = (
        f"{'scenario':<20} {'median':>11} {'p90':>11}   {'median':>11} {'p90':>11}   "
        f"{'(median)':>8}   {'median':>11}"
    )
    print(header)
    print(sub)
    print("-" * len(sub))
    met = True
    worst = 0.0
    for scenario in SCENARIOS:
        samples = results[scenario.key]
        cy_median, cy_p90 = median(samples.cacheyard), percentile(samples.cacheyard, 0.9)
        bare_median, bare_p90 = median(samples.bare), percentile(samples.bare, 0.9)
        ratio = cy_median / bare_median if bare_median > 0 else float("inf")
        print(
            f"{scenario.label:<20} {_ms(cy_median):>11} {_ms(cy_p90):>11}   "
            f"{_ms(bare_median):>11} {_ms(bare_p90):>11}   {ratio:>7.1f}x   "
            f"{_ms(median(samples.delete)):>11}"
        )
        worst = max(worst, cy_p90)
        met = met and cy_p90 < GOAL_SECONDS
    print()
    verdict = "MET" if met else "NOT MET"
    print(
        f"Goal: under {GOAL_SECONDS:g} s from CreateCacheCluster to serving (p90 of every "
        f"scenario): {verdict} (worst p90 {worst * 1000:.1f} ms)"
    )
    return met


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time CreateCacheCluster to a serving cluster, against bare engines."
    )
    parser.add_argument("--rounds", type=int, default=10, help="measured rounds (default 10)")
    parser.add_argument(
        "--warmup", type=int, default=1, help="rounds run first and not counted (default 1)"
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=0.005,
        help="seconds between describe calls and engine probes (default 0.005)",
    )
    parser.add_argument(
        "--address-base",
        type=int,
        default=150,
        help="the service and the bare engines use 127.<base>.0.0/16 (default 150)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (logs, data)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print every round")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0 or args.poll <= 0:
        parser.error("--rounds must be at least 1, --warmup at least 0, --poll positive")
    if not 1 <= args.address_base <= 254:
        parser.error("--address-base must be within 1-254")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if missing_binaries("redis-server", "memcached"):
        return 2
    results = in_work_dir("provision", args.keep, lambda work_dir: run(args, work_dir))
    if results is None:
        return 1
    report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
