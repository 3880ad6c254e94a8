"""AUTH tokens with ElastiCache's rules, kept only as the SHA-256 Redis keeps.

A token is 16 to 128 printable ASCII characters; of the special characters
only ``! & # $ ^ < > -`` are allowed. ModifyReplicationGroup's
AuthTokenUpdateStrategy ROTATE adds a token next to the current one (both
work until the next change), SET replaces every token, DELETE removes them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from cacheyard.domain import faults

MIN_LENGTH = 16
MAX_LENGTH = 128
_SPECIALS = set("!&#$^<>-")
ROTATE = "ROTATE"
SET = "SET"
DELETE = "DELETE"


def token_hash(token: str) -> str:
    """What is stored and given to Redis (``ACL SETUSER default #<hash>``)."""
    if not MIN_LENGTH <= len(token) <= MAX_LENGTH or not all(
        (char.isalnum() and char.isascii()) or char in _SPECIALS for char in token
    ):
        # The message never repeats the token.
        raise faults.InvalidParameterValueException(
            f"Invalid AuthToken: it must be {MIN_LENGTH} to {MAX_LENGTH} printable ASCII "
            "characters, and the only special characters allowed are ! & # $ ^ < > -."
        )
    return hashlib.sha256(token.encode()).hexdigest()


def for_new_cache(token: str | None, transit_encryption: bool) -> tuple[str, ...]:
    if token is None:
        return ()
    if not transit_encryption:
        raise faults.InvalidParameterCombinationException(
            "AuthToken can only be used with TransitEncryptionEnabled."
        )
    return (token_hash(token),)


def check_delete(strategy: str | None, params: Mapping[str, Any]) -> None:
    """AWS allows DELETE only when moving to RBAC: with UserGroupIdsToAdd in the same call."""
    if strategy == DELETE and not params.get("UserGroupIdsToAdd"):
        raise faults.InvalidParameterCombinationException(
            "AuthTokenUpdateStrategy DELETE is allowed only when transitioning to RBAC "
            "(with UserGroupIdsToAdd)."
        )


def updated(current: tuple[str, ...], token: str | None, strategy: str | None) -> tuple[str, ...]:
    """The tokens after a modify call (``strategy`` defaults to ROTATE, as on AWS)."""
    strategy = strategy or ROTATE
    if strategy == DELETE:
        if token is not None:
            raise faults.InvalidParameterCombinationException(
                "AuthToken cannot be given with AuthTokenUpdateStrategy DELETE."
            )
        return ()
    if token is None:
        raise faults.InvalidParameterValueException(
            f"AuthTokenUpdateStrategy {strategy} needs an AuthToken."
        )
    new = token_hash(token)
    if strategy == SET:
        return (new,)
    if not current:
        raise faults.InvalidParameterCombinationException(
            "ROTATE needs an AUTH token already in place; use SET for the first one."
        )
    return (current[-1], new) if current[-1] != new else (new,)
