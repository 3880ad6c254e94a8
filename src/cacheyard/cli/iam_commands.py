"""``cacheyard iam ...``: shortcuts over the service's IAM API, called with the
administrator's credentials through botocore's own IAM client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import botocore.session
import click
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from cacheyard.cli.credentials import configured_region, read_files
from cacheyard.cli.options import data_dir_option
from cacheyard.cli.settings import Settings
from cacheyard.domain import faults, policies
from cacheyard.domain.iam import ADMINISTRATOR_ACCESS, READ_ONLY_ACCESS

console = Console(stderr=True)

NAMED_POLICIES = {"admin": ADMINISTRATOR_ACCESS, "readonly": READ_ONLY_ACCESS}


@click.group()
def iam() -> None:
    """Users, access keys and policies of the service's API (its IAM API, as admin)."""


@iam.command("create-user")
@click.argument("name")
@click.option(
    "--policy",
    metavar="readonly|admin|FILE",
    help="Attach ReadOnlyAccess or AdministratorAccess, or put the policy document in FILE "
    "as an inline policy named after the file. Without it the user may do nothing.",
)
@data_dir_option
def create_user(name: str, policy: str | None, data_dir: Path) -> None:
    """Create a user with an access key; prints the key pair as shell exports."""
    document = _document(policy) if policy is not None and policy not in NAMED_POLICIES else None
    with _iam_client(data_dir) as client:
        arn = client.create_user(UserName=name)["User"]["Arn"]
        if policy in NAMED_POLICIES:
            client.attach_user_policy(UserName=name, PolicyArn=NAMED_POLICIES[policy])
        elif policy is not None and document is not None:
            name_of_file = Path(policy).stem
            client.put_user_policy(UserName=name, PolicyName=name_of_file, PolicyDocument=document)
        key = client.create_access_key(UserName=name)["AccessKey"]
    console.print(f"Created {arn}" + (f" with policy {policy}" if policy else " (no policy)"))
    click.echo(f"export AWS_ACCESS_KEY_ID={key['AccessKeyId']}")
    click.echo(f"export AWS_SECRET_ACCESS_KEY={key['SecretAccessKey']}")


@iam.command("list-users")
@data_dir_option
def list_users(data_dir: Path) -> None:
    """Every user with its access keys and policies, one tab-separated line each."""
    lines = ["USER\tACCESS KEYS\tPOLICIES"]
    with _iam_client(data_dir) as client:
        for user in _all(client, "list_users", "Users"):
            name = user["UserName"]
            keys = _all(client, "list_access_keys", "AccessKeyMetadata", UserName=name)
            attached = _all(
                client, "list_attached_user_policies", "AttachedPolicies", UserName=name
            )
            inline = _all(client, "list_user_policies", "PolicyNames", UserName=name)
            key_list = ",".join(f"{k['AccessKeyId']}({k['Status']})" for k in keys)
            policy_list = ",".join(
                [p["PolicyName"] for p in attached] + [f"{n}(inline)" for n in inline]
            )
            lines.append(f"{name}\t{key_list}\t{policy_list}")
    click.echo("\n".join(lines))


@iam.command("delete-user")
@click.argument("name")
@data_dir_option
def delete_user(name: str, data_dir: Path) -> None:
    """Delete a user with its access keys and policies."""
    with _iam_client(data_dir) as client:
        if client.get_user()["User"]["UserName"] == name:  # without a name: the caller
            raise click.ClickException(
                f"{name} holds the key this command signs with; delete it through the IAM API."
            )
        keys = _all(client, "list_access_keys", "AccessKeyMetadata", UserName=name)
        for key in keys:
            client.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        for policy_name in _all(client, "list_user_policies", "PolicyNames", UserName=name):
            client.delete_user_policy(UserName=name, PolicyName=policy_name)
        for attached in _all(
            client, "list_attached_user_policies", "AttachedPolicies", UserName=name
        ):
            client.detach_user_policy(UserName=name, PolicyArn=attached["PolicyArn"])
        client.delete_user(UserName=name)
    console.print(f"Deleted user {name} and its {len(keys)} access key(s).")


def _document(path: str) -> str:
    """The policy document in ``path``, checked before anything is created."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise click.BadParameter(
            f"not readonly, admin or a readable file: {error}", param_hint="--policy"
        ) from None
    try:
        policies.parse(text)
    except faults.MalformedPolicyDocumentException as error:
        raise click.BadParameter(f"{path}: {error.message}", param_hint="--policy") from None
    return text


def _all(client: Any, operation: str, key: str, **params: str) -> list[Any]:
    found: list[Any] = []
    for page in client.get_paginator(operation).paginate(**params):
        found += page[key]
    return found


@contextmanager
def _iam_client(data_dir: Path) -> Iterator[Any]:
    """botocore's IAM client for the running service, signing as the administrator; API
    errors become the command's error message."""
    settings = Settings(data_dir=data_dir.resolve())
    pair = read_files(settings)
    if pair is None or not settings.endpoint_file.exists():
        raise click.ClickException(f"No running service found for {settings.data_dir}.")
    client = botocore.session.get_session().create_client(
        "iam",
        endpoint_url=settings.endpoint_file.read_text().strip(),
        region_name=configured_region(settings),
        aws_access_key_id=pair.access_key_id,
        aws_secret_access_key=pair.secret_access_key,
        config=Config(retries={"max_attempts": 1}),
    )
    try:
        yield client
    except ClientError as error:
        detail = error.response.get("Error", {})
        raise click.ClickException(f"{detail.get('Code')}: {detail.get('Message')}") from None
    except BotoCoreError as error:
        raise click.ClickException(str(error)) from None
