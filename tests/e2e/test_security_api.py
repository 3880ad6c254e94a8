"""API authorization on a live service: IAM users, keys and policies through the real
boto3 and the real AWS CLI, with AWS's refusals; secrets never at rest in clear.

The ElastiCache refusals of unsigned, wrongly signed, stale and unknown-key
requests are in test_auth_refusals.py; here the same for IAM and STS, and what
policies allow and deny.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from bad_input_helpers import signing_clock
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from service_helpers import REGION, Service

from cacheyard.cli import admin
from cacheyard.cli.credentials import KeyPair

pytestmark = pytest.mark.timeout(90)

ACCOUNT = "000000000000"
CLUSTER_ARN = f"arn:aws:elasticache:{REGION}:{ACCOUNT}:cluster:{{}}"
ALLOW_ALL_ELASTICACHE = {"Effect": "Allow", "Action": "elasticache:*", "Resource": "*"}
DESCRIBE_ONLY = {"Effect": "Allow", "Action": "elasticache:Describe*", "Resource": "*"}
_names = iter(range(10_000))


def client(service: Service, name: str, key: str | None = None, secret: str | None = None) -> Any:
    """A boto3 client of ``name`` (elasticache, iam, sts), as admin unless a key is given."""
    admin_key, admin_secret = service.credentials()
    return boto3.client(
        name,
        endpoint_url=service.endpoint,
        region_name=REGION,
        aws_access_key_id=key or admin_key,
        aws_secret_access_key=secret or admin_secret,
        config=Config(retries={"max_attempts": 1}),
    )


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def new_user(service: Service, *statements: dict[str, Any]) -> tuple[str, str, str]:
    """A user of its own with these statements as an inline policy: (name, key, secret)."""
    iam = client(service, "iam")
    name = f"user-{next(_names)}"
    iam.create_user(UserName=name)
    if statements:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=document(*statements))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return name, key["AccessKeyId"], key["SecretAccessKey"]


def refused(call: Callable[..., Any], code: str, status: int) -> str:
    """The message of the AWS error ``code`` with HTTP ``status`` that ``call`` raises."""
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    assert (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]) == (
        code,
        status,
    ), response
    assert response["ResponseMetadata"]["RequestId"]
    message: str = response["Error"]["Message"]
    return message


def aws_cli(
    service: Service, *args: str, key: str | None = None, secret: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The real AWS CLI against the service, as admin (its credentials file) or as a key."""
    env = service.aws_env()
    if key is not None and secret is not None:
        env.update(AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION=REGION)
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "aws"),
            "--endpoint-url",
            service.endpoint,
            "--output",
            "json",
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


# Who the first-start key is.


def test_the_first_start_key_is_the_administrators(service: Service) -> None:
    identity = client(service, "sts").get_caller_identity()
    assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/admin"
    assert identity["Account"] == ACCOUNT
    assert identity["UserId"].startswith("AIDA")
    attached = client(service, "iam").list_attached_user_policies(UserName="admin")
    assert [p["PolicyArn"] for p in attached["AttachedPolicies"]] == [
        "arn:aws:iam::aws:policy/AdministratorAccess"
    ]


# Authentication of IAM and STS calls (ElastiCache's: test_auth_refusals.py).


@pytest.mark.parametrize("name", ["iam", "sts"])
def test_unknown_key_and_wrong_secret_are_refused_by_iam_and_sts(
    service: Service, name: str
) -> None:
    key, secret = service.credentials()
    call = "list_users" if name == "iam" else "get_caller_identity"
    unknown = client(service, name, "AKIAUNKNOWNUNKNOWN00", secret)
    message = refused(getattr(unknown, call), "InvalidClientTokenId", 403)
    assert message == "The security token included in the request is invalid."
    wrong = client(service, name, key, secret[::-1])
    refused(getattr(wrong, call), "SignatureDoesNotMatch", 403)


def test_stale_iam_request_is_refused(service: Service) -> None:
    iam = client(service, "iam")
    with signing_clock(datetime.now(UTC) - timedelta(minutes=20)):
        refused(iam.list_users, "RequestExpired", 400)


def test_unsigned_iam_request_is_refused(service: Service) -> None:
    iam = boto3.client(
        "iam",
        endpoint_url=service.endpoint,
        region_name=REGION,
        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}),
    )
    refused(iam.list_users, "MissingAuthenticationToken", 403)


def test_iam_signed_for_another_region_is_refused(service: Service) -> None:
    key, secret = service.credentials()
    iam = boto3.client(
        "iam",
        endpoint_url=service.endpoint,
        region_name="eu-west-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )
    assert "region" in refused(iam.list_users, "SignatureDoesNotMatch", 403)


# Policies.


def test_a_user_without_a_policy_is_denied_everything_but_who_he_is(service: Service) -> None:
    name, key, secret = new_user(service)
    user_arn = f"arn:aws:iam::{ACCOUNT}:user/{name}"
    ec = client(service, "elasticache", key, secret)
    message = refused(ec.describe_cache_clusters, "AccessDenied", 403)
    assert message == (
        f"User: {user_arn} is not authorized to perform: elasticache:DescribeCacheClusters "
        "on resource: * because no identity-based policy allows the "
        "elasticache:DescribeCacheClusters action"
    )
    refused(client(service, "iam", key, secret).list_users, "AccessDenied", 403)
    assert client(service, "sts", key, secret).get_caller_identity()["Arn"] == user_arn
    done = aws_cli(service, "elasticache", "describe-cache-clusters", key=key, secret=secret)
    assert done.returncode != 0 and "(AccessDenied)" in done.stderr, done.stderr
    done = aws_cli(service, "sts", "get-caller-identity", key=key, secret=secret)
    assert json.loads(done.stdout)["Arn"] == user_arn


def test_a_describe_only_policy_allows_describes_only(service: Service) -> None:
    _, key, secret = new_user(service, DESCRIBE_ONLY)
    ec = client(service, "elasticache", key, secret)
    assert ec.describe_cache_clusters()["CacheClusters"] == []
    ec.describe_events()
    ec.describe_cache_subnet_groups(CacheSubnetGroupName="default")
    message = refused(
        lambda: ec.create_cache_parameter_group(
            CacheParameterGroupName="not-mine",
            CacheParameterGroupFamily="redis7",
            Description="denied",
        ),
        "AccessDenied",
        403,
    )
    assert "elasticache:CreateCacheParameterGroup on resource: arn:aws:elasticache:" in message
    assert message.endswith(
        ":parametergroup:not-mine because no identity-based policy allows "
        "the elasticache:CreateCacheParameterGroup action"
    )
    refused(
        lambda: ec.list_tags_for_resource(ResourceName=CLUSTER_ARN.format("x")), "AccessDenied", 403
    )
    admin_ec = client(service, "elasticache")
    refused(
        lambda: admin_ec.describe_cache_parameter_groups(CacheParameterGroupName="not-mine"),
        "CacheParameterGroupNotFound",
        404,
    )


def test_deny_by_resource(service: Service) -> None:
    """Allowed everything in ElastiCache but the clusters named prod-*."""
    _, key, secret = new_user(
        service,
        ALLOW_ALL_ELASTICACHE,
        {"Effect": "Deny", "Action": "elasticache:*", "Resource": CLUSTER_ARN.format("prod-*")},
    )
    ec = client(service, "elasticache", key, secret)

    def create(cluster_id: str) -> Any:
        return ec.create_cache_cluster(
            CacheClusterId=cluster_id,
            Engine="memcached",
            CacheNodeType="cache.t3.micro",
            NumCacheNodes=1,
        )

    for denied in ("prod-1", "PROD-2"):  # ElastiCache ids are lower case: so is the ARN checked
        message = refused(lambda denied=denied: create(denied), "AccessDenied", 403)
        assert message.endswith(
            f"elasticache:CreateCacheCluster on resource: {CLUSTER_ARN.format(denied.lower())} "
            "with an explicit deny in an identity-based policy"
        )
    refused(lambda: ec.delete_cache_cluster(CacheClusterId="prod-1"), "AccessDenied", 403)
    create("dev-1")
    ec.get_waiter("cache_cluster_available").wait(
        CacheClusterId="dev-1", WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    assert [c["CacheClusterId"] for c in ec.describe_cache_clusters()["CacheClusters"]] == ["dev-1"]
    ec.delete_cache_cluster(CacheClusterId="dev-1")


def test_an_explicit_deny_beats_an_allow(service: Service) -> None:
    name, key, secret = new_user(
        service, {"Effect": "Deny", "Action": ["elasticache:Delete*", "iam:*"], "Resource": "*"}
    )
    client(service, "iam").attach_user_policy(
        UserName=name, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess"
    )
    ec = client(service, "elasticache", key, secret)
    ec.describe_cache_clusters()
    message = refused(
        lambda: ec.delete_cache_subnet_group(CacheSubnetGroupName="anything"), "AccessDenied", 403
    )
    assert message.endswith("with an explicit deny in an identity-based policy")
    refused(client(service, "iam", key, secret).list_users, "AccessDenied", 403)


def test_policy_changes_apply_to_the_next_call(service: Service) -> None:
    name, key, secret = new_user(service, DESCRIBE_ONLY)
    ec = client(service, "elasticache", key, secret)
    ec.describe_cache_clusters()
    client(service, "iam").delete_user_policy(UserName=name, PolicyName="p")
    refused(ec.describe_cache_clusters, "AccessDenied", 403)
    client(service, "iam").attach_user_policy(
        UserName=name, PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess"
    )
    ec.describe_cache_clusters()


def test_managed_policies(service: Service) -> None:
    iam = client(service, "iam")
    name, key, secret = new_user(service)
    created = iam.create_policy(
        PolicyName="events-reader",
        Path="/team/",
        PolicyDocument=document(
            {"Effect": "Allow", "Action": "elasticache:DescribeEvents", "Resource": "*"}
        ),
        Description="read events",
    )["Policy"]
    arn = created["Arn"]
    assert arn == f"arn:aws:iam::{ACCOUNT}:policy/team/events-reader"
    assert (created["DefaultVersionId"], created["AttachmentCount"]) == ("v1", 0)
    refused(
        lambda: iam.create_policy(
            PolicyName="events-reader", PolicyDocument=document(DESCRIBE_ONLY)
        ),
        "EntityAlreadyExists",
        409,
    )
    iam.attach_user_policy(UserName=name, PolicyArn=arn)
    client(service, "elasticache", key, secret).describe_events()
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    version = iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]
    assert version["Document"]["Statement"][0]["Action"] == "elasticache:DescribeEvents"
    assert version["IsDefaultVersion"] is True
    refused(lambda: iam.get_policy_version(PolicyArn=arn, VersionId="v2"), "NoSuchEntity", 404)
    attached = iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]
    assert attached == [{"PolicyName": "events-reader", "PolicyArn": arn}]
    local = iam.list_policies(Scope="Local")["Policies"]
    assert [p["Arn"] for p in local] == [arn]
    aws = {p["PolicyName"] for p in iam.list_policies(Scope="AWS")["Policies"]}
    assert {"AdministratorAccess", "ReadOnlyAccess"} <= aws
    refused(lambda: iam.delete_policy(PolicyArn=arn), "DeleteConflict", 409)
    iam.detach_user_policy(UserName=name, PolicyArn=arn)
    refused(lambda: iam.detach_user_policy(UserName=name, PolicyArn=arn), "NoSuchEntity", 404)
    refused(client(service, "elasticache", key, secret).describe_events, "AccessDenied", 403)
    iam.delete_policy(PolicyArn=arn)
    refused(lambda: iam.get_policy(PolicyArn=arn), "NoSuchEntity", 404)


def test_iam_errors_carry_the_models_codes(service: Service) -> None:
    iam = client(service, "iam")
    name, _, _ = new_user(service)
    refused(lambda: iam.get_user(UserName="nobody"), "NoSuchEntity", 404)
    refused(lambda: iam.create_user(UserName=name.upper()), "EntityAlreadyExists", 409)
    refused(lambda: iam.create_user(UserName="no spaces"), "ValidationError", 400)
    message = refused(
        lambda: iam.put_user_policy(
            UserName=name,
            PolicyName="p",
            PolicyDocument=document(
                {**DESCRIBE_ONLY, "Condition": {"Bool": {"aws:SecureTransport": "true"}}}
            ),
        ),
        "MalformedPolicyDocument",
        400,
    )
    assert "Condition" in message
    refused(
        lambda: iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument="{not json"),
        "MalformedPolicyDocument",
        400,
    )
    iam.create_access_key(UserName=name)  # the second key
    refused(lambda: iam.create_access_key(UserName=name), "LimitExceeded", 409)
    assert "access keys" in refused(lambda: iam.delete_user(UserName=name), "DeleteConflict", 409)
    refused(iam.list_groups, "NotImplemented", 501)
    refused(client(service, "sts").get_session_token, "NotImplemented", 501)
    refused(lambda: iam.get_user_policy(UserName=name, PolicyName="none"), "NoSuchEntity", 404)


def test_a_user_is_deleted_after_its_keys_and_policies(service: Service) -> None:
    iam = client(service, "iam")
    name, key, _ = new_user(service, DESCRIBE_ONLY)
    iam.attach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    iam.delete_access_key(UserName=name, AccessKeyId=key)
    assert "policies" in refused(lambda: iam.delete_user(UserName=name), "DeleteConflict", 409)
    iam.delete_user_policy(UserName=name, PolicyName="p")
    assert "detach" in refused(lambda: iam.delete_user(UserName=name), "DeleteConflict", 409)
    iam.detach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    iam.delete_user(UserName=name)
    refused(lambda: iam.get_user(UserName=name), "NoSuchEntity", 404)


# Keys.


def test_an_inactive_key_is_refused_at_once(service: Service) -> None:
    name, key, secret = new_user(service, DESCRIBE_ONLY)
    ec = client(service, "elasticache", key, secret)
    ec.describe_cache_clusters()
    iam = client(service, "iam")
    iam.update_access_key(UserName=name, AccessKeyId=key, Status="Inactive")
    statuses = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"]) for k in statuses] == [(key, "Inactive")]
    refused(ec.describe_cache_clusters, "InvalidClientTokenId", 403)
    iam.update_access_key(UserName=name, AccessKeyId=key, Status="Active")
    ec.describe_cache_clusters()


def test_a_deleted_key_is_refused_at_once(service: Service) -> None:
    name, key, secret = new_user(service, DESCRIBE_ONLY)
    ec = client(service, "elasticache", key, secret)
    ec.describe_cache_clusters()
    client(service, "iam").delete_access_key(UserName=name, AccessKeyId=key)
    refused(ec.describe_cache_clusters, "InvalidClientTokenId", 403)
    refused(client(service, "sts", key, secret).get_caller_identity, "InvalidClientTokenId", 403)


def test_a_user_manages_its_own_keys_without_naming_itself(service: Service) -> None:
    name, key, secret = new_user(
        service, {"Effect": "Allow", "Action": "iam:*AccessKey*", "Resource": "*"}
    )
    own = client(service, "iam", key, secret)
    second = own.create_access_key()["AccessKey"]
    assert second["UserName"] == name
    keys = {k["AccessKeyId"] for k in own.list_access_keys()["AccessKeyMetadata"]}
    assert keys == {key, second["AccessKeyId"]}
    refused(
        lambda: own.delete_access_key(AccessKeyId=service.credentials()[0]), "NoSuchEntity", 404
    )
    own.delete_access_key(AccessKeyId=second["AccessKeyId"])


def test_a_key_for_another_user_needs_the_right_to_manage_that_user(service: Service) -> None:
    name, key, secret = new_user(
        service,
        {
            "Effect": "Allow",
            "Action": "iam:*",
            "Resource": f"arn:aws:iam::{ACCOUNT}:user/user-*",
        },
    )
    own = client(service, "iam", key, secret)
    own.list_access_keys(UserName=name)
    message = refused(lambda: own.create_access_key(UserName="admin"), "AccessDenied", 403)
    assert f"iam:CreateAccessKey on resource: arn:aws:iam::{ACCOUNT}:user/admin" in message


# The AWS CLI.


def test_aws_cli_sts_and_iam(service: Service) -> None:
    done = aws_cli(service, "sts", "get-caller-identity")
    assert json.loads(done.stdout)["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/admin", done.stderr
    done = aws_cli(service, "iam", "create-user", "--user-name", "from-cli")
    assert json.loads(done.stdout)["User"]["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/from-cli"
    done = aws_cli(service, "iam", "list-users")
    assert "from-cli" in {u["UserName"] for u in json.loads(done.stdout)["Users"]}
    done = aws_cli(
        service,
        "iam",
        "put-user-policy",
        "--user-name",
        "from-cli",
        "--policy-name",
        "describe",
        "--policy-document",
        document(DESCRIBE_ONLY),
    )
    assert done.returncode == 0, done.stderr
    done = aws_cli(
        service, "iam", "get-user-policy", "--user-name", "from-cli", "--policy-name", "describe"
    )
    assert json.loads(done.stdout)["PolicyDocument"]["Statement"] == [DESCRIBE_ONLY]
    key = json.loads(aws_cli(service, "iam", "create-access-key", "--user-name", "from-cli").stdout)
    pair = key["AccessKey"]["AccessKeyId"], key["AccessKey"]["SecretAccessKey"]
    done = aws_cli(service, "elasticache", "describe-cache-clusters", key=pair[0], secret=pair[1])
    assert done.returncode == 0, done.stderr
    done = aws_cli(service, "iam", "delete-user", "--user-name", "from-cli")
    assert done.returncode != 0 and "(DeleteConflict)" in done.stderr, done.stderr


# Cacheyard's admin call.


def test_the_fault_route_needs_cacheyard_inject_fault(service: Service) -> None:
    _, key, secret = new_user(service, ALLOW_ALL_ELASTICACHE)
    status, answer = admin.post_fault(
        service.endpoint, REGION, KeyPair(key, secret), "kill", "nothing-here", "0001"
    )
    assert status == 403 and answer["Error"]["Code"] == "AccessDenied", answer
    assert "cacheyard:InjectFault on resource: " + CLUSTER_ARN.format("nothing-here") in str(answer)
    status, answer = admin.post_fault(
        service.endpoint, REGION, KeyPair(*service.credentials()), "kill", "nothing-here", "0001"
    )
    assert (status, answer["Error"]["Code"]) == (404, "CacheClusterNotFoundFault"), answer


# Secrets at rest.


def test_secrets_are_not_stored_in_clear(service: Service) -> None:
    _, _, secret = new_user(service, DESCRIBE_ONLY)
    _, admin_secret = service.credentials()
    stored = sorted(service.data_dir.glob("state.db*"))
    assert stored, "no database files"
    for path in stored:
        data = path.read_bytes()
        assert secret.encode() not in data and admin_secret.encode() not in data, path
    log = service.log_path.read_bytes()
    assert secret.encode() not in log and admin_secret.encode() not in log


def test_key_and_credential_files_are_private(service: Service) -> None:
    for name in ("secrets.key", "credentials", "config", "state.db"):
        mode = stat.S_IMODE((service.data_dir / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert stat.S_IMODE(service.data_dir.stat().st_mode) == 0o700


def test_users_and_keys_survive_a_restart(fresh_service: Service) -> None:
    _, key, secret = new_user(fresh_service, DESCRIBE_ONLY)
    fresh_service.kill()
    fresh_service.start()
    client(fresh_service, "elasticache", key, secret).describe_cache_clusters()
    assert client(fresh_service, "sts").get_caller_identity()["Arn"].endswith(":user/admin")


def test_deleting_every_key_gives_the_administrator_a_new_one_at_the_next_start(
    fresh_service: Service,
) -> None:
    """The way back in when the last key is gone: restart the service."""
    iam = client(fresh_service, "iam")
    old_key, old_secret = fresh_service.credentials()
    iam.delete_access_key(UserName="admin", AccessKeyId=old_key)
    refused(iam.list_users, "InvalidClientTokenId", 403)
    fresh_service.kill()
    fresh_service.start()
    new_key, _ = fresh_service.credentials()
    assert new_key != old_key  # a deleted key never comes back
    identity = client(fresh_service, "sts").get_caller_identity()
    assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/admin"
    refused(
        client(fresh_service, "iam", old_key, old_secret).list_users, "InvalidClientTokenId", 403
    )


def test_a_key_file_that_does_not_open_the_secrets_stops_the_start(
    fresh_service: Service,
) -> None:
    fresh_service.kill()
    key_file = fresh_service.data_dir / "secrets.key"
    original = key_file.read_bytes()
    key_file.write_text(base64.b64encode(os.urandom(32)).decode())
    done = subprocess.run(
        [
            *fresh_service.command("up"),
            *("--port", str(fresh_service.port)),
            *("--address-base", str(fresh_service.address_base)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "does not open with this key file" in done.stderr, done.stderr
    key_file.write_bytes(original)
    fresh_service.start()
    client(fresh_service, "sts").get_caller_identity()
