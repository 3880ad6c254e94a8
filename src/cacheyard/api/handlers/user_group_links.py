"""User groups attached to replication groups, with ElastiCache's rules.

A group's users become ACL users on every node of the caches it is attached to.
While a change is being applied the user group (and a changed user) shows
``modifying``; the replication group reconciler sets it ``active`` again once
every cache holds it (controller/access.py).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from cacheyard.api.handlers.context import Context
from cacheyard.controller import keys
from cacheyard.domain import faults, statuses, users
from cacheyard.domain.replication_groups import ReplicationGroupSpec
from cacheyard.store import Transaction

Params = dict[str, Any]

MAX_USER_GROUPS_PER_CACHE = 1


async def caches_of(tx: Transaction, user_group_id: str) -> list[str]:
    """The replication groups this user group is attached to."""
    return [
        r.id
        for r in await tx.all(keys.REPLICATION_GROUP)
        if user_group_id in r.spec.get("user_group_ids", ())
    ]


async def sasl_clusters(tx: Transaction, user_group_ids: Collection[str]) -> list[str]:
    """The Memcached clusters whose SASL users come from one of these user groups."""
    return [
        r.id
        for r in await tx.all(keys.CACHE_CLUSTER)
        if r.spec.get("sasl_user_group") in user_group_ids
    ]


async def mark_changing(tx: Transaction, user_group_ids: Iterable[str]) -> list[tuple[str, str]]:
    """Set these user groups `modifying` where replication groups hold them (attached,
    or being let go); the caches (kind, id) to reconcile, SASL Memcached clusters among
    them (their logins change at once)."""
    ids = list(user_group_ids)
    groups = await tx.all(keys.REPLICATION_GROUP)
    caches = []
    for group_id in ids:
        holding = [
            r.id
            for r in groups
            if group_id in r.spec.get("user_group_ids", ())
            or r.observed.get("acl_group") == group_id
        ]
        record = await tx.get(users.USER_GROUP, group_id)
        if holding and record is not None:
            await tx.update_spec(users.USER_GROUP, group_id, record.spec, statuses.MODIFYING)
            caches += [(keys.REPLICATION_GROUP, cache) for cache in holding]
    caches += [(keys.CACHE_CLUSTER, c) for c in await sasl_clusters(tx, ids)]
    return caches


def reconcile(ctx: Context, caches: Iterable[tuple[str, str]]) -> None:
    for kind, cache in dict.fromkeys(caches):
        ctx.controller.enqueue(kind, cache)


async def for_new_cache(
    tx: Transaction, params: Params, transit_encryption: bool
) -> tuple[str, ...]:
    """CreateReplicationGroup's UserGroupIds, checked; the groups go `modifying`."""
    ids = tuple(users.ids(params.get("UserGroupIds") or [], "UserGroupIds"))
    if ids:
        _check_combination(params, transit_encryption)
        await _attach(tx, ids)
    return ids


async def modified(tx: Transaction, params: Params, group: ReplicationGroupSpec) -> tuple[str, ...]:
    """The user groups after ModifyReplicationGroup's UserGroupIdsToAdd/ToRemove and
    RemoveUserGroups; the ones added or removed go `modifying`."""
    to_add = users.ids(params.get("UserGroupIdsToAdd") or [], "UserGroupIdsToAdd")
    to_remove = users.ids(params.get("UserGroupIdsToRemove") or [], "UserGroupIdsToRemove")
    current = list(group.user_group_ids)
    for group_id in to_remove:
        if group_id not in current:
            raise faults.InvalidParameterValueException(
                f"User group {group_id} is not associated with replication group {group.group_id}."
            )
    if params.get("RemoveUserGroups"):
        if to_add:
            raise faults.InvalidParameterCombinationException(
                "RemoveUserGroups can't be combined with UserGroupIdsToAdd."
            )
        to_remove = current
    for group_id in to_add:
        if group_id in current and group_id not in to_remove:
            raise faults.InvalidParameterValueException(
                f"User group {group_id} is already associated with replication group "
                f"{group.group_id}."
            )
    after = tuple(g for g in current if g not in to_remove) + tuple(to_add)
    strategy = params.get("AuthTokenUpdateStrategy")
    if after and (params.get("AuthToken") is not None or strategy not in (None, "DELETE")):
        raise faults.InvalidParameterCombinationException(
            "AuthToken can't be used on a replication group with a user group."
        )
    if to_add:
        _check_combination(params, group.transit_encryption)
        await _attach(tx, to_add, limit_to=len(after))
    for group_id in to_remove:
        record = await tx.get(users.USER_GROUP, group_id)
        if record is not None:
            await tx.update_spec(users.USER_GROUP, group_id, record.spec, statuses.MODIFYING)
    return after


def _check_combination(params: Params, transit_encryption: bool) -> None:
    if params.get("AuthToken") is not None:
        raise faults.InvalidParameterCombinationException(
            "AuthToken and user groups can't be used together: a user group's `default` "
            "user takes the place of the AUTH token."
        )
    if not transit_encryption:
        raise faults.InvalidParameterCombinationException(
            "User groups (RBAC) require TransitEncryptionEnabled."
        )


async def _attach(tx: Transaction, ids: Iterable[str], limit_to: int | None = None) -> None:
    ids = list(ids)
    if (limit_to if limit_to is not None else len(ids)) > MAX_USER_GROUPS_PER_CACHE:
        raise faults.InvalidParameterValueException(
            "A replication group can have only one user group."
        )
    for group_id in ids:
        record = await tx.get(users.USER_GROUP, group_id)
        if record is None:
            raise faults.UserGroupNotFoundFault(f"User group {group_id} not found.")
        users.require_active(
            record.status, f"User group {group_id}", faults.InvalidUserGroupStateFault
        )
        await tx.update_spec(users.USER_GROUP, group_id, record.spec, statuses.MODIFYING)
