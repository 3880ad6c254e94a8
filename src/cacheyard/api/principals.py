"""Who holds which access key and what they may do, kept in memory for the request path.

The directory is read from the store at start and again after every change made
through the IAM API, before that call answers: a new key works with the next
request, and a deleted or deactivated one is refused with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass

from cacheyard.domain import faults, iam, policies
from cacheyard.domain.iam import ACTIVE, AccessKey, User
from cacheyard.store import Store

log = logging.getLogger(__name__)

# What a user whose stored policy no longer parses gets: nothing (fail closed).
_DENY_ALL = policies.parse('{"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*"}}')


@dataclass(frozen=True)
class Principal:
    user: User
    arn: str
    policies: tuple[policies.Policy, ...]


class Directory:
    def __init__(self, store: Store, account: str) -> None:
        self._store = store
        self._account = account
        self._lock = asyncio.Lock()
        self._keys: dict[str, AccessKey] = {}
        self._principals: dict[str, Principal] = {}

    async def refresh(self) -> None:
        # One refresh at a time, so an older read can never replace a newer one.
        async with self._lock:
            async with self._store.transaction() as tx:
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
            self._principals = {
                user.name: Principal(
                    user, user.arn(self._account), _parsed(user.name, documents[user.name])
                )
                for user in users
            }
            self._keys = {key.access_key_id: key for key in keys if key.status == ACTIVE}

    def secret_for(self, access_key_id: str) -> str | None:
        """The secret of an active key; None for an unknown or inactive one."""
        key = self._keys.get(access_key_id)
        return None if key is None else key.secret

    def principal(self, access_key_id: str) -> Principal | None:
        key = self._keys.get(access_key_id)
        return None if key is None else self._principals.get(key.user_name)

    def user(self, name: str) -> User | None:
        principal = self._principals.get(name)
        return None if principal is None else principal.user


def _parsed(user_name: str, documents: list[str]) -> tuple[policies.Policy, ...]:
    try:
        return tuple(policies.parse(document) for document in documents)
    except faults.MalformedPolicyDocumentException as error:
        log.error(
            "a policy of user %s does not parse (%s): denying it everything", user_name, error
        )
        return (_DENY_ALL,)
