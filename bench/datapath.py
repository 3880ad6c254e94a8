"""Data path: redis-benchmark through a group's primary endpoint, against a bare redis-server.

Cacheyard puts no proxy in the data path: the primary endpoint is an extra
address that the primary redis-server binds itself. This bench checks that a
client of the endpoint gets what a client of a hand-started redis-server gets.

For each scenario, in the same run on the same machine:

- Cacheyard: a replication group (``cache.t3.micro``) with 1 node, or with 3
  (automatic failover: the primary replicates to 2 replicas). The load goes to
  the group's primary endpoint.
- Bare: redis-server started by hand with the configuration a Cacheyard node
  gets (same ``maxmemory``, policy, no persistence), on another loopback
  address of the same /16; for the 3-node scenario with 2 replicas of its own,
  so both sides pay for replication.

Each run is ``redis-benchmark -h <addr> -p 6379 -t set,get -n 200000 -c 50 -q``,
unpipelined and with ``-P 16``; the two sides alternate which goes first, and
the result is the median over ``--rounds`` runs after ``--warmup`` runs.

    .venv/bin/python bench/datapath.py --rounds 3
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_helpers import (
    BenchError,
    Service,
    delete_group,
    engine_version,
    in_work_dir,
    median,
    missing_binaries,
    online_replicas,
    poll_until,
    redis_answers,
    redis_info,
    start_redis,
    stop_processes,
)

NODE_TYPE = "cache.t3.micro"
MEMORY_MB = 512
PORT = 6379
GOAL_RATIO = 0.95
TESTS = ("SET", "GET")
PIPELINES = (1, 16)
BARE_THIRD_OCTET = 250
READY_TIMEOUT = 60.0
BENCH_TIMEOUT = 300.0
_RESULT = re.compile(r"^(SET|GET): ([0-9.]+) requests per second")


@dataclass(frozen=True)
class Scenario:
    label: str
    nodes: int


SCENARIOS = (Scenario("1 node", 1), Scenario("3 nodes", 3))


@dataclass
class Samples:
    cacheyard: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)


# One row of the table: (scenario label, test, pipeline depth).
Row = tuple[str, str, int]


def redis_benchmark(address: str, args: argparse.Namespace, pipeline: int) -> dict[str, float]:
    """Requests per second for SET and GET, as redis-benchmark prints them with -q."""
    argv = [
        "redis-benchmark",
        *("-h", address, "-p", str(PORT), "-t", "set,get"),
        *("-n", str(args.requests), "-c", str(args.clients), "-q"),
    ]
    if pipeline > 1:
        argv += ["-P", str(pipeline)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=BENCH_TIMEOUT, check=False)
    results = {}
    # -q rewrites a progress line with \r; the last state of each line is the result.
    for line in re.split(r"[\r\n]", done.stdout):
        match = _RESULT.match(line.strip())
        if match:
            results[match.group(1)] = float(match.group(2))
    if done.returncode != 0 or set(results) != set(TESTS):
        raise BenchError(
            f"{' '.join(argv)} exited with {done.returncode}: {done.stderr.strip()[-300:]}"
        )
    return results


# -- The two sides -----------------------------------------------------------------------


def create_group(client: Any, group_id: str, nodes: int) -> str:
    """Create the group, wait until it serves with every replica online; its primary endpoint."""
    options: dict[str, Any] = {"AutomaticFailoverEnabled": nodes > 1}
    if nodes > 1:
        options["MultiAZEnabled"] = True
    client.create_replication_group(
        ReplicationGroupId=group_id,
        ReplicationGroupDescription="datapath bench",
        CacheNodeType=NODE_TYPE,
        Engine="redis",
        NumCacheClusters=nodes,
        **options,
    )
    endpoint: list[str] = []

    def ready() -> bool:
        groups = client.describe_replication_groups(ReplicationGroupId=group_id)
        group = groups["ReplicationGroups"][0]
        if group["Status"] != "available":
            return False
        address = str(group["NodeGroups"][0]["PrimaryEndpoint"]["Address"])
        info = redis_info(address, PORT, "replication")
        if info.get("role") != "master" or online_replicas(info) != nodes - 1:
            return False
        endpoint.append(address)
        return True

    poll_until(ready, READY_TIMEOUT, 0.05, f"creating {group_id}")
    return endpoint[-1]


def start_bare(
    work_dir: Path, address_base: int, nodes: int, processes: list[subprocess.Popen[bytes]]
) -> str:
    """A bare primary (and ``nodes - 1`` replicas of it); the primary's address."""
    addresses = [f"127.{address_base}.{BARE_THIRD_OCTET}.{n}" for n in range(1, nodes + 1)]
    primary = addresses[0]
    for address in addresses:
        extra = {} if address == primary else {"replicaof": f"{primary} {PORT}"}
        node_dir = work_dir / "bare" / f"{nodes}-nodes" / address
        processes.append(start_redis(address, PORT, node_dir, MEMORY_MB, extra))

    def ready() -> bool:
        for process in processes:
            if process.poll() is not None:
                raise BenchError(f"{process.args!r} exited with {process.returncode}")
        if not redis_answers(primary, PORT):
            return False
        return online_replicas(redis_info(primary, PORT, "replication")) == nodes - 1

    poll_until(ready, READY_TIMEOUT, 0.02, f"bare redis with {nodes} nodes")
    return primary


# -- The run -----------------------------------------------------------------------------


def run(args: argparse.Namespace, work_dir: Path) -> dict[Row, Samples]:
    results: dict[Row, Samples] = {}
    service = Service(work_dir, args.address_base)
    try:
        service.start()
        client = service.client()
        for scenario in SCENARIOS:
            if args.nodes and scenario.nodes not in args.nodes:
                continue
            endpoint = create_group(client, f"bench-datapath-{scenario.nodes}", scenario.nodes)
            processes: list[subprocess.Popen[bytes]] = []
            try:
                bare = start_bare(work_dir, args.address_base, scenario.nodes, processes)
                for index in range(args.warmup + args.rounds):
                    warmup = index < args.warmup
                    for pipeline in PIPELINES:
                        sides = [("cacheyard", endpoint), ("bare", bare)]
                        if index % 2:
                            sides.reverse()
                        measured = {
                            name: redis_benchmark(address, args, pipeline)
                            for name, address in sides
                        }
                        for test in TESTS:
                            samples = results.setdefault(
                                (scenario.label, test, pipeline), Samples()
                            )
                            if not warmup:
                                samples.cacheyard.append(measured["cacheyard"][test])
                                samples.bare.append(measured["bare"][test])
                            if args.verbose:
                                print(
                                    f"  run {index + 1:>2} {scenario.label:<8} {test}"
                                    f" P{pipeline:<2}"
                                    f"  cacheyard {measured['cacheyard'][test]:>11,.0f}"
                                    f"  bare {measured['bare'][test]:>11,.0f} ops/s"
                                    + ("  (warm-up, not counted)" if warmup else ""),
                                    flush=True,
                                )
            finally:
                stop_processes(processes)
            delete_group(client, f"bench-datapath-{scenario.nodes}")
    finally:
        service.down()
    return results


def report(results: dict[Row, Samples], args: argparse.Namespace) -> bool:
    """Print the table; True when every ratio reaches the goal."""
    print()
    print(
        "Data path: redis-benchmark through the primary endpoint vs. a bare redis-server"
        f"\n-n {args.requests} -c {args.clients}, median of {args.rounds} runs"
        f" (+{args.warmup} warm-up) per side, alternating; node type {NODE_TYPE}"
    )
    print(
        f"redis-server {engine_version(['redis-server', '--version'])},"
        f" Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}"
    )
    print()
    header = (
        f"{'scenario':<9} {'test':<8} {'Cacheyard ops/s':>16} {'bare ops/s':>16} {'ratio':>7}"
        f"   {'runs (Cacheyard / bare)'}"
    )
    print(header)
    print("-" * len(header))
    met = True
    lowest = float("inf")
    for (label, test, pipeline), samples in results.items():
        if not samples.cacheyard:
            continue
        cacheyard, bare = median(samples.cacheyard), median(samples.bare)
        ratio = cacheyard / bare if bare > 0 else 0.0
        lowest = min(lowest, ratio)
        met = met and ratio >= GOAL_RATIO
        runs = (
            " ".join(f"{v / 1000:.0f}k" for v in samples.cacheyard)
            + " / "
            + " ".join(f"{v / 1000:.0f}k" for v in samples.bare)
        )
        name = f"{test} P{pipeline}"
        print(f"{label:<9} {name:<8} {cacheyard:>16,.0f} {bare:>16,.0f} {ratio:>7.3f}   {runs}")
    print()
    print(
        f"Goal: at least {GOAL_RATIO:g} of bare throughput in every row:"
        f" {'MET' if met else 'NOT MET'} (lowest {lowest:.3f})"
    )
    return met


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="redis-benchmark through the primary endpoint vs. a bare redis-server."
    )
    parser.add_argument("--rounds", type=int, default=3, help="measured runs per side (default 3)")
    parser.add_argument(
        "--warmup", type=int, default=0, help="runs first and not counted (default 0)"
    )
    parser.add_argument(
        "--requests", type=int, default=200000, help="redis-benchmark -n (default 200000)"
    )
    parser.add_argument("--clients", type=int, default=50, help="redis-benchmark -c (default 50)")
    parser.add_argument(
        "--nodes",
        type=int,
        action="append",
        choices=[s.nodes for s in SCENARIOS],
        help="only this group size (repeatable; default: 1 and 3)",
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
    parser.add_argument("-v", "--verbose", action="store_true", help="print every run")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0 or args.requests < 1 or args.clients < 1:
        parser.error("--rounds, --requests and --clients must be at least 1, --warmup at least 0")
    if not 1 <= args.address_base <= 254:
        parser.error("--address-base must be within 1-254")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if missing_binaries("redis-server", "redis-benchmark"):
        return 2
    results = in_work_dir("datapath", args.keep, lambda work_dir: run(args, work_dir))
    if results is None:
        return 1
    report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
