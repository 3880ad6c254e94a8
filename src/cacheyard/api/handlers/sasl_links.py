"""Memcached SASL through a tag: Cacheyard's extension (ADR 15).

ElastiCache has no authentication for Memcached, and its CreateCacheCluster has
no user-group parameter, so a Memcached cluster created with the tag
``cacheyard:sasl-user-group=<user group id>`` runs with SASL: the group's
password users log in with their user names and passwords. Changing the tag's
value moves the cluster to another group at once; SASL itself is chosen at
creation, so the tag can be neither added later nor removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from cacheyard.controller import keys
from cacheyard.domain import faults, users
from cacheyard.domain.cache_clusters import CacheClusterSpec
from cacheyard.domain.codec import dump, load
from cacheyard.store import Record, Transaction

TAG = "cacheyard:sasl-user-group"


async def for_new_cluster(tx: Transaction, tags: Mapping[str, str], engine: str) -> str | None:
    """The user group a new cluster's tags ask SASL for, checked."""
    if TAG not in tags:
        return None
    if engine != "memcached":
        raise faults.InvalidParameterCombinationException(
            f"The tag {TAG} is for Memcached clusters; Redis uses UserGroupIds on a "
            "replication group."
        )
    return await _user_group(tx, tags[TAG])


async def retagged(tx: Transaction, record: Record, tags: Mapping[str, str]) -> bool:
    """AddTagsToResource of the tag on a SASL cluster: its new user group. True when
    the cluster changed and must be reconciled."""
    if TAG not in tags:
        return False
    spec = _sasl_cluster(record)
    group_id = await _user_group(tx, tags[TAG])
    if group_id == spec.sasl_user_group:
        return False
    await tx.update_spec(
        keys.CACHE_CLUSTER, record.id, dump(replace(spec, sasl_user_group=group_id)), record.status
    )
    return True


def check_removal(record: Record, tag_keys: list[str]) -> None:
    if TAG in tag_keys and record.kind == keys.CACHE_CLUSTER:
        raise faults.InvalidParameterValueException(
            f"The tag {TAG} can't be removed: SASL is chosen when a Memcached cluster is created."
        )


def _sasl_cluster(record: Record) -> CacheClusterSpec:
    spec = load(CacheClusterSpec, record.spec) if record.kind == keys.CACHE_CLUSTER else None
    if spec is None or spec.sasl_user_group is None:
        raise faults.InvalidParameterValueException(
            f"The tag {TAG} can only be given when a Memcached cluster is created."
        )
    return spec


async def _user_group(tx: Transaction, value: str) -> str:
    group_id = value.lower()
    record = await tx.get(users.USER_GROUP, group_id)
    if record is None:
        raise faults.UserGroupNotFoundFault(f"User group {value} not found.")
    return group_id
