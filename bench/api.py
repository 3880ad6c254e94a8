"""API call latency and throughput through Cacheyard, against the HTTP floor.

For a few representative calls (DescribeCacheEngineVersions, which reads no
store; DescribeCacheClusters with ``--clusters`` Memcached clusters existing;
IAM GetUser), every round measures with boto3, for each side in turn (the
side that goes first rotates from round to round):

- one thread making ``--calls`` calls back to back (latency per call);
- ``--threads`` threads, each with its own client, making ``--thread-calls``
  calls each, started together (calls per second over the wall time, and the
  latency per call under that load).

The sides:

- *Cacheyard, admin*: the service's administrator key (AdministratorAccess).
- *Cacheyard, reader*: an IAM user made through Cacheyard's IAM API whose
  only policy allows ``elasticache:Describe*`` and ``iam:GetUser`` on itself:
  the cost of evaluating a real, narrower policy against ``*:*``.
- *bare*: a Starlette app served by uvicorn like Cacheyard's (same uvicorn
  settings), started by this script in a subprocess, that answers each
  operation with the very bytes Cacheyard answered it with (captured first),
  with no signature check, no parsing, no store. Same boto3 clients, same
  signing on the client side: the floor of HTTP + boto3 + uvicorn.

The service runs in a temporary directory on a free port and loopback /16
and is stopped with ``cacheyard down`` at the end, whatever happens; so is
the bare server. Run:

    .venv/bin/python bench/api.py --rounds 5
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import boto3
from bench_helpers import (
    REGION,
    BenchError,
    Service,
    free_base,
    free_port,
    in_work_dir,
    median,
    missing_binaries,
    percentile,
    poll_until,
    say,
    stop_processes,
)
from botocore.config import Config
from botocore.exceptions import ClientError

NODE_TYPE = "cache.t3.micro"
CLUSTER_PREFIX = "bench-api-"
READER = "bench-reader"
START_TIMEOUT = 30.0
CREATE_TIMEOUT = 180.0
# What Cacheyard's uvicorn.Config sets (cli/service.py); the rest are uvicorn's defaults.
UVICORN_SETTINGS: dict[str, Any] = {"log_level": "warning", "lifespan": "off"}
BARE_REQUEST_ID = "00000000-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class Operation:
    key: str  # the Action, also the bare server's key for the response
    service: str  # the boto3 client
    method: str
    params: dict[str, Any] = field(default_factory=dict)


OPERATIONS = (
    Operation("DescribeCacheEngineVersions", "elasticache", "describe_cache_engine_versions"),
    Operation("DescribeCacheClusters", "elasticache", "describe_cache_clusters"),
    Operation("GetUser", "iam", "get_user"),
)

ADMIN, READ_ONLY, BARE = "admin", "reader", "bare"
SIDES = (ADMIN, READ_ONLY, BARE)


@dataclass(frozen=True)
class Keys:
    access_key_id: str
    secret_access_key: str


@dataclass
class Side:
    """A set of clients, one per thread, for each boto3 service, all on one endpoint."""

    name: str
    clients: dict[str, list[Any]]

    def call(self, operation: Operation, thread: int) -> Callable[[], object]:
        method = getattr(self.clients[operation.service][thread], operation.method)
        params = operation.params
        return lambda: method(**params)


@dataclass
class Samples:
    """Per operation and side: latencies of single-thread calls, latencies of concurrent
    calls, calls per second of each concurrent round."""

    serial: list[float] = field(default_factory=list)
    loaded: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)


Results = dict[tuple[str, str], Samples]


@dataclass
class Setup:
    """What the header prints: response sizes, how long setting up took."""

    sizes: dict[str, int] = field(default_factory=dict)
    clusters_seconds: float = 0.0
    # 1-minute load average when the measured rounds start and end: another busy process
    # on the machine shows there (and in the p90).
    load: list[float] = field(default_factory=list)


# -- Clients ---------------------------------------------------------------------------------


def admin_keys(service: Service) -> Keys:
    credentials = configparser.ConfigParser()
    credentials.read(service.data_dir / "credentials")
    profile = credentials["default"]
    return Keys(profile["aws_access_key_id"], profile["aws_secret_access_key"])


def client(service_name: str, endpoint: str, keys: Keys) -> Any:
    """A boto3 client with no hidden retries, as ``Service.client`` makes them."""
    return boto3.client(
        service_name,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=keys.access_key_id,
        aws_secret_access_key=keys.secret_access_key,
        config=Config(retries={"total_max_attempts": 1}),
    )


def side(name: str, endpoint: str, keys: Keys, threads: int) -> Side:
    services = sorted({operation.service for operation in OPERATIONS})
    return Side(
        name,
        {s: [client(s, endpoint, keys) for _ in range(threads)] for s in services},
    )


# -- Setting up Cacheyard --------------------------------------------------------------------


def create_clusters(elasticache: Any, count: int, poll: float) -> float:
    """``count`` single-node Memcached clusters, until Describe shows every one available;
    the seconds that took."""
    started = time.perf_counter()
    for index in range(count):
        elasticache.create_cache_cluster(
            CacheClusterId=f"{CLUSTER_PREFIX}{index + 1:03d}",
            Engine="memcached",
            CacheNodeType=NODE_TYPE,
            NumCacheNodes=1,
        )

    def all_available() -> bool:
        found = elasticache.describe_cache_clusters(MaxRecords=100)["CacheClusters"]
        ours = [c for c in found if str(c["CacheClusterId"]).startswith(CLUSTER_PREFIX)]
        failed = [c["CacheClusterId"] for c in ours if c["CacheClusterStatus"] == "create-failed"]
        if failed:
            raise BenchError(f"clusters failed to create: {failed}")
        return len(ours) == count and all(c["CacheClusterStatus"] == "available" for c in ours)

    poll_until(all_available, CREATE_TIMEOUT, poll, f"{count} clusters becoming available")
    return time.perf_counter() - started


def create_reader(iam: Any) -> Keys:
    """An IAM user allowed ``elasticache:Describe*`` and ``iam:GetUser`` on itself, and its key."""
    user = iam.create_user(UserName=READER)["User"]
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "elasticache:Describe*", "Resource": "*"},
            {"Effect": "Allow", "Action": "iam:GetUser", "Resource": user["Arn"]},
        ],
    }
    iam.put_user_policy(UserName=READER, PolicyName="describe", PolicyDocument=json.dumps(document))
    key = iam.create_access_key(UserName=READER)["AccessKey"]
    return Keys(key["AccessKeyId"], key["SecretAccessKey"])


def check_reader_is_limited(reader: Side) -> None:
    """The reader's policy is really evaluated: a call it does not allow is refused."""
    try:
        reader.clients["iam"][0].list_users()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code == "AccessDenied":
            return
        raise BenchError(f"ListUsers as {READER}: expected AccessDenied, got {code}") from exc
    raise BenchError(f"ListUsers as {READER} was allowed: its policy is not evaluated")


def capture(service_name: str, endpoint: str, keys: Keys, operation: Operation) -> bytes:
    """The body Cacheyard answers ``operation`` with, byte for byte."""
    captured: list[bytes] = []
    once = client(service_name, endpoint, keys)
    once.meta.events.register(
        "after-call",
        lambda http_response, **_: captured.append(bytes(http_response.content)),
    )
    getattr(once, operation.method)(**operation.params)
    if len(captured) != 1:
        raise BenchError(f"could not capture the response of {operation.key}")
    return captured[0]


def without_metadata(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


# -- The bare server -------------------------------------------------------------------------


def serve_bare(responses_dir: Path, port: int) -> None:
    """The bare app (run in the subprocess): POST / answered with the stored response of the
    body's Action, found by a plain byte search (no form parsing, no signature, no store)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    responses = {path.stem.encode(): path.read_bytes() for path in responses_dir.glob("*.xml")}
    headers = {"x-amzn-RequestId": BARE_REQUEST_ID}

    async def answer(request: Request) -> Response:
        body = await request.body()
        for part in body.split(b"&"):
            if part.startswith(b"Action="):
                payload = responses.get(part[len(b"Action=") :])
                if payload is not None:
                    return Response(payload, media_type="text/xml", headers=headers)
        return Response(b"unknown action", status_code=400)

    app = Starlette(routes=[Route("/", answer, methods=["GET", "POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, **UVICORN_SETTINGS)


def start_bare(work_dir: Path, responses: dict[str, bytes]) -> tuple[subprocess.Popen[bytes], str]:
    """This script with ``--serve-bare`` in a subprocess, working in ``work_dir/bare`` (so
    ``kill_leftovers`` finds it); its process and endpoint once it listens."""
    bare_dir = work_dir / "bare"
    responses_dir = bare_dir / "responses"
    responses_dir.mkdir(parents=True)
    for action, body in responses.items():
        (responses_dir / f"{action}.xml").write_bytes(body)
    port = free_port()
    log = (bare_dir / "bare.log").open("ab")
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                *("--serve-bare", str(responses_dir)),
                *("--port", str(port)),
            ],
            cwd=bare_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        log.close()

    def listening() -> bool:
        if process.poll() is not None:
            text = (bare_dir / "bare.log").read_text(errors="replace")
            raise BenchError(f"the bare server exited with {process.returncode}:\n{text}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return False
        return True

    try:
        poll_until(listening, START_TIMEOUT, 0.02, "the bare server listening")
    except BaseException:
        stop_processes([process])
        raise
    return process, f"http://127.0.0.1:{port}"


# -- Measuring -------------------------------------------------------------------------------


def timed_calls(call: Callable[[], object], count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - started)
    return latencies


def concurrent_calls(calls: list[Callable[[], object]], count: int) -> tuple[list[float], float]:
    """Every call ``count`` times, each in its own thread, all released together; the
    latencies and the wall time from the release until the last thread is done."""
    barrier = threading.Barrier(len(calls) + 1)
    latencies: list[list[float]] = [[] for _ in calls]
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        barrier.wait()
        try:
            latencies[index] = timed_calls(calls[index], count)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise errors[0]
    return [latency for thread in latencies for latency in thread], wall


def measure(
    current: Side, operation: Operation, args: argparse.Namespace
) -> tuple[list[float], list[float], float]:
    """One round of one side and operation: single-thread latencies, concurrent latencies,
    concurrent calls per second."""
    try:
        serial = timed_calls(current.call(operation, 0), args.calls)
        calls = [current.call(operation, thread) for thread in range(args.threads)]
        loaded, wall = concurrent_calls(calls, args.thread_calls)
    except ClientError as exc:
        raise BenchError(f"{operation.key} as {current.name} was refused: {exc}") from exc
    return serial, loaded, len(loaded) / wall


def run(args: argparse.Namespace, work_dir: Path) -> tuple[Results, Setup]:
    results: Results = {(op.key, name): Samples() for op in OPERATIONS for name in SIDES}
    setup = Setup()
    service = Service(work_dir, args.address_base)
    bare: list[subprocess.Popen[bytes]] = []
    try:
        service.start()
        keys = admin_keys(service)
        admin_elasticache = client("elasticache", service.endpoint, keys)
        setup.clusters_seconds = create_clusters(admin_elasticache, args.clusters, args.poll)
        say(args.verbose, f"{args.clusters} clusters available in {setup.clusters_seconds:.1f} s")
        reader_keys = create_reader(client("iam", service.endpoint, keys))

        responses = {op.key: capture(op.service, service.endpoint, keys, op) for op in OPERATIONS}
        setup.sizes = {action: len(body) for action, body in responses.items()}
        process, bare_endpoint = start_bare(work_dir, responses)
        bare.append(process)

        sides = {
            ADMIN: side(ADMIN, service.endpoint, keys, args.threads),
            READ_ONLY: side(READ_ONLY, service.endpoint, reader_keys, args.threads),
            BARE: side(BARE, bare_endpoint, keys, args.threads),
        }
        check_reader_is_limited(sides[READ_ONLY])
        # The bare answers are valid: boto3 parses them into what Cacheyard's gave.
        for op in OPERATIONS:
            real = sides[ADMIN].clients[op.service][0]
            fake = sides[BARE].clients[op.service][0]
            expected = without_metadata(getattr(real, op.method)(**op.params))
            if without_metadata(getattr(fake, op.method)(**op.params)) != expected:
                raise BenchError(f"the bare server's {op.key} does not parse as Cacheyard's")

        total = args.warmup + args.rounds
        for index in range(total):
            warmup = index < args.warmup
            tag = f"w{index}" if warmup else str(index - args.warmup + 1)
            if index == args.warmup:
                setup.load.append(os.getloadavg()[0])
            # Rotate which side goes first, so none always runs on a warmer machine.
            shift = index % len(SIDES)
            order = SIDES[shift:] + SIDES[:shift]
            for op in OPERATIONS:
                for name in order:
                    serial, loaded, rate = measure(sides[name], op, args)
                    if not warmup:
                        samples = results[(op.key, name)]
                        samples.serial += serial
                        samples.loaded += loaded
                        samples.rates.append(rate)
                    if args.verbose:
                        print(
                            f"  round {tag:>3} {op.key:<28} {name:<6}"
                            f" 1 thread {_ms(median(serial))}"
                            f"  {args.threads} threads {_ms(median(loaded))} {rate:7.0f}/s"
                            + ("  (warm-up, not counted)" if warmup else ""),
                            flush=True,
                        )
        setup.load.append(os.getloadavg()[0])
    except ClientError as exc:
        raise BenchError(f"the service refused a call: {exc}") from exc
    finally:
        try:
            stop_processes(bare)
        finally:
            service.down()
    return results, setup


# -- Report ----------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f} ms"


def _ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:6.2f}x" if denominator > 0 else "    inf"


def report(results: Results, setup: Setup, args: argparse.Namespace) -> None:
    print()
    print(
        "API calls through Cacheyard vs. a bare Starlette/uvicorn app answering the same bytes"
        f"\n{args.rounds} rounds (+{args.warmup} warm-up); per round, side and operation: "
        f"{args.calls} calls from 1 thread, then {args.threads} threads x {args.thread_calls} "
        f"calls; {args.clusters} Memcached clusters exist"
    )
    print(
        f"Python {platform.python_version()}, boto3 {version('boto3')}, "
        f"botocore {version('botocore')}, uvicorn {version('uvicorn')}, "
        f"starlette {version('starlette')}, {os.cpu_count()} CPUs, {platform.machine()}"
    )
    print(
        f"load average (1 min) {setup.load[0]:.2f} when the rounds started, "
        f"{setup.load[-1]:.2f} when they ended; "
        f"{args.clusters} clusters created and available in {setup.clusters_seconds:.1f} s"
    )
    print(
        "response bytes: "
        + ", ".join(f"{op.key} {setup.sizes.get(op.key, 0)}" for op in OPERATIONS)
    )

    print()
    print("1 thread, latency per call (median and p90 of every call)")
    sub = (
        f"{'operation':<28} {'Cacheyard':>10} {'p90':>10}   {'bare':>10} {'p90':>10}   "
        f"{'ratio':>7} {'added':>10}"
    )
    print(sub)
    print("-" * len(sub))
    for op in OPERATIONS:
        cy = results[(op.key, ADMIN)].serial
        floor = results[(op.key, BARE)].serial
        print(
            f"{op.key:<28} {_ms(median(cy)):>10} {_ms(percentile(cy, 0.9)):>10}   "
            f"{_ms(median(floor)):>10} {_ms(percentile(floor, 0.9)):>10}   "
            f"{_ratio(median(cy), median(floor)):>7} {_ms(median(cy) - median(floor)):>10}"
        )

    print()
    print(
        f"{args.threads} threads: calls per second (median of rounds) and latency per call "
        "(median of every call)"
    )
    sub = (
        f"{'operation':<28} {'Cacheyard':>10} {'latency':>10}   {'bare':>10} {'latency':>10}   "
        f"{'cy/bare':>7}"
    )
    print(sub)
    print("-" * len(sub))
    for op in OPERATIONS:
        cy_samples, floor_samples = results[(op.key, ADMIN)], results[(op.key, BARE)]
        cy_rate, floor_rate = median(cy_samples.rates), median(floor_samples.rates)
        print(
            f"{op.key:<28} {cy_rate:>8.0f}/s {_ms(median(cy_samples.loaded)):>10}   "
            f"{floor_rate:>8.0f}/s {_ms(median(floor_samples.loaded)):>10}   "
            f"{_ratio(cy_rate, floor_rate):>7}"
        )

    print()
    print(
        f"Authorization: {READER} (elasticache:Describe*, iam:GetUser on itself) vs. admin "
        "(AdministratorAccess), both through Cacheyard"
    )
    sub = (
        f"{'operation':<28} {'admin':>10} {'reader':>10} {'ratio':>7}   "
        f"{f'admin {args.threads}t':>10} {f'reader {args.threads}t':>10} {'ratio':>7}"
    )
    print(sub)
    print("-" * len(sub))
    for op in OPERATIONS:
        admin, reader = results[(op.key, ADMIN)], results[(op.key, READ_ONLY)]
        admin_rate, reader_rate = median(admin.rates), median(reader.rates)
        print(
            f"{op.key:<28} {_ms(median(admin.serial)):>10} {_ms(median(reader.serial)):>10} "
            f"{_ratio(median(reader.serial), median(admin.serial)):>7}   "
            f"{admin_rate:>8.0f}/s {reader_rate:>8.0f}/s {_ratio(reader_rate, admin_rate):>7}"
        )

    print()
    added = [
        median(results[(op.key, ADMIN)].serial) - median(results[(op.key, BARE)].serial)
        for op in OPERATIONS
    ]
    print(
        "Cacheyard adds "
        + ", ".join(
            f"{seconds * 1000:.2f} ms ({op.key})"
            for op, seconds in zip(OPERATIONS, added, strict=True)
        )
        + " per call over the HTTP floor (1 thread, medians)"
    )


# -- Command line ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time API calls through Cacheyard against a bare Starlette/uvicorn app."
    )
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument(
        "--warmup", type=int, default=1, help="rounds run first and not counted (default 1)"
    )
    parser.add_argument(
        "--calls",
        type=int,
        default=100,
        help="calls from one thread per round, side and operation (default 100)",
    )
    parser.add_argument("--threads", type=int, default=8, help="concurrent threads (default 8)")
    parser.add_argument(
        "--thread-calls",
        type=int,
        default=25,
        help="calls per thread per round, side and operation (default 25)",
    )
    parser.add_argument(
        "--clusters",
        type=int,
        default=50,
        help="Memcached clusters existing while DescribeCacheClusters is timed (default 50)",
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=0.05,
        help="seconds between describe calls while the clusters are created (default 0.05)",
    )
    parser.add_argument(
        "--address-base",
        type=int,
        default=None,
        help="the service uses 127.<base>.0.0/16 (default: the first free one from 150)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (logs, data)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print every round")
    # The bare server's own entry point (this script, run by itself in a subprocess).
    parser.add_argument("--serve-bare", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare is not None:
        return args
    if min(args.rounds, args.calls, args.threads, args.thread_calls) < 1 or args.warmup < 0:
        parser.error(
            "--rounds, --calls, --threads and --thread-calls must be at least 1, "
            "--warmup at least 0"
        )
    if not 0 <= args.clusters <= 100 or args.poll <= 0:
        parser.error("--clusters must be within 0-100 (one page of Describe), --poll positive")
    if args.address_base is None:
        args.address_base = free_base()
        if args.address_base is None:
            parser.error("every loopback /16 has a listener: give --address-base")
    elif not 1 <= args.address_base <= 254:
        parser.error("--address-base must be within 1-254")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_bare is not None:
        serve_bare(args.serve_bare, args.port)
        return 0
    if args.clusters and missing_binaries("memcached"):
        return 2
    outcome = in_work_dir("api", args.keep, lambda work_dir: run(args, work_dir))
    if outcome is None:
        return 1
    report(*outcome, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
