"""IAM policies: what a document may say, and the decision for one action on one resource."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cacheyard.domain import policies
from cacheyard.domain.faults import MalformedPolicyDocumentException
from cacheyard.domain.policies import Decision, evaluate, parse

pytestmark = pytest.mark.timeout(30)

ALLOW, IMPLICIT, EXPLICIT = Decision.ALLOW, Decision.IMPLICIT_DENY, Decision.EXPLICIT_DENY
CLUSTER = "arn:aws:elasticache:us-east-1:000000000000:cluster:{}"


def policy(*statements: dict[str, Any], version: str | None = "2012-10-17") -> policies.Policy:
    body: dict[str, Any] = {"Statement": list(statements)}
    if version is not None:
        body["Version"] = version
    return parse(json.dumps(body))


def allow(action: Any, resource: Any = "*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **more}


def deny(action: Any, resource: Any = "*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **more}


DESCRIBE_ONLY = policy(allow("elasticache:Describe*"))
ALL_BUT_PROD = policy(allow("elasticache:*"), deny("elasticache:*", CLUSTER.format("prod-*")))

# (policies, action, resource, decision)
MATRIX = [
    ((), "elasticache:DescribeCacheClusters", "*", IMPLICIT),  # no policy: default deny
    ((DESCRIBE_ONLY,), "elasticache:DescribeCacheClusters", "*", ALLOW),
    ((DESCRIBE_ONLY,), "elasticache:describecacheclusters", "*", ALLOW),  # actions: any case
    ((DESCRIBE_ONLY,), "ELASTICACHE:DescribeEvents", "*", ALLOW),
    ((DESCRIBE_ONLY,), "elasticache:CreateCacheCluster", CLUSTER.format("c1"), IMPLICIT),
    ((DESCRIBE_ONLY,), "iam:DescribeThings", "*", IMPLICIT),  # another service
    ((ALL_BUT_PROD,), "elasticache:CreateCacheCluster", CLUSTER.format("dev-1"), ALLOW),
    ((ALL_BUT_PROD,), "elasticache:CreateCacheCluster", CLUSTER.format("prod-1"), EXPLICIT),
    ((ALL_BUT_PROD,), "elasticache:DescribeCacheClusters", "*", ALLOW),
    ((ALL_BUT_PROD,), "iam:CreateUser", "*", IMPLICIT),
    # Resources are case-sensitive.
    ((ALL_BUT_PROD,), "elasticache:DeleteCacheCluster", CLUSTER.format("PROD-1"), ALLOW),
    # An explicit deny wins whatever the order and the policy it is in.
    ((policy(deny("*")), policy(allow("*"))), "elasticache:DescribeEvents", "*", EXPLICIT),
    (
        (policy(allow("*"), deny("elasticache:Delete*")),),
        "elasticache:DeleteSnapshot",
        "*",
        EXPLICIT,
    ),
    ((policy(allow("*"), deny("elasticache:Delete*")),), "elasticache:CreateSnapshot", "*", ALLOW),
    # Two policies add up.
    (
        (policy(allow("iam:Get*")), DESCRIBE_ONLY),
        "iam:GetUser",
        "arn:aws:iam::000000000000:user/bob",
        ALLOW,
    ),
    # ? is one character.
    ((policy(allow("elasticache:Describe?vents")),), "elasticache:DescribeEvents", "*", ALLOW),
    ((policy(allow("elasticache:Describe?vents")),), "elasticache:DescribeXXvents", "*", IMPLICIT),
    ((policy(allow("*", CLUSTER.format("c?"))),), "x:Y", CLUSTER.format("c1"), ALLOW),
    ((policy(allow("*", CLUSTER.format("c?"))),), "x:Y", CLUSTER.format("c12"), IMPLICIT),
    # * spans ARN separators.
    ((policy(allow("*", "arn:aws:elasticache:*:*:*")),), "x:Y", CLUSTER.format("c1"), ALLOW),
    ((policy(allow("*", "arn:aws:iam::*:user/*")),), "x:Y", CLUSTER.format("c1"), IMPLICIT),
    # A resource pattern never matches the "*" of calls that name no resource.
    (
        (policy(allow("*", CLUSTER.format("*"))),),
        "elasticache:DescribeCacheClusters",
        "*",
        IMPLICIT,
    ),
    # NotAction / NotResource.
    (
        (policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}),),
        "iam:GetUser",
        "*",
        IMPLICIT,
    ),
    (
        (policy({"Effect": "Allow", "NotAction": ["iam:*", "sts:*"], "Resource": "*"}),),
        "elasticache:CreateSnapshot",
        "*",
        ALLOW,
    ),
    (
        (
            policy(
                allow("*"), {"Effect": "Deny", "Action": "*", "NotResource": CLUSTER.format("mine")}
            ),
        ),
        "elasticache:RebootCacheCluster",
        CLUSTER.format("theirs"),
        EXPLICIT,
    ),
    (
        (
            policy(
                allow("*"), {"Effect": "Deny", "Action": "*", "NotResource": CLUSTER.format("mine")}
            ),
        ),
        "elasticache:RebootCacheCluster",
        CLUSTER.format("mine"),
        ALLOW,
    ),
    # Lists of actions and resources.
    (
        (
            policy(
                allow(
                    ["elasticache:Create*", "elasticache:Delete*"],
                    [CLUSTER.format("a"), CLUSTER.format("b")],
                )
            ),
        ),
        "elasticache:DeleteCacheCluster",
        CLUSTER.format("b"),
        ALLOW,
    ),
    (
        (
            policy(
                allow(
                    ["elasticache:Create*", "elasticache:Delete*"],
                    [CLUSTER.format("a"), CLUSTER.format("b")],
                )
            ),
        ),
        "elasticache:ModifyCacheCluster",
        CLUSTER.format("b"),
        IMPLICIT,
    ),
    # A dot is a dot, not any character.
    ((policy(allow("*", "arn:aws:s3:::bucket.a")),), "x:Y", "arn:aws:s3:::bucketxa", IMPLICIT),
]


@pytest.mark.parametrize(("documents", "action", "resource", "decision"), MATRIX)
def test_evaluation(
    documents: tuple[policies.Policy, ...], action: str, resource: str, decision: Decision
) -> None:
    assert evaluate(documents, action, resource) is decision


def test_statement_may_be_a_single_object_and_version_may_be_left_out() -> None:
    document = parse('{"Statement": {"Effect": "Allow", "Action": "sts:*", "Resource": "*"}}')
    assert evaluate([document], "sts:GetCallerIdentity", "*") is ALLOW


def test_policy_variables_are_literal_in_the_2008_version() -> None:
    document = policy(allow("*", "arn:aws:iam::0:user/${aws:username}"), version="2008-10-17")
    assert evaluate([document], "x:Y", "arn:aws:iam::0:user/${aws:username}") is ALLOW


MALFORMED = {
    "not json": "{",
    "not an object": "[]",
    "no statement": '{"Version": "2012-10-17"}',
    "unknown version": json.dumps({"Version": "2020-01-01", "Statement": [allow("*")]}),
    "unknown top element": json.dumps({"Statement": [allow("*")], "Extra": 1}),
    "statement not an object": '{"Statement": ["Allow"]}',
    "statement a string": '{"Statement": "Allow"}',
    "principal": json.dumps({"Statement": [allow("*", Principal="*")]}),
    "condition": json.dumps(
        {"Statement": [allow("*", Condition={"Bool": {"aws:SecureTransport": "true"}})]}
    ),
    "unknown element": json.dumps({"Statement": [allow("*", Actions="x:y")]}),
    "no effect": json.dumps({"Statement": [{"Action": "*", "Resource": "*"}]}),
    "wrong effect": json.dumps(
        {"Statement": [{"Effect": "allow", "Action": "*", "Resource": "*"}]}
    ),
    "no action": json.dumps({"Statement": [{"Effect": "Allow", "Resource": "*"}]}),
    "action and not action": json.dumps({"Statement": [allow("*", NotAction="x:y")]}),
    "empty action list": json.dumps({"Statement": [allow([])]}),
    "action not a string": json.dumps({"Statement": [allow([1])]}),
    "action without a vendor": json.dumps({"Statement": [allow("DescribeCacheClusters")]}),
    "no resource": json.dumps({"Statement": [{"Effect": "Allow", "Action": "*"}]}),
    "resource and not resource": json.dumps({"Statement": [allow("*", NotResource="*")]}),
    "resource not an arn": json.dumps({"Statement": [allow("*", "cluster:c1")]}),
    "policy variable": json.dumps(
        {"Version": "2012-10-17", "Statement": [allow("*", "arn:aws:iam::0:user/${aws:username}")]}
    ),
    "duplicate sid": json.dumps({"Statement": [allow("*", Sid="a"), deny("*", Sid="a")]}),
}


@pytest.mark.parametrize("document", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_documents_are_refused(document: str) -> None:
    with pytest.raises(MalformedPolicyDocumentException):
        parse(document)


def test_refusals_say_what_is_wrong() -> None:
    with pytest.raises(MalformedPolicyDocumentException, match="Condition"):
        parse(MALFORMED["condition"])
    with pytest.raises(MalformedPolicyDocumentException, match="principal"):
        parse(MALFORMED["principal"])
    with pytest.raises(MalformedPolicyDocumentException, match=r"unknown element.*Actions"):
        parse(MALFORMED["unknown element"])


def test_denial_messages_are_aws_wording() -> None:
    user = "arn:aws:iam::000000000000:user/bob"
    resource = CLUSTER.format("c1")
    assert policies.denial(user, "elasticache:CreateCacheCluster", resource, IMPLICIT) == (
        "User: arn:aws:iam::000000000000:user/bob is not authorized to perform: "
        "elasticache:CreateCacheCluster on resource: "
        "arn:aws:elasticache:us-east-1:000000000000:cluster:c1 because no identity-based "
        "policy allows the elasticache:CreateCacheCluster action"
    )
    assert policies.denial(user, "elasticache:CreateCacheCluster", resource, EXPLICIT).endswith(
        "on resource: arn:aws:elasticache:us-east-1:000000000000:cluster:c1 "
        "with an explicit deny in an identity-based policy"
    )
