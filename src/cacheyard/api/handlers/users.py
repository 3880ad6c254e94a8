"""RBAC users: create, describe, modify, delete.

A user in a group attached to caches is `modifying` after a change until every
node holds it; otherwise a change is complete when it is written. The built-in
``default`` user is written the first time any user or user group call needs it.
Passwords are hashed before anything else sees them; no answer, event, log line
or message carries one.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cacheyard.api.handlers import user_group_links
from cacheyard.api.handlers.context import Context
from cacheyard.api.handlers.paging import page
from cacheyard.api.handlers.resources import new_record, tags_param
from cacheyard.controller import keys
from cacheyard.domain import faults, statuses, users
from cacheyard.domain.codec import dump, load
from cacheyard.domain.users import UserGroupSpec, UserSpec
from cacheyard.engines import acl_check
from cacheyard.store import Record, Transaction

Params = dict[str, Any]


async def all_users(ctx: Context, tx: Transaction) -> dict[str, Record]:
    """Every user by id, the built-in default one included."""
    if await tx.get(users.USER, users.DEFAULT) is None:
        await tx.insert(
            new_record(
                ctx,
                users.USER,
                "user",
                users.DEFAULT,
                users.DEFAULT_USER,
                ctx.clock.now(),
                status=users.ACTIVE,
            )
        )
    return {r.id: r for r in await tx.all(users.USER)}


async def get_user(ctx: Context, tx: Transaction, user_id: str) -> Record:
    record = (await all_users(ctx, tx)).get(user_id)
    if record is None:
        raise faults.UserNotFoundFault(f"User {user_id} not found.")
    return record


def group_ids_of(user_id: str, groups: list[Record]) -> list[str]:
    return [g.id for g in groups if user_id in g.spec["user_ids"]]


def user_view(record: Record, group_ids: list[str], status: str | None = None) -> Params:
    spec = load(UserSpec, record.spec)
    authentication: Params = {"Type": spec.authentication.type}
    if spec.authentication.type == users.PASSWORD:
        authentication["PasswordCount"] = len(spec.authentication.password_hashes)
    return {
        "UserId": spec.user_id,
        "UserName": spec.user_name,
        "Status": status or record.status,
        "Engine": spec.engine,
        "MinimumEngineVersion": users.MINIMUM_ENGINE_VERSION,
        "AccessString": spec.access_string,
        "UserGroupIds": group_ids,
        "Authentication": authentication,
        "ARN": record.arn,
    }


async def check_access_string(ctx: Context, access_string: str) -> None:
    """The engine's refusal of an access string is the caller's error."""
    rules = users.access_rules(access_string)
    ctx.catalog.resolve(users.ENGINE, None)  # refused if redis is not installed
    refused = await acl_check.refusal(rules)
    if refused is not None:
        raise faults.InvalidParameterValueException(f"Invalid access string: {refused}")


async def create(ctx: Context, params: Params) -> Params:
    spec = UserSpec(
        user_id=users.identifier(params["UserId"], "UserId"),
        user_name=users.user_name(params["UserName"]),
        engine=users.engine(params["Engine"]),
        access_string=params["AccessString"],
        authentication=users.new_authentication(
            params.get("Passwords"),
            params.get("NoPasswordRequired"),
            params.get("AuthenticationMode"),
        ),
    )
    users.check_iam_name(spec)
    tags = tags_param(params)
    await check_access_string(ctx, spec.access_string)
    async with ctx.store.transaction() as tx:
        existing = await all_users(ctx, tx)
        if spec.user_id in existing:
            raise faults.UserAlreadyExistsFault(f"User {spec.user_id} already exists.")
        if len(existing) >= users.MAX_USERS:
            raise faults.UserQuotaExceededFault(
                f"An account can have at most {users.MAX_USERS} users."
            )
        record = new_record(
            ctx, users.USER, "user", spec.user_id, spec, ctx.clock.now(), status=users.ACTIVE
        )
        await tx.insert(record)
        await tx.set_tags(record.arn, tags)
        await tx.set_user_passwords(spec.user_id, _sealed_passwords(spec, params))
    return user_view(record, [])


def _sealed_passwords(spec: UserSpec, params: Params) -> list[str]:
    if spec.authentication.type != users.PASSWORD:
        return []
    return users.clear_passwords(params.get("Passwords"), params.get("AuthenticationMode"))


async def describe(ctx: Context, params: Params) -> Params:
    wanted = users.user_filter(params.get("Engine"), params.get("Filters") or [])
    async with ctx.store.transaction() as tx:
        if params.get("UserId") is not None:
            records = [await get_user(ctx, tx, params["UserId"].lower())]
        else:
            records = list((await all_users(ctx, tx)).values())
        groups = await tx.all(users.USER_GROUP)
    found = [r for r in records if wanted(load(UserSpec, r.spec))]
    views = [user_view(r, group_ids_of(r.id, groups)) for r in found]
    return page(views, [r.id for r in found], "Users", params)


async def modify(ctx: Context, params: Params) -> Params:
    user_id = users.identifier(params["UserId"], "UserId")
    users.check_changeable(user_id, "modified")
    async with ctx.store.transaction() as tx:
        record = await get_user(ctx, tx, user_id)
    users.require_active(record.status, f"User {user_id}", faults.InvalidUserStateFault)
    if params.get("Engine") is not None:
        users.engine(params["Engine"])
    spec = load(UserSpec, record.spec)
    authentication = users.changed_authentication(
        params.get("Passwords"),
        params.get("NoPasswordRequired"),
        params.get("AuthenticationMode"),
        spec.authentication,
    )
    new = users.modified(
        spec, params.get("AccessString"), params.get("AppendAccessString"), authentication
    )
    if new.access_string != spec.access_string:
        await check_access_string(ctx, new.access_string)
    async with ctx.store.transaction() as tx:
        current = await get_user(ctx, tx, user_id)
        if current.generation != record.generation:  # changed while the engine judged it
            raise faults.InvalidUserStateFault(f"User {user_id} is being modified.")
        if authentication is not None:
            await tx.set_user_passwords(user_id, _sealed_passwords(new, params))
        groups = await tx.all(users.USER_GROUP)
        caches = await user_group_links.mark_changing(tx, group_ids_of(user_id, groups))
        # Replication groups report back when their nodes hold the change; a SASL
        # Memcached cluster takes it with its next pass and reports nothing.
        applied_by_groups = any(kind == keys.REPLICATION_GROUP for kind, _ in caches)
        status = statuses.MODIFYING if applied_by_groups else users.ACTIVE
        record = await tx.update_spec(users.USER, user_id, dump(new), status)
    user_group_links.reconcile(ctx, caches)
    return user_view(record, group_ids_of(user_id, groups))


async def delete(ctx: Context, params: Params) -> Params:
    """The user leaves every group it is in; a group's only default user cannot leave."""
    user_id = users.identifier(params["UserId"], "UserId")
    users.check_changeable(user_id, "deleted")
    async with ctx.store.transaction() as tx:
        record = await get_user(ctx, tx, user_id)
        users.require_active(record.status, f"User {user_id}", faults.InvalidUserStateFault)
        groups = [g for g in await tx.all(users.USER_GROUP) if user_id in g.spec["user_ids"]]
        if groups and record.spec["user_name"] == users.DEFAULT:
            raise faults.DefaultUserAssociatedToUserGroupFault(
                f"User {user_id} is the default user of user group {groups[0].id}."
            )
        for group in groups:
            users.require_active(  # DeleteUser answers in terms of the user (the model)
                group.status,
                f"User {user_id} is in user group {group.id}, which",
                faults.InvalidUserStateFault,
            )
            spec = load(UserGroupSpec, group.spec)
            remaining = tuple(u for u in spec.user_ids if u != user_id)
            await tx.update_spec(
                users.USER_GROUP, group.id, dump(replace(spec, user_ids=remaining)), group.status
            )
        caches = await user_group_links.mark_changing(tx, [g.id for g in groups])
        await tx.delete(users.USER, user_id)
        await tx.set_user_passwords(user_id, [])
    user_group_links.reconcile(ctx, caches)
    return user_view(record, [g.id for g in groups], status=statuses.DELETING)
