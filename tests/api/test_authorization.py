"""The resource each call acts on (the table of api/authorization.py) and the decision on it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from cacheyard.api.authorization import ARN, IAM_USER, NEW_POLICY, RESOURCES, Authorizer
from cacheyard.api.handlers import IMPLEMENTED
from cacheyard.api.iam import IAM_HANDLERS, STS_HANDLERS
from cacheyard.api.principals import Principal
from cacheyard.api.protocol import QueryProtocol
from cacheyard.domain import policies
from cacheyard.domain.arns import RESOURCE_TYPES
from cacheyard.domain.faults import AccessDenied
from cacheyard.domain.iam import User

pytestmark = pytest.mark.timeout(30)

ACCOUNT, REGION = "000000000000", "us-east-1"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
EC = f"arn:aws:elasticache:{REGION}:{ACCOUNT}"
USERS = {"eve": User("eve", "AIDAEVE", "/ops/", T0)}
AUTHORIZER = Authorizer(USERS.get, REGION, ACCOUNT)
MODELS = {s: QueryProtocol(s).service_model for s in ("elasticache", "iam", "sts")}


def principal(*statements: dict[str, Any], name: str = "bob") -> Principal:
    documents = [policies.parse(json.dumps({"Statement": s})) for s in statements]
    user = User(name, "AIDABOB", "/", T0)
    return Principal(user, user.arn(ACCOUNT), tuple(documents))


BOB = principal()


def resources(service: str, operation: str, **params: Any) -> list[str]:
    return AUTHORIZER.resources(BOB, service, operation, params)


@pytest.mark.parametrize(
    ("service", "implemented"),
    [("elasticache", IMPLEMENTED), ("iam", frozenset(IAM_HANDLERS))],
)
def test_every_implemented_operation_has_its_resources_in_the_table(
    service: str, implemented: frozenset[str]
) -> None:
    assert implemented <= set(RESOURCES[service])


@pytest.mark.parametrize("service", ["elasticache", "iam"])
def test_the_table_names_operations_and_parameters_of_the_model(service: str) -> None:
    model = MODELS[service]
    for operation, targets in RESOURCES[service].items():
        members = model.operation_model(operation).input_shape.members
        for target in targets:
            assert target.param in members, (operation, target.param)
            assert target.kind in (*RESOURCE_TYPES, ARN, IAM_USER, NEW_POLICY), target.kind


def test_sts_answers_get_caller_identity_only() -> None:
    assert set(STS_HANDLERS) == {"GetCallerIdentity"}


def test_a_named_resource_is_its_arn_in_the_case_elasticache_keeps() -> None:
    assert resources("elasticache", "DeleteCacheCluster", CacheClusterId="Prod-1") == [
        f"{EC}:cluster:prod-1"
    ]
    assert resources("elasticache", "DeleteSnapshot", SnapshotName="Keep-Case") == [
        f"{EC}:snapshot:Keep-Case"
    ]


def test_a_create_is_checked_on_the_new_resource_and_what_it_uses() -> None:
    assert resources(
        "elasticache",
        "CreateCacheCluster",
        CacheClusterId="c1",
        CacheSubnetGroupName="default",
        SnapshotName="s1",
        Engine="redis",
    ) == [f"{EC}:cluster:c1", f"{EC}:subnetgroup:default", f"{EC}:snapshot:s1"]
    assert resources("elasticache", "CreateReplicationGroup", ReplicationGroupId="g1") == [
        f"{EC}:replicationgroup:g1"
    ]


def test_a_snapshot_is_checked_with_its_source() -> None:
    assert resources("elasticache", "CreateSnapshot", SnapshotName="s", CacheClusterId="c") == [
        f"{EC}:snapshot:s",
        f"{EC}:cluster:c",
    ]
    assert resources(
        "elasticache", "CopySnapshot", SourceSnapshotName="a", TargetSnapshotName="b"
    ) == [f"{EC}:snapshot:a", f"{EC}:snapshot:b"]


def test_a_list_parameter_names_every_resource() -> None:
    assert resources(
        "elasticache", "CreateReplicationGroup", ReplicationGroupId="g", UserGroupIds=["u1", "u2"]
    ) == [f"{EC}:replicationgroup:g", f"{EC}:usergroup:u1", f"{EC}:usergroup:u2"]


@pytest.mark.parametrize(
    ("service", "operation"),
    [
        ("elasticache", "DescribeCacheClusters"),
        ("elasticache", "DescribeSnapshots"),
        ("elasticache", "DescribeEvents"),
        ("elasticache", "DescribeCacheEngineVersions"),
        ("elasticache", "DescribeGlobalReplicationGroups"),  # not in the table
        ("iam", "ListUsers"),
        ("iam", "ListPolicies"),
    ],
)
def test_a_call_naming_no_resource_is_on_star(service: str, operation: str) -> None:
    assert resources(service, operation) == ["*"]


def test_tagging_is_on_the_arn_given() -> None:
    arn = f"{EC}:replicationgroup:g1"
    assert resources("elasticache", "ListTagsForResource", ResourceName=arn) == [arn]


def test_iam_users_by_name_path_or_the_caller() -> None:
    user = f"arn:aws:iam::{ACCOUNT}:user"
    assert resources("iam", "DeleteUser", UserName="sam") == [f"{user}/sam"]
    assert resources("iam", "GetUser", UserName="eve") == [f"{user}/ops/eve"]  # stored path
    assert resources("iam", "CreateUser", UserName="new", Path="/x/") == [f"{user}/x/new"]
    assert resources("iam", "CreateAccessKey") == [f"{user}/bob"]  # no name: the caller
    assert resources("iam", "ListAccessKeys") == [f"{user}/bob"]


def test_iam_policies_by_arn_or_the_new_name() -> None:
    arn = f"arn:aws:iam::{ACCOUNT}:policy/p"
    assert resources("iam", "GetPolicy", PolicyArn=arn) == [arn]
    assert resources("iam", "CreatePolicy", PolicyName="p") == [arn]
    assert resources("iam", "CreatePolicy", PolicyName="p", Path="/team/") == [
        f"arn:aws:iam::{ACCOUNT}:policy/team/p"
    ]


def test_the_fault_route_is_on_the_cluster() -> None:
    assert resources("cacheyard", "InjectFault", CacheClusterId="C1") == [f"{EC}:cluster:c1"]


def test_check_allows_what_every_resource_allows() -> None:
    caller = principal(
        {"Effect": "Allow", "Action": "elasticache:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "Resource": f"{EC}:snapshot:secret-*"},
    )
    AUTHORIZER.check(
        caller, "elasticache", "CreateSnapshot", {"SnapshotName": "s", "CacheClusterId": "c"}
    )
    with pytest.raises(AccessDenied) as denied:
        AUTHORIZER.check(
            caller,
            "elasticache",
            "CopySnapshot",
            {"SourceSnapshotName": "secret-1", "TargetSnapshotName": "mine"},
        )
    assert denied.value.message == (
        f"User: arn:aws:iam::{ACCOUNT}:user/bob is not authorized to perform: "
        f"elasticache:CopySnapshot on resource: {EC}:snapshot:secret-1 "
        "with an explicit deny in an identity-based policy"
    )
    assert denied.value.status == 403 and denied.value.code == "AccessDenied"


def test_check_denies_by_default_and_names_the_action() -> None:
    with pytest.raises(AccessDenied, match="no identity-based policy allows the iam:ListUsers"):
        AUTHORIZER.check(BOB, "iam", "ListUsers", {})


def test_get_caller_identity_is_always_allowed() -> None:
    caller = principal({"Effect": "Deny", "Action": "*", "Resource": "*"})
    AUTHORIZER.check(caller, "sts", "GetCallerIdentity", {})
    with pytest.raises(AccessDenied):
        AUTHORIZER.check(caller, "sts", "AssumeRole", {})
