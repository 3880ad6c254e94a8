"""RBAC users and user groups through the real boto3 (and once the AWS CLI), with
ElastiCache's rules and wire details; no password ever comes back out.

Access strings are judged by a throwaway redis-server; nothing is applied to
engines yet, so users and groups are active as soon as a call answers.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from xml.etree import ElementTree

import boto3
import pytest
from bad_input_helpers import NAMESPACE, call
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError
from service_helpers import REGION, Service

pytestmark = pytest.mark.timeout(60)

ACCOUNT = "000000000000"
ARN = f"arn:aws:elasticache:{REGION}:{ACCOUNT}"
PASSWORD = "first-Secret-pw-0001"
SECOND = "second-Secret-pw-002"
_ids = iter(range(10_000))


@pytest.fixture(scope="module")
def answers() -> list[bytes]:
    """Every answer body the module's client received, for the secrets scan."""
    return []


@pytest.fixture(scope="module")
def ec(service: Service, answers: list[bytes]) -> BaseClient:
    elasticache = service.client()
    elasticache.meta.events.register(
        "after-call.elasticache", lambda http_response, **_: answers.append(http_response.content)
    )
    return elasticache


def fresh(prefix: str = "u") -> str:
    return f"{prefix}-{next(_ids)}"


def create_user(ec: BaseClient, user_id: str | None = None, **params: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "UserId": user_id or fresh(),
        "UserName": "app",
        "Engine": "redis",
        "AccessString": "on ~app:* +@read",
        "Passwords": [PASSWORD],
    }
    fields.update(params)  # Passwords=None: none
    answer: dict[str, Any] = ec.create_user(**{k: v for k, v in fields.items() if v is not None})
    return answer


def describe_user(ec: BaseClient, user_id: str) -> dict[str, Any]:
    found: dict[str, Any] = ec.describe_users(UserId=user_id)["Users"][0]
    return found


def fails(call_: Callable[..., Any], code: str, status: int = 400, **params: Any) -> str:
    """The message of the AWS error ``code`` with HTTP ``status`` that the call answers."""
    with pytest.raises(ClientError) as caught:
        call_(**params)
    response = caught.value.response
    assert (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]) == (
        code,
        status,
    ), response
    message: str = response["Error"]["Message"]
    return message


# The built-in default user.


def test_the_default_user_is_built_in_and_cannot_change(ec: BaseClient) -> None:
    default = describe_user(ec, "default")
    assert {k: v for k, v in default.items() if k != "ResponseMetadata"} == {
        "UserId": "default",
        "UserName": "default",
        "Status": "active",
        "Engine": "redis",
        "MinimumEngineVersion": "6.0",
        "AccessString": "on ~* +@all",
        "UserGroupIds": [],
        "Authentication": {"Type": "no-password"},
        "ARN": f"{ARN}:user:default",
    }
    fails(ec.modify_user, "InvalidParameterValue", UserId="default", AccessString="off")
    fails(ec.delete_user, "InvalidParameterValue", UserId="default")
    message = fails(
        ec.create_user,
        "UserAlreadyExists",
        UserId="Default",
        UserName="x",
        Engine="redis",
        AccessString="on",
        NoPasswordRequired=True,
    )
    assert message == "User default already exists."


# Users.


def test_create_describe_modify_and_delete_a_user(ec: BaseClient) -> None:
    user_id = fresh("App")  # stored in lower case
    created = create_user(
        ec, user_id, Passwords=[PASSWORD, SECOND], Tags=[{"Key": "team", "Value": "a"}]
    )
    assert created["UserId"] == user_id.lower()
    assert created["Status"] == "active"
    assert created["Authentication"] == {"Type": "password", "PasswordCount": 2}
    assert created["UserGroupIds"] == []
    assert created["ARN"] == f"{ARN}:user:{user_id.lower()}"
    assert ec.list_tags_for_resource(ResourceName=created["ARN"])["TagList"] == [
        {"Key": "team", "Value": "a"}
    ]
    assert describe_user(ec, user_id.upper())["AccessString"] == "on ~app:* +@read"

    changed = ec.modify_user(UserId=user_id, AppendAccessString="+@write -flushall")
    assert changed["AccessString"] == "on ~app:* +@read +@write -flushall"
    assert changed["Status"] == "active"
    changed = ec.modify_user(UserId=user_id, Passwords=[SECOND])
    assert changed["Authentication"] == {"Type": "password", "PasswordCount": 1}
    changed = ec.modify_user(UserId=user_id, NoPasswordRequired=True)
    assert changed["Authentication"] == {"Type": "no-password"}
    fails(ec.modify_user, "InvalidParameterValue", UserId=user_id, NoPasswordRequired=False)
    changed = ec.modify_user(
        UserId=user_id, AuthenticationMode={"Type": "password", "Passwords": [PASSWORD]}
    )
    assert changed["Authentication"] == {"Type": "password", "PasswordCount": 1}
    message = fails(
        ec.modify_user,
        "InvalidParameterCombination",
        UserId=user_id,
        AuthenticationMode={"Type": "iam"},
    )
    assert message == "User Id and User name must be same for authentication type: iam"
    fails(
        ec.modify_user,
        "InvalidParameterCombination",
        UserId=user_id,
        AccessString="on",
        AppendAccessString="+get",
    )

    deleted = ec.delete_user(UserId=user_id)
    assert deleted["Status"] == "deleting"
    assert fails(ec.describe_users, "UserNotFound", 404, UserId=user_id) == (
        f"User {user_id.lower()} not found."
    )
    fails(ec.list_tags_for_resource, "UserNotFound", 404, ResourceName=created["ARN"])
    fails(ec.delete_user, "UserNotFound", 404, UserId=user_id)


def test_iam_and_no_password_users(ec: BaseClient) -> None:
    user_id = fresh("iam")
    created = create_user(
        ec, user_id, UserName=user_id, Passwords=None, AuthenticationMode={"Type": "iam"}
    )
    assert created["Authentication"] == {"Type": "iam"}
    message = fails(
        ec.create_user,
        "InvalidParameterCombination",
        UserId=fresh("iam"),
        UserName="someone-else",
        Engine="redis",
        AccessString="on",
        AuthenticationMode={"Type": "iam"},
    )
    assert "must be same" in message
    open_user = create_user(ec, Passwords=None, AuthenticationMode={"Type": "no-password-required"})
    assert open_user["Authentication"] == {"Type": "no-password"}
    fails(ec.create_user, "UserAlreadyExists", **_user_params(user_id, NoPasswordRequired=True))


def _user_params(user_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "UserId": user_id,
        "UserName": "app",
        "Engine": "Redis",
        "AccessString": "on ~* +@all",
        **extra,
    }


@pytest.mark.parametrize(
    ("extra", "code", "text"),
    [
        ({}, "InvalidParameterValue", "please use the NoPasswordRequired flag"),
        ({"Passwords": ["short-pw"]}, "InvalidParameterValue", "between 16-128"),
        ({"Passwords": ["p" * 129]}, "InvalidParameterValue", "between 16-128"),
        ({"Passwords": ["with space inside pw"]}, "InvalidParameterValue", "printable"),
        ({"Passwords": ["with,comma-inside-pw"]}, "InvalidParameterValue", "printable"),
        ({"Passwords": ['with"quote-inside-pw']}, "InvalidParameterValue", "printable"),
        ({"Passwords": ["with/slash-inside-pw"]}, "InvalidParameterValue", "printable"),
        ({"Passwords": ["with@at-sign-inside-pw"]}, "InvalidParameterValue", "printable"),
        ({"Passwords": [PASSWORD, SECOND, PASSWORD + "3"]}, "InvalidParameterValue", "at most 2"),
        (
            {"Passwords": [PASSWORD], "NoPasswordRequired": True},
            "InvalidParameterCombination",
            "NoPasswordRequired",
        ),
        (
            {
                "Passwords": [PASSWORD],
                "AuthenticationMode": {"Type": "password", "Passwords": [SECOND]},
            },
            "InvalidParameterCombination",
            "multiple arguments",
        ),
        ({"AuthenticationMode": {"Type": "password"}}, "InvalidParameterValue", "No password"),
        (
            {"AuthenticationMode": {"Type": "no-password-required", "Passwords": [PASSWORD]}},
            "InvalidParameterCombination",
            "not allowed",
        ),
        ({"Engine": "memcached", "NoPasswordRequired": True}, "InvalidParameterValue", "Engine"),
        ({"UserName": "two words", "NoPasswordRequired": True}, "InvalidParameterValue", "spaces"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_authentication_rules(ec: BaseClient, extra: dict[str, Any], code: str, text: str) -> None:
    user_id = fresh("bad")
    message = fails(ec.create_user, code, **_user_params(user_id, **extra))
    assert text in message
    for password in (
        PASSWORD,
        SECOND,
        "short-pw",
        "with space inside pw",
        "with@at-sign-inside-pw",
    ):
        assert password not in message
    fails(ec.describe_users, "UserNotFound", 404, UserId=user_id)


def test_access_strings_are_judged_by_redis(ec: BaseClient) -> None:
    accepted = (
        "on ~cache:* %R~ro:* &events:* (+get ~sel:*) +@all -@dangerous -config|set allchannels"
    )
    assert create_user(ec, AccessString=accepted)["AccessString"] == accepted
    assert create_user(ec, AccessString="resetkeys allkeys nocommands +ping off")["UserId"]
    message = fails(
        ec.create_user,
        "InvalidParameterValue",
        **_user_params(fresh(), NoPasswordRequired=True, AccessString="on +nosuchcommand"),
    )
    assert message == (
        "Invalid access string: rule '+nosuchcommand': Unknown command or category name in ACL"
    )
    for rules in ("on >secret-in-rules", "on nopass", "reset on", "on (#abc)", "on resetpass"):
        message = fails(
            ec.create_user,
            "InvalidParameterValue",
            **_user_params(fresh(), NoPasswordRequired=True, AccessString=rules),
        )
        assert "Passwords can't be set in an access string" in message
        assert "secret-in-rules" not in message
    fails(
        ec.create_user,
        "InvalidParameterValue",
        **_user_params(fresh(), NoPasswordRequired=True, AccessString="on (~unclosed"),
    )
    user_id = create_user(ec)["UserId"]
    fails(
        ec.modify_user,
        "InvalidParameterValue",
        UserId=user_id,
        AppendAccessString="+@nosuchcategory",
    )
    assert describe_user(ec, user_id)["AccessString"] == "on ~app:* +@read"


def test_describe_users_filters_and_pages(ec: BaseClient) -> None:
    name = fresh("paged")
    with ThreadPoolExecutor(8) as pool:
        ids = list(
            pool.map(
                lambda i: create_user(ec, f"{name}-{i:02d}", UserName=name)["UserId"], range(21)
            )
        )
    by_name = [{"Name": "user-name", "Values": [name]}]
    pages = list(ec.get_paginator("describe_users").paginate(Filters=by_name, MaxRecords=20))
    assert [len(p["Users"]) for p in pages] == [20, 1]
    assert [u["UserId"] for p in pages for u in p["Users"]] == sorted(ids)
    found = ec.describe_users(Filters=[{"Name": "UserId", "Values": [ids[3].upper()]}])["Users"]
    assert [u["UserId"] for u in found] == [ids[3]]
    assert ec.describe_users(Engine="valkey", Filters=by_name)["Users"] == []
    fails(ec.describe_users, "InvalidParameterValue", Filters=[{"Name": "color", "Values": ["x"]}])


# User groups.


def test_a_user_group_needs_a_default_user_of_distinct_names(ec: BaseClient) -> None:
    app = create_user(ec)["UserId"]
    other_app = create_user(ec)["UserId"]  # also named "app"
    fails(ec.create_user_group, "DefaultUserRequired", UserGroupId=fresh("g"), Engine="redis")
    fails(
        ec.create_user_group,
        "DefaultUserRequired",
        UserGroupId=fresh("g"),
        Engine="redis",
        UserIds=[app],
    )
    fails(
        ec.create_user_group,
        "UserNotFound",
        404,
        UserGroupId=fresh("g"),
        Engine="redis",
        UserIds=["default", "nobody"],
    )
    fails(
        ec.create_user_group,
        "DuplicateUserName",
        UserGroupId=fresh("g"),
        Engine="redis",
        UserIds=["default", app, other_app],
    )
    new_default = create_user(ec, UserName="default", AccessString="off")["UserId"]
    fails(
        ec.create_user_group,
        "DuplicateUserName",
        UserGroupId=fresh("g"),
        Engine="redis",
        UserIds=["default", new_default],
    )
    group_id = fresh("Team")
    created = ec.create_user_group(
        UserGroupId=group_id, Engine="REDIS", UserIds=["default", app, app]
    )
    assert {k: v for k, v in created.items() if k != "ResponseMetadata"} == {
        "UserGroupId": group_id.lower(),
        "Status": "active",
        "Engine": "redis",
        "UserIds": ["default", app],
        "MinimumEngineVersion": "6.0",
        "ReplicationGroups": [],
        "ServerlessCaches": [],
        "ARN": f"{ARN}:usergroup:{group_id.lower()}",
    }
    fails(
        ec.create_user_group,
        "UserGroupAlreadyExists",
        UserGroupId=group_id,
        Engine="redis",
        UserIds=["default"],
    )
    assert describe_user(ec, app)["UserGroupIds"] == [group_id.lower()]
    assert group_id.lower() in describe_user(ec, "default")["UserGroupIds"]


def test_modify_user_group_and_swap_the_default_user(ec: BaseClient) -> None:
    app = create_user(ec)["UserId"]
    group_id = fresh("swap")
    ec.create_user_group(UserGroupId=group_id, Engine="redis", UserIds=["default"])
    new_default = create_user(ec, UserName="default", AccessString="off -@all")["UserId"]
    fails(
        ec.modify_user_group,
        "DefaultUserRequired",
        UserGroupId=group_id,
        UserIdsToRemove=["default"],
    )
    fails(
        ec.modify_user_group, "DuplicateUserName", UserGroupId=group_id, UserIdsToAdd=[new_default]
    )
    fails(
        ec.modify_user_group,
        "InvalidParameterValue",
        UserGroupId=group_id,
        UserIdsToAdd=["default"],
    )
    fails(
        ec.modify_user_group, "InvalidParameterValue", UserGroupId=group_id, UserIdsToRemove=[app]
    )
    fails(
        ec.modify_user_group,
        "InvalidParameterCombination",
        UserGroupId=group_id,
        UserIdsToAdd=[app],
        UserIdsToRemove=[app],
    )
    fails(ec.modify_user_group, "UserNotFound", 404, UserGroupId=group_id, UserIdsToAdd=["nobody"])
    swapped = ec.modify_user_group(
        UserGroupId=group_id, UserIdsToAdd=[new_default, app], UserIdsToRemove=["default"]
    )
    assert swapped["UserIds"] == [new_default, app]
    assert swapped["Status"] == "active" and "PendingChanges" not in swapped
    assert ec.describe_user_groups(UserGroupId=group_id)["UserGroups"][0]["UserIds"] == [
        new_default,
        app,
    ]
    assert group_id not in describe_user(ec, "default")["UserGroupIds"]

    # A deleted user leaves its groups; a group's default user cannot go.
    assert ec.delete_user(UserId=app)["UserGroupIds"] == [group_id]
    assert ec.describe_user_groups(UserGroupId=group_id)["UserGroups"][0]["UserIds"] == [
        new_default
    ]
    fails(ec.delete_user, "DefaultUserAssociatedToUserGroup", UserId=new_default)
    deleted = ec.delete_user_group(UserGroupId=group_id)
    assert deleted["Status"] == "deleting"
    fails(ec.describe_user_groups, "UserGroupNotFound", 404, UserGroupId=group_id)
    fails(
        ec.modify_user_group,
        "UserGroupNotFound",
        404,
        UserGroupId=group_id,
        UserIdsToAdd=["default"],
    )
    fails(ec.delete_user_group, "UserGroupNotFound", 404, UserGroupId=group_id)
    assert ec.delete_user(UserId=new_default)["Status"] == "deleting"


def test_user_group_quotas(ec: BaseClient) -> None:
    name = fresh("many")
    with ThreadPoolExecutor(8) as pool:
        ids = list(
            pool.map(
                lambda i: create_user(ec, f"{name}-{i:03d}", UserName=f"{name}-{i}")["UserId"],
                range(100),
            )
        )
    message = fails(
        ec.create_user_group,
        "UserGroupQuotaExceeded",
        UserGroupId=fresh("g"),
        Engine="redis",
        UserIds=["default", *ids],
    )
    assert "at most 100 users" in message
    group_id = fresh("g")
    ec.create_user_group(UserGroupId=group_id, Engine="redis", UserIds=["default", *ids[:99]])
    fails(
        ec.modify_user_group, "InvalidParameterValue", UserGroupId=group_id, UserIdsToAdd=[ids[99]]
    )
    ec.delete_user_group(UserGroupId=group_id)

    existing = len(ec.describe_user_groups()["UserGroups"])
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: ec.create_user_group(
                    UserGroupId=f"{name}-g{i}", Engine="redis", UserIds=["default"]
                ),
                range(100 - existing),
            )
        )
    fails(
        ec.create_user_group,
        "UserGroupQuotaExceeded",
        UserGroupId=fresh("g"),
        Engine="redis",
        UserIds=["default"],
    )
    pages = list(ec.get_paginator("describe_user_groups").paginate(MaxRecords=20))
    assert sum(len(p["UserGroups"]) for p in pages) == 100
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: ec.delete_user_group(UserGroupId=f"{name}-g{i}"), range(100 - existing)
            )
        )


def test_tags_on_users_and_groups(ec: BaseClient) -> None:
    group_id = fresh("tagged")
    group = ec.create_user_group(
        UserGroupId=group_id, Engine="redis", UserIds=["default"], Tags=[{"Key": "k", "Value": "v"}]
    )
    ec.add_tags_to_resource(ResourceName=group["ARN"], Tags=[{"Key": "env", "Value": "prod"}])
    tags = ec.list_tags_for_resource(ResourceName=group["ARN"])["TagList"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("env", "prod"), ("k", "v")]
    ec.add_tags_to_resource(
        ResourceName=f"{ARN}:user:default", Tags=[{"Key": "builtin", "Value": "yes"}]
    )
    assert ec.list_tags_for_resource(ResourceName=f"{ARN}:user:default")["TagList"] == [
        {"Key": "builtin", "Value": "yes"}
    ]
    ec.remove_tags_from_resource(ResourceName=f"{ARN}:user:default", TagKeys=["builtin"])
    fails(
        ec.list_tags_for_resource, "UserGroupNotFound", 404, ResourceName=f"{ARN}:usergroup:nothing"
    )
    ec.delete_user_group(UserGroupId=group_id)


# On the wire, through the AWS CLI, and under policies.


def test_wire_names_and_the_output_enum(service: Service, ec: BaseClient) -> None:
    user_id = create_user(ec, Passwords=None, NoPasswordRequired=True)["UserId"]
    group_id = fresh("wire")
    ec.create_user_group(UserGroupId=group_id, Engine="redis", UserIds=["default", user_id])
    ns = {"e": NAMESPACE}
    body = call(service, "DescribeUsers", {"UserId": user_id}).body
    user = ElementTree.fromstring(body).find("e:DescribeUsersResult/e:Users/e:member", ns)
    assert user is not None, body
    assert user.findtext("e:Authentication/e:Type", namespaces=ns) == "no-password"
    assert user.find("e:Authentication/e:PasswordCount", ns) is None
    assert [m.text for m in user.findall("e:UserGroupIds/e:member", ns)] == [group_id]
    body = call(service, "CreateUser", {**_user_params(fresh()), "Passwords": [PASSWORD]}).body
    # The user's fields straight in the result element, not in a <User> of their own.
    assert ElementTree.fromstring(body).findtext("e:CreateUserResult/e:UserId", namespaces=ns)
    body = call(service, "DescribeUserGroups", {"UserGroupId": group_id}).body
    group = ElementTree.fromstring(body).find(
        "e:DescribeUserGroupsResult/e:UserGroups/e:member", ns
    )
    assert group is not None, body
    assert [m.text for m in group.findall("e:UserIds/e:member", ns)] == ["default", user_id]


def test_aws_cli(service: Service) -> None:
    user_id = fresh("cli")
    created = service.aws(
        "create-user",
        *("--user-id", user_id, "--user-name", user_id, "--engine", "redis"),
        *("--access-string", "on ~* +@all", "--authentication-mode", "Type=no-password-required"),
    )
    assert created["Authentication"] == {"Type": "no-password"}
    found = service.aws("describe-users", "--user-id", user_id)["Users"]
    assert found[0]["AccessString"] == "on ~* +@all"


def test_user_calls_are_authorized_by_the_lower_case_arn(service: Service) -> None:
    key, secret = service.credentials()
    iam = boto3.client(
        "iam",
        endpoint_url=service.endpoint,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )
    iam.create_user(UserName="rbac-admin")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "elasticache:*", "Resource": "*"},
            {
                "Effect": "Deny",
                "Action": "elasticache:CreateUser",
                "Resource": f"{ARN}:user:admin-*",
            },
        ],
    }
    iam.put_user_policy(UserName="rbac-admin", PolicyName="p", PolicyDocument=json.dumps(policy))
    pair = iam.create_access_key(UserName="rbac-admin")["AccessKey"]
    limited = boto3.client(
        "elasticache",
        endpoint_url=service.endpoint,
        region_name=REGION,
        aws_access_key_id=pair["AccessKeyId"],
        aws_secret_access_key=pair["SecretAccessKey"],
        config=Config(retries={"max_attempts": 1}),
    )
    message = fails(
        limited.create_user, "AccessDenied", 403, **_user_params("Admin-1", NoPasswordRequired=True)
    )
    assert f"on resource: {ARN}:user:admin-1 " in message
    assert (
        limited.create_user(**_user_params(fresh("dev"), NoPasswordRequired=True))["Status"]
        == "active"
    )


# Secrets hygiene.


def test_no_password_is_kept_or_shown(
    service: Service, ec: BaseClient, answers: list[bytes]
) -> None:
    """Every answer this module received, the events, the log and the database files."""
    marked = ["Hygiene-Scan-Pw-0001", "Hygiene-Scan-Pw-0002", "Hygiene-Scan-Pw-0003"]
    user_id = create_user(ec, Passwords=marked[:2])["UserId"]
    ec.modify_user(
        UserId=user_id, AuthenticationMode={"Type": "password", "Passwords": [marked[2]]}
    )
    group_id = fresh("scan")
    ec.create_user_group(UserGroupId=group_id, Engine="redis", UserIds=["default", user_id])
    with pytest.raises(ClientError):
        create_user(ec, Passwords=[marked[0], "bad@" + marked[1]])
    ec.describe_users()
    ec.describe_user_groups()
    events = json.dumps(ec.describe_events(Duration=60)["Events"], default=str)
    stored = b"".join(p.read_bytes() for p in sorted(service.data_dir.glob("state.db*")))
    assert any(b"<PasswordCount>" in a for a in answers)  # the scan sees real answers,
    assert any(b"<ErrorResponse" in a for a in answers)  # refusals included
    seen = [*answers, events.encode(), service.log_path.read_bytes(), stored]
    for password in marked:
        for text in seen:
            assert password.encode() not in text
    # What is kept is Redis' own form of the current password, ready for `ACL SETUSER #<hash>`.
    with sqlite3.connect(service.data_dir / "state.db") as db:
        (spec,) = db.execute(
            "SELECT spec FROM resources WHERE kind = 'user' AND id = ?", (user_id,)
        ).fetchone()
    assert json.loads(spec)["authentication"] == {
        "type": "password",
        "password_hashes": [hashlib.sha256(marked[2].encode()).hexdigest()],
    }
