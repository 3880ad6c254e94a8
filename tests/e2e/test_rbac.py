"""RBAC user groups attached to replication groups, as Redis ACLs on every node.

ACL users do not replicate, so each member must be given them; they must hold
on a replica, after a failover, on a member added later and after a restart,
and a change to a user or group reaches every node while the user group shows
`modifying`.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from group_helpers import (
    create_group,
    error_of,
    node_group,
    primary_address,
    primary_id,
    read_endpoints,
    tls_redis,
    wait_group_available,
)
from service_helpers import Service, wait_for

pytestmark = pytest.mark.timeout(180)

GROUP = "rbac-rg"
USER_GROUP = "rbac-users"
PASSWORDS = {
    "rbac-default": "default-password-0123",
    "rbac-reader": "reader-password-01234",
    "rbac-writer": "writer-password-01234",
}


connect = tls_redis


def login(address: str, ca: str, user_id: str) -> redis.Redis:
    name = user_id.removeprefix("rbac-")
    return connect(address, ca, name, PASSWORDS[user_id])


def refused(address: str, ca: str, user: str | None, password: str | None) -> bool:
    try:
        connect(address, ca, user, password).ping()
    except redis.AuthenticationError:
        return True
    return False


def denied(call: Any) -> bool:
    try:
        call()
    except redis.exceptions.NoPermissionError:
        return True
    return False


def user_status(ec: BaseClient, user_id: str) -> str:
    return str(ec.describe_users(UserId=user_id)["Users"][0]["Status"])


def group_status(ec: BaseClient) -> dict[str, Any]:
    return dict(ec.describe_user_groups(UserGroupId=USER_GROUP)["UserGroups"][0])


@pytest.fixture(scope="module")
def group(ec: BaseClient) -> Iterator[dict[str, Any]]:
    ec.create_user(
        UserId="rbac-default",
        UserName="default",
        Engine="redis",
        AccessString="on ~* +@all",
        Passwords=[PASSWORDS["rbac-default"]],
    )
    ec.create_user(
        UserId="rbac-reader",
        UserName="reader",
        Engine="redis",
        AccessString="on ~app:* -@all +@read +ping",
        Passwords=[PASSWORDS["rbac-reader"]],
    )
    ec.create_user(
        UserId="rbac-writer",
        UserName="writer",
        Engine="redis",
        AccessString="on ~app:* -@all +@read +@write +ping",
        Passwords=[PASSWORDS["rbac-writer"]],
    )
    ec.create_user_group(
        UserGroupId=USER_GROUP,
        Engine="redis",
        UserIds=["rbac-default", "rbac-reader", "rbac-writer"],
    )
    created = create_group(
        ec, GROUP, members=3, TransitEncryptionEnabled=True, UserGroupIds=[USER_GROUP]
    )
    assert created["UserGroupIds"] == [USER_GROUP]
    yield wait_group_available(ec, GROUP, timeout=60)
    ec.delete_replication_group(ReplicationGroupId=GROUP)


def test_acls_hold_on_every_member(ec: BaseClient, group: dict[str, Any], ca: str) -> None:
    wait_for(lambda: group_status(ec)["Status"] == "active", timeout=30)
    assert group_status(ec)["ReplicationGroups"] == [GROUP]
    endpoint = primary_address(group)
    writer = login(endpoint, ca, "rbac-writer")
    writer.set("app:1", "one")
    # The replicas, authenticated to the primary as the control user, are in sync.
    assert login(endpoint, ca, "rbac-default").wait(2, 5000) == 2
    assert denied(lambda: writer.set("other:1", "x"))  # keys outside ~app:*
    assert denied(lambda: writer.config_get("maxmemory"))  # commands outside its categories
    for address in [endpoint, *read_endpoints(group).values()]:
        assert refused(address, ca, None, None)  # default needs its password now
        assert refused(address, ca, "reader", "not-the-password-000")
        assert refused(address, ca, "nobody", PASSWORDS["rbac-reader"])
        reader = login(address, ca, "rbac-reader")
        assert reader.get("app:1") == b"one"
        assert denied(lambda r=reader: r.set("app:1", "two"))
        assert denied(lambda r=reader: r.get("other:1"))
        admin_like = login(address, ca, "rbac-default")  # on ~* +@all
        assert admin_like.ping()
        # ElastiCache's restricted commands stay out of reach of every user.
        assert denied(lambda c=admin_like: c.execute_command("ACL", "SETUSER", "default", "nopass"))
        assert denied(lambda c=admin_like: c.config_set("maxmemory-policy", "noeviction"))
        assert denied(lambda c=admin_like: c.execute_command("REPLICAOF", "NO", "ONE"))


def test_acls_survive_a_failover(ec: BaseClient, group: dict[str, Any], ca: str) -> None:
    before = primary_id(wait_group_available(ec, GROUP))
    ec.test_failover(ReplicationGroupId=GROUP, NodeGroupId="0001")
    wait_for(lambda: primary_id(wait_group_available(ec, GROUP)) != before, timeout=30)
    endpoint = primary_address(group)
    writer = wait_for(lambda: login(endpoint, ca, "rbac-writer"), timeout=10)
    wait_for(lambda: writer.set("app:after", "failover"), timeout=10)
    assert denied(lambda: writer.set("other:after", "x"))
    reader = login(endpoint, ca, "rbac-reader")
    assert denied(lambda: reader.set("app:after", "y"))
    assert refused(endpoint, ca, None, None)


def test_a_changed_user_reaches_every_node_without_dropping_it(
    ec: BaseClient, group: dict[str, Any], ca: str
) -> None:
    wait_group_available(ec, GROUP)
    kept = {a: login(a, ca, "rbac-reader") for a in read_endpoints(group).values()}
    ec.modify_user(UserId="rbac-reader", AccessString="on ~app:* ~other:* -@all +@read +ping")
    assert user_status(ec, "rbac-reader") == "modifying"
    assert group_status(ec)["Status"] == "modifying"
    wait_for(lambda: user_status(ec, "rbac-reader") == "active", timeout=30)
    assert group_status(ec)["Status"] == "active"
    for client in kept.values():
        assert client.get("other:1") is None  # allowed now, on the same connection


def test_a_user_of_a_group_being_applied_cannot_be_deleted(
    service: Service, ec: BaseClient, group: dict[str, Any]
) -> None:
    """A paused member holds the user group in `modifying`; meanwhile DeleteUser of one
    of its users answers InvalidUserState (the code its model lists) and changes nothing."""
    current = wait_group_available(ec, GROUP)
    wait_for(lambda: group_status(ec)["Status"] == "active", timeout=30)
    replica = next(m for m in read_endpoints(current) if m != primary_id(current))
    engine = service.engines()[service.data_dir / "clusters" / replica / "nodes" / "0001"]
    os.kill(engine.pid, signal.SIGSTOP)
    try:
        ec.modify_user(
            UserId="rbac-reader", AccessString="on ~app:* ~other:* -@all +@read +ping +echo"
        )
        assert group_status(ec)["Status"] == "modifying"
        with pytest.raises(ClientError) as raised:
            ec.delete_user(UserId="rbac-writer")
        assert error_of(raised) == ("InvalidUserState", 400)
    finally:
        os.kill(engine.pid, signal.SIGCONT)
    wait_for(lambda: group_status(ec)["Status"] == "active", timeout=30)
    assert user_status(ec, "rbac-writer") == "active"
    assert "rbac-writer" in group_status(ec)["UserIds"]


def test_a_member_added_later_and_a_rebooted_one_get_the_users(
    ec: BaseClient, group: dict[str, Any], ca: str
) -> None:
    ec.increase_replica_count(ReplicationGroupId=GROUP, NewReplicaCount=3, ApplyImmediately=True)
    grown = wait_group_available(ec, GROUP, timeout=60)
    added = sorted(read_endpoints(grown).items())[-1][1]
    assert refused(added, ca, None, None)
    assert login(added, ca, "rbac-reader").get("app:1") == b"one"
    replica = next(m for m in read_endpoints(grown) if m != primary_id(grown))
    ec.reboot_cache_cluster(CacheClusterId=replica, CacheNodeIdsToReboot=["0001"])
    address = read_endpoints(grown)[replica]
    wait_for(lambda: login(address, ca, "rbac-reader").get("app:1") == b"one", timeout=60)
    assert refused(address, ca, None, None)


def test_a_user_removed_from_the_group_is_dropped_everywhere(
    ec: BaseClient, group: dict[str, Any], ca: str
) -> None:
    grown = wait_group_available(ec, GROUP)
    addresses = list(read_endpoints(grown).values())
    connected = [login(a, ca, "rbac-writer") for a in addresses]
    ec.modify_user_group(UserGroupId=USER_GROUP, UserIdsToRemove=["rbac-writer"])
    wait_for(lambda: group_status(ec)["Status"] == "active", timeout=30)
    for address, client in zip(addresses, connected, strict=True):
        assert refused(address, ca, "writer", PASSWORDS["rbac-writer"])
        with pytest.raises(redis.ConnectionError):
            client.ping()  # its connection went with the user


def test_refusals(ec: BaseClient, group: dict[str, Any]) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"UserGroupIds": [USER_GROUP]}, "InvalidParameterCombination"),  # needs TLS
        (
            {
                "UserGroupIds": [USER_GROUP],
                "TransitEncryptionEnabled": True,
                "AuthToken": "a-token-of-16-chars-or-more",
            },
            "InvalidParameterCombination",
        ),
        ({"UserGroupIds": ["nosuch"], "TransitEncryptionEnabled": True}, "UserGroupNotFound"),
    ]
    for params, code in cases:
        with pytest.raises(ClientError) as raised:
            create_group(
                ec, "rbac-bad", members=1, automatic_failover=False, multi_az=False, **params
            )
        assert error_of(raised)[0] == code
    with pytest.raises(ClientError) as raised:
        ec.delete_user_group(UserGroupId=USER_GROUP)
    assert error_of(raised) == ("InvalidUserGroupState", 400)
    with pytest.raises(ClientError) as raised:
        ec.modify_replication_group(
            ReplicationGroupId=GROUP, AuthToken="a-token-of-16-chars-or-more"
        )
    assert error_of(raised)[0] == "InvalidParameterCombination"
    with pytest.raises(ClientError) as raised:  # a group it does not have, even with them all
        ec.modify_replication_group(
            ReplicationGroupId=GROUP, RemoveUserGroups=True, UserGroupIdsToRemove=["nosuch"]
        )
    assert error_of(raised) == ("InvalidParameterValue", 400)
    assert ec.describe_replication_groups(ReplicationGroupId=GROUP)["ReplicationGroups"][0][
        "UserGroupIds"
    ] == [USER_GROUP]


def test_detaching_the_group_opens_the_default_user_again(
    ec: BaseClient, group: dict[str, Any], ca: str
) -> None:
    wait_group_available(ec, GROUP)
    wait_for(lambda: group_status(ec)["Status"] == "active", timeout=30)
    modified = ec.modify_replication_group(
        ReplicationGroupId=GROUP, RemoveUserGroups=True, ApplyImmediately=True
    )["ReplicationGroup"]
    assert modified["Status"] == "modifying"
    assert modified["UserGroupIds"] == []
    done = wait_group_available(ec, GROUP)
    wait_for(lambda: group_status(ec)["Status"] == "active", timeout=30)
    assert group_status(ec)["ReplicationGroups"] == []
    for address in read_endpoints(done).values():
        assert connect(address, ca).ping()
        assert refused(address, ca, "reader", PASSWORDS["rbac-reader"])
    assert node_group(done)["PrimaryEndpoint"]["Address"] == primary_address(group)


def test_a_deleted_cache_lets_go_of_its_user_group(ec: BaseClient, group: dict[str, Any]) -> None:
    wait_for(lambda: group_status(ec)["Status"] == "active", timeout=30)
    create_group(
        ec,
        "rbac-brief",
        members=1,
        automatic_failover=False,
        multi_az=False,
        TransitEncryptionEnabled=True,
        UserGroupIds=[USER_GROUP],
    )
    assert group_status(ec)["Status"] == "modifying"
    wait_group_available(ec, "rbac-brief", timeout=60)
    ec.delete_replication_group(ReplicationGroupId="rbac-brief")
    wait_for(lambda: group_status(ec)["Status"] == "active", timeout=30)
    wait_for(lambda: group_status(ec)["ReplicationGroups"] == [], timeout=30)


def test_moving_from_an_auth_token_to_rbac_and_back(
    ec: BaseClient, group: dict[str, Any], ca: str
) -> None:
    token, other = "a-first-token-0123456789", "a-second-token-0123456789"
    wait_for(lambda: group_status(ec)["Status"] == "active", timeout=30)
    create_group(
        ec,
        "rbac-move",
        members=1,
        automatic_failover=False,
        multi_az=False,
        TransitEncryptionEnabled=True,
        AuthToken=token,
    )
    address = primary_address(wait_group_available(ec, "rbac-move", timeout=60))
    try:
        assert connect(address, ca, password=token).ping()
        ec.modify_replication_group(
            ReplicationGroupId="rbac-move",
            UserGroupIdsToAdd=[USER_GROUP],
            AuthTokenUpdateStrategy="DELETE",
            ApplyImmediately=True,
        )
        moved = wait_group_available(ec, "rbac-move")
        assert moved["AuthTokenEnabled"] is False and moved["UserGroupIds"] == [USER_GROUP]
        wait_for(lambda: refused(address, ca, None, token), timeout=10)
        assert login(address, ca, "rbac-reader").ping()
        wait_for(lambda: group_status(ec)["Status"] == "active", timeout=30)

        # Back: the user group goes and the token given in the same call guards the node.
        ec.modify_replication_group(
            ReplicationGroupId="rbac-move",
            RemoveUserGroups=True,
            AuthToken=other,
            AuthTokenUpdateStrategy="SET",
            ApplyImmediately=True,
        )
        back = wait_group_available(ec, "rbac-move")
        assert back["AuthTokenEnabled"] is True and back["UserGroupIds"] == []
        wait_for(lambda: not refused(address, ca, None, other), timeout=10)
        assert refused(address, ca, None, None)
        assert refused(address, ca, "reader", PASSWORDS["rbac-reader"])
    finally:
        ec.delete_replication_group(ReplicationGroupId="rbac-move")
