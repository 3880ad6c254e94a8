"""Node types: memory becomes the engine limit, vCPUs memcached's threads (capped)."""

from __future__ import annotations

import pytest

from cacheyard.domain.faults import InvalidParameterValueException
from cacheyard.domain.node_types import NODE_TYPES, node_type

pytestmark = pytest.mark.timeout(10)


def test_memory_mb_is_gib_times_1024_truncated() -> None:
    assert node_type("cache.t3.micro").memory_mb == 512
    assert node_type("cache.r6g.large").memory_mb == int(13.07 * 1024)
    assert node_type("cache.t1.micro").memory_mb == 218


def test_memcached_threads_follow_vcpus_capped_at_64() -> None:
    assert node_type("cache.t2.micro").memcached_threads == 1
    assert node_type("cache.m5.xlarge").memcached_threads == 4
    assert node_type("cache.r6g.16xlarge").memcached_threads == 64
    assert node_type("cache.m5.24xlarge").vcpus == 96
    assert node_type("cache.m5.24xlarge").memcached_threads == 64


def test_every_type_is_named_by_its_key_and_positive() -> None:
    for name, kind in NODE_TYPES.items():
        assert kind.name == name
        assert name.startswith("cache.")
        assert kind.memory_mb > 0
        assert 1 <= kind.memcached_threads <= 64


@pytest.mark.parametrize("name", ["cache.t3.huge", "t3.micro", "", "CACHE.T3.MICRO"])
def test_unknown_node_type_is_a_fault(name: str) -> None:
    with pytest.raises(InvalidParameterValueException, match="CacheNodeType"):
        node_type(name)
