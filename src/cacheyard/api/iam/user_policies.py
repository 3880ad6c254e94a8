"""PutUserPolicy, GetUserPolicy, ListUserPolicies, DeleteUserPolicy: inline policies."""

from __future__ import annotations

from cacheyard.api.iam.context import IamContext, Params
from cacheyard.api.iam.paging import page
from cacheyard.api.iam.views import document_view, existing_user
from cacheyard.api.principals import Principal
from cacheyard.domain import faults, iam, policies
from cacheyard.domain.iam import InlinePolicy
from cacheyard.store import Transaction


async def put(ctx: IamContext, caller: Principal, params: Params) -> Params:
    name = iam.check_name(params["PolicyName"], "policyName")
    document = params["PolicyDocument"]
    policies.parse(document)
    async with ctx.store.transaction() as tx:
        user = await existing_user(tx, params["UserName"])
        others = [p for p in await tx.inline_policies(user.name) if p.name != name]
        size = sum(iam.policy_size(p.document) for p in others) + iam.policy_size(document)
        if size > iam.INLINE_POLICY_SIZE:
            raise faults.LimitExceededException(
                f"Maximum policy size of {iam.INLINE_POLICY_SIZE} bytes exceeded for user "
                f"{user.name}"
            )
        await tx.put_inline_policy(InlinePolicy(user.name, name, document))
    return {}


async def get(ctx: IamContext, caller: Principal, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        policy = await _existing(tx, params["UserName"], params["PolicyName"])
    return {
        "UserName": policy.user_name,
        "PolicyName": policy.name,
        "PolicyDocument": document_view(policy.document),
    }


async def list_names(ctx: IamContext, caller: Principal, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        user = await existing_user(tx, params["UserName"])
        names = [p.name for p in await tx.inline_policies(user.name)]
    return page(names, names, "PolicyNames", params)


async def delete(ctx: IamContext, caller: Principal, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        policy = await _existing(tx, params["UserName"], params["PolicyName"])
        await tx.delete_inline_policy(policy.user_name, policy.name)
    return {}


async def _existing(tx: Transaction, user_name: str, name: str) -> InlinePolicy:
    user = await existing_user(tx, user_name)
    for policy in await tx.inline_policies(user.name):
        if policy.name == name:
            return policy
    raise faults.NoSuchEntityException(f"The user policy with name {name} cannot be found.")
