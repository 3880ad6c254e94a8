"""The replication group reconciler: processes, roles, endpoints and failover.

One pass looks at every member (its process, its INFO replication) and takes
the next steps toward "one answering primary that binds the primary endpoint,
every other member a replica of it with its link up, the reader endpoint on a
synced replica". When the primary is gone or does not answer it promotes the
synced replica with the highest offset (see :mod:`.failover`). Which member is
primary is recorded in the group's observed state, so a restarted control
plane keeps the roles it found.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cacheyard.controller import failover
from cacheyard.controller.access import GroupAccess, TokenWindows, group_access, settle_user_groups
from cacheyard.controller.cache_clusters import HUNG_AFTER
from cacheyard.controller.keys import CACHE_CLUSTER, REPLICATION_GROUP, SNAPSHOT
from cacheyard.controller.layout import Layout
from cacheyard.controller.parameters import NodeParameters, node_parameters
from cacheyard.controller.restore import RestoreFailed, discard_rdb, seed_first_start
from cacheyard.controller.tls import ensure_certificate, redis_listeners, started_users
from cacheyard.domain import events, statuses
from cacheyard.domain.acl import node_users
from cacheyard.domain.cache_clusters import CacheClusterSpec
from cacheyard.domain.clock import Clock
from cacheyard.domain.codec import dump, load
from cacheyard.domain.node_types import node_type
from cacheyard.domain.parameters import ParameterCatalog
from cacheyard.domain.replication_groups import ReplicationGroupSpec
from cacheyard.engines import control, live_config, probes, reader_spread, replication
from cacheyard.engines.control import CONTROL_USER
from cacheyard.engines.errors import EngineError
from cacheyard.engines.host import EngineHost
from cacheyard.engines.spec import NodeSpec
from cacheyard.engines.tls_front import FRONT_DIR, FrontSpec
from cacheyard.store import Record, Store
from cacheyard.store.snapshot_files import SnapshotFiles

log = logging.getLogger(__name__)

RETRY = 0.05
RETRY_SNAPSHOT = 0.2
# A rebooted member gets time to finish writing its AOF.
REBOOT_GRACE = 5.0
_NEW = (statuses.CREATING, statuses.RESTORING)
INFO_TIMEOUT = 0.25
# How long a preferred-mode member's front may take to relay a PING before it is
# taken as hung and replaced (a pass at a time; it is a local relay).
FRONT_PROBE = 2.0
# An isolated primary refuses writes once no replica acknowledged for this long.
MIN_REPLICAS_MAX_LAG = 2
# How often a group with IAM users has its connect-token hashes moved forward;
# well under domain.connect_tokens.MARGIN, so no expired token stays installed.
TOKEN_REFRESH = 5.0
# ElastiCache drops an IAM-authenticated connection after 12 hours (the service
# sets the reconciler's from `cacheyard up --iam-connection-max-age`).
IAM_CONNECTION_MAX_AGE = 12 * 3600


@dataclass
class Member:
    """One member cluster as this pass sees it."""

    record: Record
    spec: CacheClusterSpec
    node: NodeSpec
    running: bool
    info: replication.ReplicationInfo | None = None

    @property
    def id(self) -> str:
        return self.spec.cluster_id

    @property
    def address(self) -> str:
        return self.node.address

    @property
    def answering(self) -> bool:
        return self.running and self.info is not None


@dataclass
class GroupPass:
    """The group's observed state being updated by one pass, and what to record."""

    observed: dict[str, Any]
    parameters: NodeParameters = field(default_factory=NodeParameters)
    group_events: list[str] = field(default_factory=list)
    repointed: set[str] = field(default_factory=set)
    member_events: list[tuple[str, str]] = field(default_factory=list)
    access: GroupAccess = field(default_factory=lambda: GroupAccess(node_users((), None)))
    # Directories with a process of ours (engines, preferred-mode fronts), as observed.
    processes: set[Path] = field(default_factory=set)
    ready: bool = True
    restore_failed: bool = False

    @property
    def primary(self) -> str | None:
        value = self.observed.get("primary")
        return str(value) if value is not None else None

    def seen(self, member_id: str) -> dict[str, Any]:
        members: dict[str, dict[str, Any]] = self.observed.setdefault("members", {})
        return members.setdefault(member_id, {"synced": False, "status": statuses.NODE_CREATING})


class ReplicationGroupReconciler:
    def __init__(
        self,
        store: Store,
        host: EngineHost,
        layout: Layout,
        clock: Clock,
        enqueue: Callable[[str, str], None],
        parameters: ParameterCatalog,
        snapshots: SnapshotFiles,
    ) -> None:
        self._store = store
        self._host = host
        self._layout = layout
        self._clock = clock
        self._enqueue = enqueue
        self._parameters = parameters
        self._snapshots = snapshots
        self._tokens = TokenWindows()
        self.iam_connection_max_age = IAM_CONNECTION_MAX_AGE

    def member_node(
        self,
        group: ReplicationGroupSpec,
        spec: CacheClusterSpec,
        primary: NodeSpec | None,
        parameters: NodeParameters | None = None,
        access: GroupAccess | None = None,
    ) -> NodeSpec:
        """The engine for a member; a replica starts already pointing at the primary, so a
        returning old primary can never come back writable (fencing)."""
        config = {
            **(parameters.overrides if parameters is not None else {}),
            "min-replicas-to-write": "1" if group.automatic_failover else "0",
            "min-replicas-max-lag": str(MIN_REPLICAS_MAX_LAG),
        }
        if primary is not None and primary.address != spec.nodes[0].address:
            config["replicaof"] = f"{primary.address} {primary.port}"
        node_dir = self._layout.node(spec.cluster_id, spec.nodes[0].node_id)
        following = primary is not None and primary.address != spec.nodes[0].address
        return NodeSpec(
            engine="redis",
            node_dir=node_dir,
            address=spec.nodes[0].address,
            max_memory_mb=node_type(spec.node_type).memory_mb,
            redis_config=config,
            **redis_listeners(
                self._layout, node_dir, spec.port, spec.required_tls, spec.preferred_tls
            ),
            # While the group migrates, a replica may follow a primary of the other mode.
            replicate_over_tls=(primary.tls is not None) if following and primary else None,
            acl_users=started_users(
                access.users if access is not None else node_users(group.auth_tokens, None)
            ),
            control_password=control.password(),
        )

    async def reconcile(self, group_id: str) -> float | None:
        async with self._store.transaction() as tx:
            record = await tx.get(REPLICATION_GROUP, group_id)
            member_records = [
                r
                for r in await tx.all(CACHE_CLUSTER)
                if r.spec.get("replication_group_id") == group_id
            ]
            if record is not None:
                group = load(ReplicationGroupSpec, record.spec)
                parameters = await node_parameters(
                    tx, self._parameters, group.parameter_group, group.family
                )
                final = (
                    await tx.get(SNAPSHOT, group.final_snapshot) if group.final_snapshot else None
                )
                access = await group_access(tx, record, group)
        self._tokens.forget(group_id, access.iam_users if record is not None else ())
        if record is None:
            for leftover in member_records:
                await self._remove_member(leftover)
            return None
        if group.deleting and final is not None and final.status == statuses.SNAPSHOT_CREATING:
            return RETRY_SNAPSHOT  # the final snapshot is read from the running members
        if group.deleting and final is not None and final.status == statuses.SNAPSHOT_FAILED:
            await self._keep_after_failed_final_snapshot(group, member_records, final.id)
            return RETRY
        if record.status == statuses.RESTORE_FAILED and not group.deleting:
            return None
        work = GroupPass(observed=dict(record.observed), parameters=parameters, access=access)
        for member_record in member_records:
            if member_record.spec.get("deleting") or member_record.id not in group.member_ids:
                await self._remove_member(member_record)
                work.observed.get("members", {}).pop(member_record.id, None)
        live = {
            r.id: r
            for r in member_records
            if r.id in group.member_ids and not r.spec.get("deleting")
        }
        if group.deleting:
            return await self._finish_delete(group, live)
        if set(live) != set(group.member_ids):
            return RETRY  # the handler's transaction is not visible yet
        work.observed.setdefault("primary", group.preferred_primary)
        members = await self._observe(group, live, work)
        try:
            await self._converge(group, members, work)
        except RestoreFailed as exc:
            log.warning("replication group %s: restore failed: %s", group_id, exc)
            await self._fail_restore(members, work, str(exc))
            await self._record(record, group, members, work)
            return None
        except EngineError as exc:
            log.warning("replication group %s: %s", group_id, exc)
            work.ready = False
        await self._record(record, group, members, work)
        if not work.ready:
            return RETRY
        # Connect tokens enter and leave the window every second.
        return TOKEN_REFRESH if work.access.iam_users else None

    async def lock_iam_users(self) -> None:
        """When the control plane stops, no token window moves until it is back, so
        installed tokens would outlive their 15 minutes: every IAM user is left with
        no password at all instead (fail closed). The next start puts the current
        tokens back with its first pass."""
        locks = []
        async with self._store.transaction() as tx:
            clusters = [load(CacheClusterSpec, r.spec) for r in await tx.all(CACHE_CLUSTER)]
            for record in await tx.all(REPLICATION_GROUP):
                group = load(ReplicationGroupSpec, record.spec)
                if not group.user_group_ids:
                    continue
                access = await group_access(tx, record, group)
                if access.iam_users:
                    locks += [
                        (group, access, spec)
                        for spec in clusters
                        if spec.replication_group_id == group.group_id
                    ]
        if locks:
            log.info("locking IAM users on %d nodes until the control plane is back", len(locks))
        for group, access, spec in locks:
            node = self.member_node(group, spec, None, access=access)
            for user in access.iam_users:
                try:
                    await replication.change_passwords(
                        node.address, node.port, user.name, [], [], reset=True, tls=node.tls
                    )
                except EngineError as exc:
                    log.warning(
                        "could not lock IAM user %s on %s: %s", user.name, spec.cluster_id, exc
                    )

    async def _keep_after_failed_final_snapshot(
        self, group: ReplicationGroupSpec, member_records: list[Record], name: str
    ) -> None:
        """A delete whose final snapshot failed is called off: the data has no other copy."""
        now = self._clock.now()
        async with self._store.transaction() as tx:
            for member in member_records:
                spec = replace(load(CacheClusterSpec, member.spec), deleting=False)
                await tx.update_spec(CACHE_CLUSTER, member.id, dump(spec), statuses.AVAILABLE)
            kept = replace(
                group,
                deleting=False,
                final_snapshot=None,
                member_ids=tuple(sorted(m.id for m in member_records)),
            )
            await tx.update_spec(REPLICATION_GROUP, group.group_id, dump(kept), statuses.AVAILABLE)
            await tx.add_event(
                events.Event(
                    events.REPLICATION_GROUP, group.group_id, events.delete_called_off(name), now
                )
            )

    async def _fail_restore(self, members: dict[str, Member], work: GroupPass, reason: str) -> None:
        """Only the new group's own processes are stopped; it stays restore-failed."""
        await asyncio.gather(
            *(self._host.stop(m.node.node_dir, grace=0) for m in members.values() if m.running)
        )
        source = next(m.spec.restore for m in members.values() if m.spec.restore is not None)
        assert source is not None
        work.ready = False
        work.restore_failed = True
        work.group_events.append(events.restore_failed(source.label, reason))

    async def _observe(
        self, group: ReplicationGroupSpec, live: dict[str, Record], work: GroupPass
    ) -> dict[str, Member]:
        running = self._host.find_all(self._layout.clusters)
        work.processes = set(running)
        primary_spec = load(CacheClusterSpec, live[work.primary or group.preferred_primary].spec)
        primary_node = self.member_node(group, primary_spec, None)
        members = {}
        for member_id in group.member_ids:
            spec = load(CacheClusterSpec, live[member_id].spec)
            node = self.member_node(group, spec, primary_node, work.parameters, work.access)
            members[member_id] = Member(live[member_id], spec, node, node.node_dir in running)
        infos = await asyncio.gather(
            *(
                replication.replication_info(m.address, m.node.port, INFO_TIMEOUT, tls=m.node.tls)
                if m.running
                else _nothing()
                for m in members.values()
            )
        )
        for member, info in zip(members.values(), infos, strict=True):
            member.info = info
        return members

    async def _converge(
        self, group: ReplicationGroupSpec, members: dict[str, Member], work: GroupPass
    ) -> None:
        # First, so no failure later in the pass (a silent primary, a member that
        # cannot restart) holds back a revoked user or an expired token elsewhere.
        await self._apply_access(group, members, work)
        await self._keep_fronts(group, members, work)
        await failover.handle_test_failover(self._host, group, members, work)
        await self._reboot_requested(members, work)
        primary = members[work.primary or group.preferred_primary]
        if not primary.answering:
            promoted = await self._replace_silent_primary(group, members, primary, work)
            if promoted is None:
                work.ready = False
                return
            primary = promoted
        elif group.switchover_seq > work.observed.get("switchover_seq", 0):
            primary = await failover.switch_over(
                group, members, members[group.preferred_primary], work
            )
        elif work.observed.get("rebuilding") in members:
            # Without automatic failover the failed primary was rebuilt from a replica;
            # once it has every byte it takes its role back, as ElastiCache replaces it.
            rebuilt = members[work.observed["rebuilding"]]
            if rebuilt.answering and work.seen(rebuilt.id).get("synced"):
                primary = await failover.switch_over(group, members, rebuilt, work)
                if primary.id == rebuilt.id:
                    del work.observed["rebuilding"]
        for member in members.values():
            if member.answering:
                work.seen(member.id).pop("unanswered_since", None)
        for member in members.values():
            if member.id == primary.id:
                continue
            if not member.running:
                try:
                    await self._restart_in_place(group, member, primary, work)
                except EngineError as exc:  # the others still converge
                    log.warning("replication group %s: %s", group.group_id, exc)
                    work.ready = False
            elif member.info is not None and (
                member.info.role == "primary" or member.info.primary_address != primary.address
            ):
                work.repointed.add(member.id)
                await failover.follow(member, primary)
        if primary.info is not None and primary.info.role != "primary":
            await replication.make_primary(primary.address, primary.node.port, tls=primary.node.tls)
        await self._apply_settings(group, members, work)
        self._update_sync_flags(members, primary, work)
        await self._place_endpoints(group, members, primary, work)
        await self._migrate_transit(group, members, primary, work)

    async def _replace_silent_primary(
        self,
        group: ReplicationGroupSpec,
        members: dict[str, Member],
        primary: Member,
        work: GroupPass,
    ) -> Member | None:
        """The member that is primary after this pass, or None if there is none yet.

        Without automatic failover a live but silent primary first gets the time a
        standalone cluster gets (a long command, a slow disk). A primary nobody can
        replace is restarted: at once if its process is gone, after HUNG_AFTER if it
        is alive but silent (it may be left listening nowhere)."""
        if primary.running and not group.automatic_failover and not self._hung(primary, work):
            return None
        promoted = await failover.promote(self._host, group, members, work)
        if promoted is not None:
            return promoted
        if not primary.running:
            await self._restart_in_place(group, primary, None, work)
        elif self._hung(primary, work):
            log.warning("primary %s does not answer: restarting it", primary.id)
            await self._host.stop(primary.node.node_dir, grace=0)
        return None

    def _hung(self, member: Member, work: GroupPass) -> bool:
        """Whether a live member has not answered for HUNG_AFTER (counted from the
        first pass that found it silent)."""
        now = self._clock.now()
        seen = work.seen(member.id)
        since = datetime.fromisoformat(seen.setdefault("unanswered_since", now.isoformat()))
        return now - since >= HUNG_AFTER

    async def _reboot_requested(self, members: dict[str, Member], work: GroupPass) -> None:
        """RebootCacheCluster of a member: its engine is stopped here and started again
        below. A replica resyncs; a rebooted primary is handled as a lost one (its
        replica takes over, or rebuilds it), so a reboot never empties the group."""
        for member in members.values():
            wanted = member.spec.nodes[0].reboot_seq
            seen = work.seen(member.id)
            # A cluster that joined the group brings the reboots it already had.
            joined = member.record.observed.get("nodes", {}).get("0001", {})
            if wanted <= seen.setdefault("restarted", joined.get("restarted", 0)):
                continue
            if member.running:
                await self._host.stop(member.node.node_dir, grace=REBOOT_GRACE)
                member.running = False
                member.info = None
            seen["restarted"] = wanted
            seen["status"] = statuses.NODE_REBOOTING
            seen["recovering"] = True
            work.member_events.append((member.id, events.nodes_restarted(["0001"])))

    async def _restart_in_place(
        self,
        group: ReplicationGroupSpec,
        member: Member,
        primary: Member | None,
        work: GroupPass,
    ) -> None:
        seen = work.seen(member.id)
        if seen["status"] == statuses.NODE_AVAILABLE:
            work.member_events.append((member.id, events.recovery_started(["0001"])))
            seen["recovering"] = True
        if seen.get("recovering"):
            seen["status"] = statuses.NODE_REBOOTING
        seen["synced"] = False
        seen["has_data"] = False  # a new process: empty until its first sync completes
        node = self.member_node(
            group, member.spec, primary.node if primary else None, work.parameters, work.access
        )
        node.node_dir.mkdir(parents=True, exist_ok=True)
        seen["live"] = work.parameters.immediate()
        seen["acl"] = work.access.fingerprint  # in the configuration it starts with
        restore = member.spec.restore
        if primary is None and restore is not None and not work.observed.get("restored"):
            if not seen.get("restore_started"):
                work.group_events.append(events.restore_started(restore.label))
            node = await seed_first_start(self._snapshots, restore, node, seen)
            seen["has_data"] = True
        else:
            discard_rdb(node.node_dir)
        # A member may bind either endpoint: its certificate names them too.
        await ensure_certificate(
            self._layout,
            node,
            member.id,
            [node.address, group.primary_endpoint, group.reader_endpoint],
        )
        self._host.start(node)
        member.running = True
        member.info = None
        work.ready = False

    async def _apply_settings(
        self, group: ReplicationGroupSpec, members: dict[str, Member], work: GroupPass
    ) -> None:
        wanted = {
            "min-replicas-to-write": "1" if group.automatic_failover else "0",
            "min-replicas-max-lag": str(MIN_REPLICAS_MAX_LAG),
        }
        await asyncio.gather(
            *(
                replication.set_config(m.address, m.node.port, wanted, tls=m.node.tls)
                for m in members.values()
                if m.answering
            )
        )
        for member in members.values():
            if not member.answering:
                continue
            seen = work.seen(member.id)
            changes = work.parameters.live_changes(seen.get("live", {}))
            if changes:
                await replication.set_config(
                    member.address, member.node.port, changes, tls=member.node.tls
                )
            seen["live"] = work.parameters.immediate()
            started = await asyncio.to_thread(live_config.started_config, member.node.node_dir)
            seen["pending_reboot"] = work.parameters.pending_reboot(started)
            seen["applying"] = work.parameters.wants_aof and not live_config.aof_ready(
                member.node.node_dir
            )
            if seen["applying"]:
                work.ready = False  # until the AOF exists, writes are not yet durable

    async def _keep_fronts(
        self, group: ReplicationGroupSpec, members: dict[str, Member], work: GroupPass
    ) -> None:
        """A member in TransitEncryptionMode preferred has its front (engines/tls_front.py)
        while its Redis runs; no other member has one, nor its directory. A front that
        died, or that no longer relays while its Redis answers (hung), is started anew."""
        for member in members.values():
            front_dir = member.node.node_dir / FRONT_DIR
            running = front_dir in work.processes
            if not member.spec.preferred_tls:
                if running:
                    await self._host.stop(front_dir, grace=0)
                if front_dir.exists():  # its config holds the control password
                    await asyncio.to_thread(shutil.rmtree, front_dir, ignore_errors=True)
                continue
            if not member.running:
                continue
            if running and member.answering:
                running = await probes.relays_redis(member.address, member.spec.port, FRONT_PROBE)
                if not running:
                    await self._host.stop(front_dir, grace=0)
            if running:
                continue
            if front_dir.exists():  # it ran before: it stopped or hung, not first started
                log.warning(
                    "replication group %s: the front of %s had stopped or hung; restarting it",
                    group.group_id,
                    member.id,
                )
                work.member_events.append((member.id, events.front_restarted("0001")))
            front = FrontSpec(
                front_dir, member.address, member.spec.port, CONTROL_USER, control.password() or ""
            )
            self._host.start_front(front)

    async def _migrate_transit(
        self,
        group: ReplicationGroupSpec,
        members: dict[str, Member],
        primary: Member,
        work: GroupPass,
    ) -> None:
        """One step of a TransitEncryptionMode change, once the group is healthy: a
        replica at a time is restarted in the group's mode (and resyncs); when only
        the primary is left, its role moves to a migrated replica without losing a
        write, and the old primary follows as a replica."""
        wanted = _transit(group)
        pending = [m for m in members.values() if _transit(m.spec) != wanted]
        if not pending:
            return
        work.ready = False  # the group stays `modifying` until every member has moved
        if not all(m.answering and work.seen(m.id).get("synced") for m in members.values()):
            return
        replica = next((m for m in pending if m.id != primary.id), None)
        if replica is None:
            others = [m for m in members.values() if m.id != primary.id]
            if others:
                await failover.switch_over(group, members, others[0], work)
            return
        await self._host.stop(replica.node.node_dir)
        await self._host.stop(replica.node.node_dir / FRONT_DIR, grace=0)  # frees the port
        spec = replace(replica.spec, transit_encryption=wanted[0], transit_mode=group.transit_mode)
        async with self._store.transaction() as tx:
            await tx.update_spec(CACHE_CLUSTER, replica.id, dump(spec), replica.record.status)
        replica.spec = spec
        replica.running = False
        log.info("replication group %s: %s moves to %s", group.group_id, replica.id, wanted)
        await self._restart_in_place(group, replica, primary, work)

    async def _apply_access(
        self, group: ReplicationGroupSpec, members: dict[str, Member], work: GroupPass
    ) -> None:
        """The ACL users, and the IAM users' token hashes, on every answering member
        (ACL users do not replicate), each member on its own."""
        fingerprint = work.access.fingerprint
        for member in members.values():
            if not member.answering:
                continue
            seen = work.seen(member.id)
            try:
                if seen.get("acl") != fingerprint:
                    await replication.set_acl_users(
                        member.address, member.node.port, work.access.users, tls=member.node.tls
                    )
                    seen["acl"] = fingerprint
                await self._connect_tokens(group, member, work)
            except EngineError as exc:
                log.warning("replication group %s: %s: %s", group.group_id, member.id, exc)
                work.ready = False

    async def _connect_tokens(
        self, group: ReplicationGroupSpec, member: Member, work: GroupPass
    ) -> None:
        """Each IAM user's passwords become the hashes of exactly the connect tokens
        valid now (ADR 14), and its connections older than 12 hours are closed."""
        iam_users = work.access.iam_users
        if not iam_users:
            return
        now = self._clock.now()
        node = member.node
        for user in iam_users:
            # Signing a new window (about 1,000 signatures) is CPU work: not on the loop.
            wanted = await asyncio.to_thread(
                self._tokens.hashes, group.group_id, work.access.region, user, now
            )
            held = await replication.acl_passwords(
                member.address, node.port, user.name, tls=node.tls
            )
            if held is None:
                work.ready = False
                continue
            hashes, nopass = held
            add, remove = (wanted, set()) if nopass else (wanted - hashes, hashes - wanted)
            await replication.change_passwords(
                member.address,
                node.port,
                user.name,
                sorted(add),
                sorted(remove),
                reset=nopass,
                tls=node.tls,
            )
        clients = await replication.clients_of(
            member.address, node.port, {u.name for u in iam_users}, tls=node.tls
        )
        await replication.kill_clients(
            member.address,
            node.port,
            [c for c, age in clients or [] if age >= self.iam_connection_max_age],
            tls=node.tls,
        )

    async def _place_endpoints(
        self,
        group: ReplicationGroupSpec,
        members: dict[str, Member],
        primary: Member,
        work: GroupPass,
    ) -> None:
        reader = next(
            (
                m
                for m in members.values()
                if m.id != primary.id and m.answering and work.seen(m.id).get("synced")
            ),
            primary,
        )
        wanted = {m.id: [m.address] for m in members.values()}
        wanted[primary.id].append(group.primary_endpoint)
        wanted[reader.id].append(group.reader_endpoint)
        bound = {
            m.id: await replication.bound_addresses(m.address, m.node.port, tls=m.node.tls)
            for m in members.values()
            if m.answering
        }
        # Release first: an address can only be bound once it is free.
        for member_id, addresses in bound.items():
            if addresses is None:
                continue
            member = members[member_id]
            lost = [a for a in addresses if a not in wanted[member_id]]
            if lost:
                await replication.bind(
                    member.address, member.node.port, wanted[member_id], tls=member.node.tls
                )
                for address in lost:
                    await replication.drop_clients(
                        member.address, member.node.port, address, tls=member.node.tls
                    )
        for member_id, addresses in bound.items():
            if addresses is None or sorted(addresses) == sorted(wanted[member_id]):
                continue
            member = members[member_id]
            if not await replication.bind(
                member.address, member.node.port, wanted[member_id], tls=member.node.tls
            ):
                work.ready = False
        work.observed["reader"] = reader.id
        await self._spread_readers(group, members, primary, work)

    async def _spread_readers(
        self,
        group: ReplicationGroupSpec,
        members: dict[str, Member],
        primary: Member,
        work: GroupPass,
    ) -> None:
        """Where nftables can be used, new reader connections go to every synced replica
        in turn instead of only to the one that binds the reader endpoint."""
        if not reader_spread.available():
            return
        replicas = [
            m.address
            for m in members.values()
            if m.id != primary.id and m.answering and work.seen(m.id).get("synced")
        ]
        current = await asyncio.to_thread(reader_spread.targets, group.reader_endpoint)
        if current != replicas and (current is not None or replicas):
            await asyncio.to_thread(
                reader_spread.spread, group.reader_endpoint, group.port, replicas
            )

    def _update_sync_flags(
        self, members: dict[str, Member], primary: Member, work: GroupPass
    ) -> None:
        for member in members.values():
            seen = work.seen(member.id)
            info = member.info
            if member.id == primary.id:
                up = member.answering
            else:
                up = (
                    info is not None
                    and info.role == "replica"
                    and info.link_up
                    and not info.syncing
                    and info.primary_address == primary.address
                )
            seen["synced"] = bool(up)
            if up:
                seen["has_data"] = True
            if not up:
                work.ready = False
                # A replica just pointed at a new primary is catching up, not failing.
                if seen["status"] == statuses.NODE_AVAILABLE and member.id not in work.repointed:
                    seen["status"] = statuses.NODE_REBOOTING
                    seen["recovering"] = True
                    work.member_events.append((member.id, events.recovery_started(["0001"])))
                continue
            if seen["status"] == statuses.NODE_CREATING:
                work.member_events.append(
                    (member.id, events.node_added("0001", member.spec.nodes[0].zone))
                )
            if seen.pop("recovering", False):
                work.member_events.append((member.id, events.recovery_finished(["0001"])))
            seen["status"] = statuses.NODE_AVAILABLE

    async def _record(
        self,
        record: Record,
        group: ReplicationGroupSpec,
        members: dict[str, Member],
        work: GroupPass,
    ) -> None:
        now = self._clock.now()
        pending = len(group.test_failovers) > work.observed.get("test_failovers", 0) or (
            group.switchover_seq > work.observed.get("switchover_seq", 0)
        )
        restoring = any(m.spec.restore is not None for m in members.values()) and not (
            work.observed.get("restored")
        )
        status: str | None = statuses.AVAILABLE if work.ready and not pending else None
        if work.restore_failed:
            status = statuses.RESTORE_FAILED
        elif status == statuses.AVAILABLE and restoring:
            work.observed["restored"] = True
            source = next(m.spec.restore for m in members.values() if m.spec.restore is not None)
            assert source is not None
            work.group_events.append(events.restore_finished(source.label))
        elif status is None and restoring and record.status in _NEW:
            status = statuses.RESTORING
        if work.ready and all(
            work.seen(m.id).get("acl") == work.access.fingerprint for m in members.values()
        ):
            work.observed["acl"] = work.access.fingerprint
            work.observed["acl_group"] = work.access.user_group
        async with self._store.transaction() as tx:
            changed = await tx.update_observed(
                REPLICATION_GROUP,
                group.group_id,
                work.observed,
                status=status,
                generation=record.generation,
            )
            if changed and record.status in _NEW and status == statuses.AVAILABLE:
                work.group_events.append(events.replication_group_created(group.group_id))
            if changed and (group.user_group_ids or record.observed.get("acl_group")):
                await settle_user_groups(tx)
            for message in work.group_events:
                await tx.add_event(
                    events.Event(events.REPLICATION_GROUP, group.group_id, message, now)
                )
            for member_id, message in work.member_events:
                await tx.add_event(events.Event(events.CACHE_CLUSTER, member_id, message, now))
            for member in members.values():
                seen = work.seen(member.id)
                if seen["status"] == statuses.NODE_AVAILABLE:
                    member_status: str | None = statuses.AVAILABLE
                elif seen.get("recovering"):
                    member_status = statuses.REBOOTING_CLUSTER
                else:
                    member_status = None  # still creating
                await tx.update_observed(
                    CACHE_CLUSTER,
                    member.id,
                    {
                        "nodes": {
                            "0001": {
                                "status": seen["status"],
                                "pending_reboot": seen.get("pending_reboot", []),
                                "applying": seen.get("applying", False),
                            }
                        }
                    },
                    status=member_status,
                    generation=member.record.generation,
                )

    async def _remove_member(self, record: Record) -> None:
        cluster_dir = self._layout.cluster(record.id)
        running = self._host.find_all(cluster_dir)
        await asyncio.gather(*(self._host.stop(path) for path in running))
        shutil.rmtree(cluster_dir, ignore_errors=True)
        async with self._store.transaction() as tx:
            if await tx.get(CACHE_CLUSTER, record.id) is not None:
                await tx.delete(CACHE_CLUSTER, record.id)
                await tx.add_event(
                    events.Event(
                        events.CACHE_CLUSTER, record.id, events.cluster_deleted(), self._clock.now()
                    )
                )

    async def _finish_delete(
        self, group: ReplicationGroupSpec, live: dict[str, Record]
    ) -> float | None:
        """Delete the group; with RetainPrimaryCluster its primary stays as a plain cluster."""
        for member_id, member_record in live.items():
            spec = load(CacheClusterSpec, member_record.spec)
            node = self.member_node(group, spec, None)
            bound = await replication.bound_addresses(node.address, node.port, tls=node.tls)
            if bound is not None:
                await replication.make_primary(node.address, node.port, tls=node.tls)
                await replication.set_config(
                    node.address, node.port, {"min-replicas-to-write": "0"}, tls=node.tls
                )
                if bound != [node.address]:
                    await replication.bind(node.address, node.port, [node.address], tls=node.tls)
                    for address in bound:
                        if address != node.address:
                            await replication.drop_clients(
                                node.address, node.port, address, tls=node.tls
                            )
            # The retained primary becomes a plain cluster; its own reconciler says
            # `available` once its engine answers.
            async with self._store.transaction() as tx:
                await tx.update_spec(
                    CACHE_CLUSTER, member_id, dump(_standalone(spec, group)), statuses.MODIFYING
                )
            self._enqueue(CACHE_CLUSTER, member_id)
        if reader_spread.available():
            await asyncio.to_thread(reader_spread.stop, group.reader_endpoint)
        async with self._store.transaction() as tx:
            await tx.delete(REPLICATION_GROUP, group.group_id)
            await settle_user_groups(tx)  # a user group it held may be waiting for it
            await tx.add_event(
                events.Event(
                    events.REPLICATION_GROUP,
                    group.group_id,
                    events.replication_group_deleted(group.group_id),
                    self._clock.now(),
                )
            )
        return None


def _transit(spec: CacheClusterSpec | ReplicationGroupSpec) -> tuple[bool, str]:
    """TransitEncryptionEnabled and its mode (none when disabled)."""
    return spec.transit_encryption, spec.transit_mode if spec.transit_encryption else ""


def _standalone(spec: CacheClusterSpec, group: ReplicationGroupSpec) -> CacheClusterSpec:
    """The kept primary as a cluster of its own, still asking for the group's AUTH token."""
    return replace(
        spec,
        replication_group_id=None,
        auth_tokens=group.auth_tokens,
        auth_token_modified=group.auth_token_modified,
    )


async def _nothing() -> None:
    return None
