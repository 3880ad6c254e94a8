"""IAM authentication: `AUTH <user> <token>` with ElastiCache's SigV4 connect token.

A token is accepted only while it is valid (15 minutes), only when signed with
a known active key whose policy allows elasticache:Connect on both the
replication group and the user, only for the user and the group it names, on
every member and after a failover; IAM connections are closed once older than
the service's limit (12 hours by default, a few seconds here).
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.client import BaseClient
from botocore.credentials import Credentials
from group_helpers import (
    create_group,
    primary_address,
    primary_id,
    read_endpoints,
    tls_redis,
    wait_group_available,
)
from service_helpers import REGION, Service, wait_for

from cacheyard.client.iam_token import AwsCredentials, generate_auth_token

pytestmark = pytest.mark.timeout(180)

ACCOUNT = "000000000000"
GROUP = "iam-rg"
OTHER_GROUP = "iam-other-rg"
MAX_AGE = 6  # seconds, instead of 12 hours
DEFAULT_PASSWORD = "default-password-0123"
ARN = f"arn:aws:elasticache:{REGION}:{ACCOUNT}"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = Service(
        tmp_path_factory.mktemp("iam") / "data", "--iam-connection-max-age", str(MAX_AGE)
    )
    running.start()
    yield running
    running.down()


@pytest.fixture(scope="module")
def iam(service: Service) -> BaseClient:
    key, secret = service.credentials()
    return boto3.client(
        "iam",
        endpoint_url=service.endpoint,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )


def principal(iam: BaseClient, name: str, *statements: dict[str, Any]) -> AwsCredentials:
    iam.create_user(UserName=name)
    if statements:
        iam.put_user_policy(
            UserName=name,
            PolicyName="connect",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}),
        )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return AwsCredentials(key["AccessKeyId"], key["SecretAccessKey"])


def connect_statement(effect: str, *resources: str) -> dict[str, Any]:
    return {"Effect": effect, "Action": "elasticache:Connect", "Resource": list(resources)}


@pytest.fixture(scope="module")
def setup(ec: BaseClient, iam: BaseClient) -> Iterator[dict[str, Any]]:
    ec.create_user(
        UserId="iam-default",
        UserName="default",
        Engine="redis",
        AccessString="on ~* +@all",
        Passwords=[DEFAULT_PASSWORD],
    )
    for user_id in ("iam-app", "iam-else"):
        ec.create_user(
            UserId=user_id,
            UserName=user_id,
            Engine="redis",
            AccessString="on ~* +@all",
            AuthenticationMode={"Type": "iam"},
        )
    ec.create_user_group(
        UserGroupId="iam-users", Engine="redis", UserIds=["iam-default", "iam-app", "iam-else"]
    )
    allowed = principal(
        iam,
        "app-role",
        connect_statement("Allow", f"{ARN}:replicationgroup:{GROUP}", f"{ARN}:user:iam-app"),
    )
    denied = principal(
        iam,
        "no-connect",
        {"Effect": "Allow", "Action": "elasticache:Describe*", "Resource": "*"},
    )
    explicit = principal(
        iam,
        "denied-explicitly",
        connect_statement("Allow", "*"),
        connect_statement("Deny", f"{ARN}:replicationgroup:{GROUP}"),
    )
    for group_id in (OTHER_GROUP, GROUP):
        create_group(
            ec, group_id, members=2, TransitEncryptionEnabled=True, UserGroupIds=["iam-users"]
        )
        wait_group_available(ec, group_id, timeout=60)
        # The user group is `modifying` until both members hold its users.
        wait_for(
            lambda: (
                ec.describe_user_groups(UserGroupId="iam-users")["UserGroups"][0]["Status"]
                == "active"
            ),
            timeout=30,
        )
    group = wait_group_available(ec, GROUP)
    yield {"group": group, "allowed": allowed, "denied": denied, "explicit": explicit}
    for group_id in (GROUP, OTHER_GROUP):
        ec.delete_replication_group(ReplicationGroupId=group_id)


def authenticates(address: str, ca: str, user: str, token: str) -> bool:
    client = tls_redis(address, ca, user, token)
    try:
        return bool(client.ping())
    except redis.AuthenticationError:
        return False
    finally:
        client.close()


def token(
    credentials: AwsCredentials,
    user: str = "iam-app",
    group: str = GROUP,
    age: float = 0,
) -> str:
    moment = datetime.now(UTC) - timedelta(seconds=age)
    return generate_auth_token(group, user, REGION, credentials, now=moment)


def botocore_token(credentials: AwsCredentials) -> str:
    """The token as AWS's documented recipe makes it, with botocore's presigner."""
    request = AWSRequest(
        method="GET", url=f"http://{GROUP}/", params={"Action": "connect", "User": "iam-app"}
    )
    signer = SigV4QueryAuth(
        Credentials(credentials.access_key_id, credentials.secret_access_key),
        "elasticache",
        REGION,
        expires=900,
    )
    signer.add_auth(request)
    return str(request.prepare().url).removeprefix("http://")


def test_a_valid_token_works_on_every_member(setup: dict[str, Any], ca: str) -> None:
    group = setup["group"]
    allowed = setup["allowed"]
    wait_for(lambda: authenticates(primary_address(group), ca, "iam-app", token(allowed)), 20)
    for address in [primary_address(group), *read_endpoints(group).values()]:
        assert authenticates(address, ca, "iam-app", token(allowed))
        assert authenticates(address, ca, "iam-app", botocore_token(allowed))
        assert authenticates(address, ca, "iam-app", token(allowed, age=600))  # still valid


def test_expired_forged_and_misdirected_tokens_are_refused(setup: dict[str, Any], ca: str) -> None:
    address = primary_address(setup["group"])
    allowed = setup["allowed"]
    assert authenticates(address, ca, "iam-app", token(allowed))
    assert not authenticates(address, ca, "iam-app", token(allowed, age=960))  # expired
    forged = AwsCredentials(allowed.access_key_id, "not-the-secret-key-0000000000000000000000")
    assert not authenticates(address, ca, "iam-app", token(forged))
    unknown = AwsCredentials("AKIAUNKNOWNKEY000000", allowed.secret_access_key)
    assert not authenticates(address, ca, "iam-app", token(unknown))
    # Signed for another user: neither as that user (not allowed) nor as iam-app.
    assert not authenticates(address, ca, "iam-app", token(allowed, user="iam-else"))
    assert not authenticates(address, ca, "iam-else", token(allowed, user="iam-else"))
    # Signed for another group that has the same users.
    assert not authenticates(address, ca, "iam-app", token(allowed, group=OTHER_GROUP))
    # A password user's password is no token, and a token no password.
    assert not authenticates(address, ca, "default", token(allowed))


def test_policies_decide_who_may_connect(setup: dict[str, Any], ca: str, iam: BaseClient) -> None:
    address = primary_address(setup["group"])
    assert not authenticates(address, ca, "iam-app", token(setup["denied"]))
    assert not authenticates(address, ca, "iam-app", token(setup["explicit"]))
    iam.put_user_policy(
        UserName="no-connect",
        PolicyName="connect",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [connect_statement("Allow", "*")]}
        ),
    )
    wait_for(lambda: authenticates(address, ca, "iam-app", token(setup["denied"])), timeout=20)
    iam.delete_user_policy(UserName="no-connect", PolicyName="connect")
    wait_for(lambda: not authenticates(address, ca, "iam-app", token(setup["denied"])), 20)


def test_tokens_work_after_a_failover(ec: BaseClient, setup: dict[str, Any], ca: str) -> None:
    before = primary_id(wait_group_available(ec, GROUP))
    ec.test_failover(ReplicationGroupId=GROUP, NodeGroupId="0001")
    wait_for(lambda: primary_id(wait_group_available(ec, GROUP)) != before, timeout=30)
    address = primary_address(setup["group"])
    wait_for(lambda: authenticates(address, ca, "iam-app", token(setup["allowed"])), 20)


def test_old_iam_connections_are_closed_and_password_ones_kept(
    setup: dict[str, Any], ca: str
) -> None:
    address = primary_address(setup["group"])

    with_token = tls_redis(address, ca, "iam-app", token(setup["allowed"]))
    with_password = tls_redis(address, ca, "default", DEFAULT_PASSWORD)
    first, kept = with_token.client_id(), with_password.client_id()
    # redis-py reconnects (authenticating again) when its connection was closed: a
    # new client id shows the old connection was dropped.
    wait_for(lambda: with_token.client_id() != first, timeout=MAX_AGE + 20)
    assert with_password.client_id() == kept


def test_while_the_control_plane_is_stopped_no_token_works(
    service: Service, setup: dict[str, Any], ca: str
) -> None:
    """No window moves while it is away, so IAM users are locked rather than left with
    tokens that would outlive their 15 minutes; password users are untouched."""
    address = primary_address(setup["group"])
    assert authenticates(address, ca, "iam-app", token(setup["allowed"]))
    service.kill(signal.SIGTERM)
    try:
        assert not authenticates(address, ca, "iam-app", token(setup["allowed"]))
        assert authenticates(address, ca, "default", DEFAULT_PASSWORD)
    finally:
        service.start()
    wait_for(lambda: authenticates(address, ca, "iam-app", token(setup["allowed"])), 20)


def test_no_token_or_secret_is_kept_or_shown(service: Service, setup: dict[str, Any]) -> None:
    secret = setup["allowed"].secret_access_key
    texts = [service.log_path.read_text(errors="replace")]
    texts += [p.read_text(errors="replace") for p in Path(service.data_dir).rglob("*.conf")]
    assert all(secret not in text and "X-Amz-Signature" not in text for text in texts)
