"""RBAC users and user groups: ids, passwords, authentication, access strings, membership."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from cacheyard.domain import faults, users
from cacheyard.domain.users import (
    DEFAULT_USER,
    IAM,
    NO_PASSWORD,
    PASSWORD,
    Authentication,
    UserGroupSpec,
    UserSpec,
)

pytestmark = pytest.mark.timeout(10)

PW = "a-long-enough-pw-1"
PW2 = "a-long-enough-pw-2"


def sha(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def user(user_id: str, name: str | None = None, kind: str = PASSWORD) -> UserSpec:
    return UserSpec(user_id, name or user_id, "redis", "on", Authentication(kind, (sha(PW),)))


@pytest.mark.parametrize("value", ["a", "App-1", "x" * 40, "a1-b2"])
def test_identifiers_are_kept_in_lower_case(value: str) -> None:
    assert users.identifier(value, "UserId") == value.lower()


@pytest.mark.parametrize("value", ["", "1a", "a--b", "a-", "a_b", "a b", "x" * 41])
def test_identifiers_are_refused(value: str) -> None:
    with pytest.raises(faults.InvalidParameterValueException, match="UserGroupId"):
        users.identifier(value, "UserGroupId")


def test_user_names_and_engine() -> None:
    assert users.user_name("Mixed.Case_name") == "Mixed.Case_name"
    for bad in ("", "two words", "tab\there"):
        with pytest.raises(faults.InvalidParameterValueException):
            users.user_name(bad)
    assert users.engine("REDIS") == "redis"
    with pytest.raises(faults.InvalidParameterValueException, match="valkey"):
        users.engine("valkey")


def test_a_password_is_kept_as_redis_keeps_it() -> None:
    assert users.password_hash(PW) == sha(PW)
    assert users.password_hash("!#$%&'()*+-.:;<=>?[\\]^_`{|}~0aZ") == sha(
        "!#$%&'()*+-.:;<=>?[\\]^_`{|}~0aZ"
    )
    assert len(users.password_hash("x" * 128)) == 64


@pytest.mark.parametrize(
    "password",
    [
        "x" * 15,
        "x" * 129,
        "sixteen,chars-pw",
        'sixteen"chars-pw',
        "sixteen/chars-pw",
        "sixteen@chars-pw",
        "sixteen chars-pw",
        "sixteen\u00e9chars-pw",
        "sixteen\tchars-pw",
    ],
)
def test_bad_passwords_are_refused_without_being_repeated(password: str) -> None:
    with pytest.raises(faults.InvalidParameterValueException) as raised:
        users.password_hash(password)
    assert password not in raised.value.message


def new(passwords: Any = None, npr: bool | None = None, mode: Any = None) -> Authentication:
    return users.new_authentication(passwords, npr, mode)


def test_new_authentication() -> None:
    assert new([PW, PW2]) == Authentication(PASSWORD, (sha(PW), sha(PW2)))
    assert new(mode={"Type": "password", "Passwords": [PW]}) == Authentication(PASSWORD, (sha(PW),))
    assert new([PW], mode={"Type": "password"}) == Authentication(PASSWORD, (sha(PW),))
    assert new(npr=True) == Authentication(NO_PASSWORD)
    assert new(npr=True, mode={"Type": "no-password-required"}) == Authentication(NO_PASSWORD)
    assert new(mode={"Type": "iam"}) == Authentication(IAM)
    assert new(npr=False, mode={"Type": "iam"}) == Authentication(IAM)


@pytest.mark.parametrize(
    ("passwords", "npr", "mode", "fault"),
    [
        (None, None, None, faults.InvalidParameterValueException),
        (None, False, None, faults.InvalidParameterValueException),
        ([PW, PW2, PW], None, None, faults.InvalidParameterValueException),
        ([PW], True, None, faults.InvalidParameterCombinationException),
        (
            [PW],
            None,
            {"Type": "password", "Passwords": [PW2]},
            faults.InvalidParameterCombinationException,
        ),
        (None, None, {"Type": "password"}, faults.InvalidParameterValueException),
        (None, None, {"Passwords": [PW]}, faults.InvalidParameterValueException),
        ([PW], None, {"Type": "iam"}, faults.InvalidParameterCombinationException),
        (None, True, {"Type": "iam"}, faults.InvalidParameterCombinationException),
        (
            None,
            False,
            {"Type": "no-password-required"},
            faults.InvalidParameterCombinationException,
        ),
        ([PW], None, {"Type": "no-password-required"}, faults.InvalidParameterCombinationException),
        (
            None,
            True,
            {"Type": "password", "Passwords": [PW]},
            faults.InvalidParameterCombinationException,
        ),
    ],
)
def test_new_authentication_refusals(
    passwords: Any, npr: bool | None, mode: Any, fault: type[faults.Fault]
) -> None:
    with pytest.raises(fault) as raised:
        new(passwords, npr, mode)
    assert PW not in raised.value.message


def test_changed_authentication_leaves_what_is_not_asked() -> None:
    password = Authentication(PASSWORD, (sha(PW),))
    assert users.changed_authentication(None, None, None, password) is None
    assert users.changed_authentication(None, False, None, password) is None
    assert users.changed_authentication([PW2], None, None, Authentication(NO_PASSWORD)) == (
        Authentication(PASSWORD, (sha(PW2),))
    )
    with pytest.raises(faults.InvalidParameterValueException, match="NoPasswordRequired flag"):
        users.changed_authentication(None, False, None, Authentication(NO_PASSWORD))


def test_modified_user() -> None:
    spec = user("u1", "app")
    assert users.modified(spec, "off", None, None).access_string == "off"
    assert users.modified(spec, None, "+get ~k*", None).access_string == "on +get ~k*"
    assert users.modified(spec, None, None, Authentication(NO_PASSWORD)).authentication == (
        Authentication(NO_PASSWORD)
    )
    with pytest.raises(faults.InvalidParameterCombinationException):
        users.modified(spec, "off", "+get", None)
    with pytest.raises(faults.InvalidParameterCombinationException, match="must be same"):
        users.modified(spec, None, None, Authentication(IAM))
    users.check_iam_name(user("u1", "u1", IAM))


def test_the_default_user() -> None:
    assert DEFAULT_USER.user_id == DEFAULT_USER.user_name == "default"
    assert DEFAULT_USER.authentication.type == NO_PASSWORD
    assert DEFAULT_USER.access_string == "on ~* +@all"
    for action in ("modified", "deleted"):
        with pytest.raises(faults.InvalidParameterValueException, match=action):
            users.check_changeable("default", action)
    users.check_changeable("default2", "deleted")


@pytest.mark.parametrize(
    "access_string",
    [
        "on >secret",
        "on <secret",
        "on #" + "a" * 64,
        "on !" + "a" * 64,
        "nopass on",
        "resetpass",
        "RESET on",
        "on (>secret ~k)",
        "on (~k nopass)",
    ],
)
def test_passwords_are_refused_in_access_strings(access_string: str) -> None:
    with pytest.raises(faults.InvalidParameterValueException) as raised:
        users.access_rules(access_string)
    assert "secret" not in raised.value.message


def test_access_rules_are_the_words_of_the_string() -> None:
    rules = users.access_rules("  on ~k:*  (+get ~s*) %R~r &c +@all -config|set ")
    assert rules == ["on", "~k:*", "(+get", "~s*)", "%R~r", "&c", "+@all", "-config|set"]


def test_group_members_need_a_default_user_and_distinct_names() -> None:
    known = {
        "default": DEFAULT_USER,
        "u1": user("u1", "app"),
        "u2": user("u2", "app"),
        "alt": user("alt", "default"),
    }
    users.check_members("g", ["default", "u1"], known, faults.UserGroupQuotaExceededFault)
    users.check_members("g", ["alt", "u2"], known, faults.UserGroupQuotaExceededFault)
    cases: list[tuple[list[str], type[faults.Fault]]] = [
        ([], faults.DefaultUserRequired),
        (["u1"], faults.DefaultUserRequired),
        (["default", "nobody"], faults.UserNotFoundFault),
        (["default", "u1", "u2"], faults.DuplicateUserNameFault),
        (["default", "alt"], faults.DuplicateUserNameFault),
    ]
    for ids, fault in cases:
        with pytest.raises(fault):
            users.check_members("g", ids, known, faults.UserGroupQuotaExceededFault)


def test_a_group_holds_at_most_100_users() -> None:
    known = {"default": DEFAULT_USER} | {f"u{i}": user(f"u{i}") for i in range(100)}
    users.check_members("g", ["default", *[f"u{i}" for i in range(99)]], known, faults.Fault)
    with pytest.raises(faults.InvalidParameterValueException, match="at most 100"):
        users.check_members("g", list(known), known, faults.InvalidParameterValueException)


def test_members_after_adding_and_removing() -> None:
    group = UserGroupSpec("g", "redis", ("default", "u1"))
    assert users.members_after(group, ["u2"], ["default"]) == ("u1", "u2")
    assert users.members_after(group, [], []) == ("default", "u1")
    with pytest.raises(faults.InvalidParameterValueException, match="already"):
        users.members_after(group, ["u1"], [])
    with pytest.raises(faults.InvalidParameterValueException, match="not in"):
        users.members_after(group, [], ["u9"])
    with pytest.raises(faults.InvalidParameterCombinationException):
        users.members_after(group, ["u2"], ["u2"])


def test_ids_are_lower_case_and_once_each() -> None:
    assert users.ids(["B", "a", "b"], "UserIds") == ["b", "a"]


def test_a_user_in_transition_takes_no_change() -> None:
    users.require_active("active", "User u1", faults.InvalidUserStateFault)
    with pytest.raises(faults.InvalidUserStateFault, match="User u1 is not in active state"):
        users.require_active("modifying", "User u1", faults.InvalidUserStateFault)


def test_user_filters() -> None:
    app, other = user("u1", "app"), user("u2", "other")
    by_name = users.user_filter(None, [{"Name": "UserName", "Values": ["app"]}])
    assert [by_name(app), by_name(other)] == [True, False]
    by_id = users.user_filter("Redis", [{"Name": "user-id", "Values": ["U2"]}])
    assert [by_id(app), by_id(other)] == [False, True]
    assert not users.user_filter("valkey", [])(app)
    with pytest.raises(faults.InvalidParameterValueException, match="color"):
        users.user_filter(None, [{"Name": "color", "Values": ["x"]}])
