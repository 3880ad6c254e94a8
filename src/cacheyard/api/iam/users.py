"""CreateUser, GetUser, ListUsers, DeleteUser."""

from __future__ import annotations

from cacheyard.api.iam.context import IamContext, Params
from cacheyard.api.iam.paging import page
from cacheyard.api.iam.views import (
    existing_user,
    refuse_boundary,
    tags_param,
    user_name,
    user_view,
)
from cacheyard.api.principals import Principal
from cacheyard.domain import faults, iam
from cacheyard.domain.iam import User


async def create(ctx: IamContext, caller: Principal, params: Params) -> Params:
    name = iam.check_name(params["UserName"], "userName")
    path = iam.check_user_path(params.get("Path", "/"))
    refuse_boundary(params)
    tags = tags_param(params)
    async with ctx.store.transaction() as tx:
        users = await tx.iam_users()
        # IAM user names are unique whatever their case.
        if any(u.name.lower() == name.lower() for u in users):
            raise faults.EntityAlreadyExistsException(f"User with name {name} already exists.")
        if len(users) >= iam.USERS_PER_ACCOUNT:
            raise faults.LimitExceededException(
                f"Cannot exceed quota for UsersPerAccount: {iam.USERS_PER_ACCOUNT}"
            )
        user = User(name, iam.new_id("AIDA"), path, ctx.clock.now())
        await tx.add_iam_user(user)
        await tx.set_tags(user.arn(ctx.account), tags)
    return {"User": user_view(ctx, user, list(tags.items()))}


async def get(ctx: IamContext, caller: Principal, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        user = await existing_user(tx, user_name(caller.user.name, params))
        tags = await tx.tags(user.arn(ctx.account))
    return {"User": user_view(ctx, user, tags)}


async def list_users(ctx: IamContext, caller: Principal, params: Params) -> Params:
    prefix = params.get("PathPrefix", "/")
    async with ctx.store.transaction() as tx:
        users = [u for u in await tx.iam_users() if u.path.startswith(prefix)]
    return page([user_view(ctx, u) for u in users], [u.name for u in users], "Users", params)


async def delete(ctx: IamContext, caller: Principal, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        user = await existing_user(tx, params["UserName"])
        if any(k.user_name == user.name for k in await tx.access_keys()):
            raise _conflict("must delete access keys first")
        if await tx.inline_policies(user.name):
            raise _conflict("must delete policies first")
        if await tx.attachments(user.name):
            raise _conflict("must detach all policies first")
        arn = user.arn(ctx.account)
        await tx.remove_tags(arn, [key for key, _ in await tx.tags(arn)])
        await tx.delete_iam_user(user.name)
    return {}


def _conflict(what: str) -> faults.DeleteConflictException:
    return faults.DeleteConflictException(f"Cannot delete entity, {what}.")
