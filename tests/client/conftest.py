"""Caches created through Cacheyard, once per test session, for the client library.

The library is tested against what it will meet in use: a real service, real
engines, real failovers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from client_caches import Caches
from group_helpers import create_group, primary_address, reader_address, wait_group_available
from service_helpers import Service, wait_available


@pytest.fixture(scope="session")
def caches(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Caches]:
    service = Service(Path(tmp_path_factory.mktemp("client")) / "data")
    service.start()
    try:
        ec = service.client()
        ec.create_cache_cluster(
            CacheClusterId="lib-redis", Engine="redis", CacheNodeType="cache.t3.micro"
        )
        ec.create_cache_cluster(
            CacheClusterId="lib-mc",
            Engine="memcached",
            CacheNodeType="cache.t3.micro",
            NumCacheNodes=2,
        )
        create_group(ec, "lib-group")
        redis_node = wait_available(ec, "lib-redis")["CacheNodes"][0]["Endpoint"]["Address"]
        memcached = wait_available(ec, "lib-mc")["ConfigurationEndpoint"]["Address"]
        group = wait_group_available(ec, "lib-group")
        yield Caches(
            service=service,
            redis_address=redis_node,
            group_id="lib-group",
            primary_endpoint=primary_address(group),
            reader_endpoint=reader_address(group),
            memcached_config_endpoint=memcached,
            memcached_cluster_id="lib-mc",
        )
    finally:
        service.down()


@pytest.fixture
def client(caches: Caches) -> Iterator[redis.Redis]:
    connection = redis.Redis(host=caches.redis_address, port=6379, socket_timeout=5)
    yield connection
    connection.close()


@pytest.fixture
async def aclient(caches: Caches) -> AsyncIterator[aioredis.Redis]:
    connection = aioredis.Redis(host=caches.redis_address, port=6379, socket_timeout=5)
    yield connection
    await connection.aclose()
