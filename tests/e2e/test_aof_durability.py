"""What a Redis node keeps when its engine is SIGKILLed and restarted in place.

Durability is a parameter of the cache's parameter group, as on ElastiCache:

* ``appendonly yes`` + ``appendfsync always``: redis writes and fsyncs the AOF
  before it answers, so every ACKNOWLEDGED write survives the kill.
* ``appendfsync everysec``: redis may answer a write whose AOF ``write(2)`` it
  postpones while a background fsync runs, for at most 2 s (aof.c,
  flushAppendOnlyFile). So writes acknowledged more than ``EVERYSEC_BOUND``
  (those 2 s plus 1 s for scheduling) before the kill survive; later ones may not.
* no AOF (the default): the restarted node is empty, and the RDB a snapshot
  left in the node's directory must not bring back the snapshot's keys.

A SIGKILL loses the process, not the page cache: these tests show what the
engine acknowledged after writing to the kernel, not what survives a power cut.

The AOF is a log written in order, so what comes back is a *prefix* of the
commands the server executed: each writer below runs ``SET w:k:<i>`` then
``INCR w:n`` for i = 1, 2, ... on its own keys, and after the restart its keys
must be exactly k:1..k:N with n equal to N-1 or N (the kill fell between the
two commands or after them), whatever N is.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from botocore.client import BaseClient
from redis.backoff import NoBackoff
from redis.retry import Retry
from service_helpers import Service, messages, wait_available, wait_for

from cacheyard.engines.host import LocalEngineHost

pytestmark = pytest.mark.timeout(90)

NODE_TYPE = "cache.t3.micro"
WRITERS = 4
# How long after its acknowledgement an everysec write may still be only in redis' buffer.
EVERYSEC_BOUND = 3.0


def connect(address: str, port: int) -> redis.Redis:
    """A client that never retries: a command it sends is sent once, so what it
    was told is exactly what the server acknowledged."""
    return redis.Redis(
        host=address,
        port=port,
        socket_timeout=5,
        socket_connect_timeout=5,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


def parameter_group(ec: BaseClient, name: str, **values: str) -> str:
    ec.create_cache_parameter_group(
        CacheParameterGroupName=name, CacheParameterGroupFamily="redis7", Description=name
    )
    if values:
        set_parameters(ec, name, **values)
    return name


def set_parameters(ec: BaseClient, group: str, **values: str) -> None:
    ec.modify_cache_parameter_group(
        CacheParameterGroupName=group,
        ParameterNameValues=[{"ParameterName": n, "ParameterValue": v} for n, v in values.items()],
    )


@dataclass
class Cache:
    cluster_id: str
    address: str
    port: int
    node_dir: Path

    def client(self) -> redis.Redis:
        return connect(self.address, self.port)


@pytest.fixture
def make_cache(ec: BaseClient, service: Service) -> Iterator[Any]:
    """Creates single-node Redis clusters; deletes them (and their groups) afterwards."""
    made: list[tuple[str, str | None]] = []

    def make(cluster_id: str, group: str | None = None) -> Cache:
        extra = {"CacheParameterGroupName": group} if group else {}
        ec.create_cache_cluster(
            CacheClusterId=cluster_id,
            Engine="redis",
            CacheNodeType=NODE_TYPE,
            NumCacheNodes=1,
            **extra,
        )
        made.append((cluster_id, group))
        endpoint = wait_available(ec, cluster_id)["CacheNodes"][0]["Endpoint"]
        node_dir = service.data_dir / "clusters" / cluster_id / "nodes" / "0001"
        return Cache(cluster_id, endpoint["Address"], endpoint["Port"], node_dir)

    yield make
    for cluster_id, _ in made:
        ec.delete_cache_cluster(CacheClusterId=cluster_id)
    for cluster_id, group in made:
        ec.get_waiter("cache_cluster_deleted").wait(
            CacheClusterId=cluster_id, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        if group:
            ec.delete_cache_parameter_group(CacheParameterGroupName=group)


def kill_and_wait_restart(service: Service, ec: BaseClient, cache: Cache) -> float:
    """SIGKILL the node's engine; returns once the cluster reconciler has started a
    new process in the same directory and the cluster is available again. The
    time of the kill (time.monotonic) is returned."""
    before = service.engines()[cache.node_dir]
    recoveries = messages(ec, cache.cluster_id).count("Finished recovery for cache nodes 0001")
    killed_at = time.monotonic()
    assert LocalEngineHost().kill(cache.node_dir, signal.SIGKILL)

    def restarted() -> bool:
        now = service.engines().get(cache.node_dir)
        return now is not None and now.pid != before.pid

    wait_for(restarted, timeout=30)
    wait_for(
        lambda: (
            messages(ec, cache.cluster_id).count("Finished recovery for cache nodes 0001")
            > recoveries
        ),
        timeout=30,
    )
    endpoint = wait_available(ec, cache.cluster_id)["CacheNodes"][0]["Endpoint"]
    assert (endpoint["Address"], endpoint["Port"]) == (cache.address, cache.port)
    # The process that answers is the new one.
    with cache.client() as client:
        assert int(client.info("server")["process_id"]) == service.engines()[cache.node_dir].pid
    return killed_at


class Writer(threading.Thread):
    """Writes ``SET <name>:k:<i> v<i>`` then ``INCR <name>:n`` for i = 1, 2, ...
    as fast as one connection allows, until the connection fails, and records
    every acknowledgement."""

    def __init__(self, name: str, address: str, port: int) -> None:
        super().__init__(name=f"writer-{name}", daemon=True)
        self.name_ = name
        self.address = address
        self.port = port
        # (time.monotonic() at the acknowledgement, i) for every acknowledged INCR.
        self.acked_incr: list[tuple[float, int]] = []
        self.last_acked_set = 0
        # The highest i sent at all (its SET or INCR may or may not have been executed).
        self.attempted = 0
        self.error: BaseException | None = None

    def key(self, i: int) -> str:
        return f"{self.name_}:k:{i}"

    @property
    def counter(self) -> str:
        return f"{self.name_}:n"

    @property
    def last_acked_incr(self) -> int:
        return self.acked_incr[-1][1] if self.acked_incr else 0

    def run(self) -> None:
        client = connect(self.address, self.port)
        try:
            i = 0
            while True:
                i += 1
                self.attempted = i
                assert client.set(self.key(i), f"v{i}") is True
                self.last_acked_set = i
                value = client.incr(self.counter)
                acked_at = time.monotonic()
                assert value == i, f"{self.counter} is {value} after {i} increments"
                self.acked_incr.append((acked_at, i))
        except Exception as exc:  # reported by the test
            self.error = exc
        finally:
            client.close()


def start_writers(cache: Cache, prefix: str) -> list[Writer]:
    writers = [Writer(f"{prefix}{n}", cache.address, cache.port) for n in range(WRITERS)]
    for writer in writers:
        writer.start()
    return writers


def write_until(writers: list[Writer], seconds: float, at_least: int) -> None:
    """Let the writers run ``seconds``, and until each has ``at_least`` acknowledged rounds."""
    deadline = time.monotonic() + seconds
    wait_for(
        lambda: (
            (time.monotonic() >= deadline and all(w.last_acked_incr >= at_least for w in writers))
            or any(w.error is not None for w in writers)
        ),
        timeout=seconds + 30,
        interval=0.01,
    )
    failed = [w.error for w in writers if w.error is not None]
    assert not failed, f"a writer failed before the kill: {failed[0]!r}"


def join_after_kill(writers: list[Writer]) -> None:
    """Every writer must have been cut off by the kill (it was mid-stream)."""
    for writer in writers:
        writer.join(timeout=15)
        assert not writer.is_alive(), f"{writer.name_} still writes after the kill"
        assert isinstance(writer.error, redis.ConnectionError | redis.TimeoutError), (
            f"{writer.name_} stopped with {writer.error!r}, not by losing its connection"
        )


@dataclass(frozen=True)
class Recovered:
    """One writer's keys as the restarted node has them."""

    highest: int  # N: the writer's keys are exactly k:1..k:N
    counter: int


def recovered(client: redis.Redis, writer: Writer) -> Recovered:
    """Reads back a writer's keys and checks they are a prefix of what it sent."""
    present = sorted(
        int(key.rsplit(":", 1)[1]) for key in client.scan_iter(f"{writer.name_}:k:*", count=1000)
    )
    highest = present[-1] if present else 0
    assert present == list(range(1, highest + 1)), (
        f"{writer.name_}: the keys are not a prefix k:1..k:{highest} of those written "
        f"(missing: {sorted(set(range(1, highest + 1)) - set(present))[:10]})"
    )
    if present:
        values = client.mget([writer.key(i) for i in present])
        wrong = [(i, v) for i, v in zip(present, values, strict=True) if v != f"v{i}"]
        assert not wrong, f"{writer.name_}: wrong values {wrong[:5]}"
    counter = int(client.get(writer.counter) or 0)
    # SET k:i precedes INCR (to i): a prefix of the stream ends after one or the other.
    assert counter in (highest - 1, highest) or (highest == counter == 0), (
        f"{writer.name_}: counter {counter} does not follow keys k:1..k:{highest}"
    )
    assert highest <= writer.attempted, f"{writer.name_}: k:{highest} was never sent"
    return Recovered(highest, counter)


def aof_loaded(cache: Cache, client: redis.Redis) -> None:
    """The restarted node runs with AOF and loaded its data from it."""
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert int(client.info("persistence")["aof_enabled"]) == 1
    log = (cache.node_dir / "engine.log").read_text(errors="replace")
    assert "DB loaded from append only file" in log.rsplit("Server initialized", 1)[-1]


def test_appendfsync_always_keeps_every_acknowledged_write(
    service: Service, ec: BaseClient, make_cache: Any
) -> None:
    group = parameter_group(ec, "aof-always", appendonly="yes", appendfsync="always")
    cache = make_cache("aof-always", group)
    with cache.client() as client:
        assert client.config_get("append*") == {
            "appendonly": "yes",
            "appendfsync": "always",
            "appenddirname": "appendonlydir",
            "appendfilename": "appendonly.aof",
        }
    assert (cache.node_dir / "appendonlydir").is_dir()

    writers = start_writers(cache, "always")
    write_until(writers, seconds=1.0, at_least=50)
    kill_and_wait_restart(service, ec, cache)
    join_after_kill(writers)

    with cache.client() as client:
        aof_loaded(cache, client)
        for writer in writers:
            got = recovered(client, writer)
            assert got.highest >= writer.last_acked_set, (
                f"{writer.name_}: SET k:{writer.last_acked_set} was acknowledged, "
                f"only k:1..k:{got.highest} came back"
            )
            assert got.counter >= writer.last_acked_incr, (
                f"{writer.name_}: INCR to {writer.last_acked_incr} was acknowledged, "
                f"the counter came back as {got.counter}"
            )
        # Nothing else is there: no key of another run, no resurrected RDB.
        found = [recovered(client, w) for w in writers]
        assert client.dbsize() == sum(r.highest + (r.counter > 0) for r in found)
        # The restarted node goes on logging to the same AOF.
        client.set("after-restart", "1")
    kill_and_wait_restart(service, ec, cache)
    with cache.client() as client:
        assert client.get("after-restart") == "1"
        for writer in writers:
            assert recovered(client, writer).highest >= writer.last_acked_set


def test_appendfsync_everysec_keeps_writes_older_than_its_bound(
    service: Service, ec: BaseClient, make_cache: Any
) -> None:
    group = parameter_group(ec, "aof-everysec", appendonly="yes", appendfsync="everysec")
    cache = make_cache("aof-everysec", group)
    with cache.client() as client:
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}

    writers = start_writers(cache, "everysec")
    write_until(writers, seconds=EVERYSEC_BOUND + 1.5, at_least=100)
    killed_at = kill_and_wait_restart(service, ec, cache)
    join_after_kill(writers)

    with cache.client() as client:
        aof_loaded(cache, client)
        for writer in writers:
            # Every round acknowledged more than the bound before the kill is there.
            old = [i for acked_at, i in writer.acked_incr if acked_at < killed_at - EVERYSEC_BOUND]
            assert old, f"{writer.name_} acknowledged nothing {EVERYSEC_BOUND}s before the kill"
            got = recovered(client, writer)
            assert got.highest >= old[-1] and got.counter >= old[-1], (
                f"{writer.name_}: round {old[-1]} was acknowledged more than "
                f"{EVERYSEC_BOUND}s before the kill, only k:1..k:{got.highest} "
                f"(counter {got.counter}) came back"
            )


def wait_snapshot(ec: BaseClient, name: str) -> dict[str, Any]:
    def available() -> dict[str, Any] | None:
        found = ec.describe_snapshots(SnapshotName=name)["Snapshots"]
        assert found[0]["SnapshotStatus"] in ("creating", "available"), found[0]
        return found[0] if found[0]["SnapshotStatus"] == "available" else None

    result: dict[str, Any] = wait_for(available, timeout=30, interval=0.1)
    return result


def test_without_aof_a_restarted_node_is_empty_even_after_a_snapshot(
    service: Service, ec: BaseClient, make_cache: Any
) -> None:
    cache = make_cache("no-aof")
    with cache.client() as client:
        assert client.config_get("appendonly") == {"appendonly": "no"}
        client.mset({f"snap:{i}": f"old{i}" for i in range(500)})
        ec.create_snapshot(CacheClusterId=cache.cluster_id, SnapshotName="no-aof-snap")
        wait_snapshot(ec, "no-aof-snap")
        # The snapshot's RDB is in the node's directory, where redis looks at start.
        assert (cache.node_dir / "dump.rdb").is_file()
        assert not (cache.node_dir / "appendonlydir").exists()
        # Changed since the snapshot: some deleted, some overwritten, some new.
        client.delete(*[f"snap:{i}" for i in range(250)])
        client.mset({f"snap:{i}": f"new{i}" for i in range(250, 500)})
        client.mset({f"fresh:{i}": "x" for i in range(100)})
        assert client.dbsize() == 350

    kill_and_wait_restart(service, ec, cache)

    with cache.client() as client:
        assert client.dbsize() == 0
        assert client.keys("*") == []
        assert client.info("persistence")["aof_enabled"] == 0
    assert "Recovering cache nodes 0001" in messages(ec, cache.cluster_id)
    # The snapshot itself is untouched.
    assert wait_snapshot(ec, "no-aof-snap")["SnapshotStatus"] == "available"
    ec.delete_snapshot(SnapshotName="no-aof-snap")


def test_appendonly_turned_on_live_takes_effect_and_survives_a_kill(
    service: Service, ec: BaseClient, make_cache: Any
) -> None:
    group = parameter_group(ec, "aof-live")
    cache = make_cache("aof-live", group)
    aof_dir = cache.node_dir / "appendonlydir"
    with cache.client() as client:
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert not aof_dir.exists()
        client.mset({f"before:{i}": f"b{i}" for i in range(1000)})
        run_id = client.info("server")["run_id"]
    pid = service.engines()[cache.node_dir].pid

    set_parameters(ec, group, appendonly="yes", appendfsync="always")

    with cache.client() as client:
        wait_for(lambda: client.config_get("appendonly") == {"appendonly": "yes"}, timeout=15)
        wait_for(lambda: client.config_get("appendfsync") == {"appendfsync": "always"})

        def rewritten() -> bool:
            info: dict[str, object] = client.info("persistence")
            return (
                info["aof_rewrite_in_progress"] == 0
                and info["aof_rewrite_scheduled"] == 0
                and info["aof_last_bgrewrite_status"] == "ok"
                and (aof_dir / "appendonly.aof.manifest").is_file()
            )

        # Switching AOF on rewrites the dataset into a base file in the background;
        # redis publishes the manifest only at its end, so only from then on does
        # the AOF hold the data (a kill before that restarts the node empty).
        wait_for(rewritten, timeout=15)
        assert int(client.info("persistence")["aof_enabled"]) == 1
        assert any(
            p.name.startswith("appendonly.aof.") and ".base." in p.name for p in aof_dir.iterdir()
        )
        # The same process: no restart was needed.
        assert client.info("server")["run_id"] == run_id
        assert service.engines()[cache.node_dir].pid == pid
        # `applying` while the first AOF is written, then `in-sync`.
        wait_for(
            lambda: (
                wait_available(ec, cache.cluster_id)["CacheParameterGroup"]["ParameterApplyStatus"]
                == "in-sync"
            )
        )

        client.mset({f"after:{i}": f"a{i}" for i in range(1000)})
        # A snapshot leaves a dump.rdb behind: the AOF, not it, must be what is loaded.
        ec.create_snapshot(CacheClusterId=cache.cluster_id, SnapshotName="aof-live-snap")
        wait_snapshot(ec, "aof-live-snap")
        assert (cache.node_dir / "dump.rdb").is_file()
        client.delete(*[f"before:{i}" for i in range(500)])
        client.set("last", "written")

    kill_and_wait_restart(service, ec, cache)

    with cache.client() as client:
        aof_loaded(cache, client)
        assert client.dbsize() == 500 + 1000 + 1
        assert client.mget([f"before:{i}" for i in range(500, 1000)]) == [
            f"b{i}" for i in range(500, 1000)
        ]
        assert client.mget([f"after:{i}" for i in range(1000)]) == [f"a{i}" for i in range(1000)]
        assert client.exists(*[f"before:{i}" for i in range(500)]) == 0
        assert client.get("last") == "written"
    ec.delete_snapshot(SnapshotName="aof-live-snap")
