"""Users and policies as the IAM API shows them, and what IAM requests share."""

from __future__ import annotations

from urllib.parse import quote

from cacheyard.api.iam.context import IamContext, Params
from cacheyard.domain import faults, iam
from cacheyard.domain.iam import ManagedPolicy, User
from cacheyard.store import Transaction

MAX_TAGS = 50


def user_view(ctx: IamContext, user: User, tags: list[tuple[str, str]] | None = None) -> Params:
    view: Params = {
        "Path": user.path,
        "UserName": user.name,
        "UserId": user.user_id,
        "Arn": user.arn(ctx.account),
        "CreateDate": user.created_at,
    }
    if tags:
        view["Tags"] = tag_list(tags)
    return view


def policy_view(
    policy: ManagedPolicy, attachments: int, tags: list[tuple[str, str]] | None = None
) -> Params:
    view: Params = {
        "PolicyName": policy.name,
        "PolicyId": policy.policy_id,
        "Arn": policy.arn,
        "Path": policy.path,
        "DefaultVersionId": "v1",
        "AttachmentCount": attachments,
        "PermissionsBoundaryUsageCount": 0,
        "IsAttachable": True,
        "CreateDate": policy.created_at,
        "UpdateDate": policy.created_at,
    }
    if policy.description:
        view["Description"] = policy.description
    if tags:
        view["Tags"] = tag_list(tags)
    return view


def document_view(document: str) -> str:
    """IAM sends policy documents URL-encoded (the SDKs decode them)."""
    return quote(document, safe="")


def tag_list(tags: list[tuple[str, str]]) -> list[Params]:
    return [{"Key": key, "Value": value} for key, value in tags]


def tags_param(params: Params) -> dict[str, str]:
    tags: dict[str, str] = {}
    for tag in params.get("Tags") or []:
        if tag["Key"] in tags:
            raise faults.InvalidInputException("Duplicate tag keys found.")
        tags[tag["Key"]] = tag["Value"]
    if len(tags) > MAX_TAGS:
        raise faults.LimitExceededException(f"Cannot exceed quota for TagsPerUser: {MAX_TAGS}")
    return tags


def refuse_boundary(params: Params) -> None:
    if params.get("PermissionsBoundary"):
        raise faults.InvalidInputException(
            "Permissions boundaries are not supported by this Cacheyard version."
        )


def user_name(caller_name: str, params: Params) -> str:
    """The UserName of the request; IAM takes the caller's own when it is left out."""
    name: str = params.get("UserName") or caller_name
    return name


async def existing_user(tx: Transaction, name: str) -> User:
    user = await tx.iam_user(name)
    if user is None:
        raise faults.NoSuchEntityException(f"The user with name {name} cannot be found.")
    return user


async def existing_policy(tx: Transaction, arn: str) -> ManagedPolicy:
    if not arn.startswith("arn:aws:iam::"):
        raise faults.InvalidInputException(f"ARN {arn} is not valid.")
    policy = iam.AWS_MANAGED_POLICIES.get(arn) or await tx.managed_policy(arn)
    if policy is None:
        raise faults.NoSuchEntityException(f"Policy {arn} does not exist or is not attachable.")
    return policy
