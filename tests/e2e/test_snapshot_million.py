"""A million keys survive DeleteReplicationGroup's final snapshot and a restore, exactly.

A primary and a replica are loaded with 1,000,000 keys of every common type
(strings, integers, hashes, lists, sets of integers and of strings, sorted
sets), 40 % of them expiring via PEXPIREAT two to three hours ahead. The group
is deleted with FinalSnapshotIdentifier, then a new group is created from that
snapshot, and every key of both new members is compared with the original:
same key set, same DUMP payload, same PEXPIRETIME (absolute, so the remaining
TTL is exactly the one set), same DBSIZE and expiring-key count.

Both speed-critical parts run inside redis: the load is one RESP stream through
``redis-cli --pipe``, and the comparison a Lua script that walks the keyspace
with SCAN and answers, per key, the SHA-1 of its DUMP payload and its
PEXPIRETIME, so only a digest per key crosses the wire. (A set of strings is
hashtable-encoded and DUMPed in the order of its hash table, which follows each
process's random hash seed; for those the script hashes the sorted members.)
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import pytest
import redis
from group_helpers import (
    primary_address,
    primary_id,
    read_endpoints,
    wait_group_available,
    wait_group_gone,
)
from service_helpers import Service

KEYS = 1_000_000
GROUP = "million"
RESTORED = "million-back"
FINAL = "million-final"
NODE_TYPE = "cache.m5.large"  # 6.38 GiB: far above the ~200 MB this takes, nothing is evicted
TTL_FROM_MS = 2 * 3600 * 1000
TTL_SPREAD_MS = 3600 * 1000
SCAN_COUNT = 5_000  # one script call stays in the tens of milliseconds

# One SCAN step: the next cursor, then key, "sha1(payload) pexpiretime" pairs.
DIGEST_STEP = """
local reply = redis.call('SCAN', ARGV[1], 'COUNT', ARGV[2])
local out = {reply[1]}
for _, key in ipairs(reply[2]) do
  local payload
  if redis.call('OBJECT', 'ENCODING', key) == 'hashtable' then
    local members = redis.call('SMEMBERS', key)
    table.sort(members)
    payload = 'set\\0' .. table.concat(members, '\\0')
  else
    payload = redis.call('DUMP', key)
  end
  out[#out + 1] = key
  out[#out + 1] = redis.sha1hex(payload) .. ' ' .. redis.call('PEXPIRETIME', key)
end
return out
"""


def bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def generate(count: int, expire_base_ms: int) -> tuple[bytes, int, int]:
    """The RESP stream that writes ``count`` keys; (stream, commands, keys that expire).

    Per 20 keys: 10 strings (a third of them integers), 3 hashes of 2-8 fields,
    3 lists of 2-8 items, 2 sets (integers, or strings from a shared pool), 2
    sorted sets; every key whose index is 0 or 1 mod 5 gets a PEXPIREAT.
    Values come from pools of random bytes picked by a hash of the index, so
    neighbouring keys differ and the stream is built in a couple of seconds.
    """
    rnd = random.Random(20240611)
    values = [bulk(rnd.randbytes(rnd.randrange(1, 120))) for _ in range(4093)]
    small = [bulk(rnd.randbytes(rnd.randrange(1, 30))) for _ in range(4091)]
    numbers = [bulk(b"%d" % rnd.randrange(-(10**12), 10**12)) for _ in range(4001)]
    members = [bulk(b"member-%d" % n) for n in range(997)]
    scores = [bulk(repr(rnd.uniform(-1e6, 1e6)).encode()) for _ in range(1009)]
    fields = [bulk(b"field-%d" % n) for n in range(9)]
    zmembers = [bulk(b"z%d" % n) for n in range(9)]
    set_, hset, rpush, sadd, zadd, pexpireat = (
        bulk(c) for c in (b"SET", b"HSET", b"RPUSH", b"SADD", b"ZADD", b"PEXPIREAT")
    )
    parts: list[bytes] = []
    append = parts.append
    commands = expiring = 0
    for i in range(count):
        h = (i * 2654435761) & 0xFFFFFFFF
        width = 2 + h % 7
        kind = i % 20
        if kind < 10:
            key = bulk(b"str:%d" % i)
            value = numbers[h % 4001] if i % 3 == 0 else values[h % 4093]
            append(b"*3\r\n" + set_ + key + value)
        elif kind < 13:
            key = bulk(b"hash:%d" % i)
            body = b"".join(fields[f] + small[(h + 31 * f) % 4091] for f in range(width))
            append(b"*%d\r\n" % (2 + 2 * width) + hset + key + body)
        elif kind < 16:
            key = bulk(b"list:%d" % i)
            body = b"".join(small[(h + 17 * f) % 4091] for f in range(width))
            append(b"*%d\r\n" % (2 + width) + rpush + key + body)
        elif kind < 18:
            key = bulk(b"set:%d" % i)
            if i % 2:  # an intset
                body = b"".join(bulk(b"%d" % (h * (f + 1) % 10**9)) for f in range(width))
            else:  # strings: a hashtable
                body = b"".join(members[(h + 13 * f) % 997] for f in range(width))
            append(b"*%d\r\n" % (2 + width) + sadd + key + body)
        else:
            key = bulk(b"zset:%d" % i)
            body = b"".join(scores[(h + 7 * f) % 1009] + zmembers[f] for f in range(width))
            append(b"*%d\r\n" % (2 + 2 * width) + zadd + key + body)
        commands += 1
        if i % 5 < 2:
            at = expire_base_ms + h % TTL_SPREAD_MS
            append(b"*3\r\n" + pexpireat + key + bulk(b"%d" % at))
            commands += 1
            expiring += 1
    return b"".join(parts), commands, expiring


def load(address: str, stream: bytes, commands: int) -> None:
    done = subprocess.run(
        ["redis-cli", "-h", address, "-p", "6379", "--pipe"],
        input=stream,
        capture_output=True,
        timeout=60,
        check=True,
    )
    summary = done.stdout.decode().strip().splitlines()[-1]
    assert summary == f"errors: 0, replies: {commands}", done.stdout.decode()


def digests(address: str) -> dict[bytes, bytes]:
    """Every key of the node with "sha1(DUMP payload) PEXPIRETIME"."""
    client = redis.Redis(host=address, port=6379, socket_timeout=60)
    try:
        run_id = client.info("server")["run_id"]
        found: dict[bytes, bytes] = {}
        cursor = b"0"
        while True:
            reply = client.eval(DIGEST_STEP, 0, cursor, SCAN_COUNT)
            cursor = reply[0]
            pairs = iter(reply[1:])
            found.update(zip(pairs, pairs, strict=True))
            if cursor == b"0":
                break
        # one process answered the whole walk: no restart in between
        assert client.info("server")["run_id"] == run_id, f"{address} restarted while read"
        return found
    finally:
        client.close()


def counts(address: str) -> tuple[int, int]:
    """(DBSIZE, keys with an expiry)."""
    client = redis.Redis(host=address, port=6379, socket_timeout=10)
    try:
        return int(client.dbsize()), int(client.info("keyspace")["db0"]["expires"])
    finally:
        client.close()


# One key of each kind the generator writes, with the type and encoding redis gives it.
KINDS = {
    b"str:0": (b"string", b"int"),
    b"str:1": (b"string", b"raw"),
    b"hash:10": (b"hash", b"listpack"),
    b"list:13": (b"list", b"quicklist"),
    b"set:16": (b"set", b"hashtable"),
    b"set:17": (b"set", b"intset"),
    b"zset:18": (b"zset", b"listpack"),
}


def kinds(address: str) -> dict[bytes, tuple[bytes, bytes]]:
    client = redis.Redis(host=address, port=6379, socket_timeout=10)
    try:
        return {k: (cast(bytes, client.type(k)), client.object("encoding", k)) for k in KINDS}
    finally:
        client.close()


@pytest.mark.timeout(120)
def test_a_million_keys_survive_final_snapshot_and_restore(service: Service) -> None:
    started = time.monotonic()
    laps: dict[str, float] = {}

    def lap(name: str) -> None:
        laps[name] = round(time.monotonic() - started, 1)

    # Built before the group is created: both cores are busy building it, and the
    # group's first steps should not be starved of CPU (see the report of the
    # endpoint-binding race in test_snapshots.py).
    expire_base = int(time.time() * 1000) + TTL_FROM_MS
    stream, commands, expiring = generate(KEYS, expire_base)
    ec = service.client()
    # Without automatic failover there is no min-replicas-to-write: a replica lagging for
    # a moment under the bulk load cannot make the primary refuse writes (NOREPLICAS).
    ec.create_replication_group(
        ReplicationGroupId=GROUP,
        ReplicationGroupDescription="a million keys",
        Engine="redis",
        CacheNodeType=NODE_TYPE,
        NumCacheClusters=2,
        AutomaticFailoverEnabled=False,
    )
    group = wait_group_available(ec, GROUP)
    primary = primary_address(group)
    replica_id = group["SnapshottingClusterId"]
    assert replica_id != primary_id(group)
    lap("generated")

    load(primary, stream, commands)
    del stream
    writer = redis.Redis(host=primary, port=6379, socket_timeout=60)
    try:
        assert writer.execute_command("WAIT", 1, 30_000) == 1
        offset = writer.info("replication")["master_repl_offset"]
    finally:
        writer.close()
    replica = read_endpoints(group)[replica_id]
    replica_client = redis.Redis(host=replica, port=6379, socket_timeout=10)
    assert replica_client.info("replication")["slave_repl_offset"] == offset
    replica_client.close()
    assert counts(primary) == (KEYS, expiring)
    assert kinds(primary) == KINDS
    lap("loaded")

    expected = digests(primary)
    assert len(expected) == KEYS
    expiries = [int(v.split()[1]) for v in expected.values()]
    assert sum(1 for e in expiries if e > 0) == expiring
    assert all(e == -1 or expire_base <= e < expire_base + TTL_SPREAD_MS for e in expiries)
    del expiries
    lap("source digested")

    answer = ec.delete_replication_group(ReplicationGroupId=GROUP, FinalSnapshotIdentifier=FINAL)
    assert answer["ReplicationGroup"]["Status"] == "deleting"
    wait_group_gone(ec, GROUP, timeout=60)
    (final,) = ec.describe_snapshots(SnapshotName=FINAL)["Snapshots"]
    assert final["SnapshotStatus"] == "available"
    assert final["ReplicationGroupId"] == GROUP
    assert final["NodeSnapshots"][0]["CacheClusterId"] == replica_id
    manifest = json.loads((service.data_dir / "snapshots" / FINAL / "manifest.json").read_text())
    assert manifest["source"]["taken_from"] == replica_id
    assert service.engines() == {}
    lap("deleted with final snapshot")

    ec.create_replication_group(
        ReplicationGroupId=RESTORED,
        ReplicationGroupDescription="a million keys, restored",
        SnapshotName=FINAL,
        NumCacheClusters=2,
        AutomaticFailoverEnabled=False,
    )
    restored = wait_group_available(ec, RESTORED, timeout=60)
    assert restored["CacheNodeType"] == NODE_TYPE
    members = read_endpoints(restored)
    assert set(members) == {f"{RESTORED}-001", f"{RESTORED}-002"}
    events = ec.describe_events(SourceType="replication-group", SourceIdentifier=RESTORED)
    assert f"Restore from snapshot {FINAL} completed" in [e["Message"] for e in events["Events"]]
    lap("restored")

    with ThreadPoolExecutor(max_workers=2) as pool:
        found = dict(zip(members, pool.map(digests, members.values()), strict=True))
    for member_id, address in members.items():
        assert counts(address) == (KEYS, expiring), member_id
        got = found.pop(member_id)
        assert len(got) == KEYS, member_id
        missing = expected.keys() - got.keys()
        assert not missing, f"{member_id}: {len(missing)} keys missing, e.g. {sorted(missing)[:5]}"
        differ = [k for k, v in expected.items() if got[k] != v]
        assert not differ, f"{member_id}: {len(differ)} keys differ, e.g. {differ[:5]}"
        del got
    lap("restored digested")

    ec.delete_replication_group(ReplicationGroupId=RESTORED)
    wait_group_gone(ec, RESTORED, timeout=60)
    ec.delete_snapshot(SnapshotName=FINAL)
    print(f"phases (s since start): {laps}")
