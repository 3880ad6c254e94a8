"""Who holds which active access key and which policies apply to them, read from the store.

Both the API (every request is authorized) and the controller (which keys may
sign IAM connect tokens) need the same answer.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

from cacheyard.domain import faults, iam, policies
from cacheyard.domain.iam import ACTIVE, AccessKey, User
from cacheyard.store.interface import Transaction

log = logging.getLogger(__name__)

# What a user whose stored policy no longer parses gets: nothing (fail closed).
_DENY_ALL = policies.parse('{"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*"}}')


@dataclass(frozen=True)
class Principal:
    user: User
    arn: str
    policies: tuple[policies.Policy, ...]


@dataclass(frozen=True)
class Principals:
    by_name: dict[str, Principal]
    active_keys: dict[str, AccessKey]

    def of_key(self, access_key_id: str) -> Principal | None:
        key = self.active_keys.get(access_key_id)
        return None if key is None else self.by_name.get(key.user_name)


async def load_principals(tx: Transaction, account: str) -> Principals:
    users = await tx.iam_users()
    keys = await tx.access_keys()
    inline = await tx.inline_policies()
    attached = await tx.attachments()
    managed = {p.arn: p for p in await tx.managed_policies()}
    documents: dict[str, list[str]] = defaultdict(list)
    for policy in inline:
        documents[policy.user_name].append(policy.document)
    for user_name, arn in attached:
        found = iam.AWS_MANAGED_POLICIES.get(arn) or managed.get(arn)
        if found is not None:
            documents[user_name].append(found.document)
    return Principals(
        {
            user.name: Principal(user, user.arn(account), _parsed(user.name, documents[user.name]))
            for user in users
        },
        {key.access_key_id: key for key in keys if key.status == ACTIVE},
    )


def _parsed(user_name: str, documents: list[str]) -> tuple[policies.Policy, ...]:
    try:
        return tuple(policies.parse(document) for document in documents)
    except faults.MalformedPolicyDocumentException as error:
        log.error(
            "a policy of user %s does not parse (%s): denying it everything", user_name, error
        )
        return (_DENY_ALL,)
