"""The users a SASL Memcached cluster accepts: its user group's password users.

Memcached's SASL (PLAIN, against a Cyrus sasldb) needs each password in clear,
so they come from the store's sealed copies (ADR 15). A user's first password
is the one Memcached takes (sasldb holds one per user); users without a
password, IAM users and users made before passwords were sealed are left out.
Cacheyard's own control user is always there, so a cluster whose group has no
usable user still requires SASL rather than falling open.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence

from cacheyard.domain import users
from cacheyard.domain.codec import load
from cacheyard.domain.users import UserGroupSpec, UserSpec
from cacheyard.engines import control
from cacheyard.engines.control import CONTROL_USER
from cacheyard.store import Transaction

log = logging.getLogger(__name__)

# Characters SASL reads as a realm or a separator: such names cannot log in.
_UNUSABLE_IN_NAMES = frozenset("@:")


async def sasl_users(tx: Transaction, user_group_id: str) -> tuple[tuple[str, str], ...]:
    record = await tx.get(users.USER_GROUP, user_group_id)
    if record is None:
        return ()
    found = []
    for user_id in load(UserGroupSpec, record.spec).user_ids:
        user = await tx.get(users.USER, user_id)
        if user is None:
            continue
        spec = load(UserSpec, user.spec)
        passwords = await tx.user_passwords(user_id)
        if spec.authentication.type != users.PASSWORD or not passwords:
            continue
        if _UNUSABLE_IN_NAMES & set(spec.user_name):
            log.warning("user %s: its name cannot log in over SASL; left out", user_id)
            continue
        found.append((spec.user_name, passwords[0]))
    return tuple(sorted(found))


def with_control_user(users_: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    password = control.password() or secrets.token_urlsafe(32)
    return ((CONTROL_USER, password), *users_)


def users_fingerprint(users_: Sequence[tuple[str, str]]) -> str:
    """Tells whether a node's files hold these users, without keeping any password."""
    text = "\n".join(f"{name}\0{password}" for name, password in users_)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
