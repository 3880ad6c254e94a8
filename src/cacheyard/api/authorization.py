"""Which action on which resources each call is, and whether the caller may make it.

The action is ``<service>:<Operation>``; the resources come from the table
below: the ARN of every resource a request names (for a create, the ARN the
new resource will have), or ``*`` when it names none (a list or a describe of
everything, and the account-wide calls). The caller's policies must allow the
action on every one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cacheyard.api.principals import Principal
from cacheyard.domain import faults, iam, policies
from cacheyard.domain.arns import Arn
from cacheyard.domain.iam import User

ARN = "arn"  # the parameter holds an ARN
IAM_USER = "iam-user"  # a user name; the caller when the request leaves it out
NEW_POLICY = "iam-new-policy"  # the name of the policy CreatePolicy will make
# Any other kind is an ElastiCache resource type of domain/arns.py.

# ElastiCache keeps these ids in lower case: the ARN checked is the one the resource has.
_LOWER_CASE = frozenset(
    {"cluster", "replicationgroup", "subnetgroup", "parametergroup", "user", "usergroup"}
)


@dataclass(frozen=True)
class Target:
    kind: str
    param: str


def _on(kind: str, *params: str) -> tuple[Target, ...]:
    return tuple(Target(kind, param) for param in params)


_CLUSTER = _on("cluster", "CacheClusterId")
_GROUP = _on("replicationgroup", "ReplicationGroupId")
_PARAMETER_GROUP = _on("parametergroup", "CacheParameterGroupName")
_SUBNET_GROUP = _on("subnetgroup", "CacheSubnetGroupName")
_SECURITY_GROUP = _on("securitygroup", "CacheSecurityGroupName")
_SNAPSHOT = _on("snapshot", "SnapshotName")
_USER = _on("user", "UserId")
_USER_GROUP = _on("usergroup", "UserGroupId")
_SERVERLESS = _on("serverlesscache", "ServerlessCacheName")
_TAGGED = _on(ARN, "ResourceName")
_IAM_USER = _on(IAM_USER, "UserName")
_IAM_POLICY = _on(ARN, "PolicyArn")
_ACCOUNT: tuple[Target, ...] = ()

# Secondary resources are those a call reads or puts to use: a snapshot's
# source, the snapshot a cache is seeded from, the groups it joins.
RESOURCES: dict[str, dict[str, tuple[Target, ...]]] = {
    "elasticache": {
        "CreateCacheCluster": _CLUSTER + _GROUP + _PARAMETER_GROUP + _SUBNET_GROUP + _SNAPSHOT,
        "DescribeCacheClusters": _CLUSTER,
        "ModifyCacheCluster": _CLUSTER + _PARAMETER_GROUP,
        "RebootCacheCluster": _CLUSTER,
        "DeleteCacheCluster": _CLUSTER + _on("snapshot", "FinalSnapshotIdentifier"),
        "ListAllowedNodeTypeModifications": _CLUSTER + _GROUP,
        "CreateReplicationGroup": _GROUP
        + _on("cluster", "PrimaryClusterId")
        + _PARAMETER_GROUP
        + _SUBNET_GROUP
        + _SNAPSHOT
        + _on("usergroup", "UserGroupIds"),
        "DescribeReplicationGroups": _GROUP,
        "ModifyReplicationGroup": _GROUP
        + _PARAMETER_GROUP
        + _on("usergroup", "UserGroupIdsToAdd", "UserGroupIdsToRemove"),
        "DeleteReplicationGroup": _GROUP + _on("snapshot", "FinalSnapshotIdentifier"),
        "IncreaseReplicaCount": _GROUP,
        "DecreaseReplicaCount": _GROUP,
        "TestFailover": _GROUP,
        "ModifyReplicationGroupShardConfiguration": _GROUP,
        "CreateCacheParameterGroup": _PARAMETER_GROUP,
        "DescribeCacheParameterGroups": _PARAMETER_GROUP,
        "ModifyCacheParameterGroup": _PARAMETER_GROUP,
        "ResetCacheParameterGroup": _PARAMETER_GROUP,
        "DeleteCacheParameterGroup": _PARAMETER_GROUP,
        "DescribeCacheParameters": _PARAMETER_GROUP,
        "DescribeEngineDefaultParameters": _ACCOUNT,
        "CreateCacheSubnetGroup": _SUBNET_GROUP,
        "DescribeCacheSubnetGroups": _SUBNET_GROUP,
        "ModifyCacheSubnetGroup": _SUBNET_GROUP,
        "DeleteCacheSubnetGroup": _SUBNET_GROUP,
        "CreateCacheSecurityGroup": _SECURITY_GROUP,
        "DescribeCacheSecurityGroups": _SECURITY_GROUP,
        "DeleteCacheSecurityGroup": _SECURITY_GROUP,
        "AuthorizeCacheSecurityGroupIngress": _SECURITY_GROUP,
        "RevokeCacheSecurityGroupIngress": _SECURITY_GROUP,
        "CreateSnapshot": _SNAPSHOT + _CLUSTER + _GROUP,
        "DescribeSnapshots": _SNAPSHOT + _CLUSTER + _GROUP,
        "CopySnapshot": _on("snapshot", "SourceSnapshotName", "TargetSnapshotName"),
        "DeleteSnapshot": _SNAPSHOT,
        "CreateUser": _USER,
        "DescribeUsers": _USER,
        "ModifyUser": _USER,
        "DeleteUser": _USER,
        "CreateUserGroup": _USER_GROUP + _on("user", "UserIds"),
        "DescribeUserGroups": _USER_GROUP,
        "ModifyUserGroup": _USER_GROUP + _on("user", "UserIdsToAdd", "UserIdsToRemove"),
        "DeleteUserGroup": _USER_GROUP,
        "CreateServerlessCache": _SERVERLESS,
        "DescribeServerlessCaches": _SERVERLESS,
        "ModifyServerlessCache": _SERVERLESS,
        "DeleteServerlessCache": _SERVERLESS,
        "AddTagsToResource": _TAGGED,
        "RemoveTagsFromResource": _TAGGED,
        "ListTagsForResource": _TAGGED,
        "DescribeEvents": _ACCOUNT,
        "DescribeCacheEngineVersions": _ACCOUNT,
    },
    "iam": {
        "CreateUser": _IAM_USER,
        "GetUser": _IAM_USER,
        "ListUsers": _ACCOUNT,
        "DeleteUser": _IAM_USER,
        "CreateAccessKey": _IAM_USER,
        "ListAccessKeys": _IAM_USER,
        "UpdateAccessKey": _IAM_USER,
        "DeleteAccessKey": _IAM_USER,
        "PutUserPolicy": _IAM_USER,
        "GetUserPolicy": _IAM_USER,
        "ListUserPolicies": _IAM_USER,
        "DeleteUserPolicy": _IAM_USER,
        "AttachUserPolicy": _IAM_USER,
        "DetachUserPolicy": _IAM_USER,
        "ListAttachedUserPolicies": _IAM_USER,
        "CreatePolicy": _on(NEW_POLICY, "PolicyName"),
        "GetPolicy": _IAM_POLICY,
        "GetPolicyVersion": _IAM_POLICY,
        "ListPolicies": _ACCOUNT,
        "DeletePolicy": _IAM_POLICY,
    },
    # Cacheyard's own admin call (POST /_cacheyard/faults).
    "cacheyard": {"InjectFault": _CLUSTER},
}

# Allowed whatever the policies say, as on AWS.
ALWAYS_ALLOWED = frozenset({("sts", "GetCallerIdentity")})


class Authorizer:
    def __init__(self, users: Callable[[str], User | None], region: str, account: str) -> None:
        self._users = users
        self._region = region
        self._account = account

    def check(
        self, caller: Principal, service: str, operation: str, params: Mapping[str, Any]
    ) -> None:
        """Raise AWS's AccessDenied unless the caller's policies allow the call."""
        if (service, operation) in ALWAYS_ALLOWED:
            return
        action = f"{service}:{operation}"
        for resource in self.resources(caller, service, operation, params):
            decision = policies.evaluate(caller.policies, action, resource)
            if decision is not policies.Decision.ALLOW:
                raise faults.AccessDenied(policies.denial(caller.arn, action, resource, decision))

    def resources(
        self, caller: Principal, service: str, operation: str, params: Mapping[str, Any]
    ) -> list[str]:
        """The ARNs the call acts on, or ``["*"]`` when it names none."""
        found = []
        for target in RESOURCES.get(service, {}).get(operation, ()):
            value = params.get(target.param)
            values = value if isinstance(value, list) else [] if value is None else [value]
            if not values and target.kind == IAM_USER:
                found.append(caller.arn)
            found += [self._arn(target.kind, str(v), params) for v in values]
        return found or ["*"]

    def _arn(self, kind: str, value: str, params: Mapping[str, Any]) -> str:
        if kind == ARN:
            return value
        if kind == IAM_USER:
            user = self._users(value)
            path = user.path if user is not None else params.get("Path", "/")
            return iam.user_arn(self._account, path, value)
        if kind == NEW_POLICY:
            return iam.policy_arn(self._account, params.get("Path", "/"), value)
        if kind in _LOWER_CASE:
            value = value.lower()
        return str(Arn(self._region, self._account, kind, value))
