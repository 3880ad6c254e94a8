"""Who may connect to a replication group's nodes: its ACL users, and for each IAM
user the access keys whose policies allow ``elasticache:Connect`` to it.

Read in the reconciler's transaction from the group's spec, its user group, the
users and the IAM principals, so a pass applies one consistent picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property

from cacheyard.controller.keys import REPLICATION_GROUP
from cacheyard.domain import arns, policies, statuses, users
from cacheyard.domain.acl import AclUser, fingerprint, node_users
from cacheyard.domain.arns import Arn
from cacheyard.domain.codec import load
from cacheyard.domain.connect_tokens import SigningKey, TokenWindow, accepted
from cacheyard.domain.replication_groups import ReplicationGroupSpec
from cacheyard.domain.users import UserGroupSpec, UserSpec
from cacheyard.store import Record, Transaction
from cacheyard.store.principals import load_principals

CONNECT = "elasticache:Connect"


@dataclass(frozen=True)
class IamUser:
    name: str  # an IAM user's name is its id
    keys: tuple[SigningKey, ...]


@dataclass(frozen=True)
class GroupAccess:
    users: tuple[AclUser, ...]
    user_group: str | None = None
    iam_users: tuple[IamUser, ...] = ()
    region: str = ""  # where connect tokens are signed for

    @cached_property
    def fingerprint(self) -> str:
        return fingerprint(self.users)


async def group_access(tx: Transaction, record: Record, group: ReplicationGroupSpec) -> GroupAccess:
    if not group.user_group_ids:
        return GroupAccess(node_users(group.auth_tokens, None))
    user_group_id = group.user_group_ids[0]
    members = await _members(tx, user_group_id)
    iam_members = [m for m in members if m.authentication.type == users.IAM]
    iam_users: list[IamUser] = []
    if iam_members:
        arn = arns.parse(record.arn)
        principals = await load_principals(tx, arn.account)
        for member in iam_members:
            user_arn = str(Arn(arn.region, arn.account, "user", member.user_id))
            allowed = []
            for key in principals.active_keys.values():
                principal = principals.by_name.get(key.user_name)
                if principal is not None and all(
                    policies.evaluate(principal.policies, CONNECT, resource)
                    == policies.Decision.ALLOW
                    for resource in (record.arn, user_arn)
                ):
                    allowed.append(SigningKey(key.access_key_id, key.secret))
            iam_users.append(IamUser(member.user_name, tuple(allowed)))
    region = arns.parse(record.arn).region
    return GroupAccess(node_users((), members), user_group_id, tuple(iam_users), region)


async def _members(tx: Transaction, user_group_id: str) -> list[UserSpec]:
    record = await tx.get(users.USER_GROUP, user_group_id)
    if record is None:
        # Deleted under us (the next pass sees the spec change): closed meanwhile.
        return [replace(users.DEFAULT_USER, access_string="off -@all")]
    spec = load(UserGroupSpec, record.spec)
    found = []
    for user_id in spec.user_ids:
        user = await tx.get(users.USER, user_id)
        if user is not None:
            found.append(load(UserSpec, user.spec))
        elif user_id == users.DEFAULT:
            found.append(users.DEFAULT_USER)
    return found


@dataclass
class TokenWindows:
    """The connect-token windows of every (group, user, key), kept between passes so
    each pass signs only the seconds that are new."""

    _windows: dict[tuple[str, str, SigningKey], TokenWindow] = field(default_factory=dict)

    def hashes(self, group_id: str, region: str, user: IamUser, now: datetime) -> set[str]:
        windows = []
        for key in user.keys:
            index = (group_id, user.name, key)
            if index not in self._windows:
                self._windows[index] = TokenWindow(group_id, user.name, region, key)
            windows.append(self._windows[index])
        return accepted(windows, now)

    def forget(self, group_id: str, keep: Sequence[IamUser]) -> None:
        """Drop the windows of keys or users that no longer apply to a group."""
        wanted = {(group_id, u.name, k) for u in keep for k in u.keys}
        for index in [i for i in self._windows if i[0] == group_id and i not in wanted]:
            del self._windows[index]


async def settle_user_groups(tx: Transaction) -> None:
    """A user group is `active` again once every replication group holds what it
    should of it: the current users where it is attached, nothing where it was
    detached. A group whose restore failed runs no nodes and holds back nothing.
    Its `modifying` users follow when none of their groups is modifying."""
    groups = await tx.all(users.USER_GROUP)
    modifying = [g for g in groups if g.status == statuses.MODIFYING]
    if not modifying:
        return
    caches = [c for c in await tx.all(REPLICATION_GROUP) if c.status != statuses.RESTORE_FAILED]
    for user_group in modifying:
        spec = load(UserGroupSpec, user_group.spec)
        wanted = fingerprint(node_users((), await _members(tx, spec.user_group_id)))
        settled = True
        for cache in caches:
            attached = spec.user_group_id in cache.spec.get("user_group_ids", [])
            holds = cache.observed.get("acl_group") == spec.user_group_id
            if attached != holds or (attached and cache.observed.get("acl") != wanted):
                settled = False
        if settled:
            await tx.update_spec(users.USER_GROUP, user_group.id, user_group.spec, users.ACTIVE)
    still = {
        u
        for g in await tx.all(users.USER_GROUP)
        if g.status == statuses.MODIFYING
        for u in load(UserGroupSpec, g.spec).user_ids
    }
    for user in await tx.all(users.USER):
        if user.status == statuses.MODIFYING and user.id not in still:
            await tx.update_spec(users.USER, user.id, user.spec, users.ACTIVE)
