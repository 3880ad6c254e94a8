"""Parameter families: which values a group may hold, and the catalog's round trip."""

from __future__ import annotations

import json

import pytest

from cacheyard.domain.faults import InvalidParameterValueException
from cacheyard.domain.parameters import (
    BOOLEAN,
    FLOAT,
    IMMEDIATE,
    INTEGER,
    MEMCACHED_PARAMETERS,
    REDIS_ALIASES,
    REQUIRES_REBOOT,
    STRING,
    ParameterCatalog,
    ParameterFamily,
    ParameterInfo,
    is_exposed_redis_directive,
)

pytestmark = pytest.mark.timeout(10)


def info(
    name: str,
    data_type: str,
    allowed: str | None,
    default: str = "0",
    modifiable: bool = True,
    change_type: str = IMMEDIATE,
) -> ParameterInfo:
    return ParameterInfo(name, default, data_type, allowed, modifiable, change_type, "", "7.0.0")


REDIS = ParameterFamily(
    "redis7",
    "redis",
    "7.0.15",
    (
        info("maxmemory-policy", STRING, "volatile-lru,allkeys-lru,noeviction", "volatile-lru"),
        info("appendonly", STRING, "yes,no", "no"),
        info("timeout", INTEGER, "0-2147483647"),
        info("repl-backlog-size", INTEGER, "1-", "1048576"),
        info("slowlog-log-slower-than", INTEGER, "-1-", "10000"),
        info("list-max-listpack-size", INTEGER, "-2147483648-2147483647", "-2"),
        info("notify-keyspace-events", STRING, None, ""),
        info("databases", INTEGER, "1-2147483647", "16", change_type=REQUIRES_REBOOT),
        info("lua-time-limit", INTEGER, None, "5000", modifiable=False),
    ),
)
MEMCACHED = ParameterFamily(
    "memcached1.6",
    "memcached",
    "1.6.18",
    (
        info("hash_algorithm", STRING, "jenkins,murmur3", "murmur3", change_type=REQUIRES_REBOOT),
        info("cas_disabled", BOOLEAN, "0,1", change_type=REQUIRES_REBOOT),
        info("chunk_size_growth_factor", FLOAT, "1.01-2", "1.25", change_type=REQUIRES_REBOOT),
        info("max_item_size", INTEGER, "524288-1073741824", "1048576", change_type=REQUIRES_REBOOT),
    ),
)
CATALOG = ParameterCatalog({"redis7": REDIS, "memcached1.6": MEMCACHED})


def test_parameters_are_sorted_by_name_and_have_defaults() -> None:
    names = [p.name for p in REDIS.parameters]
    assert names == sorted(names)
    assert REDIS.defaults()["maxmemory-policy"] == "volatile-lru"
    assert REDIS.defaults()["databases"] == "16"
    assert REDIS.get("timeout").allowed_values == "0-2147483647"


@pytest.mark.parametrize(
    ("name", "value", "stored"),
    [
        ("maxmemory-policy", "allkeys-lru", "allkeys-lru"),
        ("maxmemory-policy", "AllKeys-LRU", "allkeys-lru"),  # redis ignores the case
        ("appendonly", "yes", "yes"),
        ("appendonly", "NO", "no"),
        ("timeout", "0", "0"),
        ("timeout", "2147483647", "2147483647"),
        ("repl-backlog-size", "1", "1"),
        ("repl-backlog-size", "9223372036854775807", "9223372036854775807"),
        ("slowlog-log-slower-than", "-1", "-1"),
        ("list-max-listpack-size", "-2147483648", "-2147483648"),
        ("notify-keyspace-events", "Ex", "Ex"),  # free strings are kept as given
        ("notify-keyspace-events", "", ""),
        ("databases", "32", "32"),
    ],
)
def test_redis_accepts(name: str, value: str, stored: str) -> None:
    assert REDIS.validate(name, value) == stored


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("maxmemory-policy", "sometimes"),
        ("maxmemory-policy", "volatile-lru,allkeys-lru"),
        ("maxmemory-policy", ""),
        ("appendonly", "true"),
        ("appendonly", "1"),
        ("timeout", "-1"),
        ("timeout", "2147483648"),
        ("timeout", "1.5"),
        ("timeout", "10s"),
        ("timeout", "010"),
        ("timeout", " 1"),
        ("timeout", ""),
        ("repl-backlog-size", "0"),
        ("repl-backlog-size", "9223372036854775808"),  # beyond any redis integer
        ("slowlog-log-slower-than", "-2"),
        ("list-max-listpack-size", "-2147483649"),
        ("databases", "0"),
    ],
)
def test_redis_refuses_naming_the_parameter_value_and_allowed_values(name: str, value: str) -> None:
    allowed = REDIS.get(name).allowed_values
    assert allowed is not None
    with pytest.raises(InvalidParameterValueException) as refused:
        REDIS.validate(name, value)
    assert name in refused.value.message
    assert repr(value) in refused.value.message
    assert allowed in refused.value.message


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("hash_algorithm", "jenkins", True),
        ("hash_algorithm", "Jenkins", False),  # memcached compares the case
        ("cas_disabled", "1", True),
        ("cas_disabled", "0", True),
        ("cas_disabled", "true", False),
        ("cas_disabled", "2", False),
        ("chunk_size_growth_factor", "1.5", True),
        ("chunk_size_growth_factor", "2", True),
        ("chunk_size_growth_factor", "1.01", True),
        ("chunk_size_growth_factor", "1", False),
        ("chunk_size_growth_factor", "2.5", False),
        ("chunk_size_growth_factor", "1,5", False),
        ("chunk_size_growth_factor", "-1.5", False),
        ("max_item_size", "2097152", True),
        ("max_item_size", "524288", True),
        ("max_item_size", "1500000", False),  # memcached wants multiples of its slab chunk
        ("max_item_size", "2m", False),
        ("max_item_size", "1024", False),
    ],
)
def test_memcached_values(name: str, value: str, accepted: bool) -> None:
    if accepted:
        assert MEMCACHED.validate(name, value) == value
    else:
        with pytest.raises(InvalidParameterValueException, match=name):
            MEMCACHED.validate(name, value)


def test_the_refusal_of_a_non_multiple_says_which_multiples() -> None:
    with pytest.raises(InvalidParameterValueException, match="multiples of 524288"):
        MEMCACHED.validate("max_item_size", "1500000")


def test_unknown_and_unmodifiable_parameters_are_refused() -> None:
    with pytest.raises(InvalidParameterValueException, match=r"maxmemory-polcy.*redis7"):
        REDIS.validate("maxmemory-polcy", "allkeys-lru")
    with pytest.raises(InvalidParameterValueException, match="bind"):
        REDIS.get("bind")
    with pytest.raises(InvalidParameterValueException, match="lua-time-limit is not modifiable"):
        REDIS.validate("lua-time-limit", "5000")


def test_the_catalog_finds_families_and_refuses_others() -> None:
    assert CATALOG.family("redis7") is REDIS
    with pytest.raises(InvalidParameterValueException, match=r"redis6\.x.*memcached1\.6, redis7"):
        CATALOG.family("redis6.x")
    with pytest.raises(InvalidParameterValueException, match="no engine is installed"):
        ParameterCatalog({}).family("redis7")


def test_the_catalog_round_trips_through_json() -> None:
    data = json.loads(json.dumps(CATALOG.to_dict()))
    assert ParameterCatalog.from_dict(data) == CATALOG
    assert ParameterCatalog.from_dict(data).family("redis7").validate("timeout", "5") == "5"


@pytest.mark.parametrize("broken", [{"redis7": {"family": "redis7"}}, {"redis7": []}])
def test_a_catalog_of_another_shape_is_refused(broken: dict[str, object]) -> None:
    with pytest.raises((KeyError, TypeError)):
        ParameterCatalog.from_dict(broken)


@pytest.mark.parametrize(
    "name",
    [
        *("bind", "port", "dir", "requirepass", "maxmemory", "replicaof", "slaveof", "save"),
        *("tls-port", "tls-cert-file", "cluster-enabled", "syslog-ident", "io-threads"),
        *("min-replicas-to-write", "masterauth", "unixsocket", "enable-debug-command"),
    ],
)
def test_managed_directives_are_not_exposed(name: str) -> None:
    assert not is_exposed_redis_directive(name)


@pytest.mark.parametrize("name", ["maxmemory-policy", "appendonly", "appendfsync", "databases"])
def test_parameters_of_groups_are_exposed(name: str) -> None:
    assert is_exposed_redis_directive(name)


def test_aliases_point_at_modern_names_and_are_hidden() -> None:
    for old, modern in REDIS_ALIASES.items():
        assert not is_exposed_redis_directive(old)
        assert modern not in REDIS_ALIASES


@pytest.mark.parametrize(
    ("name", "value", "argv"),
    [
        ("max_item_size", "2097152", ["-I", "2097152"]),
        ("idle_timeout", "30", ["-o", "idle_timeout=30"]),
        ("cas_disabled", "1", ["-C"]),
        ("cas_disabled", "0", []),
        ("lru_crawler", "0", ["-o", "no_lru_crawler"]),
        ("lru_crawler", "1", ["-o", "lru_crawler"]),
    ],
)
def test_memcached_parameters_become_flags(name: str, value: str, argv: list[str]) -> None:
    assert MEMCACHED_PARAMETERS[name].argv(value) == argv
