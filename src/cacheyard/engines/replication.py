"""The Redis replication controls that failover is reconciled with.

Each call opens one connection of its own, bounded by ``timeout`` as a whole,
and never retries: the reconciler's loop is the retry, and a node that hangs
(SIGSTOP) must cost no more than the timeout. Queries answer None when the
node cannot be read, since "unknown" is an observation the reconciler acts on;
commands raise EngineError, since a step that did not happen must not be
recorded as done.

Replies are read raw (RESP2, no redis-py reply callbacks) and parsed here:
redis-py's INFO parser guesses value types, and its CLIENT KILL callback turns
a count of 0 into False.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio.connection import Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from cacheyard.domain.acl import AclUser
from cacheyard.engines import control
from cacheyard.engines.control import CONTROL_USER
from cacheyard.engines.errors import EngineError
from cacheyard.engines.spec import TlsFiles

_UNREACHABLE = (RedisError, OSError, TimeoutError)
# Subscribed clients are TYPE pubsub, not normal: both are dropped with an
# endpoint, while replica and master links (the other types) are kept.
_CLIENT_TYPES_DROPPED = ("normal", "pubsub")


@dataclass(frozen=True)
class ReplicaSeen:
    """One replica as its primary lists it (by its replica-announce-ip)."""

    address: str
    port: int
    offset: int
    online: bool


@dataclass(frozen=True)
class ReplicationInfo:
    """A node's own view of its replication, from INFO replication."""

    role: Literal["primary", "replica"]
    offset: int
    link_up: bool
    syncing: bool
    primary_address: str | None
    primary_port: int | None
    replicas: tuple[ReplicaSeen, ...]
    replid: str


async def replication_info(
    address: str,
    port: int,
    timeout: float = 0.5,  # noqa: ASYNC109,
    *,
    tls: TlsFiles | None = None,
) -> ReplicationInfo | None:
    """The node's role, offset and links; None when it does not answer in time."""
    replies = await _query(address, port, timeout, ("INFO", "replication"), tls=tls)
    return None if replies is None else _parse_replication(replies[0])


async def make_primary(
    address: str,
    port: int,
    timeout: float = 1.0,  # noqa: ASYNC109
    *,
    tls: TlsFiles | None = None,
) -> None:
    """REPLICAOF NO ONE: a no-op on a primary.

    The node keeps its old replication id as its second one, so replicas that
    followed the same primary (and are not ahead of this node) resync partially.
    """
    await _command(address, port, timeout, ("REPLICAOF", "NO", "ONE"), tls=tls)


async def make_replica(
    address: str,
    port: int,
    primary: str,
    primary_port: int,
    timeout: float = 1.0,  # noqa: ASYNC109,
    *,
    tls: TlsFiles | None = None,
    over_tls: bool | None = None,
) -> None:
    """REPLICAOF primary primary_port (after ``tls-replication``, when ``over_tls``
    is given: a node migrating between TLS modes may follow a primary of the other).

    Redis itself answers "Already connected to specified master" when the node
    follows that primary already, leaving the link (and any sync under way)
    alone, so repeating this never causes a resync.
    """
    commands: list[tuple[str, ...]] = []
    if over_tls is not None:
        commands.append(("CONFIG", "SET", "tls-replication", "yes" if over_tls else "no"))
    commands.append(("REPLICAOF", primary, str(primary_port)))
    await _command(address, port, timeout, *commands, tls=tls)


async def bound_addresses(
    address: str,
    port: int,
    timeout: float = 0.5,  # noqa: ASYNC109,
    *,
    tls: TlsFiles | None = None,
) -> list[str] | None:
    """The addresses the node listens on (CONFIG GET bind); None when unreadable."""
    replies = await _query(address, port, timeout, ("CONFIG", "GET", "bind"), tls=tls)
    if replies is None:
        return None
    _name, value = replies[0]
    return str(value).split()


async def bind(
    address: str,
    port: int,
    addresses: Sequence[str],
    timeout: float = 1.0,  # noqa: ASYNC109,
    *,
    tls: TlsFiles | None = None,
) -> bool:
    """CONFIG SET bind: True once the node listens on exactly ``addresses``.

    False when redis refuses, typically because another process still holds
    one of the addresses; redis then keeps listening where it did. Clients
    already accepted on an address that is dropped stay connected (see
    drop_clients). Keep ``address`` among ``addresses``: it is how the node
    is reached.

    Also False, without trying, while the node has a fork child (a BGSAVE for
    a replica's sync, an AOF rewrite): a child that still holds the listening
    sockets makes redis fail to bind them again and then fail to restore the
    old ones, which leaves it listening nowhere.
    """
    if not addresses:
        raise ValueError("an empty bind would listen on every interface")
    try:
        (persistence,) = await _exchange(address, port, timeout, ("INFO", "persistence"), tls=tls)
        if _forking(persistence):
            return False
        await _exchange(
            address, port, timeout, ("CONFIG", "SET", "bind", " ".join(addresses)), tls=tls
        )
    except ResponseError:
        return False
    except _UNREACHABLE as exc:
        raise _failed("CONFIG SET bind", address, port, exc) from exc
    return True


async def drop_clients(
    address: str,
    port: int,
    local_address: str,
    timeout: float = 1.0,  # noqa: ASYNC109,
    *,
    tls: TlsFiles | None = None,
) -> int:
    """Disconnect the clients that came in through ``local_address``; how many.

    For a node that has released an endpoint address: its clients there would
    otherwise keep talking to it. Replication links are never dropped.
    """
    laddr = f"{local_address}:{port}"
    commands = [("CLIENT", "KILL", "LADDR", laddr, "TYPE", kind) for kind in _CLIENT_TYPES_DROPPED]
    replies = await _command(address, port, timeout, *commands, tls=tls)
    return sum(int(reply) for reply in replies)


async def set_config(
    address: str,
    port: int,
    values: Mapping[str, str],
    timeout: float = 1.0,  # noqa: ASYNC109,
    *,
    tls: TlsFiles | None = None,
) -> None:
    """CONFIG SET of every pair at once: redis applies all of them or none."""
    if values:
        pairs = [word for item in values.items() for word in item]
        await _command(address, port, timeout, ("CONFIG", "SET", *pairs), tls=tls)


async def set_acl_users(
    address: str,
    port: int,
    users: Sequence[AclUser],
    timeout: float = 1.0,  # noqa: ASYNC109
    *,
    tls: TlsFiles | None = None,
) -> None:
    """Make the node's ACL users exactly ``users`` (and the control user).

    ACL SETUSER changes what a *new* AUTH accepts and what every connection of
    that user may do from its next command, without dropping it; a user no
    longer wanted is deleted, which disconnects its clients.
    """
    (present,) = await _command(address, port, timeout, ("ACL", "USERS"), tls=tls)
    wanted = {u.name for u in users}
    unwanted = [name for name in present if name not in wanted | {CONTROL_USER, "default"}]
    # Removals first: a refused SETUSER later must not leave a revoked user in place.
    commands = [("ACL", "DELUSER", *unwanted)] if unwanted else []
    commands += [("ACL", "SETUSER", u.name, *u.rules) for u in users]
    await _command(address, port, timeout, *commands, tls=tls)


async def acl_passwords(
    address: str,
    port: int,
    user: str,
    timeout: float = 1.0,  # noqa: ASYNC109
    *,
    tls: TlsFiles | None = None,
) -> tuple[set[str], bool] | None:
    """A user's password hashes and whether it is `nopass`; None when it is missing
    or the node cannot be read."""
    replies = await _query(address, port, timeout, ("ACL", "GETUSER", user), tls=tls)
    if replies is None or replies[0] is None:
        return None
    fields = dict(zip(replies[0][::2], replies[0][1::2], strict=True))
    return set(fields.get("passwords", [])), "nopass" in fields.get("flags", [])


async def change_passwords(
    address: str,
    port: int,
    user: str,
    add: Sequence[str],
    remove: Sequence[str],
    timeout: float = 1.0,  # noqa: ASYNC109
    *,
    reset: bool = False,
    tls: TlsFiles | None = None,
) -> None:
    """One ACL SETUSER that adds and removes password hashes (after resetpass)."""
    rules = [*(["resetpass"] if reset else []), *(f"#{h}" for h in add)]
    rules += [f"!{h}" for h in remove]
    if rules:
        await _command(address, port, timeout, ("ACL", "SETUSER", user, *rules), tls=tls)


async def clients_of(
    address: str,
    port: int,
    users: Collection[str],
    timeout: float = 1.0,  # noqa: ASYNC109
    *,
    tls: TlsFiles | None = None,
) -> list[tuple[str, int]] | None:
    """(client id, age in seconds) of every connection authenticated as one of ``users``."""
    replies = await _query(address, port, timeout, ("CLIENT", "LIST", "TYPE", "normal"), tls=tls)
    if replies is None:
        return None
    found = []
    for line in replies[0].splitlines():
        fields = dict(word.split("=", 1) for word in line.split() if "=" in word)
        if fields.get("user") in users:
            found.append((fields["id"], int(fields["age"])))
    return found


async def kill_clients(
    address: str,
    port: int,
    client_ids: Sequence[str],
    timeout: float = 1.0,  # noqa: ASYNC109
    *,
    tls: TlsFiles | None = None,
) -> None:
    if client_ids:
        commands = [("CLIENT", "KILL", "ID", client_id) for client_id in client_ids]
        await _command(address, port, timeout, *commands, tls=tls)


async def pause_writes(
    address: str,
    port: int,
    milliseconds: int,
    timeout: float = 1.0,  # noqa: ASYNC109,
    *,
    tls: TlsFiles | None = None,
) -> None:
    """CLIENT PAUSE ms WRITE: writes wait (not refused) while reads answer.

    A waiting write runs when the pause ends, or is answered READONLY if the
    node became a replica meanwhile: a planned switchover loses no write. A
    client that gives up and disconnects during the pause loses its write.
    """
    await _command(address, port, timeout, ("CLIENT", "PAUSE", str(milliseconds), "WRITE"), tls=tls)


async def unpause(
    address: str,
    port: int,
    timeout: float = 1.0,  # noqa: ASYNC109
    *,
    tls: TlsFiles | None = None,
) -> None:
    """CLIENT UNPAUSE: the queued writes run now."""
    await _command(address, port, timeout, ("CLIENT", "UNPAUSE"), tls=tls)


async def _query(
    address: str,
    port: int,
    timeout: float,  # noqa: ASYNC109
    *commands: tuple[str, ...],
    tls: TlsFiles | None,
) -> list[Any] | None:
    try:
        return await _exchange(address, port, timeout, *commands, tls=tls)
    except _UNREACHABLE:
        return None


async def _command(
    address: str,
    port: int,
    timeout: float,  # noqa: ASYNC109
    *commands: tuple[str, ...],
    tls: TlsFiles | None,
) -> list[Any]:
    try:
        return await _exchange(address, port, timeout, *commands, tls=tls)
    except _UNREACHABLE as exc:
        raise _failed(" ".join(commands[0][:2]), address, port, exc) from exc


async def _exchange(
    address: str,
    port: int,
    timeout: float,  # noqa: ASYNC109
    *commands: tuple[str, ...],
    tls: TlsFiles | None,
) -> list[Any]:
    """Run the commands in order on a fresh connection; their raw replies.

    An error reply raises ResponseError and stops there.
    """
    connection = control_connection(address, port, timeout, tls)
    try:
        async with asyncio.timeout(timeout):
            replies: list[Any] = []
            for command in commands:  # the first send connects
                await connection.send_command(*command)
                replies.append(await connection.read_response())
            return replies
    finally:
        with contextlib.suppress(RedisError, OSError):
            await connection.disconnect()


def info_fields(text: str) -> dict[str, str]:
    """The ``name:value`` lines of an INFO reply."""
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _forking(persistence: str) -> bool:
    fields = info_fields(persistence)
    return any(
        fields.get(name, "0") != "0"
        for name in ("rdb_bgsave_in_progress", "aof_rewrite_in_progress", "module_fork_in_progress")
    )


def control_connection(
    address: str,
    port: int,
    timeout: float,
    tls: TlsFiles | None = None,
) -> Connection:
    """One unpooled connection with no retries: a control command either works now
    or is reported, and the caller decides what is next. A TLS node is reached over
    TLS too, its certificate verified against Cacheyard's CA by address."""
    options: dict[str, Any] = {
        "host": address,
        "port": port,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "protocol": 2,  # the reply shapes parsed here and in rdb_capture
        "decode_responses": True,
    }
    options.update(control.credentials())
    if tls is None:
        return Connection(**options)
    return SSLConnection(**options, **tls.client_options())


def _failed(what: str, address: str, port: int, exc: BaseException) -> EngineError:
    return EngineError(f"{what} on {address}:{port} failed: {str(exc) or type(exc).__name__}")


def _parse_replication(text: str) -> ReplicationInfo:
    fields = info_fields(text)
    if fields["role"] == "master":
        return ReplicationInfo(
            role="primary",
            offset=int(fields["master_repl_offset"]),
            link_up=True,
            syncing=False,
            primary_address=None,
            primary_port=None,
            replicas=tuple(
                _parse_replica(value)
                for name, value in fields.items()
                if name.startswith("slave") and name[5:].isdigit()
            ),
            replid=fields["master_replid"],
        )
    return ReplicationInfo(
        role="replica",
        offset=int(fields.get("slave_repl_offset", fields["master_repl_offset"])),
        link_up=fields["master_link_status"] == "up",
        syncing=fields["master_sync_in_progress"] == "1",
        primary_address=fields["master_host"],
        primary_port=int(fields["master_port"]),
        replicas=(),
        replid=fields["master_replid"],
    )


def _parse_replica(value: str) -> ReplicaSeen:
    """One ``slaveN:ip=...,port=...,state=online,offset=...,lag=...`` line."""
    attributes = dict(item.split("=", 1) for item in value.split(","))
    return ReplicaSeen(
        address=attributes["ip"],
        port=int(attributes["port"]),
        offset=int(attributes["offset"]),
        online=attributes["state"] == "online",
    )
