"""Customer managed policies (one version each) and attaching policies to users.

AWS managed policies are built in (domain/iam.py): they can be read and
attached, not changed.
"""

from __future__ import annotations

from collections import Counter

from cacheyard.api.iam.context import IamContext, Params
from cacheyard.api.iam.paging import page
from cacheyard.api.iam.views import (
    document_view,
    existing_policy,
    existing_user,
    policy_view,
    tags_param,
)
from cacheyard.api.principals import Principal
from cacheyard.domain import faults, iam, policies
from cacheyard.domain.iam import ManagedPolicy

VERSION = "v1"


async def create(ctx: IamContext, caller: Principal, params: Params) -> Params:
    name = iam.check_name(params["PolicyName"], "policyName")
    path = iam.check_policy_path(params.get("Path", "/"))
    document = params["PolicyDocument"]
    policies.parse(document)
    if iam.policy_size(document) > iam.MANAGED_POLICY_SIZE:
        raise faults.LimitExceededException(
            f"Cannot exceed quota for PolicySize: {iam.MANAGED_POLICY_SIZE}"
        )
    tags = tags_param(params)
    async with ctx.store.transaction() as tx:
        existing = await tx.managed_policies()
        if any(p.name.lower() == name.lower() for p in existing):
            raise faults.EntityAlreadyExistsException(
                f"A policy called {name} already exists. Duplicate names are not allowed."
            )
        if len(existing) >= iam.POLICIES_PER_ACCOUNT:
            raise faults.LimitExceededException(
                f"Cannot exceed quota for PoliciesPerAccount: {iam.POLICIES_PER_ACCOUNT}"
            )
        policy = ManagedPolicy(
            arn=iam.policy_arn(ctx.account, path, name),
            name=name,
            policy_id=iam.new_id("ANPA"),
            path=path,
            description=params.get("Description", ""),
            document=document,
            created_at=ctx.clock.now(),
        )
        await tx.add_managed_policy(policy)
        await tx.set_tags(policy.arn, tags)
    return {"Policy": policy_view(policy, 0, list(tags.items()))}


async def get(ctx: IamContext, caller: Principal, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        policy = await existing_policy(tx, params["PolicyArn"])
        attached = Counter(arn for _, arn in await tx.attachments())
        tags = await tx.tags(policy.arn)
    return {"Policy": policy_view(policy, attached[policy.arn], tags)}


async def get_version(ctx: IamContext, caller: Principal, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        policy = await existing_policy(tx, params["PolicyArn"])
    if params["VersionId"] != VERSION:
        raise faults.NoSuchEntityException(
            f"Policy {policy.arn} version {params['VersionId']} does not exist or is not "
            "attachable."
        )
    return {
        "PolicyVersion": {
            "Document": document_view(policy.document),
            "VersionId": VERSION,
            "IsDefaultVersion": True,
            "CreateDate": policy.created_at,
        }
    }


async def list_policies(ctx: IamContext, caller: Principal, params: Params) -> Params:
    scope = params.get("Scope", "All")
    prefix = params.get("PathPrefix", "/")
    async with ctx.store.transaction() as tx:
        local = await tx.managed_policies()
        attached = Counter(arn for _, arn in await tx.attachments())
    found = [
        *(iam.AWS_MANAGED_POLICIES.values() if scope in ("All", "AWS") else ()),
        *(local if scope in ("All", "Local") else ()),
    ]
    found = [
        p
        for p in found
        if p.path.startswith(prefix) and (attached[p.arn] or not params.get("OnlyAttached"))
    ]
    if params.get("PolicyUsageFilter") == "PermissionsBoundary":
        found = []  # no policy is used as a permissions boundary: they are not supported
    found.sort(key=lambda p: (p.name, p.arn))
    views = [policy_view(p, attached[p.arn]) for p in found]
    return page(views, [f"{p.name} {p.arn}" for p in found], "Policies", params)


async def delete(ctx: IamContext, caller: Principal, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        policy = await existing_policy(tx, params["PolicyArn"])
        if policy.aws_managed:
            raise faults.InvalidInputException(
                f"AWS managed policy {policy.arn} cannot be deleted."
            )
        if any(arn == policy.arn for _, arn in await tx.attachments()):
            raise faults.DeleteConflictException("Cannot delete a policy attached to entities.")
        await tx.remove_tags(policy.arn, [key for key, _ in await tx.tags(policy.arn)])
        await tx.delete_managed_policy(policy.arn)
    return {}


async def attach(ctx: IamContext, caller: Principal, params: Params) -> Params:
    async with ctx.store.transaction() as tx:
        user = await existing_user(tx, params["UserName"])
        policy = await existing_policy(tx, params["PolicyArn"])
        attached = [arn for _, arn in await tx.attachments(user.name)]
        if policy.arn not in attached and len(attached) >= iam.POLICIES_PER_USER:
            raise faults.LimitExceededException(
                f"Cannot exceed quota for PoliciesPerUser: {iam.POLICIES_PER_USER}"
            )
        await tx.attach_policy(user.name, policy.arn)
    return {}


async def detach(ctx: IamContext, caller: Principal, params: Params) -> Params:
    arn = params["PolicyArn"]
    async with ctx.store.transaction() as tx:
        user = await existing_user(tx, params["UserName"])
        if arn not in [a for _, a in await tx.attachments(user.name)]:
            raise faults.NoSuchEntityException(f"Policy {arn} was not found.")
        await tx.detach_policy(user.name, arn)
    return {}


async def list_attached(ctx: IamContext, caller: Principal, params: Params) -> Params:
    prefix = params.get("PathPrefix", "/")
    async with ctx.store.transaction() as tx:
        user = await existing_user(tx, params["UserName"])
        found = [await existing_policy(tx, arn) for _, arn in await tx.attachments(user.name)]
    found = sorted((p for p in found if p.path.startswith(prefix)), key=lambda p: (p.name, p.arn))
    views = [{"PolicyName": p.name, "PolicyArn": p.arn} for p in found]
    return page(views, [f"{p.name} {p.arn}" for p in found], "AttachedPolicies", params)
