"""CreateAccessKey, ListAccessKeys, UpdateAccessKey, DeleteAccessKey.

The secret is answered once, by CreateAccessKey, and never again.
"""

from __future__ import annotations

from cacheyard.api.iam.context import IamContext, Params
from cacheyard.api.iam.paging import page
from cacheyard.api.iam.views import existing_user, user_name
from cacheyard.api.principals import Principal
from cacheyard.domain import faults, iam
from cacheyard.domain.iam import AccessKey
from cacheyard.store import Transaction


async def create(ctx: IamContext, caller: Principal, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        user = await existing_user(tx, user_name(caller.user.name, params))
        held = [k for k in await tx.access_keys() if k.user_name == user.name]
        if len(held) >= iam.ACCESS_KEYS_PER_USER:
            raise faults.LimitExceededException(
                f"Cannot exceed quota for AccessKeysPerUser: {iam.ACCESS_KEYS_PER_USER}"
            )
        key = AccessKey(
            iam.new_access_key_id(), user.name, iam.new_secret(), iam.ACTIVE, ctx.clock.now()
        )
        await tx.add_access_key(key)
    return {
        "AccessKey": {
            "UserName": key.user_name,
            "AccessKeyId": key.access_key_id,
            "Status": key.status,
            "SecretAccessKey": key.secret,
            "CreateDate": key.created_at,
        }
    }


async def list_keys(ctx: IamContext, caller: Principal, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        user = await existing_user(tx, user_name(caller.user.name, params))
        keys = [k for k in await tx.access_keys() if k.user_name == user.name]
    keys.sort(key=lambda k: k.access_key_id)
    views = [
        {
            "UserName": k.user_name,
            "AccessKeyId": k.access_key_id,
            "Status": k.status,
            "CreateDate": k.created_at,
        }
        for k in keys
    ]
    return page(views, [k.access_key_id for k in keys], "AccessKeyMetadata", params)


async def update(ctx: IamContext, caller: Principal, params: Params) -> Params:
    if params["Status"] not in (iam.ACTIVE, iam.INACTIVE):
        raise faults.InvalidInputException("The status of an access key is Active or Inactive.")
    async with ctx.store.transaction() as tx:
        key = await _key_of(tx, user_name(caller.user.name, params), params["AccessKeyId"])
        await tx.set_access_key_status(key.access_key_id, params["Status"])
    return {}


async def delete(ctx: IamContext, caller: Principal, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        key = await _key_of(tx, user_name(caller.user.name, params), params["AccessKeyId"])
        await tx.delete_access_key(key.access_key_id)
    return {}


async def _key_of(tx: Transaction, name: str, access_key_id: str) -> AccessKey:
    user = await existing_user(tx, name)
    key = await tx.access_key(access_key_id)
    if key is None or key.user_name != user.name:
        raise faults.NoSuchEntityException(
            f"The Access Key with id {access_key_id} cannot be found"
        )
    return key
