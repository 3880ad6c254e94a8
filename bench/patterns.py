"""The client library's patterns on a Redis created through Cacheyard (issue 6), in one run.

(a) Lazy loading under a read-heavy Zipf workload: the same sequence of
    reads (``--reads`` over ``--keys`` keys, exponent ``--zipf``) against a
    SQLite "database" whose every query costs ``--query-ms`` more (a sleep in
    the loader, standing for a real database's work), first without a cache,
    then through ``CacheAside`` starting cold. Printed: database queries,
    the queries avoided, the load reduction factor (queries without / with)
    and per-read p50/p99 latency.
(b) Cache-aside overhead on hits: ``CacheAside.get`` against hand-written
    redis-py (``GET`` + ``json.loads``, ``SET ... EX`` on a miss) reading
    the same JSON values, in alternating rounds; goal: at most 1.1x.
(c) A leaderboard of ``--members`` members: filled with ZADD in pipelines,
    then ZREVRANK and top-10 (ZREVRANGE WITHSCORES) latency with plain
    redis-py, and rank/top-10 through ``cacheyard.client.leaderboard`` when
    that module is installed (filled through its own submit script,
    pipelined).

The service runs in a temporary directory on a free port and is stopped with
``cacheyard down`` at the end, whatever happens. Run:

    .venv/bin/python bench/patterns.py
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from bench_helpers import (
    BenchError,
    Service,
    engine_version,
    in_work_dir,
    median,
    missing_binaries,
    percentile,
    poll_until,
    redis_answers,
)

from cacheyard.client.cache_aside import CacheAside

NODE_TYPE = "cache.m5.large"  # room for two 1M-member boards next to the cache entries
CLUSTER_ID = "bench-patterns"
OVERHEAD_GOAL = 1.1


@dataclass
class Run:
    queries: int
    seconds: float
    latencies: list[float]


class Catalog:
    """A SQLite product table; each query counted and made ``cost`` seconds slower."""

    def __init__(self, path: Path, keys: int, cost: float) -> None:
        self.db = sqlite3.connect(path)
        self.cost = cost
        self.queries = 0
        self.db.execute("CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
        self.db.executemany(
            "INSERT INTO products VALUES (?, ?, ?)",
            [(i, f"product {i} " + "x" * 100, i * 1.25) for i in range(keys)],
        )
        self.db.commit()

    def product(self, product_id: int) -> dict[str, Any] | None:
        self.queries += 1
        row = self.db.execute(
            "SELECT id, name, price FROM products WHERE id = ?", (product_id,)
        ).fetchone()
        time.sleep(self.cost)
        return None if row is None else {"id": row[0], "name": row[1], "price": row[2]}


def zipf_sequence(keys: int, reads: int, exponent: float, seed: int) -> list[int]:
    """``reads`` key ids drawn with P(rank k) proportional to 1/k^s, ranks shuffled onto ids."""
    rng = random.Random(seed)
    weights = itertools.accumulate(1 / (rank**exponent) for rank in range(1, keys + 1))
    ids = list(range(keys))
    rng.shuffle(ids)
    return rng.choices(ids, cum_weights=list(weights), k=reads)


def timed(sequence: list[int], read: Callable[[int], Any]) -> tuple[float, list[float]]:
    latencies = []
    started = time.perf_counter()
    for product_id in sequence:
        before = time.perf_counter()
        read(product_id)
        latencies.append(time.perf_counter() - before)
    return time.perf_counter() - started, latencies


def zipf_workload(client: redis.Redis, args: argparse.Namespace, work_dir: Path) -> tuple[Run, Run]:
    catalog = Catalog(work_dir / "catalog.db", args.keys, args.query_ms / 1000)
    sequence = zipf_sequence(args.keys, args.reads, args.zipf, seed=6)

    seconds, latencies = timed(sequence, catalog.product)
    without = Run(catalog.queries, seconds, latencies)

    catalog.queries = 0
    cache = CacheAside(client, namespace="benchzipf", ttl=600)

    def cached_read(product_id: int) -> Any:
        return cache.get(f"product:{product_id}", lambda: catalog.product(product_id))

    seconds, latencies = timed(sequence, cached_read)
    with_cache = Run(catalog.queries, seconds, latencies)
    catalog.db.close()
    return without, with_cache


def hit_overhead(client: redis.Redis, args: argparse.Namespace) -> tuple[list[float], list[float]]:
    """Seconds per hit in each round: (hand-written, CacheAside)."""
    rng = random.Random(7)
    values = {
        i: {"id": i, "name": f"product {i} " + "x" * 100, "price": i * 1.25} for i in range(1000)
    }
    cache = CacheAside(client, namespace="benchhits", ttl=600)

    def hand_get(key: str, loader: Callable[[], Any]) -> Any:
        raw = client.get(key)
        if raw is not None:
            return json.loads(raw)
        value = loader()
        client.set(key, json.dumps(value), ex=600)
        return value

    for i, value in values.items():  # fill both: every measured read is a hit
        hand_get(f"hand:product:{i}", lambda value=value: value)  # type: ignore[misc]
        cache.get(f"product:{i}", lambda value=value: value)  # type: ignore[misc]
    hand_keys = [f"hand:product:{rng.randrange(1000)}" for _ in range(args.hits)]
    cache_keys = [key.removeprefix("hand:") for key in hand_keys]

    def missing() -> Any:
        raise BenchError("a measured read missed")

    def hand_round() -> float:
        started = time.perf_counter()
        for key in hand_keys:
            hand_get(key, missing)
        return (time.perf_counter() - started) / len(hand_keys)

    def cache_round() -> float:
        started = time.perf_counter()
        for key in cache_keys:
            cache.get(key, missing)
        return (time.perf_counter() - started) / len(cache_keys)

    hand_round(), cache_round()  # warm-up
    hand: list[float] = []
    aside: list[float] = []
    for index in range(args.rounds):  # alternate who goes first
        if index % 2:
            aside.append(cache_round())
            hand.append(hand_round())
        else:
            hand.append(hand_round())
            aside.append(cache_round())
    return hand, aside


def latencies_of(call: Callable[[], Any], samples: int) -> list[float]:
    found = []
    for _ in range(samples):
        before = time.perf_counter()
        call()
        found.append(time.perf_counter() - before)
    return found


@dataclass
class BoardResult:
    label: str
    fill_seconds: float
    rank: list[float]
    top: list[float]


def plain_board(client: redis.Redis, args: argparse.Namespace) -> BoardResult:
    rng = random.Random(8)
    key = "bench:board:plain"
    client.delete(key)
    batch = 5000
    started = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for first in range(0, args.members, batch):
        last = min(first + batch, args.members)
        pipe.zadd(key, {f"player:{i}": rng.randrange(10**7) for i in range(first, last)})
        if len(pipe) >= 20:
            pipe.execute()
    pipe.execute()
    fill = time.perf_counter() - started
    if client.zcard(key) != args.members:
        raise BenchError("the plain board does not hold every member")
    players = [f"player:{rng.randrange(args.members)}" for _ in range(args.samples)]
    picks = iter(players)
    rank = latencies_of(lambda: client.zrevrank(key, next(picks)), args.samples)
    top = latencies_of(lambda: client.zrevrange(key, 0, 9, withscores=True), args.samples)
    client.delete(key)
    return BoardResult("plain redis-py (ZREVRANK, ZREVRANGE)", fill, rank, top)


def library_board(client: redis.Redis, args: argparse.Namespace) -> BoardResult | None:
    try:
        from cacheyard.client.leaderboard import Leaderboard
    except ImportError:
        return None
    rng = random.Random(9)
    board = Leaderboard(client, "bench-1m")
    board.clear()
    # Filled with the board's own submit script, pipelined (a bench shortcut: one
    # round trip per 10k submits instead of one per submit).
    submit = board._submit
    keys = board.keys
    started = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for i in range(args.members):
        submit(
            keys=keys,
            args=[f"player:{i}", repr(float(rng.randrange(10**7))), "best", "0"],
            client=pipe,
        )
        if len(pipe) >= 10_000:
            pipe.execute()
    pipe.execute()
    fill = time.perf_counter() - started
    if board.size() != args.members:
        raise BenchError("the library's board does not hold every member")
    players = [f"player:{rng.randrange(args.members)}" for _ in range(args.samples)]
    picks = iter(players)
    rank = latencies_of(lambda: board.rank(next(picks)), args.samples)
    top = latencies_of(lambda: board.top(10), args.samples)
    board.clear()
    return BoardResult("cacheyard.client.leaderboard (rank, top)", fill, rank, top)


def provision(service: Service) -> str:
    ec = service.client()
    ec.create_cache_cluster(CacheClusterId=CLUSTER_ID, Engine="redis", CacheNodeType=NODE_TYPE)
    address: list[str] = []

    def serving() -> bool:
        cluster = ec.describe_cache_clusters(CacheClusterId=CLUSTER_ID, ShowCacheNodeInfo=True)
        found = cluster["CacheClusters"][0]
        if found["CacheClusterStatus"] != "available":
            return False
        endpoint = found["CacheNodes"][0]["Endpoint"]
        address[:] = [endpoint["Address"]]
        return redis_answers(endpoint["Address"], int(endpoint["Port"]))

    poll_until(serving, 60, 0.02, f"creating {CLUSTER_ID}")
    return address[0]


def run(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    service = Service(work_dir, args.address_base)
    try:
        service.start()
        address = provision(service)
        client = redis.Redis(host=address, port=6379, socket_timeout=30)
        try:
            results: dict[str, Any] = {"address": address}
            results["zipf"] = zipf_workload(client, args, work_dir)
            results["hits"] = hit_overhead(client, args)
            boards = [plain_board(client, args)]
            library = library_board(client, args)
            if library is not None:
                boards.append(library)
            results["boards"] = boards
            return results
        finally:
            client.close()
    finally:
        service.down()


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.3f} ms"


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    redis_version = engine_version(["redis-server", "--version"])
    print(
        f"patterns bench: redis {redis_version}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, node {NODE_TYPE} created through Cacheyard"
    )
    without, with_cache = results["zipf"]
    print(
        f"\n(a) Zipf read-heavy workload: {args.reads} reads over {args.keys} keys, "
        f"s={args.zipf}, {args.query_ms:g} ms per database query, cache starts cold"
    )
    print(f"    {'':<18}{'db queries':>11}{'p50':>12}{'p99':>12}{'total':>10}")
    for label, measured in (("without cache", without), ("with CacheAside", with_cache)):
        print(
            f"    {label:<18}{measured.queries:>11}{_ms(percentile(measured.latencies, 0.5))}"
            f"   {_ms(percentile(measured.latencies, 0.99))}{measured.seconds:>8.2f} s"
        )
    avoided = without.queries - with_cache.queries
    print(
        f"    database queries avoided: {avoided} ({avoided / without.queries:.1%}); "
        f"load reduction factor {without.queries / max(1, with_cache.queries):.1f}x; "
        f"wall time {without.seconds / with_cache.seconds:.1f}x faster"
    )

    hand, aside = results["hits"]
    ratio = median(aside) / median(hand)
    best = min(aside) / min(hand)
    verdict = "meets" if ratio <= OVERHEAD_GOAL else "misses"
    print(
        f"\n(b) hits: CacheAside.get vs hand-written GET + json.loads "
        f"({args.rounds} rounds x {args.hits} reads, per read)"
    )
    print(
        f"    median: hand-written {median(hand) * 1e6:6.1f} us, CacheAside "
        f"{median(aside) * 1e6:6.1f} us: overhead {ratio:.3f}x ({verdict} the goal of "
        f"{OVERHEAD_GOAL}x)"
    )
    print(
        f"    best round: hand-written {min(hand) * 1e6:6.1f} us, CacheAside "
        f"{min(aside) * 1e6:6.1f} us: overhead {best:.3f}x"
    )

    print(
        f"\n(c) leaderboard of {args.members:,} members ({args.samples} samples each, "
        f"random players for rank)"
    )
    for board in results["boards"]:
        rank = [_ms(percentile(board.rank, q)).strip() for q in (0.5, 0.99)]
        top = [_ms(percentile(board.top, q)).strip() for q in (0.5, 0.99)]
        print(
            f"    {board.label}: fill {board.fill_seconds:.1f} s; rank p50 {rank[0]} "
            f"p99 {rank[1]}; top-10 p50 {top[0]} p99 {top[1]}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--reads", type=int, default=20000, help="Zipf reads (default 20000)")
    parser.add_argument("--keys", type=int, default=2000, help="Zipf key space (default 2000)")
    parser.add_argument("--zipf", type=float, default=1.1, help="Zipf exponent (default 1.1)")
    parser.add_argument(
        "--query-ms", type=float, default=1.0, help="added cost per database query (default 1)"
    )
    parser.add_argument("--hits", type=int, default=5000, help="reads per hit round (default 5000)")
    parser.add_argument("--rounds", type=int, default=9, help="hit rounds per side (default 9)")
    parser.add_argument(
        "--members", type=int, default=1_000_000, help="leaderboard size (default 1000000)"
    )
    parser.add_argument(
        "--samples", type=int, default=2000, help="latency samples per query (default 2000)"
    )
    parser.add_argument(
        "--address-base",
        type=int,
        default=150,
        help="second octet of the service's loopback /16 (default 150)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if not 1 <= args.address_base <= 254:
        parser.error("--address-base must be within 1-254")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if missing_binaries("redis-server"):
        return 2
    results = in_work_dir("patterns", args.keep, lambda work_dir: run(args, work_dir))
    if results is None:
        return 1
    report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
