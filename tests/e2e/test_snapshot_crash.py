"""SIGKILL of the control plane while a snapshot is being taken.

The node's BGSAVE is made slow and deterministic with ``rdb-key-save-delay``
(microseconds per key: 1,500 keys x 1.5 ms, over two seconds), so the kill
lands where the test wants it: right after the request, in the middle of the
BGSAVE, or right after it (when the control plane hashes and publishes the
90 MB file). The engines keep running; the service is started again on the
same data directory. The snapshot must then end ``available`` - its files
matching the manifest, redis-check-rdb accepting them and a restore from it
holding every key - or ``failed`` with an event saying why; never available
with a partial file, and nothing may be left in DATA/snapshots/.staging.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from service_helpers import Service, describe, messages, wait_available, wait_for

pytestmark = pytest.mark.timeout(120)

NODE_TYPE = "cache.m5.large"
BIG_KEYS = 1500
BIG_VALUE = 60_000  # incompressible: the RDB is ~90 MB, its SHA-256 takes a moment
SAVE_DELAY_US = 1500  # per key: the BGSAVE takes about (BIG_KEYS + small keys) x 1.5 ms
FAR_MS = 2 * 3600 * 1000

# Per key of one SCAN step: the key, then "sha1(DUMP payload) PEXPIRETIME".
DIGEST_STEP = """
local reply = redis.call('SCAN', ARGV[1], 'COUNT', 100)
local out = {reply[1]}
for _, key in ipairs(reply[2]) do
  out[#out + 1] = key
  out[#out + 1] = redis.sha1hex(redis.call('DUMP', key)) .. ' ' .. redis.call('PEXPIRETIME', key)
end
return out
"""


def node(cluster: dict[str, Any]) -> redis.Redis:
    endpoint = cluster["CacheNodes"][0]["Endpoint"]
    return redis.Redis(host=endpoint["Address"], port=endpoint["Port"], socket_timeout=30)


def digests(client: redis.Redis) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    cursor = b"0"
    while True:
        reply = client.eval(DIGEST_STEP, 0, cursor)
        cursor = reply[0]
        pairs = iter(reply[1:])
        found.update(zip(pairs, pairs, strict=True))
        if cursor == b"0":
            return found


def fill(client: redis.Redis) -> None:
    far = int(client.time()[0]) * 1000 + FAR_MS
    pipe = client.pipeline(transaction=False)
    for n in range(BIG_KEYS):
        pipe.set(f"big:{n}", os.urandom(BIG_VALUE))
        if n % 4 == 0:
            pipe.pexpireat(f"big:{n}", far + n)
    pipe.hset("small:hash", mapping={f"f{n}": n for n in range(20)})
    pipe.rpush("small:list", *range(50))
    pipe.zadd("small:zset", {f"m{n}": n / 3 for n in range(30)})
    pipe.sadd("small:intset", *range(40))
    pipe.pexpireat("small:zset", far)
    pipe.execute()


def snapshot_status(ec: BaseClient, name: str) -> str | None:
    try:
        (found,) = ec.describe_snapshots(SnapshotName=name)["Snapshots"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "SnapshotNotFoundFault":
            return None
        raise
    return str(found["SnapshotStatus"])


def bgsave_running(client: redis.Redis) -> bool:
    return bool(client.info("persistence")["rdb_bgsave_in_progress"])


def store_entries(service: Service) -> dict[str, list[str]]:
    """What is in the snapshot store: each directory and the files in it."""
    root = service.data_dir / "snapshots"
    if not root.exists():
        return {}
    return {
        entry.name: sorted(p.name for p in entry.rglob("*"))
        for entry in root.iterdir()
        if entry.is_dir()
    }


def assert_verified(folder: Path, name: str) -> None:
    """The published snapshot is whole: one RDB, its size and SHA-256 as the manifest says."""
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["name"] == name
    (entry,) = manifest["files"]
    rdb = folder / entry["file"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(["manifest.json", rdb.name])
    assert rdb.stat().st_size == entry["size"]
    digest = hashlib.sha256()
    with rdb.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == entry["sha256"]
    checked = subprocess.run(["redis-check-rdb", str(rdb)], capture_output=True, timeout=60)
    assert checked.returncode == 0, checked.stdout[-2000:]


def kill_at(service: Service, client: redis.Redis, point: str) -> dict[str, list[str]]:
    """Kill the control plane at ``point``; what the snapshot store held at that moment."""
    if point in ("during-bgsave", "after-bgsave"):
        wait_for(lambda: bgsave_running(client), timeout=10, interval=0.005)
    if point == "during-bgsave":
        time.sleep(0.8)  # a third into the save; where the kill lands is the point, not a wait
        assert bgsave_running(client)
    if point == "after-bgsave":
        wait_for(lambda: not bgsave_running(client), timeout=30, interval=0.002)
    if point == "during-publish":
        # the RDB is being linked and hashed into a staging directory
        staging = service.data_dir / "snapshots" / ".staging"
        wait_for(lambda: staging.is_dir() and any(staging.iterdir()), timeout=30, interval=0.001)
    service.kill()
    if point == "during-bgsave":
        assert bgsave_running(client), "the kill was meant to land inside the BGSAVE"
    return store_entries(service)


@pytest.mark.parametrize(
    ("point", "final"),
    [
        ("requested", False),
        ("during-bgsave", False),
        ("after-bgsave", False),
        ("during-publish", False),
        ("during-bgsave", True),
    ],
    ids=[
        "right-after-request",
        "during-bgsave",
        "right-after-bgsave",
        "during-publish",
        "final-during-bgsave",
    ],
)
def test_kill_while_snapshotting_ends_available_and_whole_or_failed(
    fresh_service: Service, point: str, final: bool
) -> None:
    ec = fresh_service.client()
    ec.create_cache_cluster(
        CacheClusterId="crash-src", Engine="redis", CacheNodeType=NODE_TYPE, NumCacheNodes=1
    )
    cluster = wait_available(ec, "crash-src")
    client = node(cluster)
    fill(client)
    expected = digests(client)
    run_id = client.info("server")["run_id"]
    client.config_set("rdb-key-save-delay", SAVE_DELAY_US)

    if final:
        ec.delete_cache_cluster(CacheClusterId="crash-src", FinalSnapshotIdentifier="crash-snap")
    else:
        ec.create_snapshot(CacheClusterId="crash-src", SnapshotName="crash-snap")
    at_kill = kill_at(fresh_service, client, point)
    # A BGSAVE still running goes on in the engine; the next one need not be slow.
    client.config_set("rdb-key-save-delay", 0)
    fresh_service.start()
    ec = fresh_service.client()

    status = wait_for(
        lambda: (s := snapshot_status(ec, "crash-snap")) in ("available", "failed") and s,
        timeout=60,
    )
    folder = fresh_service.data_dir / "snapshots" / "crash-snap"
    staging = fresh_service.data_dir / "snapshots" / ".staging"
    assert not staging.exists() or list(staging.iterdir()) == [], (at_kill, status)
    print(f"{point}: store at the kill {at_kill}; then {status}")
    source_events = messages(ec, "crash-src")
    if status == "failed":
        assert not folder.exists(), at_kill
        assert any(
            m.startswith("Snapshot failed for snapshot with ID 'crash-snap'") for m in source_events
        )
    else:
        assert_verified(folder, "crash-snap")
        assert set(store_entries(fresh_service)) <= {"crash-snap", ".staging"}
        ec.create_cache_cluster(CacheClusterId="crash-back", SnapshotName="crash-snap")
        restored = node(wait_available(ec, "crash-back"))
        try:
            got = digests(restored)
        finally:
            restored.close()
        assert len(got) == len(expected)
        assert got == expected

    if final:
        ec.get_waiter("cache_cluster_deleted").wait(
            CacheClusterId="crash-src", WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        assert status == "available", "the final snapshot failed and the cluster is gone"
    else:
        # the source was adopted, not restarted: same process, same data
        assert describe(ec, "crash-src")["CacheClusterStatus"] == "available"
        assert client.info("server")["run_id"] == run_id
        assert digests(client) == expected
    client.close()
