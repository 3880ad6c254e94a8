"""The ACL users a node holds, from AUTH tokens or a user group."""

from __future__ import annotations

import pytest

from cacheyard.domain.acl import RESTRICTED, default_user, fingerprint, node_users, rbac_user
from cacheyard.domain.users import DEFAULT_USER, Authentication, UserSpec

pytestmark = pytest.mark.timeout(10)


def user(name: str, kind: str, *hashes: str, access: str = "on ~app:* +@read") -> UserSpec:
    return UserSpec(name, name, "redis", access, Authentication(kind, hashes))


def test_without_a_user_group_default_is_open_or_needs_a_token() -> None:
    assert node_users((), None) == (default_user(()),)
    assert "nopass" in default_user(()).rules
    rules = default_user(("a" * 64, "b" * 64)).rules
    assert {"#" + "a" * 64, "#" + "b" * 64} <= set(rules) and "nopass" not in rules
    assert rules[-len(RESTRICTED) :] == RESTRICTED  # nobody it admits reconfigures the node


def test_group_users_are_rebuilt_from_scratch() -> None:
    password = rbac_user(user("reader", "password", "c" * 64))
    assert password.rules == ("reset", "#" + "c" * 64, "on", "~app:*", "+@read", *RESTRICTED)
    assert rbac_user(user("open", "no-password")).rules[:2] == ("reset", "nopass")


def test_an_iam_user_starts_with_no_password_for_the_token_window_to_fill() -> None:
    iam = rbac_user(user("iam-app", "iam"))
    assert iam.iam
    assert iam.rules == ("reset", "on", "~app:*", "+@read", *RESTRICTED)


def test_the_fingerprint_follows_any_change() -> None:
    first = node_users((), [DEFAULT_USER, user("reader", "password", "c" * 64)])
    changed = node_users((), [DEFAULT_USER, user("reader", "password", "d" * 64)])
    assert [u.name for u in first] == ["default", "reader"]
    assert fingerprint(first) != fingerprint(changed)
    assert fingerprint(first) == fingerprint(tuple(first))
