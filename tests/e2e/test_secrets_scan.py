"""Secrets hygiene, end to end: every kind of secret the service handles, then a scan.

Against one real service this makes an AUTH token (rotated to a second one),
RBAC passwords (changed once) in a user group attached to a TLS group with an
IAM-mode user, an IAM user's secret access key and a connect token signed with
it, a Memcached SASL password, and bad input carrying secrets (a short token,
a password with a forbidden character, a malformed policy, wrong AUTHs). Each
is used once successfully and once wrongly, then nothing of any of them may
be found in clear: not in any API answer or error message, not in events, not
in the service's log, not in any file of the data directory (the database,
node configurations, engine logs, ACLs), except the Memcached node's
``sasldb2``, where Cyrus SASL PLAIN needs the password in clear. Key, credential
and configuration files must be mode 0600.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError
from group_helpers import (
    create_group,
    primary_address,
    read_endpoints,
    tls_redis,
    wait_group_available,
)
from sasl_clients import sasl_refusal
from service_helpers import REGION, Service, wait_for

from cacheyard.client.iam_token import AwsCredentials, generate_auth_token

pytestmark = pytest.mark.timeout(90)

TOKEN_GROUP = "sec-token-rg"
RBAC_GROUP = "sec-rbac-rg"
USER_GROUP = "sec-users"
MC_USER_GROUP = "sec-mc-users"
MC_CLUSTER = "sec-mc"
IAM_USER = "sec-iam"  # an IAM-mode user's name is its id
SASL_TAG = "cacheyard:sasl-user-group"
SASLDB = "sasldb2"


def made(prefix: str) -> str:
    """A recognisable random secret: 16-128 characters, none of space , " / @."""
    return f"{prefix}-{secrets.token_hex(16)}"


@dataclass
class Seen:
    """What the scenario made and what the service answered along the way."""

    secrets: dict[str, str] = field(default_factory=dict)  # what it is -> the clear value
    answers: list[str] = field(default_factory=list)  # str() of every API answer / error
    signatures: list[str] = field(default_factory=list)  # X-Amz-Signature of connect tokens
    iam_key_id: str = ""

    def secret(self, name: str, prefix: str) -> str:
        value = made(prefix)
        self.secrets[name] = value
        return value

    def answer(self, value: Any) -> Any:
        self.answers.append(str(value))
        return value

    def refused(self, call: Callable[[], Any], code: str, *carried: str) -> None:
        """``call`` fails with ``code``, and its error repeats none of ``carried``."""
        with pytest.raises(ClientError) as raised:
            call()
        response = raised.value.response
        assert response["Error"]["Code"] == code, response
        text = f"{raised.value} {response}"
        for value in carried:
            assert value not in text, f"error message repeats a secret: {text}"
        self.answers.append(text)


def iam_client(service: Service, key: str | None = None, secret: str | None = None) -> Any:
    admin_key, admin_secret = service.credentials()
    return boto3.client(
        "iam",
        endpoint_url=service.endpoint,
        region_name=REGION,
        aws_access_key_id=key or admin_key,
        aws_secret_access_key=secret or admin_secret,
        config=Config(retries={"max_attempts": 1}),
    )


def redis_auth(address: str, ca: str, user: str | None, password: str, seen: Seen) -> bool:
    """One AUTH on a TLS node: True if accepted; a refusal's text must not carry it."""
    client = tls_redis(address, ca, user, password)
    try:
        return bool(client.ping())
    except redis.AuthenticationError as exc:
        assert password not in str(exc)
        seen.answers.append(str(exc))
        return False
    finally:
        client.close()


def sasl_login(address: str, user: str, password: str, seen: Seen) -> bool:
    refusal = sasl_refusal(address, user, password)
    if refusal is None:
        return True
    assert password not in refusal
    seen.answers.append(refusal)
    return False


def user_group_active(ec: BaseClient, group_id: str) -> bool:
    found = ec.describe_user_groups(UserGroupId=group_id)["UserGroups"][0]
    return bool(found["Status"] == "active")


def users_active(ec: BaseClient, *user_ids: str) -> bool:
    return all(ec.describe_users(UserId=u)["Users"][0]["Status"] == "active" for u in user_ids)


def cluster(ec: BaseClient, cluster_id: str) -> dict[str, Any]:
    found = ec.describe_cache_clusters(CacheClusterId=cluster_id, ShowCacheNodeInfo=True)
    return dict(found["CacheClusters"][0])


def create_everything(ec: BaseClient, iam: Any, seen: Seen) -> None:
    """Every resource holding a secret, the slow ones first so they start together."""
    token = seen.secret("auth token", "sec-token-one")
    seen.answer(
        create_group(ec, TOKEN_GROUP, members=2, TransitEncryptionEnabled=True, AuthToken=token)
    )
    seen.answer(
        ec.create_user(
            UserId="sec-default",
            UserName="default",
            Engine="redis",
            AccessString="on ~* +@all",
            Passwords=[seen.secret("default password", "sec-default-pw")],
        )
    )
    seen.answer(
        ec.create_user(
            UserId="sec-app",
            UserName="app",
            Engine="redis",
            AccessString="on ~* +@all",
            Passwords=[
                seen.secret("app password", "sec-app-pw-one"),
                seen.secret("app second password", "sec-app-pw-two"),
            ],
        )
    )
    seen.answer(
        ec.create_user(
            UserId=IAM_USER,
            UserName=IAM_USER,
            Engine="redis",
            AccessString="on ~* +@all",
            AuthenticationMode={"Type": "iam"},
        )
    )
    seen.answer(
        ec.create_user_group(
            UserGroupId=USER_GROUP, Engine="redis", UserIds=["sec-default", "sec-app", IAM_USER]
        )
    )
    seen.answer(
        create_group(
            ec, RBAC_GROUP, members=2, TransitEncryptionEnabled=True, UserGroupIds=[USER_GROUP]
        )
    )
    seen.answer(
        ec.create_user(
            UserId="sec-mc",
            UserName="mcuser",
            Engine="redis",
            AccessString="on ~* +@all",
            Passwords=[seen.secret("sasl password", "sec-sasl-pw")],
        )
    )
    seen.answer(
        ec.create_user_group(
            UserGroupId=MC_USER_GROUP, Engine="redis", UserIds=["default", "sec-mc"]
        )
    )
    seen.answer(
        ec.create_cache_cluster(
            CacheClusterId=MC_CLUSTER,
            Engine="memcached",
            CacheNodeType="cache.t3.micro",
            NumCacheNodes=1,
            Tags=[{"Key": SASL_TAG, "Value": MC_USER_GROUP}],
        )
    )
    # An IAM principal allowed to connect, with its secret access key.
    seen.answer(iam.create_user(UserName="sec-principal"))
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "elasticache:Connect", "Resource": "*"}],
    }
    seen.answer(
        iam.put_user_policy(
            UserName="sec-principal", PolicyName="connect", PolicyDocument=json.dumps(policy)
        )
    )
    key = iam.create_access_key(UserName="sec-principal")["AccessKey"]
    seen.iam_key_id = key["AccessKeyId"]
    seen.secrets["iam secret access key"] = key["SecretAccessKey"]


def bad_input(ec: BaseClient, iam: Any, seen: Seen) -> None:
    """Refusals of values carrying secrets: none is repeated in the error."""
    short = seen.secrets["short token"] = "sec-" + secrets.token_hex(4)  # 12 characters
    seen.refused(
        lambda: create_group(
            ec,
            "sec-bad",
            members=1,
            automatic_failover=False,
            multi_az=False,
            TransitEncryptionEnabled=True,
            AuthToken=short,
        ),
        "InvalidParameterValue",
        short,
    )
    slashed = seen.secrets["token with a slash"] = made("sec-bad-token") + "/x"
    seen.refused(
        lambda: ec.modify_replication_group(
            ReplicationGroupId=TOKEN_GROUP,
            AuthToken=slashed,
            AuthTokenUpdateStrategy="ROTATE",
            ApplyImmediately=True,
        ),
        "InvalidParameterValue",
        slashed,
    )
    comma = seen.secrets["password with a comma"] = made("sec-bad-pw") + ",x"
    seen.refused(
        lambda: ec.create_user(
            UserId="sec-bad-user",
            UserName="bad",
            Engine="redis",
            AccessString="on ~* +@all",
            Passwords=[comma],
        ),
        "InvalidParameterValue",
        comma,
    )
    at = seen.secrets["password with an at sign"] = made("sec-bad-pw-at") + "@x"
    seen.refused(
        lambda: ec.modify_user(UserId="sec-app", Passwords=[at]), "InvalidParameterValue", at
    )
    hidden = seen.secrets["secret in a malformed policy"] = made("sec-policy-secret")
    malformed = (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
        f'"Action": "elasticache:Connect", "Resource": "*", "Sid": "{hidden}"'  # unclosed
    )
    seen.refused(
        lambda: iam.put_user_policy(
            UserName="sec-principal", PolicyName="bad", PolicyDocument=malformed
        ),
        "MalformedPolicyDocument",
        hidden,
    )
    conditioned = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "elasticache:Connect",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SecureTransport": hidden}},
                }
            ],
        }
    )
    seen.refused(
        lambda: iam.put_user_policy(
            UserName="sec-principal", PolicyName="bad", PolicyDocument=conditioned
        ),
        "MalformedPolicyDocument",
        hidden,
    )


def exercise(ec: BaseClient, iam: Any, ca: str, seen: Seen) -> None:
    """Each secret works once, and a wrong one is refused, on the real engines."""
    s = seen.secrets
    token_group = wait_group_available(ec, TOKEN_GROUP, timeout=60)
    rotated = seen.secret("rotated auth token", "sec-token-two")
    seen.answer(
        ec.modify_replication_group(
            ReplicationGroupId=TOKEN_GROUP,
            AuthToken=rotated,
            AuthTokenUpdateStrategy="ROTATE",
            ApplyImmediately=True,
        )
    )
    token_group = seen.answer(wait_group_available(ec, TOKEN_GROUP, timeout=30))
    wrong = seen.secret("wrong auth token", "sec-token-wrong")
    for address in [primary_address(token_group), *read_endpoints(token_group).values()]:
        wait_for(partial(redis_auth, address, ca, None, rotated, seen), timeout=15)
        assert redis_auth(address, ca, None, s["auth token"], seen)  # both, while rotating
        assert not redis_auth(address, ca, None, wrong, seen)

    rbac_group = wait_group_available(ec, RBAC_GROUP, timeout=60)
    wait_for(lambda: user_group_active(ec, USER_GROUP), timeout=30)
    changed = seen.secret("changed app password", "sec-app-pw-three")
    seen.answer(ec.modify_user(UserId="sec-app", Passwords=[changed]))
    wait_for(lambda: users_active(ec, "sec-app"), timeout=30)
    wrong_password = seen.secret("wrong password", "sec-app-pw-wrong")
    address = primary_address(rbac_group)
    wait_for(lambda: redis_auth(address, ca, "app", changed, seen), timeout=15)
    assert not redis_auth(address, ca, "app", s["app password"], seen)
    assert not redis_auth(address, ca, "app", wrong_password, seen)
    assert redis_auth(address, ca, "default", s["default password"], seen)

    credentials = AwsCredentials(seen.iam_key_id, s["iam secret access key"])
    connect_token = generate_auth_token(RBAC_GROUP, IAM_USER, REGION, credentials)
    forged = generate_auth_token(
        RBAC_GROUP,
        IAM_USER,
        REGION,
        AwsCredentials(seen.iam_key_id, seen.secret("forged key", "sec-forged-secret")),
    )
    for made_token in (connect_token, forged):
        seen.signatures.append(made_token.rsplit("X-Amz-Signature=", 1)[1])
    wait_for(lambda: redis_auth(address, ca, IAM_USER, connect_token, seen), timeout=20)
    assert not redis_auth(address, ca, IAM_USER, forged, seen)
    assert redis_auth(address, ca, IAM_USER, connect_token, seen)

    wait_for(lambda: cluster(ec, MC_CLUSTER)["CacheClusterStatus"] == "available", timeout=30)
    mc_address = cluster(ec, MC_CLUSTER)["CacheNodes"][0]["Endpoint"]["Address"]
    assert sasl_login(mc_address, "mcuser", s["sasl password"], seen)
    wrong_sasl = seen.secret("wrong sasl password", "sec-sasl-pw-wrong")
    assert not sasl_login(mc_address, "mcuser", wrong_sasl, seen)


def describe_everything(ec: BaseClient, iam: Any, service: Service, seen: Seen) -> list[str]:
    """str() of every Describe / List answer that could show a secret."""
    answers: list[str] = []

    def every_page(client: Any, operation: str, **params: Any) -> None:
        for page in client.get_paginator(operation).paginate(**params):
            answers.append(str(page))

    every_page(ec, "describe_cache_clusters", ShowCacheNodeInfo=True)
    every_page(ec, "describe_replication_groups")
    every_page(ec, "describe_users")
    every_page(ec, "describe_user_groups")
    every_page(ec, "describe_events", MaxRecords=100, Duration=20160)
    events = ec.describe_events(MaxRecords=100, Duration=20160)["Events"]
    assert {e["SourceIdentifier"] for e in events} >= {MC_CLUSTER, TOKEN_GROUP, RBAC_GROUP}
    every_page(ec, "describe_snapshots")
    every_page(ec, "describe_cache_parameter_groups")
    every_page(ec, "describe_cache_subnet_groups")
    for group in ec.describe_cache_parameter_groups()["CacheParameterGroups"]:
        every_page(
            ec,
            "describe_cache_parameters",
            CacheParameterGroupName=group["CacheParameterGroupName"],
        )
    answers.append(str(ec.list_tags_for_resource(ResourceName=cluster(ec, MC_CLUSTER)["ARN"])))
    every_page(iam, "list_users")
    for user in iam.list_users()["Users"]:
        name = user["UserName"]
        answers.append(str(iam.get_user(UserName=name)))
        every_page(iam, "list_access_keys", UserName=name)
        every_page(iam, "list_user_policies", UserName=name)
    answers.append(str(iam.get_user_policy(UserName="sec-principal", PolicyName="connect")))
    as_principal = boto3.client(
        "sts",
        endpoint_url=service.endpoint,
        region_name=REGION,
        aws_access_key_id=seen.iam_key_id,
        aws_secret_access_key=seen.secrets["iam secret access key"],
    )
    answers.append(str(as_principal.get_caller_identity()))
    return answers


@dataclass
class Scene:
    seen: Seen
    describes: list[str]
    memcached_dir: Path


@pytest.fixture(scope="module")
def scene(service: Service, ec: BaseClient, ca: str) -> Iterator[Scene]:
    iam = iam_client(service)
    seen = Seen()
    try:
        create_everything(ec, iam, seen)
        exercise(ec, iam, ca, seen)
        bad_input(ec, iam, seen)
        describes = describe_everything(ec, iam, service, seen)
        (memcached_dir,) = {p.parent for p in service.data_dir.rglob(SASLDB)}
        yield Scene(seen, describes, memcached_dir)
    finally:
        for group_id in (TOKEN_GROUP, RBAC_GROUP):
            with contextlib.suppress(ClientError):
                ec.delete_replication_group(ReplicationGroupId=group_id)
        with contextlib.suppress(ClientError):
            ec.delete_cache_cluster(CacheClusterId=MC_CLUSTER)


def files_under(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        try:
            if stat.S_ISREG(path.lstat().st_mode):
                yield path
        except FileNotFoundError:  # a temporary file renamed meanwhile
            continue


def read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def leaks(texts: dict[str, bytes], needles: dict[str, str]) -> list[str]:
    return [
        f"{what} in {where}"
        for where, text in texts.items()
        for what, needle in needles.items()
        if needle.encode() in text
    ]


def needles(seen: Seen) -> dict[str, str]:
    found = dict(seen.secrets)
    for n, signature in enumerate(seen.signatures):
        found[f"connect token {n} signature"] = f"X-Amz-Signature={signature}"
        found[f"connect token {n} signature value"] = signature
    return found


def test_no_secret_in_api_answers_events_or_errors(scene: Scene) -> None:
    texts = {f"answer {n}: {t[:80]}": t.encode() for n, t in enumerate(scene.seen.answers)}
    texts |= {f"describe {n}: {t[:80]}": t.encode() for n, t in enumerate(scene.describes)}
    assert leaks(texts, needles(scene.seen)) == []
    # The scan looks at real answers: the IAM key id is shown, its secret is not.
    assert any(scene.seen.iam_key_id in text for text in scene.describes)


def test_no_secret_in_the_log_or_any_file_but_sasldb(service: Service, scene: Scene) -> None:
    root = service.data_dir.parent  # the data directory and the service's log beside it
    files = list(files_under(root))
    assert service.log_path in files
    assert any(p.name == "state.db" for p in files)
    assert any(p.name == "redis.conf" for p in files)
    sasldb = scene.memcached_dir / SASLDB
    texts = {str(p.relative_to(root)): read(p) for p in files if p != sasldb}
    assert leaks(texts, needles(scene.seen)) == []
    # The scan can see a secret where one is kept in clear on purpose.
    assert scene.seen.secrets["sasl password"].encode() in read(sasldb)
    # What the nodes were started with is kept as Redis keeps it: a SHA-256 digest.
    configurations = b"".join(t for w, t in texts.items() if w.endswith("redis.conf"))
    for name in ("auth token", "default password", "app password", "app second password"):
        digest = hashlib.sha256(scene.seen.secrets[name].encode()).hexdigest()
        assert digest.encode() in configurations, name


def test_the_services_own_secrets_stay_in_their_files(service: Service, scene: Scene) -> None:
    """The control password and the admin's secret key: not in the log, answers or database."""
    own = {
        "control password": (service.data_dir / "control.key").read_text().strip(),
        "admin secret access key": service.credentials()[1],
    }
    texts = {"service log": read(service.log_path)}
    texts |= {p.name: read(p) for p in service.data_dir.glob("state.db*")}
    texts |= {f"answer {n}": t.encode() for n, t in enumerate(scene.seen.answers)}
    texts |= {f"describe {n}": t.encode() for n, t in enumerate(scene.describes)}
    assert leaks(texts, own) == []


def private_files(data_dir: Path, memcached_dir: Path) -> list[Path]:
    found = [
        data_dir / "secrets.key",
        data_dir / "control.key",
        data_dir / "credentials",
        memcached_dir / SASLDB,
        memcached_dir / "memcached.conf",
        *data_dir.glob("state.db*"),
        *data_dir.rglob("*.key"),
        *data_dir.rglob("redis.conf"),
    ]
    return sorted(set(found))


def modes(paths: list[Path]) -> dict[str, str]:
    return {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in paths}


def test_key_credential_and_configuration_files_are_0600(service: Service, scene: Scene) -> None:
    paths = private_files(service.data_dir, scene.memcached_dir)
    names = {p.name for p in paths}
    assert {"ca.key", "node.key", "redis.conf", "secrets.key", "control.key"} <= names
    assert len([p for p in paths if p.name == "node.key"]) == 4  # both TLS groups' members
    assert len(list(service.data_dir.rglob("*.crt"))) == 5  # theirs and the CA's
    wrong = {p: m for p, m in modes(paths).items() if m != oct(0o600)}
    assert wrong == {}
    assert stat.S_IMODE(service.data_dir.stat().st_mode) == 0o700


def test_certificate_files_are_0600(service: Service, scene: Scene) -> None:
    certificates = sorted(service.data_dir.rglob("*.crt"))
    assert {p: m for p, m in modes(certificates).items() if m != oct(0o600)} == {}
