"""`cacheyard iam create-user | list-users | delete-user` against a live service."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from service_helpers import REGION, Service

pytestmark = pytest.mark.timeout(60)


def cacheyard(service: Service, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(service.command("iam", *args), capture_output=True, text=True, timeout=30)


def exported_keys(done: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    assert done.returncode == 0, done.stderr
    exports = dict(line.removeprefix("export ").split("=", 1) for line in done.stdout.splitlines())
    return exports["AWS_ACCESS_KEY_ID"], exports["AWS_SECRET_ACCESS_KEY"]


def client(service: Service, name: str, key: str, secret: str) -> Any:
    return boto3.client(
        name,
        endpoint_url=service.endpoint,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


def error_code(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    code: str = caught.value.response["Error"]["Code"]
    return code


def test_create_user_with_the_readonly_policy(service: Service) -> None:
    done = cacheyard(service, "create-user", "reader", "--policy", "readonly")
    key, secret = exported_keys(done)
    assert "Created arn:aws:iam::000000000000:user/reader" in done.stderr
    ec = client(service, "elasticache", key, secret)
    ec.describe_cache_clusters()
    assert error_code(lambda: ec.delete_cache_cluster(CacheClusterId="x")) == "AccessDenied"
    client(service, "iam", key, secret).list_users()  # ReadOnlyAccess reads IAM too


def test_create_user_with_a_policy_file(service: Service, tmp_path: Path) -> None:
    policy = tmp_path / "events-only.json"
    policy.write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "elasticache:DescribeEvents", "Resource": "*"}
                ],
            }
        )
    )
    key, secret = exported_keys(
        cacheyard(service, "create-user", "events", "--policy", str(policy))
    )
    ec = client(service, "elasticache", key, secret)
    ec.describe_events()
    assert error_code(ec.describe_cache_clusters) == "AccessDenied"
    iam = client(service, "iam", *service.credentials())
    assert iam.list_user_policies(UserName="events")["PolicyNames"] == ["events-only"]


def test_a_bad_policy_file_creates_nothing(service: Service, tmp_path: Path) -> None:
    policy = tmp_path / "conditional.json"
    policy.write_text(
        '{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {}}}'
    )
    done = cacheyard(service, "create-user", "never", "--policy", str(policy))
    assert done.returncode != 0 and "Condition" in done.stderr, done.stderr
    done = cacheyard(service, "create-user", "never", "--policy", str(tmp_path / "missing.json"))
    assert done.returncode != 0 and "readonly, admin or a readable file" in done.stderr
    iam = client(service, "iam", *service.credentials())
    assert error_code(lambda: iam.get_user(UserName="never")) == "NoSuchEntity"


def test_list_and_delete_users(service: Service) -> None:
    key, secret = exported_keys(cacheyard(service, "create-user", "leaver", "--policy", "admin"))
    client(service, "iam", key, secret).list_users()
    listed = cacheyard(service, "list-users")
    assert listed.returncode == 0, listed.stderr
    header, *lines = listed.stdout.splitlines()
    assert header == "USER\tACCESS KEYS\tPOLICIES"
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in lines}
    assert rows["leaver"] == [f"{key}(Active)", "AdministratorAccess"]
    assert rows["admin"][1] == "AdministratorAccess"
    done = cacheyard(service, "delete-user", "leaver")
    assert done.returncode == 0 and "Deleted user leaver and its 1 access key(s)" in done.stderr
    assert error_code(client(service, "sts", key, secret).get_caller_identity) == (
        "InvalidClientTokenId"
    )
    assert "leaver" not in cacheyard(service, "list-users").stdout


def test_refusals(service: Service) -> None:
    done = cacheyard(service, "delete-user", "admin")
    assert done.returncode != 0 and "holds the key this command signs with" in done.stderr
    cacheyard(service, "create-user", "twice")
    done = cacheyard(service, "create-user", "twice")
    assert done.returncode != 0 and "EntityAlreadyExists" in done.stderr
    done = cacheyard(service, "delete-user", "nobody")
    assert done.returncode != 0 and "NoSuchEntity" in done.stderr


def test_without_a_running_service(tmp_path: Path) -> None:
    stopped = Service(tmp_path / "data")
    done = subprocess.run(
        stopped.command("iam", "list-users"), capture_output=True, text=True, timeout=30
    )
    assert done.returncode != 0 and "No running service found" in done.stderr
