"""IAM users, access keys and policies: the principals of the API.

Names, ids, ARNs and quotas follow AWS IAM. The AWS managed policies that
Cacheyard knows are built in (they are not stored): their documents are the
subset of AWS's that concerns the services Cacheyard serves.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import string
from base64 import b32encode
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cacheyard.domain.faults import ValidationError

ACTIVE = "Active"
INACTIVE = "Inactive"
ADMIN_USER = "admin"

# AWS's default quotas.
ACCESS_KEYS_PER_USER = 2
POLICIES_PER_USER = 10
USERS_PER_ACCOUNT = 5000
POLICIES_PER_ACCOUNT = 1500
INLINE_POLICY_SIZE = 2048  # all of a user's inline policies, whitespace not counted
MANAGED_POLICY_SIZE = 6144

_ID_ALPHABET = string.ascii_uppercase + "234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
_NAME = re.compile(r"[\w+=,.@-]+", re.ASCII)
_USER_PATH = re.compile(r"/|/[\x21-\x7e]+/")
_POLICY_PATH = re.compile(r"(/[A-Za-z0-9.,+@=_-]+)*/")


@dataclass(frozen=True)
class User:
    name: str
    user_id: str
    path: str
    created_at: datetime

    def arn(self, account: str) -> str:
        return user_arn(account, self.path, self.name)


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    user_name: str
    secret: str = field(repr=False)
    status: str
    created_at: datetime


@dataclass(frozen=True)
class InlinePolicy:
    user_name: str
    name: str
    document: str


@dataclass(frozen=True)
class ManagedPolicy:
    arn: str
    name: str
    policy_id: str
    path: str
    description: str
    document: str
    created_at: datetime

    @property
    def aws_managed(self) -> bool:
        return self.arn.startswith("arn:aws:iam::aws:")


def user_arn(account: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account}:user{path}{name}"


def policy_arn(account: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account}:policy{path}{name}"


def new_id(prefix: str) -> str:
    """An IAM unique id such as ``AIDA...`` (users) or ``ANPA...`` (policies)."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


def new_access_key_id() -> str:
    return "AKIA" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


def new_secret() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def check_name(value: str, member: str) -> str:
    """A user or policy name as IAM's validation wants it: the whole value, not a part."""
    return _check(_NAME, value, member)


def check_user_path(value: str) -> str:
    return _check(_USER_PATH, value, "path")


def check_policy_path(value: str) -> str:
    return _check(_POLICY_PATH, value, "path")


def _check(pattern: re.Pattern[str], value: str, member: str) -> str:
    if not pattern.fullmatch(value):
        raise ValidationError(
            f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
            f"constraint: Member must satisfy regular expression pattern: {pattern.pattern}"
        )
    return value


def policy_size(document: str) -> int:
    """The size IAM's quotas count: the document without whitespace."""
    return sum(1 for c in document if not c.isspace())


def _aws_managed(name: str, description: str, *statements: dict[str, object]) -> ManagedPolicy:
    digest = hashlib.sha256(name.encode()).digest()
    return ManagedPolicy(
        arn=policy_arn("aws", "/", name),
        name=name,
        policy_id="ANPA" + b32encode(digest).decode()[:17],
        path="/",
        description=description,
        document=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=4),
        created_at=datetime(2015, 2, 6, 18, 39, 46, tzinfo=UTC),
    )


def _allow(*actions: str) -> dict[str, object]:
    return {"Effect": "Allow", "Action": list(actions), "Resource": "*"}


AWS_MANAGED_POLICIES = {
    policy.arn: policy
    for policy in (
        _aws_managed(
            "AdministratorAccess",
            "Provides full access to AWS services and resources.",
            _allow("*"),
        ),
        _aws_managed(
            "ReadOnlyAccess",
            "Provides read-only access to AWS services and resources.",
            _allow("elasticache:Describe*", "elasticache:List*", "iam:Get*", "iam:List*"),
        ),
        _aws_managed(
            "AmazonElastiCacheFullAccess",
            "Provides full access to Amazon ElastiCache.",
            _allow("elasticache:*"),
        ),
        _aws_managed(
            "AmazonElastiCacheReadOnlyAccess",
            "Provides read only access to Amazon ElastiCache.",
            _allow("elasticache:Describe*", "elasticache:List*"),
        ),
        _aws_managed(
            "IAMFullAccess",
            "Provides full access to IAM via the AWS Management Console.",
            _allow("iam:*"),
        ),
        _aws_managed(
            "IAMReadOnlyAccess",
            "Provides read only access to IAM via the AWS Management Console.",
            _allow("iam:Get*", "iam:List*"),
        ),
    )
}
ADMINISTRATOR_ACCESS = policy_arn("aws", "/", "AdministratorAccess")
READ_ONLY_ACCESS = policy_arn("aws", "/", "ReadOnlyAccess")
