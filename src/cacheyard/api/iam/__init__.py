"""The IAM API subset Cacheyard serves (users, access keys, inline and managed
policies) and STS GetCallerIdentity, on the same endpoint as ElastiCache."""

from __future__ import annotations

from cacheyard.api.iam import access_keys, managed_policies, sts, user_policies, users
from cacheyard.api.iam.context import IamContext, IamHandler

IAM_HANDLERS: dict[str, IamHandler] = {
    "CreateUser": users.create,
    "GetUser": users.get,
    "ListUsers": users.list_users,
    "DeleteUser": users.delete,
    "CreateAccessKey": access_keys.create,
    "ListAccessKeys": access_keys.list_keys,
    "UpdateAccessKey": access_keys.update,
    "DeleteAccessKey": access_keys.delete,
    "PutUserPolicy": user_policies.put,
    "GetUserPolicy": user_policies.get,
    "ListUserPolicies": user_policies.list_names,
    "DeleteUserPolicy": user_policies.delete,
    "CreatePolicy": managed_policies.create,
    "GetPolicy": managed_policies.get,
    "GetPolicyVersion": managed_policies.get_version,
    "ListPolicies": managed_policies.list_policies,
    "DeletePolicy": managed_policies.delete,
    "AttachUserPolicy": managed_policies.attach,
    "DetachUserPolicy": managed_policies.detach,
    "ListAttachedUserPolicies": managed_policies.list_attached,
}

STS_HANDLERS: dict[str, IamHandler] = {"GetCallerIdentity": sts.get_caller_identity}


def changes_principals(operation: str) -> bool:
    """Whether a successful IAM call may change who holds which key or policy."""
    return not operation.startswith(("Get", "List"))


__all__ = ["IAM_HANDLERS", "STS_HANDLERS", "IamContext", "IamHandler", "changes_principals"]
