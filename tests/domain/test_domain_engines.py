"""The engine catalog: only installed versions, asked for as AWS allows."""

from __future__ import annotations

import pytest

from cacheyard.domain.engines import EngineCatalog, EngineVersion
from cacheyard.domain.faults import InvalidParameterValueException

pytestmark = pytest.mark.timeout(10)

REDIS = EngineVersion("redis", "7.0.15")
MEMCACHED = EngineVersion("memcached", "1.6.18")
CATALOG = EngineCatalog((REDIS, MEMCACHED))


@pytest.mark.parametrize("requested", [None, "7.0", "7.0.15"])
def test_redis_accepts_major_minor_and_full_version(requested: str | None) -> None:
    assert CATALOG.resolve("redis", requested) is REDIS


@pytest.mark.parametrize("requested", ["7", "7.0.1", "7.0.16", "7.2", "6.2", "7.x", "", "7.0.15 "])
def test_redis_refuses_other_versions(requested: str) -> None:
    with pytest.raises(InvalidParameterValueException, match="Cannot find version"):
        CATALOG.resolve("redis", requested)


def test_memcached_accepts_its_full_version() -> None:
    assert CATALOG.resolve("memcached", None) is MEMCACHED
    assert CATALOG.resolve("memcached", "1.6.18") is MEMCACHED
    with pytest.raises(InvalidParameterValueException):
        CATALOG.resolve("memcached", "1.6.17")


def test_memcached_refuses_a_major_minor_version() -> None:
    with pytest.raises(InvalidParameterValueException):
        CATALOG.resolve("memcached", "1.6")


@pytest.mark.parametrize("engine", ["valkey", "Redis", ""])
def test_unknown_engine_is_refused(engine: str) -> None:
    with pytest.raises(InvalidParameterValueException, match="Invalid value for Engine"):
        CATALOG.resolve(engine, None)


def test_engine_not_installed_is_refused() -> None:
    with pytest.raises(InvalidParameterValueException, match="not installed"):
        EngineCatalog((REDIS,)).resolve("memcached", None)


def test_first_installed_version_is_the_default() -> None:
    older = EngineVersion("redis", "7.0.11")
    assert EngineCatalog((REDIS, older)).resolve("redis", None) is REDIS
    assert EngineCatalog((REDIS, older)).resolve("redis", "7.0.11") is older


def test_families_and_default_parameter_groups() -> None:
    assert REDIS.family == "redis7"
    assert REDIS.major_minor == "7.0"
    assert REDIS.default_parameter_group == "default.redis7"
    assert MEMCACHED.family == "memcached1.6"
    assert MEMCACHED.default_parameter_group == "default.memcached1.6"
    assert EngineVersion("redis", "6.2.14").family == "redis6"


def test_descriptions() -> None:
    assert REDIS.description == "Redis"
    assert REDIS.version_description == "redis version 7.0.15"
    assert MEMCACHED.description == "memcached"
    assert MEMCACHED.version_description == "memcached version 1.6.18"
