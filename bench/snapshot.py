"""Snapshot and restore of a ~1 GB Redis dataset, against bare BGSAVE and a bare restart.

One Cacheyard Redis cluster and one bare redis-server are filled with the
same data (``--keys`` keys of ``--value-size`` incompressible bytes, 1M x 1000
by default: about 1 GB in memory and in the RDB), then every round measures,
in alternating order:

- Snapshot. Cacheyard: wall time from sending CreateSnapshot until
  DescribeSnapshots says ``available`` (a BGSAVE on the node, the RDB
  hard-linked into the snapshot store and its SHA-256 computed). Bare:
  ``BGSAVE``, ``INFO persistence`` polled until that save is over, then
  ``shutil.copyfile`` of the RDB to another directory.
- Restore. Cacheyard: wall time from sending CreateCacheCluster with the
  round's SnapshotName until DescribeCacheClusters says ``available`` (the
  RDB verified and placed, redis started and done loading it). Bare: a fresh
  redis-server whose ``dir`` already holds a copy of the same RDB file (the
  snapshot's own), from exec until PING answers PONG (not LOADING).

Every timed step starts after an untimed ``sync``, so no side pays for
writing back what the other just copied. The restored cluster, the bare
server, the snapshot and the bare copy are removed between rounds (untimed),
and both sides' key counts are checked after each restore. The service runs in a temporary directory
on a free port and loopback /16 and is stopped with ``cacheyard down`` at the
end, whatever happens. Run:

    .venv/bin/python bench/snapshot.py --rounds 3
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench_helpers import (
    BenchError,
    Service,
    engine_version,
    free_base,
    in_work_dir,
    median,
    missing_binaries,
    percentile,
    poll_until,
    redis_answers,
    redis_client,
    say,
    start_redis,
    stop_processes,
)
from botocore.exceptions import ClientError
from redis.exceptions import RedisError

SNAPSHOT_GOAL = 1.2
RESTORE_GOAL = 1.3
# 2 vCPUs and 13.07 GiB: room for the dataset, the restored copy and their forks.
NODE_TYPE = "cache.r6g.large"
MEMORY_MB = int(13.07 * 1024)  # what the node type gives redis as maxmemory
PORT = 6379
SOURCE_ID = "bench-snap-source"
# Bare servers live on 127.<base>.250.0/24, outside every subnet Cacheyard
# allocates from (127.<base>.10-63.0/24): .1 holds the data, .2 restores it.
BARE_THIRD_OCTET = 250
STEP_TIMEOUT = 300.0  # one snapshot, restore or deletion of ~1 GB
FILL_TIMEOUT = 600.0
FILL_BATCH = 10_000
POOL_SIZE = 1 << 20
# Where the service keeps a snapshot's files (below its data directory).
SNAPSHOTS_DIR = "snapshots"


@dataclass
class Samples:
    snapshot_cacheyard: list[float] = field(default_factory=list)
    snapshot_bare: list[float] = field(default_factory=list)
    restore_cacheyard: list[float] = field(default_factory=list)
    restore_bare: list[float] = field(default_factory=list)


@dataclass
class Dataset:
    """What was loaded, for the report."""

    keys: int = 0
    used_memory: int = 0
    rdb_bytes: int = 0
    bare_rdb_bytes: int = 0


# -- Addresses -------------------------------------------------------------------------------


# -- The dataset -----------------------------------------------------------------------------


def write_dataset(path: Path, keys: int, value_size: int) -> None:
    """The SETs as RESP, for ``redis-cli --pipe``. Values are slices of 1 MiB of seeded
    random bytes: every value is different and incompressible (RDB compresses each
    value on its own), so the RDB is about as big as the data."""
    pool = random.Random(0).randbytes(POOL_SIZE + value_size)
    head = f"${value_size}\r\n".encode()
    with path.open("wb") as out:
        for start in range(0, keys, FILL_BATCH):
            chunk = []
            for index in range(start, min(start + FILL_BATCH, keys)):
                key = f"key:{index:09d}".encode()
                offset = (index * 7919) % POOL_SIZE
                chunk += [
                    b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n" % (len(key), key),
                    head,
                    pool[offset : offset + value_size],
                    b"\r\n",
                ]
            out.write(b"".join(chunk))


def fill(address: str, resp: Path, keys: int) -> None:
    """Pipe the dataset into a server and check it holds every key."""
    with resp.open("rb") as source:
        done = subprocess.run(
            ["redis-cli", "-h", address, "-p", str(PORT), "--pipe"],
            stdin=source,
            capture_output=True,
            text=True,
            timeout=FILL_TIMEOUT,
            check=False,
        )
    if done.returncode != 0 or "errors: 0," not in done.stdout:
        raise BenchError(f"redis-cli --pipe into {address}: {done.stdout}{done.stderr}".strip())
    count = dbsize(address)
    if count != keys:
        raise BenchError(f"{address} holds {count} keys after the fill, not {keys}")


def dbsize(address: str) -> int:
    client = redis_client(address, PORT, timeout=30.0)
    try:
        return int(client.dbsize())
    except (RedisError, OSError) as exc:
        raise BenchError(f"DBSIZE on {address}: {exc}") from exc
    finally:
        client.close()


def persistence(address: str) -> dict[str, Any]:
    client = redis_client(address, PORT, timeout=5.0)
    try:
        info: dict[str, Any] = client.info("persistence")
        return info
    except (RedisError, OSError) as exc:
        raise BenchError(f"INFO persistence on {address}: {exc}") from exc
    finally:
        client.close()


def used_memory(address: str) -> int:
    client = redis_client(address, PORT, timeout=5.0)
    try:
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()


def last_bgsave(log: Path) -> float | None:
    """Seconds the last BGSAVE took by the engine's log (from the fork until the parent saw
    the child end), for -v: the part of a snapshot that is redis's own work."""
    started = finished = None
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        if "Background saving started" in line:
            started, finished = _log_time(line), None
        elif "Background saving terminated with success" in line:
            finished = _log_time(line)
    if started is None or finished is None:
        return None
    return (finished - started).total_seconds()


def _log_time(line: str) -> datetime | None:
    """The time of a redis log line ("pid:role 26 Nov 2026 13:44:35.517 * ...")."""
    try:
        return datetime.strptime(" ".join(line.split()[1:5]), "%d %b %Y %H:%M:%S.%f")
    except ValueError:
        return None


def settle() -> None:
    """Write back every dirty page before a measurement starts (untimed).

    The bare copies are not fsynced: without this, the kernel would write
    back the last gigabyte copied during whatever is measured next.
    """
    os.sync()


# -- Cacheyard -------------------------------------------------------------------------------


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def describe_cluster(client: Any, cluster_id: str) -> dict[str, Any] | None:
    try:
        found = client.describe_cache_clusters(CacheClusterId=cluster_id, ShowCacheNodeInfo=True)
    except ClientError as exc:
        if _error_code(exc) == "CacheClusterNotFound":
            return None
        raise
    clusters: list[dict[str, Any]] = found["CacheClusters"]
    return clusters[0]


def describe_snapshot(client: Any, name: str) -> dict[str, Any] | None:
    try:
        found = client.describe_snapshots(SnapshotName=name)
    except ClientError as exc:
        if _error_code(exc) == "SnapshotNotFoundFault":
            return None
        raise
    snapshots: list[dict[str, Any]] = found["Snapshots"]
    return snapshots[0]


def _status_is(
    describe: Callable[[], dict[str, Any] | None], key: str, wanted: str, failed: tuple[str, ...]
) -> bool:
    """True once ``describe()[key]`` is ``wanted``; BenchError on a status in ``failed``."""
    found = describe()
    status = None if found is None else found[key]
    if status in failed:
        raise BenchError(f"status {status}: {found}")
    return bool(status == wanted)


def cluster_available(client: Any, cluster_id: str, poll: float) -> None:
    poll_until(
        lambda: _status_is(
            lambda: describe_cluster(client, cluster_id),
            "CacheClusterStatus",
            "available",
            ("create-failed", "incompatible-restore", "restore-failed"),
        ),
        STEP_TIMEOUT,
        poll,
        f"cluster {cluster_id} becoming available",
    )


def endpoint(client: Any, cluster_id: str) -> str:
    cluster = describe_cluster(client, cluster_id)
    if cluster is None or not cluster.get("CacheNodes"):
        raise BenchError(f"cluster {cluster_id} has no node")
    return str(cluster["CacheNodes"][0]["Endpoint"]["Address"])


def create_source(client: Any, poll: float) -> str:
    """The cluster holding the dataset; its node's address."""
    client.create_cache_cluster(
        CacheClusterId=SOURCE_ID, Engine="redis", CacheNodeType=NODE_TYPE, NumCacheNodes=1
    )
    cluster_available(client, SOURCE_ID, poll)
    return endpoint(client, SOURCE_ID)


def cacheyard_snapshot(client: Any, name: str, poll: float) -> float:
    """Seconds from CreateSnapshot until the snapshot is available."""
    settle()
    started = time.perf_counter()
    client.create_snapshot(CacheClusterId=SOURCE_ID, SnapshotName=name)
    poll_until(
        lambda: _status_is(
            lambda: describe_snapshot(client, name), "SnapshotStatus", "available", ("failed",)
        ),
        STEP_TIMEOUT,
        poll,
        f"snapshot {name} becoming available",
    )
    return time.perf_counter() - started


def cacheyard_restore(client: Any, cluster_id: str, snapshot: str, keys: int, poll: float) -> float:
    """Seconds from CreateCacheCluster(SnapshotName) until available; then checks the keys
    and deletes the cluster, waiting until it is gone (untimed)."""
    settle()
    started = time.perf_counter()
    client.create_cache_cluster(
        CacheClusterId=cluster_id,
        Engine="redis",
        CacheNodeType=NODE_TYPE,
        NumCacheNodes=1,
        SnapshotName=snapshot,
    )
    cluster_available(client, cluster_id, poll)
    elapsed = time.perf_counter() - started
    count = dbsize(endpoint(client, cluster_id))
    if count != keys:
        raise BenchError(f"restored cluster {cluster_id} holds {count} keys, not {keys}")
    client.delete_cache_cluster(CacheClusterId=cluster_id)
    poll_until(
        lambda: describe_cluster(client, cluster_id) is None,
        STEP_TIMEOUT,
        poll,
        f"deleting {cluster_id}",
    )
    return elapsed


def delete_snapshot(client: Any, name: str, poll: float) -> None:
    client.delete_snapshot(SnapshotName=name)
    poll_until(
        lambda: describe_snapshot(client, name) is None,
        STEP_TIMEOUT,
        poll,
        f"deleting snapshot {name}",
    )


def source_log(data_dir: Path) -> Path:
    """The source node's engine log (layout.py: clusters/<id>/nodes/<node>/engine.log)."""
    found = sorted((data_dir / "clusters" / SOURCE_ID / "nodes").glob("*/engine.log"))
    return found[0] if found else data_dir / "clusters" / SOURCE_ID / "engine.log"


def snapshot_rdb(data_dir: Path, name: str) -> Path:
    """The snapshot's RDB file in the service's store, for the bare restore."""
    found = sorted((data_dir / SNAPSHOTS_DIR / name).glob("*.rdb"))
    if len(found) != 1:
        raise BenchError(f"expected one RDB file in {data_dir / SNAPSHOTS_DIR / name}: {found}")
    return found[0]


# -- Bare redis-server -----------------------------------------------------------------------


def bare_snapshot(address: str, node_dir: Path, copy_to: Path, poll: float) -> float:
    """Seconds for BGSAVE, until INFO persistence says that save is over, plus the copy."""
    client = redis_client(address, PORT, timeout=5.0)
    try:
        saves_before = int(client.info("persistence")["rdb_saves"])
        settle()
        started = time.perf_counter()
        client.bgsave()

        def saved() -> bool:
            info = persistence(address)
            return int(info["rdb_saves"]) > saves_before and not info["rdb_bgsave_in_progress"]

        poll_until(saved, STEP_TIMEOUT, poll, f"BGSAVE on {address}")
        shutil.copyfile(node_dir / "dump.rdb", copy_to)
        elapsed = time.perf_counter() - started
    except (RedisError, OSError) as exc:
        raise BenchError(f"bare snapshot on {address}: {exc}") from exc
    finally:
        client.close()
    if persistence(address)["rdb_last_bgsave_status"] != "ok":
        raise BenchError(f"BGSAVE on {address} failed; see {node_dir / 'engine.log'}")
    return elapsed


def bare_restore(address: str, node_dir: Path, rdb: Path, keys: int, poll: float) -> float:
    """Seconds from exec of a redis-server with ``rdb`` as its dump.rdb until PONG."""
    if node_dir.exists():
        shutil.rmtree(node_dir)
    node_dir.mkdir(parents=True)
    shutil.copyfile(rdb, node_dir / "dump.rdb")  # before the clock: the server's own file
    settle()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        started = time.perf_counter()
        process = start_redis(address, PORT, node_dir, MEMORY_MB)
        processes.append(process)

        def serving() -> bool:
            if process.poll() is not None:
                raise BenchError(f"bare redis-server exited with {process.returncode}")
            return redis_answers(address, PORT)

        poll_until(serving, STEP_TIMEOUT, poll, f"bare redis-server loading {rdb.name}")
        elapsed = time.perf_counter() - started
        count = dbsize(address)
        if count != keys:
            raise BenchError(f"bare redis-server loaded {count} keys, not {keys}")
        return elapsed
    finally:
        stop_processes(processes)
        shutil.rmtree(node_dir, ignore_errors=True)


# -- The run ---------------------------------------------------------------------------------


def run(args: argparse.Namespace, work_dir: Path) -> tuple[Samples, Dataset]:
    samples = Samples()
    dataset = Dataset(keys=args.keys)
    bare_source = f"127.{args.address_base}.{BARE_THIRD_OCTET}.1"
    bare_target = f"127.{args.address_base}.{BARE_THIRD_OCTET}.2"
    bare_dir = work_dir / "bare" / "source"
    copies = work_dir / "bare" / "copies"
    copies.mkdir(parents=True)
    service = Service(work_dir, args.address_base)
    bare: list[subprocess.Popen[bytes]] = []
    try:
        service.start()
        client = service.client()
        resp = work_dir / "dataset.resp"
        say(args.verbose, f"writing {args.keys} SETs of {args.value_size} bytes")
        write_dataset(resp, args.keys, args.value_size)
        bare.append(start_redis(bare_source, PORT, bare_dir, MEMORY_MB))
        poll_until(
            lambda: redis_answers(bare_source, PORT), STEP_TIMEOUT, args.poll, "bare redis-server"
        )
        source = create_source(client, args.poll)
        for label, address in (("Cacheyard", source), ("bare", bare_source)):
            started = time.perf_counter()
            fill(address, resp, args.keys)
            say(
                args.verbose, f"filled {label} ({address}) in {time.perf_counter() - started:.1f} s"
            )
        resp.unlink()
        dataset.used_memory = used_memory(source)

        total = args.warmup + args.rounds
        for index in range(total):
            # A snapshot may hold the source in "snapshotting" a moment longer (untimed).
            cluster_available(client, SOURCE_ID, args.poll)
            warmup = index < args.warmup
            tag = f"w{index}" if warmup else str(index - args.warmup + 1)
            name = f"bench-snap-{tag}"
            copy = copies / f"{tag}.rdb"
            # Alternate which side goes first, so neither always runs on a warmer machine.
            cacheyard_first = index % 2 == 0
            if cacheyard_first:
                cy_snap = cacheyard_snapshot(client, name, args.poll)
                bare_snap = bare_snapshot(bare_source, bare_dir, copy, args.poll)
            else:
                bare_snap = bare_snapshot(bare_source, bare_dir, copy, args.poll)
                cy_snap = cacheyard_snapshot(client, name, args.poll)
            cy_bgsave = last_bgsave(source_log(service.data_dir))
            bare_bgsave = last_bgsave(bare_dir / "engine.log")
            rdb = snapshot_rdb(service.data_dir, name)
            dataset.rdb_bytes = rdb.stat().st_size
            dataset.bare_rdb_bytes = copy.stat().st_size
            copy.unlink()
            restored_id = f"bench-restore-{tag}"
            restore_dir = work_dir / "bare" / "restore"
            if cacheyard_first:
                cy_restore = cacheyard_restore(client, restored_id, name, args.keys, args.poll)
                bare_rest = bare_restore(bare_target, restore_dir, rdb, args.keys, args.poll)
            else:
                bare_rest = bare_restore(bare_target, restore_dir, rdb, args.keys, args.poll)
                cy_restore = cacheyard_restore(client, restored_id, name, args.keys, args.poll)
            delete_snapshot(client, name, args.poll)
            if not warmup:
                samples.snapshot_cacheyard.append(cy_snap)
                samples.snapshot_bare.append(bare_snap)
                samples.restore_cacheyard.append(cy_restore)
                samples.restore_bare.append(bare_rest)
            if args.verbose:
                print(
                    f"  round {tag:>3}  snapshot: cacheyard {_s(cy_snap)}"
                    f" ({_bgsave(cy_bgsave)})  bare {_s(bare_snap)} ({_bgsave(bare_bgsave)})"
                    f"  restore: cacheyard {_s(cy_restore)}  bare {_s(bare_rest)}"
                    + ("  (warm-up, not counted)" if warmup else ""),
                    flush=True,
                )
    except ClientError as exc:
        raise BenchError(f"the service refused a call: {exc}") from exc
    finally:
        try:
            stop_processes(bare)
        finally:
            service.down()
    return samples, dataset


def _bgsave(seconds: float | None) -> str:
    return "BGSAVE ?" if seconds is None else f"BGSAVE {seconds:.3f}"


def _s(seconds: float) -> str:
    return f"{seconds:7.3f} s"


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.0f} MB"


@dataclass(frozen=True)
class Row:
    label: str
    cacheyard_what: str
    bare_what: str
    cacheyard: list[float]
    bare: list[float]
    goal: float

    @property
    def ratio(self) -> float:
        bare = median(self.bare)
        return median(self.cacheyard) / bare if bare > 0 else float("inf")


def report(samples: Samples, dataset: Dataset, args: argparse.Namespace) -> bool:
    """Print the table; True when both goals are met."""
    print()
    print(
        f"Snapshot and restore of {dataset.keys} keys x {args.value_size} bytes "
        f"(used_memory {_mb(dataset.used_memory)}, snapshot RDB {_mb(dataset.rdb_bytes)}, "
        f"bare RDB {_mb(dataset.bare_rdb_bytes)}), vs. bare redis-server"
        f"\n{args.rounds} rounds (+{args.warmup} warm-up), node type {NODE_TYPE}, "
        f"polled every {args.poll * 1000:g} ms"
    )
    print(
        f"redis-server {engine_version(['redis-server', '--version'])}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}"
    )
    print()
    rows = (
        Row(
            "snapshot",
            "CreateSnapshot -> available",
            "BGSAVE until done + copy of the RDB",
            samples.snapshot_cacheyard,
            samples.snapshot_bare,
            SNAPSHOT_GOAL,
        ),
        Row(
            "restore",
            "CreateCacheCluster(SnapshotName) -> available",
            "exec of redis-server with the RDB -> PONG",
            samples.restore_cacheyard,
            samples.restore_bare,
            RESTORE_GOAL,
        ),
    )
    header = f"{'':<9} {'Cacheyard':^21}   {'bare redis-server':^21}   {'ratio':>8}   {'goal':>6}"
    sub = (
        f"{'':<9} {'median':>10} {'p90':>10}   {'median':>10} {'p90':>10}   "
        f"{'(median)':>8}   {'':>6}"
    )
    print(header)
    print(sub)
    print("-" * len(sub))
    for row in rows:
        print(
            f"{row.label:<9} {_s(median(row.cacheyard)):>10} "
            f"{_s(percentile(row.cacheyard, 0.9)):>10}   {_s(median(row.bare)):>10} "
            f"{_s(percentile(row.bare, 0.9)):>10}   {row.ratio:>7.2f}x   "
            f"{f'{row.goal:g}x':>6}"
        )
    print()
    for row in rows:
        print(f"{row.label:<9} Cacheyard: {row.cacheyard_what}; bare: {row.bare_what}")
    print()
    verdicts = [
        f"{row.label} {row.ratio:.2f}x (at most {row.goal:g}x): "
        + ("MET" if row.ratio <= row.goal else "NOT MET")
        for row in rows
    ]
    print(f"Goals, ratio of the medians: {'; '.join(verdicts)}")
    return all(row.ratio <= row.goal for row in rows)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time CreateSnapshot and a restore of ~1 GB against bare redis-server."
    )
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (default 3)")
    parser.add_argument(
        "--warmup", type=int, default=1, help="rounds run first and not counted (default 1)"
    )
    parser.add_argument(
        "--keys", type=int, default=1_000_000, help="keys in the dataset (default 1000000)"
    )
    parser.add_argument(
        "--value-size", type=int, default=1000, help="bytes per value (default 1000)"
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=0.02,
        help="seconds between describe calls and bare probes (default 0.02)",
    )
    parser.add_argument(
        "--address-base",
        type=int,
        default=None,
        help="the service and the bare servers use 127.<base>.0.0/16 "
        "(default: the first free one from 150)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (logs, data)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print every round")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0 or args.poll <= 0:
        parser.error("--rounds must be at least 1, --warmup at least 0, --poll positive")
    if args.keys < 1 or not 1 <= args.value_size <= POOL_SIZE:
        parser.error(f"--keys must be at least 1, --value-size within 1-{POOL_SIZE}")
    if args.address_base is None:
        args.address_base = free_base()
        if args.address_base is None:
            parser.error("every loopback /16 has a listener: give --address-base")
    elif not 1 <= args.address_base <= 254:
        parser.error("--address-base must be within 1-254")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if missing_binaries("redis-server", "redis-cli"):
        return 2
    outcome = in_work_dir("snapshot", args.keep, lambda work_dir: run(args, work_dir))
    if outcome is None:
        return 1
    report(*outcome, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
