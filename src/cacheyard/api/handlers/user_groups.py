"""RBAC user groups: create, describe, modify, delete.

A change to a group attached to caches leaves it `modifying` until every node of
them holds the new users (user_group_links.py); an unattached group's change is
complete when it is written.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cacheyard.api.handlers import user_group_links
from cacheyard.api.handlers.context import Context
from cacheyard.api.handlers.paging import page
from cacheyard.api.handlers.resources import new_record, tags_param
from cacheyard.api.handlers.users import all_users
from cacheyard.domain import faults, statuses, users
from cacheyard.domain.codec import dump, load
from cacheyard.domain.users import UserGroupSpec, UserSpec
from cacheyard.store import Record, Transaction

Params = dict[str, Any]


async def _get(tx: Transaction, group_id: str) -> Record:
    record = await tx.get(users.USER_GROUP, group_id.lower())
    if record is None:
        raise faults.UserGroupNotFoundFault(f"User group {group_id} not found.")
    return record


async def _user_specs(ctx: Context, tx: Transaction) -> dict[str, UserSpec]:
    return {i: load(UserSpec, r.spec) for i, r in (await all_users(ctx, tx)).items()}


def group_view(record: Record, caches: list[str], status: str | None = None) -> Params:
    spec = load(UserGroupSpec, record.spec)
    return {
        "UserGroupId": spec.user_group_id,
        "Status": status or record.status,
        "Engine": spec.engine,
        "UserIds": list(spec.user_ids),
        "MinimumEngineVersion": users.MINIMUM_ENGINE_VERSION,
        "ReplicationGroups": caches,
        "ServerlessCaches": [],
        "ARN": record.arn,
    }


async def create(ctx: Context, params: Params) -> Params:
    group_id = users.identifier(params["UserGroupId"], "UserGroupId")
    engine = users.engine(params["Engine"])
    user_ids = users.ids(params.get("UserIds") or [], "UserIds")
    tags = tags_param(params)
    async with ctx.store.transaction() as tx:
        existing = await tx.all(users.USER_GROUP)
        if any(r.id == group_id for r in existing):
            raise faults.UserGroupAlreadyExistsFault(f"User group {group_id} already exists.")
        if len(existing) >= users.MAX_USER_GROUPS:
            raise faults.UserGroupQuotaExceededFault(
                f"An account can have at most {users.MAX_USER_GROUPS} user groups."
            )
        members = await _user_specs(ctx, tx)
        users.check_members(group_id, user_ids, members, faults.UserGroupQuotaExceededFault)
        spec = UserGroupSpec(group_id, engine, tuple(user_ids))
        record = new_record(
            ctx,
            users.USER_GROUP,
            "usergroup",
            group_id,
            spec,
            ctx.clock.now(),
            status=users.ACTIVE,
        )
        await tx.insert(record)
        await tx.set_tags(record.arn, tags)
    return group_view(record, [])


async def describe(ctx: Context, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        if params.get("UserGroupId") is not None:
            records = [await _get(tx, params["UserGroupId"])]
        else:
            records = await tx.all(users.USER_GROUP)
        views = [group_view(r, await user_group_links.caches_of(tx, r.id)) for r in records]
    return page(views, [r.id for r in records], "UserGroups", params)


async def modify(ctx: Context, params: Params) -> Params:
    to_add = users.ids(params.get("UserIdsToAdd") or [], "UserIdsToAdd")
    to_remove = users.ids(params.get("UserIdsToRemove") or [], "UserIdsToRemove")
    if params.get("Engine") is not None:
        users.engine(params["Engine"])
    async with ctx.store.transaction() as tx:
        record = await _get(tx, params["UserGroupId"])
        users.require_active(
            record.status, f"User group {record.id}", faults.InvalidUserGroupStateFault
        )
        spec = load(UserGroupSpec, record.spec)
        user_ids = users.members_after(spec, to_add, to_remove)
        members = await _user_specs(ctx, tx)
        users.check_members(record.id, user_ids, members, faults.InvalidParameterValueException)
        record = await tx.update_spec(
            users.USER_GROUP, record.id, dump(replace(spec, user_ids=user_ids)), users.ACTIVE
        )
        caches = await user_group_links.mark_changing(tx, [record.id])
        record = await _get(tx, record.id)
        view = group_view(record, await user_group_links.caches_of(tx, record.id))
    user_group_links.reconcile(ctx, caches)
    return view


async def delete(ctx: Context, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        record = await _get(tx, params["UserGroupId"])
        users.require_active(
            record.status, f"User group {record.id}", faults.InvalidUserGroupStateFault
        )
        caches = await user_group_links.caches_of(tx, record.id)
        caches += await user_group_links.sasl_clusters(tx, [record.id])
        if caches:
            raise faults.InvalidUserGroupStateFault(
                f"User group {record.id} is associated with {caches[0]}."
            )
        await tx.delete(users.USER_GROUP, record.id)
    return group_view(record, [], status=statuses.DELETING)
