"""Moving the primary role: automatic failover, planned switchover, TestFailover.

Failover promotes the replica with the highest replication offset among those
whose process has completed a sync (never one still on its first sync), fences the old
primary (a hung one is killed, so it can neither keep the endpoint address nor
take writes again), moves the primary endpoint and repoints the others, which
resync partially because REPLICAOF NO ONE keeps the replication history.

A switchover loses no write: the old primary's writes are paused until the
target has every byte, clients on the old endpoint are dropped before the pause
ends, and held writes then fail on a replica instead of landing unacknowledged.
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import TYPE_CHECKING

from cacheyard.domain import events
from cacheyard.domain.replication_groups import NODE_GROUP_ID, ReplicationGroupSpec
from cacheyard.engines import replication
from cacheyard.engines.errors import EngineError
from cacheyard.engines.host import EngineHost

if TYPE_CHECKING:
    from cacheyard.controller.replication_groups import GroupPass, Member

BIND_DEADLINE = 3.0
CATCH_UP_DEADLINE = 2.0
PAUSE_MS = 3000
POLL = 0.005


async def handle_test_failover(
    host: EngineHost,
    group: ReplicationGroupSpec,
    members: dict[str, Member],
    work: GroupPass,
) -> None:
    """TestFailover fails the primary as a real failure would: its process is killed."""
    if len(group.test_failovers) <= work.observed.get("test_failovers", 0):
        return
    work.observed["test_failovers"] = len(group.test_failovers)
    work.group_events.append(events.test_failover_called(NODE_GROUP_ID))
    primary = members[work.primary or group.preferred_primary]
    if primary.running:
        host.kill(primary.node.node_dir, signal.SIGKILL)
        await _until_gone(host, primary)
    primary.running = False
    primary.info = None


def best_replica(members: dict[str, Member], primary_id: str, work: GroupPass) -> Member | None:
    """The answering replica with the most data. Only members whose process has completed a
    sync count: one still on its first sync holds a partial dataset; one merely being
    repointed to a new primary still holds everything up to its offset."""
    candidates = [
        m
        for m in members.values()
        if m.id != primary_id and m.answering and work.seen(m.id).get("has_data")
    ]
    return max(candidates, key=lambda m: m.info.offset if m.info else -1, default=None)


async def promote(
    host: EngineHost,
    group: ReplicationGroupSpec,
    members: dict[str, Member],
    work: GroupPass,
) -> Member | None:
    """Fail over from a primary that is gone or does not answer; None if no replica can."""
    old = members[work.primary or group.preferred_primary]
    candidate = best_replica(members, old.id, work)
    if candidate is None:
        return None
    if old.running:
        await host.stop(old.node.node_dir, grace=0)
        old.running = False
        old.info = None
    await replication.make_primary(candidate.address, candidate.node.port, tls=candidate.node.tls)
    await _bind_when_free(candidate, [candidate.address, group.primary_endpoint])
    work.repointed.update(await _repoint_others(members, candidate, exclude=old.id))
    work.observed["primary"] = candidate.id
    work.seen(old.id)["synced"] = False
    if not group.automatic_failover:
        work.observed["rebuilding"] = old.id
    work.group_events.append(events.failover_completed(old.id, candidate.id))
    return candidate


async def switch_over(
    group: ReplicationGroupSpec,
    members: dict[str, Member],
    target: Member,
    work: GroupPass,
) -> Member:
    """Hand the primary role to ``target`` with no lost write; the old primary otherwise."""
    old = members[work.primary or group.preferred_primary]
    if target.id == old.id:
        work.observed["switchover_seq"] = group.switchover_seq
        return old
    if not (target.answering and work.seen(target.id).get("synced")):
        work.ready = False
        return old
    await replication.pause_writes(old.address, old.node.port, PAUSE_MS, tls=old.node.tls)
    try:
        if not await _caught_up(old, target):
            work.ready = False
            return old
        await replication.make_primary(target.address, target.node.port, tls=target.node.tls)
        await replication.bind(old.address, old.node.port, [old.address], tls=old.node.tls)
        await replication.drop_clients(
            old.address, old.node.port, group.primary_endpoint, tls=old.node.tls
        )
        await _bind_when_free(target, [target.address, group.primary_endpoint])
        await follow(old, target)
        work.repointed.update(await _repoint_others(members, target, exclude=old.id))
        work.repointed.add(old.id)
    finally:
        await replication.unpause(old.address, old.node.port, tls=old.node.tls)
    work.observed["primary"] = target.id
    work.observed["switchover_seq"] = group.switchover_seq
    work.seen(old.id)["synced"] = False
    work.group_events.append(events.primary_handed_over(old.id, target.id))
    return target


async def _caught_up(old: Member, target: Member) -> bool:
    deadline = time.monotonic() + CATCH_UP_DEADLINE
    while time.monotonic() < deadline:
        source = await replication.replication_info(old.address, old.node.port, tls=old.node.tls)
        replica = await replication.replication_info(
            target.address, target.node.port, tls=target.node.tls
        )
        if source is not None and replica is not None and replica.offset >= source.offset:
            return True
        await asyncio.sleep(POLL)
    return False


async def _bind_when_free(member: Member, addresses: list[str]) -> None:
    """Bind, retrying while the previous holder's socket is still being released."""
    deadline = time.monotonic() + BIND_DEADLINE
    while not await replication.bind(
        member.address, member.node.port, addresses, tls=member.node.tls
    ):
        if time.monotonic() > deadline:
            raise EngineError(
                f"{member.id} could not bind {' '.join(addresses)} within {BIND_DEADLINE}s"
            )
        await asyncio.sleep(POLL)


async def _repoint_others(members: dict[str, Member], primary: Member, exclude: str) -> set[str]:
    """Point every other answering member at ``primary``; returns their ids."""
    others = [m for m in members.values() if m.id not in (primary.id, exclude) and m.answering]
    await asyncio.gather(*(follow(m, primary) for m in others))
    return {m.id for m in others}


async def follow(member: Member, primary: Member) -> None:
    """Make ``member`` a replica of ``primary``, replicating over TLS when the
    primary serves TLS (the two differ while a group migrates, ADR 16)."""
    await replication.make_replica(
        member.address,
        member.node.port,
        primary.address,
        primary.node.port,
        tls=member.node.tls,
        over_tls=primary.node.tls is not None,
    )


async def _until_gone(host: EngineHost, member: Member) -> None:
    deadline = time.monotonic() + BIND_DEADLINE
    while host.find(member.node.node_dir) is not None:
        if time.monotonic() > deadline:
            raise EngineError(f"{member.id} outlived SIGKILL for {BIND_DEADLINE}s")
        await asyncio.sleep(POLL)
