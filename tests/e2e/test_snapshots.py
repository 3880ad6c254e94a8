"""Snapshots through boto3 against a real service: take, describe, copy, export,
delete and restore, on real redis-server processes.

Every restore is checked key by key: the same keys (SCAN), each with the same
value (its DUMP payload) and the same expiry (PEXPIRETIME, absolute, so a TTL
that survived a restore is exactly the one that was set). Refused requests are
checked for AWS's exact error code and HTTP status, and for leaving nothing
behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from group_helpers import (
    create_group,
    describe_group,
    error_of,
    node_group,
    primary_address,
    primary_id,
    read_endpoints,
    wait_group_available,
    wait_group_gone,
)
from service_helpers import Service, describe, messages, wait_available, wait_for

from cacheyard.domain.snapshots import MAX_NAME_LENGTH

pytestmark = pytest.mark.timeout(120)

NODE_TYPE = "cache.t3.micro"
SOURCE = "snap-src"  # the Redis cluster most snapshots here are taken of
BASE = "snap-base"  # its snapshot, taken once, never changed
GROUP = "snap-rg"
MEMCACHED = "snap-mc"
BUCKET = "snap-bucket"
KEYS = 3000
FAR_MS = 2 * 3600 * 1000  # expiries two hours ahead: nothing expires during the run

Contents = dict[bytes, tuple[Any, int]]


# ---- data -----------------------------------------------------------------------------------


def connect(address: str, port: int = 6379) -> redis.Redis:
    return redis.Redis(host=address, port=port, socket_timeout=10)


def fill(client: redis.Redis, prefix: str, count: int = KEYS) -> None:
    """Strings (raw and integer), hashes, lists, sets, sorted sets, binary keys and a few
    big containers (their hashtable/skiplist encodings); every third key expires, via
    PEXPIREAT, two hours from now."""
    far = int(time.time() * 1000) + FAR_MS
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        kind = i % 6
        key = f"{prefix}:{kind}:{i}"
        if kind == 0:
            pipe.set(key, f"value-{i}-" * (i % 9 + 1))
        elif kind == 1:
            pipe.set(key, i * 1_000_003 - 7)
        elif kind == 2:
            pipe.hset(key, mapping={f"f{j}": f"{i}/{j}" for j in range(i % 5 + 1)})
        elif kind == 3:
            pipe.rpush(key, *[f"e{i}.{j}" for j in range(i % 9 + 1)])
        elif kind == 4:
            pipe.sadd(key, *[f"m{(i + j) % 97}" for j in range(i % 6 + 1)])
        else:
            pipe.zadd(key, {f"z{j}": j * 1.25 - i for j in range(i % 7 + 1)})
        if i % 3 == 0:
            pipe.pexpireat(key, far + i)
    pipe.set(f"{prefix}:bin:\x00\xff".encode("latin-1"), bytes(range(256)))
    pipe.hset(f"{prefix}:big-hash", mapping={f"field-{j}": "x" * (j % 50) for j in range(400)})
    pipe.sadd(f"{prefix}:big-intset", *range(0, 3000, 3))
    pipe.zadd(f"{prefix}:big-zset", {f"member-{j}": j / 7 for j in range(300)})
    pipe.rpush(f"{prefix}:big-list", *[f"item-{j}" * 20 for j in range(2000)])
    pipe.pexpireat(f"{prefix}:big-list", far + 123_456)
    pipe.execute()


def all_keys(client: redis.Redis) -> list[bytes]:
    found: set[bytes] = set()
    cursor = 0
    while True:
        cursor, batch = client.scan(cursor=cursor, count=1000)
        found.update(cast(list[bytes], batch))
        if cursor == 0:
            return sorted(found)


def contents(client: redis.Redis) -> Contents:
    """Every key with (its DUMP payload, its PEXPIRETIME).

    A hashtable-encoded set or hash is DUMPed in the order of its hash table, which
    follows the process's random hash seed: for those the sorted members (and
    field/value pairs) stand for the payload instead.
    """
    keys = all_keys(client)
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.object("encoding", key)
        pipe.dump(key)
        pipe.pexpiretime(key)  # type: ignore[arg-type]  # redis-py annotates str; any key works
    replies = pipe.execute()
    found: Contents = {}
    for n, key in enumerate(keys):
        encoding, payload, expires = replies[3 * n : 3 * n + 3]
        if encoding == b"hashtable":
            kind = client.type(key)
            if kind == b"set":
                payload = ("set", sorted(client.smembers(key)))
            else:
                payload = ("hash", sorted(client.hgetall(key).items()))
        found[key] = (payload, expires)
    return found


def assert_same_data(restored: Contents, expected: Contents) -> None:
    assert len(restored) == len(expected)
    assert set(restored) == set(expected)
    wrong = [k for k in expected if restored[k] != expected[k]]
    assert wrong == [], f"{len(wrong)} keys differ, e.g. {wrong[:5]}"


# ---- the API --------------------------------------------------------------------------------


def snapshot(ec: BaseClient, name: str, **extra: Any) -> dict[str, Any]:
    (found,) = ec.describe_snapshots(SnapshotName=name, **extra)["Snapshots"]
    return dict(found)


def wait_snapshot(ec: BaseClient, name: str, timeout: float = 30) -> dict[str, Any]:
    """Poll until the snapshot leaves ``creating``; it must then be available."""

    def settled() -> dict[str, Any] | None:
        found = snapshot(ec, name)
        return None if found["SnapshotStatus"] == "creating" else found

    found: dict[str, Any] = wait_for(settled, timeout=timeout)
    assert found["SnapshotStatus"] == "available", found
    return found


def wait_snapshot_gone(ec: BaseClient, name: str) -> None:
    def gone() -> bool:
        try:
            snapshot(ec, name)
        except ClientError as exc:
            code: str = exc.response["Error"]["Code"]
            return code == "SnapshotNotFoundFault"
        return False

    wait_for(gone, timeout=20)


def wait_cluster_settled(ec: BaseClient, cluster_id: str) -> tuple[dict[str, Any], list[str]]:
    """The cluster once available or restore-failed, and the statuses seen on the way."""
    seen: list[str] = []

    def settled() -> dict[str, Any] | None:
        cluster = describe(ec, cluster_id)
        status = cluster["CacheClusterStatus"]
        if not seen or seen[-1] != status:
            seen.append(status)
        return cluster if status in ("available", "restore-failed") else None

    cluster: dict[str, Any] = wait_for(settled, timeout=40, interval=0.02)
    return cluster, seen


def node_client(cluster: dict[str, Any]) -> redis.Redis:
    endpoint = cluster["CacheNodes"][0]["Endpoint"]
    return connect(endpoint["Address"], endpoint["Port"])


def refused(call: Callable[..., Any], **params: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as exc:
        call(**params)
    code, status = error_of(exc)
    return code, status, exc.value.response["Error"]["Message"]


def error_of_response(exc: ClientError) -> tuple[str, int]:
    return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]


def group_events(ec: BaseClient, group_id: str) -> list[str]:
    found = ec.describe_events(SourceType="replication-group", SourceIdentifier=group_id)
    return [e["Message"] for e in found["Events"]]


def snapshot_names(ec: BaseClient) -> set[str]:
    names: set[str] = set()
    for page in ec.get_paginator("describe_snapshots").paginate():
        names.update(s["SnapshotName"] for s in page["Snapshots"])
    return names


def cluster_ids(ec: BaseClient) -> set[str]:
    return {c["CacheClusterId"] for c in ec.describe_cache_clusters()["CacheClusters"]}


def delete_cluster(ec: BaseClient, cluster_id: str) -> None:
    ec.delete_cache_cluster(CacheClusterId=cluster_id)
    ec.get_waiter("cache_cluster_deleted").wait(
        CacheClusterId=cluster_id, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )


def bgsave_running(client: redis.Redis) -> bool:
    return bool(client.info("persistence")["rdb_bgsave_in_progress"])


# ---- the store on disk ----------------------------------------------------------------------


def snapshot_dir(service: Service, name: str) -> Path:
    return service.data_dir / "snapshots" / name


def verified_manifest(service: Service, name: str) -> dict[str, Any]:
    """The snapshot's manifest, once its one RDB file matches it and redis-check-rdb accepts it."""
    folder = snapshot_dir(service, name)
    manifest: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
    assert manifest["name"] == name
    assert manifest["engine"] == "redis"
    assert manifest["num_node_groups"] == 1
    (entry,) = manifest["files"]
    assert entry["node_group_id"] == "0001"
    assert entry["file"] == f"{name}-0001.rdb"
    assert sorted(p.name for p in folder.iterdir()) == sorted(["manifest.json", entry["file"]])
    data = (folder / entry["file"]).read_bytes()
    assert len(data) == entry["size"]
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert data[:5] == b"REDIS"
    checked = subprocess.run(
        ["redis-check-rdb", str(folder / entry["file"])], capture_output=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout
    return manifest


def no_staging_leftovers(service: Service) -> bool:
    staging = service.data_dir / "snapshots" / ".staging"
    return not staging.exists() or not any(staging.iterdir())


def flip_byte(path: Path, offset: int) -> None:
    """Flip one byte where the file lies (as bit rot would)."""
    with path.open("r+b") as file:
        file.seek(offset)
        byte = file.read(1)
        file.seek(offset)
        file.write(bytes([byte[0] ^ 0x5A]))


# ---- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def source(ec: BaseClient) -> dict[str, Any]:
    """A single-node Redis cluster full of varied data; nothing writes to it afterwards."""
    ec.create_cache_cluster(
        CacheClusterId=SOURCE, Engine="redis", CacheNodeType=NODE_TYPE, NumCacheNodes=1
    )
    cluster = wait_available(ec, SOURCE)
    client = node_client(cluster)
    fill(client, "src")
    client.close()
    return cluster


@pytest.fixture(scope="module")
def expected(source: dict[str, Any]) -> Contents:
    client = node_client(source)
    try:
        found = contents(client)
    finally:
        client.close()
    assert len(found) == KEYS + 5
    assert sum(1 for _, expires in found.values() if expires > 0) == KEYS // 3 + 1
    return found


@pytest.fixture(scope="module")
def base(ec: BaseClient, source: dict[str, Any], expected: Contents) -> dict[str, Any]:
    """CreateSnapshot's answer for BASE; the snapshot is available when this returns."""
    answer = dict(ec.create_snapshot(CacheClusterId=SOURCE, SnapshotName=BASE)["Snapshot"])
    wait_snapshot(ec, BASE)
    return answer


@pytest.fixture(scope="module")
def memcached(ec: BaseClient) -> str:
    ec.create_cache_cluster(
        CacheClusterId=MEMCACHED, Engine="memcached", CacheNodeType=NODE_TYPE, NumCacheNodes=1
    )
    wait_available(ec, MEMCACHED)
    return MEMCACHED


@pytest.fixture(scope="module")
def group(ec: BaseClient) -> Iterator[dict[str, Any]]:
    """A primary and a replica holding the same data; deleted with a final snapshot."""
    create_group(ec, GROUP, members=2, automatic_failover=True, multi_az=False)
    found = wait_group_available(ec, GROUP)
    client = connect(primary_address(found))
    fill(client, "rg", 600)
    assert client.execute_command("WAIT", 1, 5000) == 1
    client.close()
    yield found
    ec.delete_replication_group(ReplicationGroupId=GROUP, FinalSnapshotIdentifier="snap-rg-final")
    wait_group_gone(ec, GROUP)


# ---- tests ----------------------------------------------------------------------------------


def test_create_snapshot_of_a_cluster_publishes_a_verified_rdb(
    service: Service, ec: BaseClient, source: dict[str, Any], base: dict[str, Any]
) -> None:
    assert base["SnapshotName"] == BASE
    assert base["SnapshotStatus"] == "creating"
    assert base["SnapshotSource"] == "manual"
    assert base["CacheClusterId"] == SOURCE
    assert base["Engine"] == "redis"
    assert base["CacheNodeType"] == NODE_TYPE
    assert "ReplicationGroupId" not in base

    found = snapshot(ec, BASE)
    assert found["SnapshotStatus"] == "available"
    assert found["ARN"].endswith(f":snapshot:{BASE}")
    assert found["EngineVersion"] == source["EngineVersion"]
    assert found["NumCacheNodes"] == 1
    assert found["PreferredAvailabilityZone"] == source["PreferredAvailabilityZone"]
    (node,) = found["NodeSnapshots"]
    assert node["CacheClusterId"] == SOURCE
    assert node["CacheNodeId"] == "0001"
    assert node["NodeGroupId"] == "0001"
    assert node["CacheSize"].endswith(" MB")
    assert node["SnapshotCreateTime"] >= found["CacheClusterCreateTime"]
    assert "NodeGroupConfiguration" not in node

    manifest = verified_manifest(service, BASE)
    assert manifest["source"] == {
        "cache_cluster_id": SOURCE,
        "replication_group_id": None,
        "taken_from": SOURCE,
    }
    assert manifest["node_type"] == NODE_TYPE
    assert no_staging_leftovers(service)
    events = messages(ec, SOURCE)
    started = f"Snapshot started for snapshot with ID '{BASE}' of cache cluster with ID '{SOURCE}'"
    succeeded = (
        f"Snapshot succeeded for snapshot with ID '{BASE}' of cache cluster with ID '{SOURCE}'"
    )
    assert started in events and succeeded in events
    assert events.index(started) < events.index(succeeded)
    # the source is not disturbed by being snapshotted
    assert describe(ec, SOURCE)["CacheClusterStatus"] == "available"


def test_restore_a_cluster_from_snapshot_name_has_every_key_value_and_ttl(
    ec: BaseClient, base: dict[str, Any], expected: Contents
) -> None:
    # Engine and CacheNodeType come from the snapshot when not given.
    answer = ec.create_cache_cluster(CacheClusterId="snap-restored", SnapshotName=BASE)
    assert answer["CacheCluster"]["CacheClusterStatus"] == "creating"
    cluster, seen = wait_cluster_settled(ec, "snap-restored")
    assert cluster["CacheClusterStatus"] == "available", seen
    assert set(seen) <= {"creating", "restoring", "available"}
    assert cluster["Engine"] == "redis"
    assert cluster["CacheNodeType"] == NODE_TYPE
    assert cluster["NumCacheNodes"] == 1

    client = node_client(cluster)
    try:
        assert client.dbsize() == len(expected)
        assert_same_data(contents(client), expected)
        # a restored cache is a normal, writable one
        client.set("after-restore", "yes")
        assert client.get("after-restore") == b"yes"
    finally:
        client.close()
    events = messages(ec, "snap-restored")
    assert f"Restore from snapshot {BASE} started" in events
    assert f"Restore from snapshot {BASE} completed" in events
    delete_cluster(ec, "snap-restored")


def test_export_to_a_bucket_then_restore_from_snapshot_arns(
    service: Service, ec: BaseClient, base: dict[str, Any], expected: Contents
) -> None:
    before = snapshot_names(ec)
    answer = ec.copy_snapshot(
        SourceSnapshotName=BASE, TargetSnapshotName="exported", TargetBucket=BUCKET
    )
    assert answer["Snapshot"]["SnapshotName"] == "exported"
    bucket = service.data_dir / "buckets" / BUCKET
    rdb = bucket / "exported-0001.rdb"
    sidecar = bucket / "exported-0001.rdb.sha256"
    assert sorted(p.name for p in bucket.iterdir()) == [rdb.name, sidecar.name]
    manifest = verified_manifest(service, BASE)
    data = rdb.read_bytes()
    assert hashlib.sha256(data).hexdigest() == manifest["files"][0]["sha256"]
    assert sidecar.read_text() == f"{manifest['files'][0]['sha256']}  {rdb.name}\n"
    # an export is a copy that left the store: its own inode, no new snapshot record
    stored = snapshot_dir(service, BASE) / f"{BASE}-0001.rdb"
    assert rdb.stat().st_ino != stored.stat().st_ino
    assert snapshot_names(ec) == before

    ec.create_cache_cluster(
        CacheClusterId="snap-from-arn",
        Engine="redis",
        CacheNodeType=NODE_TYPE,
        SnapshotArns=[f"arn:aws:s3:::{BUCKET}/{rdb.name}"],
    )
    cluster, seen = wait_cluster_settled(ec, "snap-from-arn")
    assert cluster["CacheClusterStatus"] == "available", (seen, messages(ec, "snap-from-arn"))
    client = node_client(cluster)
    try:
        assert_same_data(contents(client), expected)
    finally:
        client.close()
    events = messages(ec, "snap-from-arn")
    assert any(m.startswith("Restore from snapshot") and m.endswith("completed") for m in events)
    assert any(rdb.name in m for m in events)
    delete_cluster(ec, "snap-from-arn")
    # the exported file is the user's: a restore neither moves nor changes it
    assert rdb.read_bytes() == data


def test_copy_snapshot_is_a_new_snapshot_that_outlives_its_source(
    service: Service, ec: BaseClient, source: dict[str, Any], base: dict[str, Any]
) -> None:
    ec.create_snapshot(CacheClusterId=SOURCE, SnapshotName="snap-orig")
    original = wait_snapshot(ec, "snap-orig")
    answer = ec.copy_snapshot(SourceSnapshotName="snap-orig", TargetSnapshotName="snap-copy")
    assert answer["Snapshot"]["SnapshotName"] == "snap-copy"
    assert answer["Snapshot"]["SnapshotStatus"] == "creating"
    copied = wait_snapshot(ec, "snap-copy")
    assert copied["ARN"].endswith(":snapshot:snap-copy")
    assert copied["SnapshotSource"] == "manual"
    for field in ("CacheClusterId", "CacheNodeType", "Engine", "EngineVersion", "NumCacheNodes"):
        assert copied[field] == original[field], field
    assert copied["NodeSnapshots"][0]["CacheSize"] == original["NodeSnapshots"][0]["CacheSize"]
    assert copied["NodeSnapshots"][0]["CacheClusterId"] == SOURCE
    copy_files = verified_manifest(service, "snap-copy")["files"][0]
    assert copy_files["sha256"] == verified_manifest(service, "snap-orig")["files"][0]["sha256"]

    answer = ec.delete_snapshot(SnapshotName="snap-orig")
    assert answer["Snapshot"]["SnapshotStatus"] == "deleting"
    wait_snapshot_gone(ec, "snap-orig")
    assert not snapshot_dir(service, "snap-orig").exists()
    assert snapshot(ec, "snap-copy")["SnapshotStatus"] == "available"
    assert verified_manifest(service, "snap-copy")["files"][0] == copy_files
    ec.delete_snapshot(SnapshotName="snap-copy")
    wait_snapshot_gone(ec, "snap-copy")
    assert not snapshot_dir(service, "snap-copy").exists()
    assert no_staging_leftovers(service)
    assert refused(ec.delete_snapshot, SnapshotName="snap-copy")[:2] == (
        "SnapshotNotFoundFault",
        404,
    )


def test_a_groups_snapshot_is_taken_from_its_replica(
    service: Service, ec: BaseClient, group: dict[str, Any]
) -> None:
    primary = primary_id(group)
    (replica,) = [m for m in group["MemberClusters"] if m != primary]
    assert describe_group(ec, GROUP)["SnapshottingClusterId"] == replica
    addresses = read_endpoints(group)
    saves = {m: connect(a).info("persistence")["rdb_saves"] for m, a in addresses.items()}

    answer = ec.create_snapshot(ReplicationGroupId=GROUP, SnapshotName="snap-of-rg")
    assert answer["Snapshot"]["ReplicationGroupId"] == GROUP
    assert "CacheClusterId" not in answer["Snapshot"]
    found = wait_snapshot(ec, "snap-of-rg")
    after = {m: connect(a).info("persistence")["rdb_saves"] for m, a in addresses.items()}
    assert after == {replica: saves[replica] + 1, primary: saves[primary]}

    assert found["ReplicationGroupId"] == GROUP
    assert found["ReplicationGroupDescription"] == f"{GROUP} under test"
    assert found["AutomaticFailover"] == "enabled"
    assert found["NumCacheNodes"] == 2
    assert found["NodeSnapshots"][0]["CacheClusterId"] == replica
    manifest = verified_manifest(service, "snap-of-rg")
    assert manifest["source"] == {
        "cache_cluster_id": None,
        "replication_group_id": GROUP,
        "taken_from": replica,
    }
    started = (
        f"Snapshot started for snapshot with ID 'snap-of-rg' of replication group with ID '{GROUP}'"
    )
    assert started in group_events(ec, GROUP)
    shown = snapshot(ec, "snap-of-rg", ShowNodeGroupConfig=True)["NodeSnapshots"][0]
    zones = {
        m["CacheClusterId"]: m["PreferredAvailabilityZone"]
        for m in node_group(group)["NodeGroupMembers"]
    }
    assert shown["NodeGroupConfiguration"] == {
        "NodeGroupId": "0001",
        "Slots": "0-16383",
        "ReplicaCount": 1,
        "PrimaryAvailabilityZone": zones[primary],
        "ReplicaAvailabilityZones": [zones[replica]],
    }

    # Naming a member by CacheClusterId snapshots the group, read from that member.
    ec.create_snapshot(CacheClusterId=primary, SnapshotName="snap-of-member")
    member_snapshot = wait_snapshot(ec, "snap-of-member")
    assert member_snapshot["ReplicationGroupId"] == GROUP
    assert verified_manifest(service, "snap-of-member")["source"]["taken_from"] == primary
    assert member_snapshot["NodeSnapshots"][0]["CacheClusterId"] == primary


def test_a_group_restored_from_its_snapshot_has_the_data_on_every_member(
    ec: BaseClient, group: dict[str, Any]
) -> None:
    primary = connect(primary_address(group))
    try:
        wanted = contents(primary)
    finally:
        primary.close()
    create_group(ec, "snap-rg-back", members=2, multi_az=False, SnapshotName="snap-of-rg")
    restored = wait_group_available(ec, "snap-rg-back", timeout=40)
    for member_id, address in read_endpoints(restored).items():
        client = connect(address)
        try:
            assert_same_data(contents(client), wanted)
        finally:
            client.close()
        assert member_id.startswith("snap-rg-back-")
    events = group_events(ec, "snap-rg-back")
    assert "Restore from snapshot snap-of-rg completed" in events
    ec.delete_replication_group(ReplicationGroupId="snap-rg-back")
    wait_group_gone(ec, "snap-rg-back")


def test_describe_snapshots_filters_and_pages(
    ec: BaseClient, base: dict[str, Any], group: dict[str, Any]
) -> None:
    wait_snapshot(ec, "snap-of-rg")
    copies = [f"snap-page-{n:02d}" for n in range(24)]
    for name in copies:
        ec.copy_snapshot(SourceSnapshotName=BASE, TargetSnapshotName=name)
    for name in copies:
        wait_snapshot(ec, name)

    everything = ec.describe_snapshots(MaxRecords=50)
    names = [s["SnapshotName"] for s in everything["Snapshots"]]
    assert "Marker" not in everything or len(names) == 50
    assert set(copies) | {BASE, "snap-of-rg"} <= set(names)

    pages: list[list[str]] = []
    marker: dict[str, str] = {}
    while True:
        page = ec.describe_snapshots(MaxRecords=20, **marker)
        pages.append([s["SnapshotName"] for s in page["Snapshots"]])
        if "Marker" not in page:
            break
        marker = {"Marker": page["Marker"]}
    assert len(pages) >= 2
    assert all(len(p) == 20 for p in pages[:-1]) and 0 < len(pages[-1]) <= 20
    paged = [name for p in pages for name in p]
    assert len(paged) == len(set(paged))
    assert set(paged) == snapshot_names(ec)
    assert set(names) <= set(paged)

    by_cluster = ec.describe_snapshots(CacheClusterId=SOURCE, MaxRecords=50)["Snapshots"]
    assert {s["CacheClusterId"] for s in by_cluster} == {SOURCE}
    assert set(copies) | {BASE} <= {s["SnapshotName"] for s in by_cluster}
    by_group = ec.describe_snapshots(ReplicationGroupId=GROUP)["Snapshots"]
    assert {s["SnapshotName"] for s in by_group} == {"snap-of-rg", "snap-of-member"}
    assert {s["ReplicationGroupId"] for s in by_group} == {GROUP}

    users = snapshot_names(ec)  # every snapshot here was asked for by a user
    user = ec.get_paginator("describe_snapshots").paginate(SnapshotSource="user")
    assert {s["SnapshotName"] for p in user for s in p["Snapshots"]} == users
    assert ec.describe_snapshots(SnapshotSource="system")["Snapshots"] == []
    # filters combine: a group's snapshot is not one of the cluster's
    assert (
        ec.describe_snapshots(SnapshotName="snap-of-rg", CacheClusterId=SOURCE)["Snapshots"] == []
    )
    assert [
        s["SnapshotName"]
        for s in ec.describe_snapshots(SnapshotName=BASE, SnapshotSource="user")["Snapshots"]
    ] == [BASE]
    # the node group configuration is shown only when asked for
    plain = ec.describe_snapshots(SnapshotName=BASE)["Snapshots"][0]["NodeSnapshots"][0]
    assert "NodeGroupConfiguration" not in plain
    shown = ec.describe_snapshots(SnapshotName=BASE, ShowNodeGroupConfig=True)["Snapshots"][0]
    assert shown["NodeSnapshots"][0]["NodeGroupConfiguration"]["ReplicaCount"] == 0

    for name in copies:
        ec.delete_snapshot(SnapshotName=name)
    for name in copies:
        wait_snapshot_gone(ec, name)


def test_a_snapshot_being_created_cannot_be_deleted_copied_or_restored(
    ec: BaseClient,
) -> None:
    """A slow BGSAVE (rdb-key-save-delay: 2 ms per key, 2000 keys) holds the snapshot
    in ``creating`` for about four seconds; everything below happens inside that."""
    ec.create_cache_cluster(
        CacheClusterId="snap-slow", Engine="redis", CacheNodeType=NODE_TYPE, NumCacheNodes=1
    )
    client = node_client(wait_available(ec, "snap-slow"))
    try:
        client.mset({f"slow:{n}": n for n in range(2000)})
        client.config_set("rdb-key-save-delay", 2000)
        ec.create_snapshot(CacheClusterId="snap-slow", SnapshotName="snap-held")
        wait_for(lambda: bgsave_running(client), timeout=5)

        assert snapshot(ec, "snap-held")["SnapshotStatus"] == "creating"
        assert describe(ec, "snap-slow")["CacheClusterStatus"] == "snapshotting"
        for call, params in [
            (ec.delete_snapshot, {"SnapshotName": "snap-held"}),
            (ec.copy_snapshot, {"SourceSnapshotName": "snap-held", "TargetSnapshotName": "x"}),
            (
                ec.copy_snapshot,
                {
                    "SourceSnapshotName": "snap-held",
                    "TargetSnapshotName": "x",
                    "TargetBucket": BUCKET,
                },
            ),
            (ec.create_cache_cluster, {"CacheClusterId": "x", "SnapshotName": "snap-held"}),
        ]:
            code, status, _ = refused(call, **params)
            assert (code, status) == ("InvalidSnapshotState", 400), call
        # all of that happened while the save was still running
        assert bgsave_running(client)
        assert snapshot(ec, "snap-held")["SnapshotStatus"] == "creating"
        assert "x" not in cluster_ids(ec)
        assert "x" not in snapshot_names(ec)
        client.config_set("rdb-key-save-delay", 0)
        wait_snapshot(ec, "snap-held")
        assert describe(ec, "snap-slow")["CacheClusterStatus"] == "available"
    finally:
        client.close()
    ec.delete_snapshot(SnapshotName="snap-held")
    wait_snapshot_gone(ec, "snap-held")
    delete_cluster(ec, "snap-slow")


CHANGES: dict[str, tuple[str, dict[str, Any]]] = {
    "delete": ("delete_cache_cluster", {}),
    "reboot": ("reboot_cache_cluster", {"CacheNodeIdsToReboot": ["0001"]}),
    "modify": ("modify_cache_cluster", {"SnapshotRetentionLimit": 1, "ApplyImmediately": True}),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_cluster_being_snapshotted_shows_snapshotting_and_refuses_changes(
    ec: BaseClient, change: str
) -> None:
    """ElastiCache refuses DeleteCacheCluster, RebootCacheCluster and ModifyCacheCluster
    for a cluster that is not available (InvalidCacheClusterState); a delete or reboot
    let through here would stop the node under the running BGSAVE and fail the snapshot."""
    cluster_id = f"snap-busy-{change}"
    ec.create_cache_cluster(
        CacheClusterId=cluster_id, Engine="redis", CacheNodeType=NODE_TYPE, NumCacheNodes=1
    )
    try:
        client = node_client(wait_available(ec, cluster_id))
        try:
            client.mset({f"busy:{n}": n for n in range(2000)})
            client.config_set("rdb-key-save-delay", 1500)  # a 3 s BGSAVE
            ec.create_snapshot(CacheClusterId=cluster_id, SnapshotName=f"{cluster_id}-snap")
            wait_for(lambda: bgsave_running(client), timeout=5)
            assert describe(ec, cluster_id)["CacheClusterStatus"] == "snapshotting"
            operation, params = CHANGES[change]
            try:
                getattr(ec, operation)(CacheClusterId=cluster_id, **params)
            except ClientError as exc:
                outcome = error_of_response(exc)
            else:
                outcome = ("accepted", 200)
        finally:
            client.close()
        status = wait_for(
            lambda: (s := snapshot(ec, f"{cluster_id}-snap")["SnapshotStatus"]) != "creating" and s,
            timeout=20,
        )
        failures = [m for m in messages(ec, cluster_id) if m.startswith("Snapshot failed")]
        assert (outcome, status) == (("InvalidCacheClusterState", 400), "available"), failures
        assert describe(ec, cluster_id)["CacheClusterStatus"] == "available"
    finally:
        discard_cluster(ec, cluster_id)
        with contextlib.suppress(ClientError):
            ec.delete_snapshot(SnapshotName=f"{cluster_id}-snap")


def user_group_status(ec: BaseClient, user_group_id: str) -> str:
    return str(ec.describe_user_groups(UserGroupId=user_group_id)["UserGroups"][0]["Status"])


def discard_cluster(ec: BaseClient, cluster_id: str) -> None:
    """Delete the cluster once it has settled, whatever state a failed test left it in."""

    def settled() -> str:
        try:
            status = str(describe(ec, cluster_id)["CacheClusterStatus"])
        except ClientError:
            return "gone"
        return status if status in ("available", "restore-failed") else ""

    if wait_for(settled, timeout=30) != "gone":
        delete_cluster(ec, cluster_id)


LONG_NAME = "n" * 241
# (An empty FinalSnapshotIdentifier is left out: DeleteCacheCluster reads it as "none".)
BAD_NAMES = ["automatic.x", "Automatic.daily", "has space", "-leading", "a/b", LONG_NAME]


def error_cases() -> list[Any]:
    """(operation, parameters, code, HTTP status) of requests that must be refused."""
    rg = {"ReplicationGroupDescription": "d", "CacheNodeType": NODE_TYPE, "NumCacheClusters": 1}
    cases: list[Any] = [
        pytest.param(
            "create_snapshot",
            {"CacheClusterId": SOURCE, "SnapshotName": BASE},
            "SnapshotAlreadyExistsFault",
            400,
            id="create-existing",
        ),
        pytest.param(
            "copy_snapshot",
            {"SourceSnapshotName": BASE, "TargetSnapshotName": BASE},
            "SnapshotAlreadyExistsFault",
            400,
            id="copy-onto-existing",
        ),
        pytest.param(
            "delete_cache_cluster",
            {"CacheClusterId": SOURCE, "FinalSnapshotIdentifier": BASE},
            "SnapshotAlreadyExistsFault",
            400,
            id="final-existing",
        ),
        pytest.param(
            "delete_replication_group",
            {"ReplicationGroupId": GROUP, "FinalSnapshotIdentifier": BASE},
            "SnapshotAlreadyExistsFault",
            400,
            id="group-final-existing",
        ),
        pytest.param(
            "describe_snapshots",
            {"SnapshotName": "nope"},
            "SnapshotNotFoundFault",
            404,
            id="describe-missing",
        ),
        pytest.param(
            "delete_snapshot",
            {"SnapshotName": "nope"},
            "SnapshotNotFoundFault",
            404,
            id="delete-missing",
        ),
        pytest.param(
            "copy_snapshot",
            {"SourceSnapshotName": "nope", "TargetSnapshotName": "nope-copy"},
            "SnapshotNotFoundFault",
            404,
            id="copy-missing",
        ),
        pytest.param(
            "copy_snapshot",
            {"SourceSnapshotName": "nope", "TargetSnapshotName": "n", "TargetBucket": BUCKET},
            "SnapshotNotFoundFault",
            404,
            id="export-missing",
        ),
        pytest.param(
            "create_cache_cluster",
            {"CacheClusterId": "from-nope", "SnapshotName": "nope"},
            "SnapshotNotFoundFault",
            404,
            id="restore-cluster-missing",
        ),
        pytest.param(
            "create_replication_group",
            {"ReplicationGroupId": "from-nope", "SnapshotName": "nope", **rg},
            "SnapshotNotFoundFault",
            404,
            id="restore-group-missing",
        ),
        pytest.param(
            "create_snapshot",
            {"SnapshotName": "neither"},
            "InvalidParameterCombination",
            400,
            id="neither-source",
        ),
        pytest.param(
            "create_snapshot",
            {"SnapshotName": "both", "CacheClusterId": SOURCE, "ReplicationGroupId": GROUP},
            "InvalidParameterCombination",
            400,
            id="both-sources",
        ),
        pytest.param(
            "create_snapshot",
            {"SnapshotName": "mc", "CacheClusterId": MEMCACHED},
            "SnapshotFeatureNotSupportedFault",
            400,
            id="memcached",
        ),
        pytest.param(
            "create_snapshot",
            {"SnapshotName": "orphan", "CacheClusterId": "no-such-cluster"},
            "CacheClusterNotFound",
            404,
            id="unknown-cluster",
        ),
        pytest.param(
            "create_snapshot",
            {"SnapshotName": "orphan", "ReplicationGroupId": "no-such-group"},
            "ReplicationGroupNotFoundFault",
            404,
            id="unknown-group",
        ),
        pytest.param(
            "create_snapshot",
            {"SnapshotName": "kms", "CacheClusterId": SOURCE, "KmsKeyId": "alias/k"},
            "InvalidParameterCombination",
            400,
            id="kms",
        ),
        pytest.param(
            "copy_snapshot",
            {"SourceSnapshotName": BASE, "TargetSnapshotName": "b", "TargetBucket": "Bad_Bucket"},
            "InvalidParameterValue",
            400,
            id="bad-bucket",
        ),
        pytest.param(
            "create_cache_cluster",
            {"CacheClusterId": "arn-bad", "SnapshotArns": [f"arn:aws:s3:::{BUCKET}"]},
            "InvalidParameterValue",
            400,
            id="arn-without-key",
        ),
        pytest.param(
            "create_cache_cluster",
            {"CacheClusterId": "arn-bad", "SnapshotArns": ["arn:aws:s3:::no-such-bucket/x.rdb"]},
            "InvalidParameterValue",
            400,
            id="arn-missing-object",
        ),
        pytest.param(
            "create_cache_cluster",
            {"CacheClusterId": "arn-bad", "SnapshotArns": [f"arn:aws:s3:::{BUCKET}/../../config"]},
            "InvalidParameterValue",
            400,
            id="arn-escapes-bucket",
        ),
        pytest.param(
            "create_cache_cluster",
            {
                "CacheClusterId": "arn-bad",
                "SnapshotArns": [f"arn:aws:s3:::{BUCKET}/exported-0001.rdb"] * 2,
            },
            "InvalidParameterValue",
            400,
            id="two-arns",
        ),
        pytest.param(
            "create_cache_cluster",
            {
                "CacheClusterId": "arn-bad",
                "SnapshotName": BASE,
                "SnapshotArns": [f"arn:aws:s3:::{BUCKET}/exported-0001.rdb"],
            },
            "InvalidParameterCombination",
            400,
            id="name-and-arns",
        ),
        pytest.param(
            "create_cache_cluster",
            {"CacheClusterId": "mc-restore", "SnapshotName": BASE, "Engine": "memcached"},
            "InvalidParameterCombination",
            400,
            id="restore-into-memcached",
        ),
        pytest.param(
            "describe_snapshots",
            {"SnapshotSource": "bogus"},
            "InvalidParameterValue",
            400,
            id="bad-source-filter",
        ),
        pytest.param(
            "describe_snapshots", {"MaxRecords": 19}, "InvalidParameterValue", 400, id="max-19"
        ),
        pytest.param(
            "describe_snapshots", {"MaxRecords": 51}, "InvalidParameterValue", 400, id="max-51"
        ),
        pytest.param(
            "describe_snapshots",
            {"CacheClusterId": "no-such-cluster"},
            "CacheClusterNotFound",
            404,
            id="describe-unknown-cluster",
        ),
    ]
    cases += [
        pytest.param(
            "create_snapshot",
            {"CacheClusterId": SOURCE, "SnapshotName": ""},
            "InvalidParameterValue",
            400,
            id="create-empty-name",
        ),
        pytest.param(
            "copy_snapshot",
            {"SourceSnapshotName": BASE, "TargetSnapshotName": ""},
            "InvalidParameterValue",
            400,
            id="copy-empty-name",
        ),
    ]
    for n, name in enumerate(BAD_NAMES):
        cases += [
            pytest.param(
                "create_snapshot",
                {"CacheClusterId": SOURCE, "SnapshotName": name},
                "InvalidParameterValue",
                400,
                id=f"create-bad-name-{n}",
            ),
            pytest.param(
                "copy_snapshot",
                {"SourceSnapshotName": BASE, "TargetSnapshotName": name},
                "InvalidParameterValue",
                400,
                id=f"copy-bad-name-{n}",
            ),
            pytest.param(
                "delete_cache_cluster",
                {"CacheClusterId": SOURCE, "FinalSnapshotIdentifier": name},
                "InvalidParameterValue",
                400,
                id=f"final-bad-name-{n}",
            ),
        ]
    return cases


@pytest.mark.parametrize(("operation", "params", "code", "status"), error_cases())
def test_refused_requests_answer_the_aws_error_and_change_nothing(
    ec: BaseClient,
    base: dict[str, Any],
    memcached: str,
    group: dict[str, Any],
    operation: str,
    params: dict[str, Any],
    code: str,
    status: int,
) -> None:
    snapshots_before, clusters_before = snapshot_names(ec), cluster_ids(ec)
    assert refused(getattr(ec, operation), **params)[:2] == (code, status)
    assert snapshot_names(ec) - snapshots_before == set()
    assert cluster_ids(ec) == clusters_before
    assert describe(ec, SOURCE)["CacheClusterStatus"] == "available"
    assert describe_group(ec, GROUP)["Status"] == "available"
    assert snapshot(ec, BASE)["SnapshotStatus"] == "available"


def test_memcached_snapshot_is_refused_with_its_reason(ec: BaseClient, memcached: str) -> None:
    code, status, message = refused(
        ec.create_snapshot, CacheClusterId=memcached, SnapshotName="mc-snap"
    )
    assert (code, status) == ("SnapshotFeatureNotSupportedFault", 400)
    assert "memcached" in message.lower()
    assert ec.describe_snapshots(CacheClusterId=memcached)["Snapshots"] == []


def test_a_corrupt_snapshot_fails_its_restore_and_touches_nothing_else(
    service: Service, ec: BaseClient, source: dict[str, Any], expected: Contents
) -> None:
    ec.create_snapshot(CacheClusterId=SOURCE, SnapshotName="snap-rot")
    wait_snapshot(ec, "snap-rot")
    rdb = snapshot_dir(service, "snap-rot") / "snap-rot-0001.rdb"
    flip_byte(rdb, rdb.stat().st_size // 2)
    source_run_id = node_client(source).info("server")["run_id"]
    engines_before = service.engines()

    ec.create_cache_cluster(CacheClusterId="snap-rotten", SnapshotName="snap-rot")
    cluster, seen = wait_cluster_settled(ec, "snap-rotten")
    assert cluster["CacheClusterStatus"] == "restore-failed", seen
    (failure,) = [m for m in messages(ec, "snap-rotten") if "failed" in m]
    assert failure.startswith("Restore from snapshot snap-rot failed: ")
    assert "snap-rot-0001.rdb" in failure and "SHA-256" in failure
    # nothing of the failed cluster runs, nothing else was stopped or restarted
    nodes = service.data_dir / "clusters" / "snap-rotten"
    assert not [p for p in service.engines() if p.is_relative_to(nodes)]
    assert service.engines() == engines_before
    client = node_client(describe(ec, SOURCE))
    try:
        assert client.info("server")["run_id"] == source_run_id
        assert_same_data(contents(client), expected)
    finally:
        client.close()
    assert describe(ec, SOURCE)["CacheClusterStatus"] == "available"
    assert snapshot(ec, BASE)["SnapshotStatus"] == "available"
    verified_manifest(service, BASE)

    # a restore-failed cluster cannot be snapshotted, but it can be deleted
    code, status, _ = refused(
        ec.create_snapshot, CacheClusterId="snap-rotten", SnapshotName="of-rotten"
    )
    assert (code, status) == ("InvalidCacheClusterState", 400)
    delete_cluster(ec, "snap-rotten")
    assert not (service.data_dir / "clusters" / "snap-rotten").exists()

    # the same for a replication group restored from it; the user group it was
    # given does not wait for nodes that will never run
    ec.create_user_group(UserGroupId="snap-rotten-users", Engine="redis", UserIds=["default"])
    create_group(
        ec,
        "snap-rotten-rg",
        members=2,
        multi_az=False,
        SnapshotName="snap-rot",
        TransitEncryptionEnabled=True,
        UserGroupIds=["snap-rotten-users"],
    )
    wait_for(lambda: describe_group(ec, "snap-rotten-rg")["Status"] == "restore-failed")
    failures = [m for m in group_events(ec, "snap-rotten-rg") if "failed" in m]
    assert len(failures) == 1 and "SHA-256" in failures[0]
    assert service.engines() == engines_before
    wait_for(lambda: user_group_status(ec, "snap-rotten-users") == "active")
    ec.delete_replication_group(ReplicationGroupId="snap-rotten-rg")
    wait_group_gone(ec, "snap-rotten-rg")
    assert service.engines() == engines_before
    ec.delete_user_group(UserGroupId="snap-rotten-users")
    ec.delete_snapshot(SnapshotName="snap-rot")


@pytest.mark.parametrize("sidecar", [True, False], ids=["with-sidecar", "without-sidecar"])
def test_a_corrupt_exported_file_fails_its_restore(
    service: Service, ec: BaseClient, base: dict[str, Any], sidecar: bool
) -> None:
    target = f"rotten-{'s' if sidecar else 'n'}"
    ec.copy_snapshot(SourceSnapshotName=BASE, TargetSnapshotName=target, TargetBucket=BUCKET)
    rdb = service.data_dir / "buckets" / BUCKET / f"{target}-0001.rdb"
    flip_byte(rdb, rdb.stat().st_size // 2)
    if not sidecar:
        rdb.with_name(rdb.name + ".sha256").unlink()
    engines_before = service.engines()
    cluster_id = f"snap-{target}"

    ec.create_cache_cluster(
        CacheClusterId=cluster_id,
        Engine="redis",
        CacheNodeType=NODE_TYPE,
        SnapshotArns=[f"arn:aws:s3:::{BUCKET}/{rdb.name}"],
    )
    cluster, seen = wait_cluster_settled(ec, cluster_id)
    assert cluster["CacheClusterStatus"] == "restore-failed", seen
    (failure,) = [m for m in messages(ec, cluster_id) if "failed" in m]
    assert rdb.name in failure
    if sidecar:
        assert f"does not match {rdb.name}.sha256" in failure
    else:
        assert "redis-check-rdb rejects it" in failure
    assert service.engines() == engines_before
    delete_cluster(ec, cluster_id)


def test_final_snapshot_of_a_deleted_cluster_holds_its_last_writes(
    service: Service, ec: BaseClient
) -> None:
    ec.create_cache_cluster(
        CacheClusterId="snap-final-src", Engine="redis", CacheNodeType=NODE_TYPE, NumCacheNodes=1
    )
    client = node_client(wait_available(ec, "snap-final-src"))
    try:
        fill(client, "final", 900)
        client.set("written-just-before-delete", "kept")
        wanted = contents(client)
    finally:
        client.close()

    answer = ec.delete_cache_cluster(
        CacheClusterId="snap-final-src", FinalSnapshotIdentifier="snap-final"
    )
    assert answer["CacheCluster"]["CacheClusterStatus"] == "deleting"
    ec.get_waiter("cache_cluster_deleted").wait(
        CacheClusterId="snap-final-src", WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    final = wait_snapshot(ec, "snap-final")
    assert final["CacheClusterId"] == "snap-final-src"
    assert final["SnapshotSource"] == "manual"
    # still found by the id of the cluster that is gone
    by_cluster = ec.describe_snapshots(CacheClusterId="snap-final-src")["Snapshots"]
    assert [s["SnapshotName"] for s in by_cluster] == ["snap-final"]
    assert verified_manifest(service, "snap-final")["source"]["taken_from"] == "snap-final-src"
    events = messages(ec, "snap-final-src")
    succeeded = (
        "Snapshot succeeded for snapshot with ID 'snap-final' "
        "of cache cluster with ID 'snap-final-src'"
    )
    assert succeeded in events
    assert events.index(succeeded) < events.index("Cache cluster deleted")

    ec.create_cache_cluster(CacheClusterId="snap-final-back", SnapshotName="snap-final")
    cluster, seen = wait_cluster_settled(ec, "snap-final-back")
    assert cluster["CacheClusterStatus"] == "available", seen
    client = node_client(cluster)
    try:
        assert_same_data(contents(client), wanted)
        assert client.get("written-just-before-delete") == b"kept"
    finally:
        client.close()
    delete_cluster(ec, "snap-final-back")


def test_final_snapshot_of_a_deleted_group(service: Service, ec: BaseClient) -> None:
    create_group(ec, "snap-rg-fin", members=2, automatic_failover=True, multi_az=False)
    found = wait_group_available(ec, "snap-rg-fin")
    client = connect(primary_address(found))
    try:
        fill(client, "fin", 300)
        assert client.execute_command("WAIT", 1, 5000) == 1
        wanted = contents(client)
    finally:
        client.close()
    replica = found["SnapshottingClusterId"]
    assert replica != primary_id(found)
    ec.delete_replication_group(
        ReplicationGroupId="snap-rg-fin", FinalSnapshotIdentifier="snap-rg-fin-final"
    )
    wait_group_gone(ec, "snap-rg-fin")
    final = wait_snapshot(ec, "snap-rg-fin-final")
    assert final["ReplicationGroupId"] == "snap-rg-fin"
    assert verified_manifest(service, "snap-rg-fin-final")["source"]["taken_from"] == replica
    messages_ = group_events(ec, "snap-rg-fin")
    succeeded = (
        "Snapshot succeeded for snapshot with ID 'snap-rg-fin-final' "
        "of replication group with ID 'snap-rg-fin'"
    )
    assert succeeded in messages_
    assert messages_.index(succeeded) < messages_.index("Replication group snap-rg-fin deleted")

    ec.create_cache_cluster(CacheClusterId="snap-rg-fin-back", SnapshotName="snap-rg-fin-final")
    cluster, seen = wait_cluster_settled(ec, "snap-rg-fin-back")
    assert cluster["CacheClusterStatus"] == "available", seen
    client = node_client(cluster)
    try:
        assert_same_data(contents(client), wanted)
    finally:
        client.close()
    delete_cluster(ec, "snap-rg-fin-back")


# ---- the longest names, and copies of a group's snapshot ------------------------------------

# The API takes names of up to MAX_NAME_LENGTH characters; the store must cope with them,
# and one more is refused up front.
LONGEST = MAX_NAME_LENGTH


def settled_or_refused(
    ec: BaseClient, name: str, call: Callable[..., Any], **params: Any
) -> str | None:
    """Make the call; None if refused as an invalid name (400), else the final status."""
    try:
        call(**params)
    except ClientError as exc:
        assert error_of_response(exc) == ("InvalidParameterValue", 400)
        return None

    def settled() -> str | None:
        status = str(snapshot(ec, name)["SnapshotStatus"])
        return None if status == "creating" else status

    return str(wait_for(settled, timeout=20))


@pytest.mark.parametrize("length", [LONGEST - 1, LONGEST, LONGEST + 1])
def test_a_snapshot_name_the_api_accepts_can_be_stored(
    service: Service, ec: BaseClient, source: dict[str, Any], base: dict[str, Any], length: int
) -> None:
    """Either the name is refused up front, or the snapshot becomes available: not a
    snapshot that fails on "File name too long" (the staging directory is named
    ``<name>.<16 hex digits>``, 17 more characters than the name)."""
    name = "L" * length
    status = settled_or_refused(
        ec, name, ec.create_snapshot, CacheClusterId=SOURCE, SnapshotName=name
    )
    failures = [
        m.replace(name, f"<{length} x L>")
        for m in messages(ec, SOURCE)
        if m.startswith("Snapshot failed") and name in m
    ]
    assert status == ("available" if length <= LONGEST else None), failures
    if status == "available":
        verified_manifest(service, name)
        copy = name[:-1] + "C"
        copied = settled_or_refused(
            ec, copy, ec.copy_snapshot, SourceSnapshotName=name, TargetSnapshotName=copy
        )
        assert copied in (None, "available")
        ec.delete_snapshot(SnapshotName=name)
        if copied:
            ec.delete_snapshot(SnapshotName=copy)
    else:
        with pytest.raises(ClientError):
            snapshot(ec, name)


def test_a_final_snapshot_with_the_longest_name_is_taken_or_the_delete_refused(
    service: Service, ec: BaseClient
) -> None:
    ec.create_cache_cluster(
        CacheClusterId="snap-long-final", Engine="redis", CacheNodeType=NODE_TYPE, NumCacheNodes=1
    )
    client = node_client(wait_available(ec, "snap-long-final"))
    client.set("precious", "data")
    client.close()
    name = "F" * LONGEST
    try:
        ec.delete_cache_cluster(CacheClusterId="snap-long-final", FinalSnapshotIdentifier=name)
    except ClientError as exc:
        assert error_of_response(exc) == ("InvalidParameterValue", 400)
        assert describe(ec, "snap-long-final")["CacheClusterStatus"] == "available"
        delete_cluster(ec, "snap-long-final")
        return
    ec.get_waiter("cache_cluster_deleted").wait(
        CacheClusterId="snap-long-final", WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    # the cluster and its data are gone: the final snapshot must hold them
    final = wait_for(
        lambda: (s := snapshot(ec, name))["SnapshotStatus"] != "creating" and s, timeout=20
    )
    failures = [
        m.replace(name, f"<{LONGEST} x F>")
        for m in messages(ec, "snap-long-final")
        if m.startswith("Snapshot failed")
    ]
    assert final["SnapshotStatus"] == "available", failures
    verified_manifest(service, name)
    ec.delete_snapshot(SnapshotName=name)


def test_export_with_the_longest_target_name_is_whole_or_refused(
    service: Service, ec: BaseClient, base: dict[str, Any]
) -> None:
    """CopySnapshot to a bucket writes ``<target>-0001.rdb`` and its ``.sha256`` sidecar
    (through a ``.tmp`` file): with a long valid target name that must still work, or
    be refused as a bad parameter - never an internal error leaving half an export."""
    bucket = service.data_dir / "buckets" / "snap-long-bucket"
    for length in (236, LONGEST):
        target = "E" * length
        try:
            ec.copy_snapshot(
                SourceSnapshotName=BASE, TargetSnapshotName=target, TargetBucket=bucket.name
            )
        except ClientError as exc:
            found = sorted(p.name for p in bucket.iterdir()) if bucket.exists() else []
            leftovers = [n.replace(target, f"<{length} x E>") for n in found]
            assert error_of_response(exc) == ("InvalidParameterValue", 400), (length, leftovers)
            assert leftovers == [], length
            continue
        rdb = bucket / f"{target}-0001.rdb"
        sidecar = rdb.with_name(rdb.name + ".sha256")
        assert hashlib.sha256(rdb.read_bytes()).hexdigest() == sidecar.read_text().split()[0]


def test_a_copy_of_a_groups_snapshot_describes_the_same_node_snapshot(
    ec: BaseClient, group: dict[str, Any]
) -> None:
    ec.create_snapshot(ReplicationGroupId=GROUP, SnapshotName="snap-rg-orig")
    original = wait_snapshot(ec, "snap-rg-orig")
    ec.copy_snapshot(SourceSnapshotName="snap-rg-orig", TargetSnapshotName="snap-rg-copy")
    copied = wait_snapshot(ec, "snap-rg-copy")
    assert copied["ReplicationGroupId"] == GROUP
    for field in ("ReplicationGroupDescription", "NumCacheNodes", "AutomaticFailover"):
        assert copied[field] == original[field], field
    (was,), (now,) = original["NodeSnapshots"], copied["NodeSnapshots"]
    assert was["CacheClusterId"] == group["SnapshottingClusterId"]
    # the copy holds the same data, read from the same member
    assert now["CacheClusterId"] == was["CacheClusterId"]
    assert now["CacheSize"] == was["CacheSize"]
    ec.delete_snapshot(SnapshotName="snap-rg-orig")
    ec.delete_snapshot(SnapshotName="snap-rg-copy")


# ---- found while verifying snapshots: a group's primary that does not answer for a while ----
#
# Not snapshot code, but what made whole-keyspace verification of a group flaky. In one
# run of test_snapshot_million.py the new group's primary logged, 3 ms after forking for
# its replica's first sync: "Could not create server TCP listening socket ...: bind:
# Address already in use" / "Failed applying restored failed CONFIG SET command: Failed
# to bind to specified addresses" - the CONFIG SET bind that places the group's endpoints
# ran while the fork child still held the listening socket, and redis was left running
# with no listener at all. The group then never became available: every pass logged
# "... already runs pid N" (about 16 a second) until the service was stopped.


def unreachable(address: str) -> bool:
    try:
        connect(address).ping()
    except redis.ConnectionError:
        return True
    return False


def test_a_group_primary_left_without_a_listener_is_recovered(ec: BaseClient) -> None:
    """The state above, made on purpose: CONFIG SET port 0 leaves redis running and
    unreachable. A standalone cluster's node in that state is restarted once hung
    (HUNG_AFTER, 10 s); a one-member group's primary must be recovered too."""
    create_group(ec, "snap-deaf", members=1, automatic_failover=False, multi_az=False)
    group = wait_group_available(ec, "snap-deaf")
    address = read_endpoints(group)["snap-deaf-001"]
    client = connect(address)
    client.config_set("port", 0)
    client.close()
    assert unreachable(address)
    deadline = time.monotonic() + 25
    while unreachable(address) and time.monotonic() < deadline:
        time.sleep(0.5)
    status = describe_group(ec, "snap-deaf")["Status"]
    assert not unreachable(address), f"unreachable for 25 s, the group says {status!r}"
    assert status == "available"
    ec.delete_replication_group(ReplicationGroupId="snap-deaf")
    wait_group_gone(ec, "snap-deaf")


BUSY_SCRIPT = """
local start = redis.call('TIME')
while true do
  local now = redis.call('TIME')
  if (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > tonumber(ARGV[1]) then
    return 1
  end
end
"""


def test_a_primary_busy_for_two_seconds_is_not_killed_without_automatic_failover(
    ec: BaseClient,
) -> None:
    """A command that keeps redis busy for 2 s (a script here; a big KEYS or DEL does the
    same) is below redis' own busy threshold (5 s) and far below the 10 s after which a
    standalone node counts as hung. With AutomaticFailoverEnabled=False nothing should
    be killed or promoted."""
    create_group(ec, "snap-busy", members=2, automatic_failover=False, multi_az=False)
    group = wait_group_available(ec, "snap-busy")
    primary = primary_id(group)
    client = connect(read_endpoints(group)[primary])
    try:
        run_id = client.info("server")["run_id"]
        assert client.eval(BUSY_SCRIPT, 0, 2_000_000) == 1
        time.sleep(3)  # what the control plane makes of it
        events = [m for m in group_events(ec, "snap-busy") if "ailover" in m]
        assert events == []
        assert primary_id(describe_group(ec, "snap-busy")) == primary
        assert client.info("server")["run_id"] == run_id
    finally:
        client.close()
    ec.delete_replication_group(ReplicationGroupId="snap-busy")
    wait_group_gone(ec, "snap-busy")
