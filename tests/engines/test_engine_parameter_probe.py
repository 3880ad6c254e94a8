"""The parameter catalog, as the installed redis-server and memcached tell it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from engine_helpers import eventually

from cacheyard.domain.parameters import (
    ELASTICACHE_REDIS_DEFAULTS,
    IMMEDIATE,
    INTEGER,
    MEMCACHED_PARAMETERS,
    REDIS_ALIASES,
    REQUIRES_REBOOT,
    RESERVED_REDIS_DIRECTIVES,
    STRING,
    ParameterCatalog,
    ParameterFamily,
    ParameterInfo,
    is_exposed_redis_directive,
)
from cacheyard.engines import launch, parameter_probe, procfs
from cacheyard.engines.host import LocalEngineHost
from cacheyard.engines.parameter_probe import (
    ParameterProbeError,
    load_or_probe,
    probe_catalog,
    probe_redis,
)
from cacheyard.engines.replication import set_config
from cacheyard.engines.spec import NodeSpec

SpecFactory = Callable[..., NodeSpec]
REDIS_SERVER = shutil.which("redis-server")
MEMCACHED = shutil.which("memcached")
POLICIES = {
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
}
MANAGED = [
    "bind",
    "port",
    "dir",
    "requirepass",
    "masterauth",
    "maxmemory",
    "replicaof",
    "slaveof",
    "tls-port",
    "save",
    "dbfilename",
    "logfile",
    "unixsocket",
    "min-replicas-to-write",
    "replica-announce-ip",
    "cluster-enabled",
    "enable-debug-command",
    "protected-mode",
    "repl-diskless-sync-delay",
    "io-threads",
]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> ParameterCatalog:
    assert REDIS_SERVER is not None and MEMCACHED is not None
    return asyncio.run(probe_catalog(REDIS_SERVER, MEMCACHED, tmp_path_factory.mktemp("probe")))


@pytest.fixture
def redis7(catalog: ParameterCatalog) -> ParameterFamily:
    return catalog.family("redis7")


@pytest.fixture
def memcached16(catalog: ParameterCatalog) -> ParameterFamily:
    return catalog.family("memcached1.6")


def test_maxmemory_policy_lists_the_eight_policies(redis7: ParameterFamily) -> None:
    policy = redis7.get("maxmemory-policy")
    assert policy.data_type == STRING
    assert policy.allowed_values is not None
    assert set(policy.allowed_values.split(",")) == POLICIES
    assert policy.change_type == IMMEDIATE
    assert policy.default == "volatile-lru"  # ElastiCache's default, not redis' noeviction
    assert redis7.engine == "redis" and redis7.engine_version == "7.0.15"


def test_persistence_is_set_through_parameters(redis7: ParameterFamily) -> None:
    appendonly, appendfsync = redis7.get("appendonly"), redis7.get("appendfsync")
    assert (appendonly.default, appendonly.allowed_values) == ("no", "yes,no")
    assert appendfsync.default == "everysec"
    assert set((appendfsync.allowed_values or "").split(",")) == {"always", "everysec", "no"}
    assert appendonly.change_type == appendfsync.change_type == IMMEDIATE


def test_immutable_directives_take_a_restart(redis7: ParameterFamily) -> None:
    databases = redis7.get("databases")
    assert (databases.data_type, databases.allowed_values) == (INTEGER, "1-2147483647")
    assert (databases.default, databases.change_type) == ("16", REQUIRES_REBOOT)
    assert databases.modifiable
    assert redis7.get("rdbchecksum").allowed_values == "yes,no"
    assert redis7.get("rdbchecksum").change_type == REQUIRES_REBOOT


def test_types_and_ranges_come_from_the_engines_answers(redis7: ParameterFamily) -> None:
    assert redis7.get("timeout").allowed_values == "0-2147483647"
    assert redis7.get("maxclients").allowed_values == "1-4294967295"
    assert redis7.get("slowlog-log-slower-than").allowed_values == "-1-"
    assert redis7.get("proto-max-bulk-len").allowed_values == "1048576-"  # a memory value
    assert redis7.get("sanitize-dump-payload").allowed_values == "no,yes,clients"
    # Values of a syntax of their own are strings, whatever they look like.
    for name in ("notify-keyspace-events", "client-output-buffer-limit", "maxmemory-clients"):
        assert (redis7.get(name).data_type, redis7.get(name).allowed_values) == (STRING, None)


def test_an_enum_word_this_build_refuses_is_not_offered(redis7: ParameterFamily) -> None:
    """Debian's redis uses the system jemalloc: CONFIG SET activedefrag yes is refused."""
    assert redis7.get("activedefrag").allowed_values in ("no", "yes,no")


@pytest.mark.parametrize("name", MANAGED)
def test_no_managed_directive_leaks(redis7: ParameterFamily, name: str) -> None:
    assert name not in redis7.defaults()


def test_what_the_host_sets_itself_is_managed_but_elasticaches_defaults(
    redis_spec: SpecFactory,
) -> None:
    assert not [d for d in RESERVED_REDIS_DIRECTIVES if is_exposed_redis_directive(d)]
    written = launch.redis_directives(redis_spec())
    exposed = {d: v for d, v in written.items() if is_exposed_redis_directive(d)}
    assert exposed == ELASTICACHE_REDIS_DEFAULTS


def test_no_alias_or_prefixed_family_leaks(redis7: ParameterFamily) -> None:
    names = set(redis7.defaults())
    assert not names & set(REDIS_ALIASES)
    assert not [n for n in names if n.startswith(("tls-", "cluster-", "syslog-", "slave"))]
    assert len(names) == len(redis7.parameters)


@pytest.mark.timeout(10)
async def test_a_node_runs_with_the_group_defaults(
    redis7: ParameterFamily, host: LocalEngineHost, redis_spec: SpecFactory
) -> None:
    spec = redis_spec()
    host.start(spec)
    await eventually(lambda: host.probe(spec))
    async with aioredis.Redis(host=spec.address, port=spec.port, decode_responses=True) as r:
        running = await r.config_get("*")
    assert {n: running[n] for n in redis7.defaults()} == redis7.defaults()
    immediate = {p.name: p.default for p in redis7.parameters if p.change_type == IMMEDIATE}
    await set_config(spec.address, spec.port, immediate)  # every one of them takes its default


@pytest.mark.timeout(10)
async def test_each_hidden_alias_follows_its_modern_name(
    redis7: ParameterFamily, host: LocalEngineHost, redis_spec: SpecFactory
) -> None:
    spec = redis_spec()
    host.start(spec)
    await eventually(lambda: host.probe(spec))
    checked = 0
    async with aioredis.Redis(host=spec.address, port=spec.port, decode_responses=True) as r:
        for old, modern in REDIS_ALIASES.items():
            if modern not in redis7.defaults():
                continue
            value = redis7.validate(modern, _another_value(redis7.get(modern)))
            await r.config_set(modern, value)
            assert (await r.config_get(old))[old] == value
            checked += 1
    assert checked == 9  # the others' modern names are managed


@pytest.mark.timeout(10)
async def test_requires_reboot_values_reach_a_node_through_its_configuration(
    redis7: ParameterFamily, host: LocalEngineHost, redis_spec: SpecFactory
) -> None:
    spec = redis_spec(redis_config={"databases": "32", "rdbchecksum": "no"})
    host.start(spec)
    await eventually(lambda: host.probe(spec))
    async with aioredis.Redis(host=spec.address, port=spec.port, decode_responses=True) as r:
        assert await r.config_get("databases") == {"databases": "32"}
        assert await r.config_get("rdbchecksum") == {"rdbchecksum": "no"}


def test_memcached_offers_elasticache_names(memcached16: ParameterFamily) -> None:
    names = set(memcached16.defaults())
    assert {"max_item_size", "chunk_size", "chunk_size_growth_factor", "cas_disabled"} <= names
    assert names <= set(MEMCACHED_PARAMETERS)
    assert all(p.change_type == REQUIRES_REBOOT for p in memcached16.parameters)
    assert memcached16.get("max_simultaneous_connections").default == "4096"  # Cacheyard's -c
    hashes = (memcached16.get("hash_algorithm").allowed_values or "").split(",")
    assert {"jenkins", "murmur3"} <= set(hashes)
    assert not memcached16.get("requests_per_event").modifiable
    assert (memcached16.engine, memcached16.engine_version) == ("memcached", "1.6.18")


@pytest.mark.timeout(10)
async def test_memcached_defaults_are_what_a_node_reports(
    memcached16: ParameterFamily, host: LocalEngineHost, memcached_spec: SpecFactory
) -> None:
    spec = memcached_spec()
    host.start(spec)
    await eventually(lambda: host.probe(spec))
    settings = await _stats_settings(spec)
    for info in memcached16.parameters:
        option = MEMCACHED_PARAMETERS[info.name]
        reported = settings[option.stats_key]
        assert option.stats_words.get(reported, reported) == info.default, info.name


@pytest.mark.timeout(10)
async def test_a_probe_is_quick_and_leaves_no_process(tmp_path: Path) -> None:
    assert REDIS_SERVER is not None and MEMCACHED is not None
    before = _children()
    started = time.monotonic()
    await probe_catalog(REDIS_SERVER, MEMCACHED, tmp_path)
    took = time.monotonic() - started
    print(f"\nprobe of redis-server and memcached: {took * 1000:.0f} ms")
    assert took < 1.0
    assert not _children() - before
    assert not os.listdir(tmp_path)  # the scratch directory is gone


@pytest.mark.timeout(10)
async def test_an_engine_that_never_answers_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parameter_probe, "START_TIMEOUT", 0.3)
    silent = _script(tmp_path / "silent", 'echo "Redis server v=7.0.15"; exec sleep 30')
    before = _children()
    with pytest.raises(ParameterProbeError, match="did not"):
        await probe_redis(str(silent), tmp_path / "work")
    assert not _children() - before


@pytest.mark.timeout(10)
async def test_an_engine_that_exits_tells_why(tmp_path: Path) -> None:
    broken = _script(
        tmp_path / "broken",
        '[ "$1" = --version ] && echo "Redis server v=7.0.15" || echo "no such luck"; exit 1',
    )
    with pytest.raises(ParameterProbeError, match="no such luck"):
        await probe_redis(str(broken), tmp_path / "work")


@pytest.fixture
def own_redis_server(tmp_path: Path) -> Path:
    """A copy of redis-server, so that its mtime can change (Debian's is a symlink)."""
    assert REDIS_SERVER is not None
    binary = tmp_path / "bin" / "redis-server"
    binary.parent.mkdir()
    shutil.copy(os.path.realpath(REDIS_SERVER), binary)
    return binary


@pytest.mark.timeout(20)
async def test_the_cache_is_reused_private_and_invalidated(
    tmp_path: Path, own_redis_server: Path
) -> None:
    binary = own_redis_server
    cache = tmp_path / "state" / "parameters.json"
    work = tmp_path / "work"

    probed = await load_or_probe(str(binary), None, work, cache)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    _mark(cache, "from the cache")
    cached = await load_or_probe(str(binary), None, work, cache)
    assert cached.family("redis7").parameters[0].description == "from the cache"

    os.utime(binary, ns=(binary.stat().st_atime_ns, binary.stat().st_mtime_ns + 10**9))
    assert await load_or_probe(str(binary), None, work, cache) == probed
    _mark(cache, "from the cache")
    assert set((await load_or_probe(str(binary), MEMCACHED, work, cache)).families) == {
        "redis7",
        "memcached1.6",
    }
    cache.write_text("{not json", encoding="utf-8")
    assert await load_or_probe(str(binary), None, work, cache) == probed
    assert [p.name for p in cache.parent.iterdir()] == ["parameters.json"]


def _another_value(info: ParameterInfo) -> str:
    if info.data_type == INTEGER:
        return str(int(info.default) + 1)
    assert info.allowed_values is not None
    return next(w for w in info.allowed_values.split(",") if w != info.default)


async def _stats_settings(spec: NodeSpec) -> dict[str, str]:
    """``stats settings`` as memcached writes it (pymemcache would convert the values)."""
    reader, writer = await asyncio.open_connection(spec.address, spec.port)
    try:
        writer.write(b"stats settings\r\n")
        reply = (await reader.readuntil(b"END\r\n")).decode()
    finally:
        writer.close()
        await writer.wait_closed()
    return dict(line.split(" ", 2)[1:] for line in reply.splitlines() if line.startswith("STAT "))


def _children() -> set[int]:
    """This process' children, zombies included (a zombie is one not waited for)."""
    mine = os.getpid()
    return {
        pid
        for pid in procfs.pids()
        if (stat_ := procfs.read_stat(pid)) is not None and stat_.ppid == mine
    }


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def _mark(cache: Path, description: str) -> None:
    data = json.loads(cache.read_text(encoding="utf-8"))
    data["catalog"]["redis7"]["parameters"][0]["description"] = description
    cache.write_text(json.dumps(data), encoding="utf-8")
