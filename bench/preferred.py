"""TransitEncryptionMode preferred: what the front costs while a group migrates to TLS.

In `preferred` mode every connection goes through a small front per node
(engines/tls_front.py, ADR 16) that relays it, by its first byte, to Redis'
internal plain-text or TLS port. This bench measures that cost in one run,
against the same groups without a front, all created through Cacheyard:

- plain text: a plain-text group (no front) against a `preferred` group's
  primary endpoint reached in plain text;
- TLS: a `required` group (no front) against the `preferred` group reached
  over TLS.

Each run is ``redis-benchmark [--tls --cacert CA] -t set,get -n N -c 50 -q``,
unpipelined and with ``-P 16``, the sides alternating which goes first;
medians over ``--rounds``. It also times the migration of a group holding
``--keys`` keys from plain text to `preferred` and from `preferred` to
`required` (two members, restarted one at a time), against the time the same
group takes to be created, as a scale.

    .venv/bin/python bench/preferred.py --rounds 3
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench_helpers import (
    BenchError,
    Service,
    delete_group,
    free_base,
    in_work_dir,
    median,
    missing_binaries,
    poll_until,
)

PORT = 6379
_RESULT = re.compile(r"^([A-Z]+): ([0-9.]+) requests per second")


def benchmark(address: str, ca: str | None, requests: int, pipeline: int) -> dict[str, float]:
    argv = ["redis-benchmark", "-h", address, "-p", str(PORT), "-t", "set,get"]
    argv += ["-n", str(requests), "-c", "50", "-q", "-P", str(pipeline)]
    if ca is not None:
        argv += ["--tls", "--cacert", ca]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    results = {}
    for line in re.split(r"[\r\n]", done.stdout):
        match = _RESULT.match(line.strip())
        if match:
            results[match.group(1)] = float(match.group(2))
    if done.returncode != 0 or set(results) != {"SET", "GET"}:
        raise BenchError(f"{' '.join(argv)} failed: {done.stdout[-300:]} {done.stderr[-300:]}")
    return results


def available(client: Any, group_id: str) -> dict[str, Any] | None:
    group = client.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][0]
    return dict(group) if group["Status"] == "available" else None


def wait_available(client: Any, group_id: str, timeout: float = 300) -> float:
    return poll_until(lambda: available(client, group_id) is not None, timeout, 0.05, group_id)


def endpoint(client: Any, group_id: str) -> str:
    group = available(client, group_id)
    assert group is not None
    return str(group["NodeGroups"][0]["PrimaryEndpoint"]["Address"])


def create(client: Any, group_id: str, **tls: Any) -> float:
    started = time.monotonic()
    client.create_replication_group(
        ReplicationGroupId=group_id,
        ReplicationGroupDescription="bench",
        Engine="redis",
        CacheNodeType="cache.m5.large",
        NumCacheClusters=2,
        AutomaticFailoverEnabled=True,
        **tls,
    )
    wait_available(client, group_id)
    return time.monotonic() - started


def migrate(client: Any, group_id: str, **change: Any) -> float:
    started = time.monotonic()
    client.modify_replication_group(ReplicationGroupId=group_id, ApplyImmediately=True, **change)
    poll_until(lambda: available(client, group_id) is None, 10, 0.02, f"{group_id} modifying")
    wait_available(client, group_id)
    return time.monotonic() - started


def fill(address: str, keys: int) -> None:
    lines = "".join(f"SET key:{i} {'x' * 100}\n" for i in range(keys))
    subprocess.run(
        ["redis-cli", "-h", address, "--pipe"],
        input=lines,
        text=True,
        check=True,
        timeout=120,
        capture_output=True,
    )


def run(args: argparse.Namespace, work_dir: Path) -> None:
    base = free_base()
    if base is None:
        raise BenchError("no free loopback range")
    service = Service(work_dir, base)
    service.start()
    try:
        client = service.client()
        ca = str(service.data_dir / "ca" / "ca.crt")
        create(client, "b-plain")
        create(client, "b-required", TransitEncryptionEnabled=True)
        create(
            client, "b-preferred", TransitEncryptionEnabled=True, TransitEncryptionMode="preferred"
        )
        sides = {
            "plain text": [
                ("no front", endpoint(client, "b-plain"), None),
                ("front", endpoint(client, "b-preferred"), None),
            ],
            "TLS": [
                ("no front", endpoint(client, "b-required"), ca),
                ("front", endpoint(client, "b-preferred"), ca),
            ],
        }
        print(f"redis-benchmark -t set,get -n {args.requests} -c 50, {args.rounds} rounds")
        print(f"{'clients':12} {'test':8} {'no front':>12} {'front':>12} {'ratio':>7}")
        for kind, pair in sides.items():
            for pipeline in (1, 16):
                runs: dict[str, dict[str, list[float]]] = {"no front": {}, "front": {}}
                for round_ in range(args.rounds):
                    order = pair if round_ % 2 == 0 else list(reversed(pair))
                    for label, address, cert in order:
                        for test, value in benchmark(
                            address, cert, args.requests, pipeline
                        ).items():
                            runs[label].setdefault(test, []).append(value)
                for test in ("SET", "GET"):
                    direct, front = median(runs["no front"][test]), median(runs["front"][test])
                    print(
                        f"{kind:12} {test} P{pipeline:<5} {direct:12,.0f} {front:12,.0f} "
                        f"{front / direct:7.3f}"
                    )
        for group_id in ("b-required", "b-preferred"):
            delete_group(client, group_id)
        fill(endpoint(client, "b-plain"), args.keys)
        made = create(client, "b-scale")
        to_preferred = migrate(
            client, "b-plain", TransitEncryptionEnabled=True, TransitEncryptionMode="preferred"
        )
        to_required = migrate(client, "b-plain", TransitEncryptionMode="required")
        print(
            f"migration of 2 members holding {args.keys:,} keys: plain -> preferred "
            f"{to_preferred:.1f} s, preferred -> required {to_required:.1f} s "
            f"(creating such a group: {made:.1f} s; ratios {to_preferred / made:.1f}x, "
            f"{to_required / made:.1f}x)"
        )
    finally:
        service.down()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    if missing_binaries("redis-server", "redis-benchmark", "redis-cli"):
        return 2
    done = in_work_dir("preferred", args.keep, lambda work_dir: run(args, work_dir) or True)
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
