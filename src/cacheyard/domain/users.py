"""RBAC users and user groups, with ElastiCache's rules.

A password is kept only as the SHA-256 hex digest that Redis itself keeps and
takes back with ``ACL SETUSER <name> #<digest>``: that is all the engines will
need, and it never leaves the store (ADR 11). Which groups a user belongs to is
not kept with the user but read from the groups, so the two cannot disagree.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cacheyard.domain import faults

USER = "user"  # store kinds
USER_GROUP = "user-group"

ENGINE = "redis"
MINIMUM_ENGINE_VERSION = "6.0"

ACTIVE = "active"

# Authentication types as DescribeUsers shows them; the input says no-password-required.
PASSWORD = "password"
NO_PASSWORD = "no-password"
IAM = "iam"
_INPUT_TYPES = {"password": PASSWORD, "no-password-required": NO_PASSWORD, "iam": IAM}

DEFAULT = "default"  # the built-in user's id, and the user name every group needs
# The ACL user Cacheyard's control plane connects as (engines/control.py); no RBAC user may take it.
RESERVED_USER_NAMES = frozenset({"cacheyard"})

MAX_USERS = 1000
MAX_USER_GROUPS = 100
MAX_USERS_PER_GROUP = 100
MAX_PASSWORDS = 2
MIN_PASSWORD_LENGTH, MAX_PASSWORD_LENGTH = 16, 128
_MAX_ID_LENGTH = 40

_ID = re.compile(r"[a-zA-Z](?:[a-zA-Z0-9]|-(?!-))*")
_NOT_IN_PASSWORDS = frozenset(',"/@')
# Rules that set or clear passwords (ElastiCache manages those), and reset, which would too.
_PASSWORD_RULE_PREFIXES = (">", "<", "#", "!")
_PASSWORD_RULES = frozenset({"nopass", "resetpass", "reset"})

NO_PASSWORD_GIVEN = (
    "No password was provided. If you want to create/update the user without password, "
    "please use the NoPasswordRequired flag."
)


@dataclass(frozen=True)
class Authentication:
    type: str
    password_hashes: tuple[str, ...] = ()  # SHA-256 hex, as `ACL SETUSER name #<hash>` takes


@dataclass(frozen=True)
class UserSpec:
    user_id: str
    user_name: str
    engine: str
    access_string: str
    authentication: Authentication


@dataclass(frozen=True)
class UserGroupSpec:
    user_group_id: str
    engine: str
    user_ids: tuple[str, ...]


# Every account has it; it can be neither modified nor deleted.
DEFAULT_USER = UserSpec(DEFAULT, DEFAULT, ENGINE, "on ~* +@all", Authentication(NO_PASSWORD))


def identifier(value: str, parameter: str) -> str:
    """A user or user group id: letters, digits and single hyphens, from a letter; lower case."""
    if not 1 <= len(value) <= _MAX_ID_LENGTH or not _ID.fullmatch(value) or value.endswith("-"):
        raise faults.InvalidParameterValueException(
            f"The parameter {parameter} must be 1 to {_MAX_ID_LENGTH} letters, digits or "
            "hyphens, begin with a letter, and neither end with a hyphen nor contain two "
            "consecutive hyphens."
        )
    return value.lower()


def user_name(value: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise faults.InvalidParameterValueException(
            "The parameter UserName must not be empty or contain spaces."
        )
    if value in RESERVED_USER_NAMES:
        raise faults.InvalidParameterValueException(
            f"The user name {value} is reserved for Cacheyard's control plane."
        )
    return value


def engine(value: str) -> str:
    if value.lower() != ENGINE:
        raise faults.InvalidParameterValueException(
            f"Invalid value for Engine: {value}. Valid values are: {ENGINE}."
        )
    return ENGINE


def access_rules(access_string: str) -> list[str]:
    """The ACL rules of an access string, for the engine to judge; password rules refused."""
    rules = access_string.split()
    for rule in rules:
        word = rule.strip("()").lower()
        if word.startswith(_PASSWORD_RULE_PREFIXES) or word in _PASSWORD_RULES:
            raise faults.InvalidParameterValueException(
                "Passwords can't be set in an access string (nor cleared with nopass, "
                "resetpass or reset): use Passwords, NoPasswordRequired or AuthenticationMode."
            )
    return rules


def password_hash(password: str) -> str:
    """What Redis keeps of a password. The message never repeats the password."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise faults.InvalidParameterValueException(
            f"Passwords length must be between {MIN_PASSWORD_LENGTH}-{MAX_PASSWORD_LENGTH} "
            "characters."
        )
    if not all("!" <= c <= "~" and c not in _NOT_IN_PASSWORDS for c in password):
        raise faults.InvalidParameterValueException(
            "Passwords must be printable ASCII characters other than spaces and "
            'the characters , " / @.'
        )
    return hashlib.sha256(password.encode()).hexdigest()


def new_authentication(
    passwords: Sequence[str] | None,
    no_password_required: bool | None,
    mode: Mapping[str, Any] | None,
) -> Authentication:
    """CreateUser's: passwords (as ``Passwords`` or in ``AuthenticationMode``), or none asked."""
    requested = _requested(passwords, no_password_required, mode)
    if requested is None:
        raise faults.InvalidParameterValueException(NO_PASSWORD_GIVEN)
    return requested


def changed_authentication(
    passwords: Sequence[str] | None,
    no_password_required: bool | None,
    mode: Mapping[str, Any] | None,
    current: Authentication,
) -> Authentication | None:
    """ModifyUser's, or None when it leaves the authentication as it is."""
    requested = _requested(passwords, no_password_required, mode)
    if requested is None and no_password_required is False and current.type != PASSWORD:
        raise faults.InvalidParameterValueException(NO_PASSWORD_GIVEN)
    return requested


def clear_passwords(passwords: Sequence[str] | None, mode: Mapping[str, Any] | None) -> list[str]:
    """The passwords a request gave (already judged by :func:`_requested`), for the
    store to seal: Memcached SASL needs them in clear at the engine."""
    return list(passwords or (mode or {}).get("Passwords") or [])


def _requested(
    passwords: Sequence[str] | None,
    no_password_required: bool | None,
    mode: Mapping[str, Any] | None,
) -> Authentication | None:
    mode_passwords = None if mode is None else mode.get("Passwords")
    if passwords and mode_passwords:
        raise faults.InvalidParameterCombinationException(
            "Passwords provided via multiple arguments. Use only one argument"
        )
    given = list(passwords or mode_passwords or [])
    if mode is not None:
        kind = _mode_type(mode, given, no_password_required)
    elif given:
        if no_password_required:
            raise faults.InvalidParameterCombinationException(
                "Passwords can't be given together with NoPasswordRequired."
            )
        kind = PASSWORD
    elif no_password_required:
        kind = NO_PASSWORD
    else:
        return None
    if len(given) > MAX_PASSWORDS:
        raise faults.InvalidParameterValueException(
            f"A user can have at most {MAX_PASSWORDS} passwords."
        )
    return Authentication(kind, tuple(password_hash(p) for p in given))


def _mode_type(mode: Mapping[str, Any], given: list[str], no_password_required: bool | None) -> str:
    requested = mode.get("Type")
    if requested is None:
        raise faults.InvalidParameterValueException(
            "Input Authentication type: null is not in the allowed list: "
            f"[{','.join(_INPUT_TYPES)}]"
        )
    kind = _INPUT_TYPES[requested]
    if kind == PASSWORD and not given:
        raise faults.InvalidParameterValueException(NO_PASSWORD_GIVEN)
    if kind != PASSWORD and given:
        raise faults.InvalidParameterCombinationException(
            f"Password field is not allowed with authentication type: {requested}"
        )
    if no_password_required is not None and no_password_required != (kind == NO_PASSWORD):
        raise faults.InvalidParameterCombinationException(
            f"NoPasswordRequired contradicts the authentication type {requested}."
        )
    return kind


def check_iam_name(spec: UserSpec) -> None:
    """IAM authentication names the user by its id, so the two must be one."""
    if spec.authentication.type == IAM and spec.user_name != spec.user_id:
        raise faults.InvalidParameterCombinationException(
            "User Id and User name must be same for authentication type: iam"
        )


def check_changeable(user_id: str, action: str) -> None:
    if user_id == DEFAULT:
        raise faults.InvalidParameterValueException(f"The default user cannot be {action}.")


def modified(
    spec: UserSpec,
    access_string: str | None,
    append: str | None,
    new_authentication: Authentication | None,
) -> UserSpec:
    """The user as ModifyUser leaves it: a new or longer access string, new authentication."""
    if access_string is not None and append is not None:
        raise faults.InvalidParameterCombinationException(
            "AccessString and AppendAccessString can't be given together."
        )
    if access_string is not None:
        spec = replace(spec, access_string=access_string)
    if append is not None:
        spec = replace(spec, access_string=f"{spec.access_string} {append}")
    if new_authentication is not None:
        spec = replace(spec, authentication=new_authentication)
    check_iam_name(spec)
    return spec


def require_active(status: str, what: str, fault: type[faults.Fault]) -> None:
    """A user or group still being changed (its groups being applied) takes no new change."""
    if status != ACTIVE:
        raise fault(f"{what} is not in active state.")


def ids(values: Iterable[str], parameter: str) -> list[str]:
    """User ids of a request, lower-cased as stored, each once, in the order given."""
    return list(dict.fromkeys(identifier(v, parameter) for v in values))


def check_members(
    group_id: str,
    user_ids: Sequence[str],
    users: Mapping[str, UserSpec],
    too_many: type[faults.Fault],
) -> None:
    """A group's members exist, are few enough, have distinct names, one of them default."""
    for user_id in user_ids:
        if user_id not in users:
            raise faults.UserNotFoundFault(f"User {user_id} not found.")
    if len(user_ids) > MAX_USERS_PER_GROUP:
        raise too_many(f"A user group can have at most {MAX_USERS_PER_GROUP} users.")
    names: dict[str, str] = {}
    for user_id in user_ids:
        name = users[user_id].user_name
        if name in names:
            raise faults.DuplicateUserNameFault(
                f"Users {names[name]} and {user_id} of user group {group_id} have the same "
                f"user name {name}."
            )
        names[name] = user_id
    if DEFAULT not in names:
        raise faults.DefaultUserRequired(
            f"User group {group_id} must contain a user with the user name {DEFAULT}."
        )


# Filter name (any case, hyphens ignored): the field, and whether values are kept lower case.
_FILTERS: dict[str, tuple[Callable[[UserSpec], str], bool]] = {
    "userid": (lambda u: u.user_id, True),
    "username": (lambda u: u.user_name, False),
    "engine": (lambda u: u.engine, True),
}


def user_filter(
    engine_name: str | None, filters: Sequence[Mapping[str, Any]]
) -> Callable[[UserSpec], bool]:
    """DescribeUsers' Engine and Filters (names UserId, UserName, Engine, or user-id, ...)."""
    wanted = [{"Name": "engine", "Values": [engine_name]}] if engine_name is not None else []
    tests: list[tuple[Callable[[UserSpec], str], set[str]]] = []
    for item in [*wanted, *filters]:
        found = _FILTERS.get(item["Name"].replace("-", "").lower())
        if found is None:
            raise faults.InvalidParameterValueException(
                f"Invalid filter name {item['Name']}. Valid names are: UserId, UserName, Engine."
            )
        field, lower = found
        tests.append((field, {v.lower() if lower else v for v in item["Values"]}))
    return lambda user: all(field(user) in values for field, values in tests)


def members_after(
    spec: UserGroupSpec, to_add: Sequence[str], to_remove: Sequence[str]
) -> tuple[str, ...]:
    """A group's user ids after ModifyUserGroup adds and removes some."""
    both = set(to_add) & set(to_remove)
    if both:
        raise faults.InvalidParameterCombinationException(
            f"User {sorted(both)[0]} can't be both added to and removed from a user group."
        )
    for user_id in to_add:
        if user_id in spec.user_ids:
            raise faults.InvalidParameterValueException(
                f"User {user_id} is already in user group {spec.user_group_id}."
            )
    for user_id in to_remove:
        if user_id not in spec.user_ids:
            raise faults.InvalidParameterValueException(
                f"User {user_id} is not in user group {spec.user_group_id}."
            )
    return tuple(u for u in spec.user_ids if u not in to_remove) + tuple(to_add)
