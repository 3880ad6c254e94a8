"""The ACL users every Redis node of a cache holds, derived from its spec.

ACL users do not replicate, so the controller gives each node the whole list
(and the same list is written into the configuration a node starts with).
Without a user group the only user is ``default``: open, or requiring one of
the AUTH tokens. With a user group its users replace the built-in ones, each
with its access string and password hashes (ADR 11, ADR 14).

An IAM user's passwords are the hashes of its currently valid connect tokens,
which change every second; they are not part of these rules but added right
after them by the controller's token window
(:mod:`cacheyard.domain.connect_tokens`): until then the user cannot log in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from cacheyard.domain.users import DEFAULT, IAM, NO_PASSWORD, UserSpec, access_rules

ALL_ACCESS = ("~*", "&*", "+@all")
# ElastiCache's restricted commands: whoever authenticates may not reconfigure the
# node, its replication or its users (only Cacheyard's control user may). They come
# last, so no access string can grant them back.
RESTRICTED = (
    "-acl|setuser",
    "-acl|deluser",
    "-acl|load",
    "-acl|save",
    "-config",
    "-debug",
    "-module",
    "-shutdown",
    "-replicaof",
    "-slaveof",
    "-sync",
    "-psync",
    "-failover",
    "-migrate",
    "-save",
    "-bgsave",
    "-bgrewriteaof",
    "-cluster",
)


@dataclass(frozen=True)
class AclUser:
    name: str
    rules: tuple[str, ...]
    iam: bool = False


def default_user(token_hashes: Sequence[str]) -> AclUser:
    """The built-in `default`: anyone (Redis' own user, as a cache with no
    authentication has it), or only clients giving one of the AUTH tokens (two
    while one is rotated), without the restricted commands."""
    if not token_hashes:
        return AclUser(DEFAULT, ("reset", "nopass", "on", *ALL_ACCESS))
    passwords = tuple(f"#{h}" for h in token_hashes)
    return AclUser(DEFAULT, ("reset", *passwords, "on", *ALL_ACCESS, *RESTRICTED))


def rbac_user(user: UserSpec) -> AclUser:
    """An RBAC user as an ACL user named by its user name: every rule from scratch."""
    access = (*access_rules(user.access_string), *RESTRICTED)
    kind = user.authentication.type
    if kind == IAM:
        # No password until the token window adds the hashes: closed, not open.
        return AclUser(user.user_name, ("reset", *access), iam=True)
    passwords = (
        ("nopass",)
        if kind == NO_PASSWORD
        else tuple(f"#{h}" for h in user.authentication.password_hashes)
    )
    return AclUser(user.user_name, ("reset", *passwords, *access))


def node_users(
    token_hashes: Sequence[str], members: Sequence[UserSpec] | None
) -> tuple[AclUser, ...]:
    """Every ACL user a node must hold: a user group's members, else `default` alone."""
    if members is None:
        return (default_user(token_hashes),)
    return tuple(rbac_user(u) for u in sorted(members, key=lambda u: u.user_name))


def fingerprint(users: Sequence[AclUser]) -> str:
    """Identifies a list of users, to tell whether a node holds the current one."""
    text = json.dumps([[u.name, list(u.rules), u.iam] for u in users])
    return hashlib.sha256(text.encode()).hexdigest()[:16]
