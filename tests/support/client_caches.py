"""What the client library's tests get: caches created through a real Cacheyard."""

from __future__ import annotations

from dataclasses import dataclass

from service_helpers import Service


@dataclass(frozen=True)
class Caches:
    service: Service
    redis_address: str  # a single-node Redis cluster's node
    group_id: str
    primary_endpoint: str  # a 3-member replication group with automatic failover
    reader_endpoint: str
    memcached_config_endpoint: str  # a 2-node Memcached cluster
    memcached_cluster_id: str
