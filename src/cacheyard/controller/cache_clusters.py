"""The cache cluster reconciler: one idempotent pass toward the spec.

Each pass looks at what really runs (processes found by their directory,
probes that must answer) and takes the next steps: start what is missing,
restart what a reboot asked for, stop what was removed, and only then write
``available``. A pass that is not done asks to be run again shortly, so the
loop is level-triggered and survives a control-plane crash at any point.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cacheyard.controller.keys import CACHE_CLUSTER, SNAPSHOT
from cacheyard.controller.layout import Layout
from cacheyard.controller.parameters import NodeParameters, node_parameters
from cacheyard.controller.restore import RestoreFailed, discard_rdb, seed_first_start
from cacheyard.controller.sasl_users import sasl_users, users_fingerprint, with_control_user
from cacheyard.controller.tls import (
    endpoint_tls,
    ensure_certificate,
    ensure_endpoint_certificate,
    redis_listeners,
    started_users,
)
from cacheyard.domain import events, statuses
from cacheyard.domain.acl import fingerprint, node_users
from cacheyard.domain.cache_clusters import CacheClusterSpec, NodePlan
from cacheyard.domain.clock import Clock
from cacheyard.domain.codec import dump, load
from cacheyard.domain.node_types import node_type
from cacheyard.domain.parameters import ParameterCatalog
from cacheyard.engines import control, live_config, replication, sasl
from cacheyard.engines.discovery import DiscoverySpec, write_discovery_config
from cacheyard.engines.errors import EngineError, EngineStartError
from cacheyard.engines.host import EngineHost
from cacheyard.engines.spec import NodeSpec
from cacheyard.store import Store
from cacheyard.store.snapshot_files import SnapshotFiles

log = logging.getLogger(__name__)

READY_TIMEOUT = 2.0
POLL = 0.01
RETRY = 0.1
START_RETRY = 1.0
STOP_GRACE = 5.0
# How long a live engine may go without answering before it is killed and restarted.
HUNG_AFTER = timedelta(seconds=10)


_NEW = (statuses.CREATING, statuses.RESTORING)


def _grace(spec: CacheClusterSpec) -> float:
    """How long a stopping engine may take. Memcached keeps nothing worth a clean
    shutdown and only reacts to SIGTERM on its once-a-second clock, so it is
    killed at once; Redis gets time to finish writing its files."""
    return 0.0 if spec.engine == "memcached" else STOP_GRACE


@dataclass
class _Pass:
    """What one pass observed and what it has to record."""

    observed: dict[str, Any]
    messages: list[str]
    parameters: NodeParameters
    # A SASL Memcached cluster's users and clear passwords (controller/sasl_users.py).
    sasl_users: tuple[tuple[str, str], ...] = ()
    ready: bool = True
    restore_failed: bool = False

    def node(self, node_id: str) -> dict[str, Any]:
        nodes: dict[str, dict[str, Any]] = self.observed.setdefault("nodes", {})
        seen = nodes.setdefault(node_id, {})
        # A cluster that was a group member comes with only the status its group wrote.
        seen.setdefault("status", statuses.NODE_CREATING)
        seen.setdefault("restarted", 0)
        seen.setdefault("recovering", False)
        return seen


class CacheClusterReconciler:
    def __init__(
        self,
        store: Store,
        host: EngineHost,
        layout: Layout,
        clock: Clock,
        parameters: ParameterCatalog,
        snapshots: SnapshotFiles,
    ) -> None:
        self._store = store
        self._host = host
        self._layout = layout
        self._clock = clock
        self._parameters = parameters
        self._snapshots = snapshots

    def node_spec(
        self,
        spec: CacheClusterSpec,
        plan: NodePlan,
        parameters: NodeParameters | None = None,
        sasl_users: Sequence[tuple[str, str]] = (),
    ) -> NodeSpec:
        kind = node_type(spec.node_type)
        overrides = dict(parameters.overrides) if parameters is not None else {}
        node_dir = self._layout.node(spec.cluster_id, plan.node_id)
        return NodeSpec(
            engine="redis" if spec.engine == "redis" else "memcached",
            node_dir=node_dir,
            address=plan.address,
            max_memory_mb=kind.memory_mb,
            threads=kind.memcached_threads,
            redis_config=overrides if spec.engine == "redis" else {},
            memcached_options=overrides if spec.engine == "memcached" else {},
            **redis_listeners(
                self._layout, node_dir, spec.port, spec.required_tls, spec.preferred_tls
            ),
            acl_users=started_users(node_users(spec.auth_tokens, None)),
            control_password=control.password() if spec.engine == "redis" else None,
            sasl_users=with_control_user(sasl_users) if spec.sasl_user_group else (),
        )

    async def reconcile(self, cluster_id: str) -> float | None:
        async with self._store.transaction() as tx:
            record = await tx.get(CACHE_CLUSTER, cluster_id)
            if record is not None:
                spec = load(CacheClusterSpec, record.spec)
                parameters = await node_parameters(
                    tx, self._parameters, spec.parameter_group, spec.family
                )
                final = await tx.get(SNAPSHOT, spec.final_snapshot) if spec.final_snapshot else None
                sasl = await sasl_users(tx, spec.sasl_user_group) if spec.sasl_user_group else ()
        cluster_dir = self._layout.cluster(cluster_id)
        if record is None:
            await self._remove_everything(cluster_dir)
            return None
        if spec.deleting:
            if final is not None and final.status == statuses.SNAPSHOT_CREATING:
                return RETRY  # the final snapshot is read from the running engine
            if final is not None and final.status == statuses.SNAPSHOT_FAILED:
                await self._keep_after_failed_final_snapshot(spec, final.id)
                return 0.0
            return await self._delete(spec, cluster_dir)
        if record.status == statuses.RESTORE_FAILED:
            return None
        work = _Pass(
            observed=dict(record.observed), messages=[], parameters=parameters, sasl_users=sasl
        )
        try:
            await self._remove_stray_nodes(spec, cluster_dir, work)
            if spec.engine == "memcached":
                await self._boot_discovery(spec)
            await self._converge_nodes(spec, work)
            if spec.engine == "memcached" and work.ready:
                await self._converge_discovery(spec, work)
            if work.ready:
                await self._apply_parameters(spec, work)
        except RestoreFailed as exc:
            log.warning("cluster %s: restore failed: %s", cluster_id, exc)
            await self._fail_restore(spec, work, str(exc))
            await self._record(record.generation, record.status, spec, work)
            return None
        except EngineStartError as exc:
            log.warning("cluster %s: %s", cluster_id, exc)
            work.ready = False
            await self._record(record.generation, record.status, spec, work)
            return START_RETRY
        await self._record(record.generation, record.status, spec, work)
        return None if work.ready else RETRY

    async def _keep_after_failed_final_snapshot(self, spec: CacheClusterSpec, name: str) -> None:
        """A delete whose final snapshot failed is called off: the data has no other copy."""
        kept = replace(spec, deleting=False, final_snapshot=None)
        async with self._store.transaction() as tx:
            await tx.update_spec(CACHE_CLUSTER, spec.cluster_id, dump(kept), statuses.AVAILABLE)
            await tx.add_event(
                events.Event(
                    events.CACHE_CLUSTER,
                    spec.cluster_id,
                    events.delete_called_off(name),
                    self._clock.now(),
                )
            )

    async def _apply_parameters(self, spec: CacheClusterSpec, work: _Pass) -> None:
        """Immediate parameters live on every node; the rest reported as pending
        until the node restarts with them."""
        for plan in spec.nodes:
            seen = work.node(plan.node_id)
            node_dir = self._layout.node(spec.cluster_id, plan.node_id)
            users = node_users(spec.auth_tokens, None)
            if spec.engine == "redis" and seen.get("acl") != fingerprint(users):
                node = self.node_spec(spec, plan)
                try:
                    await replication.set_acl_users(node.address, node.port, users, tls=node.tls)
                except EngineError as exc:
                    log.warning("cluster %s: %s", spec.cluster_id, exc)
                    work.ready = False
                    continue
                seen["acl"] = fingerprint(users)
            if spec.sasl_user_group and seen.get("sasl") != users_fingerprint(work.sasl_users):
                # Cyrus reads the user database at every login: new files take effect
                # for new connections, and connected clients stay.
                node = self.node_spec(spec, plan, work.parameters, work.sasl_users)
                await asyncio.to_thread(sasl.write_files, node)
                seen["sasl"] = users_fingerprint(work.sasl_users)
            if spec.engine == "redis":
                changes = work.parameters.live_changes(seen.get("live", {}))
                if changes:
                    try:
                        node = self.node_spec(spec, plan)
                        await replication.set_config(node.address, node.port, changes, tls=node.tls)
                    except EngineError as exc:
                        log.warning("cluster %s: %s", spec.cluster_id, exc)
                        work.ready = False
                        continue
                seen["live"] = work.parameters.immediate()
            started = await asyncio.to_thread(live_config.started_config, node_dir)
            seen["pending_reboot"] = work.parameters.pending_reboot(started)
            seen["applying"] = work.parameters.wants_aof and not live_config.aof_ready(node_dir)
            if seen["applying"]:
                work.ready = False  # until the AOF exists, writes are not yet durable

    async def _fail_restore(self, spec: CacheClusterSpec, work: _Pass, reason: str) -> None:
        """Nothing but the new cluster's own processes is touched: they are stopped,
        and the cluster stays in restore-failed until it is deleted."""
        running = self._host.find_all(self._layout.cluster(spec.cluster_id))
        await asyncio.gather(*(self._host.stop(path, grace=0) for path in running))
        assert spec.restore is not None
        work.ready = False
        work.restore_failed = True
        work.messages.append(events.restore_failed(spec.restore.label, reason))

    async def _record(
        self, generation: int, status: str, spec: CacheClusterSpec, work: _Pass
    ) -> None:
        now = self._clock.now()
        recovering = any(n.get("recovering") for n in work.observed.get("nodes", {}).values())
        restoring = spec.restore is not None and not work.observed.get("restored")
        if work.restore_failed:
            new_status = statuses.RESTORE_FAILED
        elif work.ready:
            new_status = statuses.AVAILABLE
            if restoring:
                assert spec.restore is not None
                work.observed["restored"] = True
                work.messages.append(events.restore_finished(spec.restore.label))
        elif recovering and status == statuses.AVAILABLE:
            new_status = statuses.REBOOTING_CLUSTER
        elif restoring and status in (statuses.CREATING, statuses.RESTORING):
            new_status = statuses.RESTORING
        else:
            new_status = None
        async with self._store.transaction() as tx:
            changed = await tx.update_observed(
                CACHE_CLUSTER,
                spec.cluster_id,
                work.observed,
                status=new_status,
                generation=generation,
            )
            for message in work.messages:
                await tx.add_event(
                    events.Event(events.CACHE_CLUSTER, spec.cluster_id, message, now)
                )
            if changed and status in _NEW and new_status == statuses.AVAILABLE:
                await tx.add_event(
                    events.Event(
                        events.CACHE_CLUSTER, spec.cluster_id, events.cluster_created(), now
                    )
                )

    async def _converge_nodes(self, spec: CacheClusterSpec, work: _Pass) -> None:
        running = self._host.find_all(self._layout.cluster(spec.cluster_id))
        to_wait: list[tuple[NodePlan, NodeSpec]] = []
        for plan in spec.nodes:
            node = self.node_spec(spec, plan, work.parameters, work.sasl_users)
            seen = work.node(plan.node_id)
            process = running.get(node.node_dir)
            if process is not None and plan.reboot_seq > seen["restarted"]:
                await self._host.stop(node.node_dir, grace=_grace(spec))
                seen["status"] = statuses.NODE_REBOOTING
                process = None
            if process is None:
                if seen["status"] == statuses.NODE_AVAILABLE:
                    seen["status"] = statuses.NODE_REBOOTING
                    seen["recovering"] = True
                    work.messages.append(events.recovery_started([plan.node_id]))
                node.node_dir.mkdir(parents=True, exist_ok=True)
                seen["live"] = work.parameters.immediate()
                # The ACL users it starts with, from its configuration.
                seen["acl"] = fingerprint(node_users(spec.auth_tokens, None))
                seen["sasl"] = users_fingerprint(work.sasl_users)  # in the files it starts with
                if spec.restore is not None and not work.observed.get("restored"):
                    node = await self._seed(spec, node, seen, work)
                else:
                    discard_rdb(node.node_dir)
                await ensure_certificate(self._layout, node, spec.cluster_id, [node.address])
                self._host.start(node)
            to_wait.append((plan, node))
        answers = await asyncio.gather(*(self._wait_ready(node) for _, node in to_wait))
        for (plan, node), ready in zip(to_wait, answers, strict=True):
            seen = work.node(plan.node_id)
            if not ready:
                work.ready = False
                await self._handle_unanswered(plan, node, seen, work)
                continue
            seen.pop("unanswered_since", None)
            if seen["status"] == statuses.NODE_CREATING:
                work.messages.append(events.node_added(plan.node_id, plan.zone))
            if seen.get("recovering"):
                work.messages.append(events.recovery_finished([plan.node_id]))
                seen["recovering"] = False
            if plan.reboot_seq > seen["restarted"]:
                seen["restarted"] = plan.reboot_seq
                work.messages.append(events.nodes_restarted([plan.node_id]))
            seen["status"] = statuses.NODE_AVAILABLE

    async def _seed(
        self, spec: CacheClusterSpec, node: NodeSpec, seen: dict[str, Any], work: _Pass
    ) -> NodeSpec:
        assert spec.restore is not None
        if not seen.get("restore_announced"):
            work.messages.append(events.restore_started(spec.restore.label))
            seen["restore_announced"] = True
        return await seed_first_start(self._snapshots, spec.restore, node, seen)

    async def _handle_unanswered(
        self, plan: NodePlan, node: NodeSpec, seen: dict[str, Any], work: _Pass
    ) -> None:
        """A node that answered before and now does not is not available. If its
        process stays alive without answering for HUNG_AFTER, it is hung: kill it
        so the next pass restarts it in place. (A node that is still starting or
        loading its data was never available, so it is left alone.)"""
        now = self._clock.now()
        if seen["status"] == statuses.NODE_AVAILABLE:
            seen["status"] = statuses.NODE_REBOOTING
            seen["recovering"] = True
            seen["unanswered_since"] = now.isoformat()
            work.messages.append(events.recovery_started([plan.node_id]))
            return
        since = seen.get("unanswered_since")
        if since is not None and now - datetime.fromisoformat(since) >= HUNG_AFTER:
            log.warning("node %s/%s is hung: restarting it", plan.node_id, node.address)
            await self._host.stop(node.node_dir, grace=0)
            del seen["unanswered_since"]

    async def _wait_ready(self, node: NodeSpec) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if await self._host.probe(node, timeout=0.25):
                return True
            if time.monotonic() > deadline or self._host.find(node.node_dir) is None:
                return False
            await asyncio.sleep(POLL)

    def _discovery_spec(self, spec: CacheClusterSpec) -> DiscoverySpec:
        assert spec.configuration_address is not None
        endpoint_dir = self._layout.config_endpoint(spec.cluster_id)
        return DiscoverySpec(
            node_dir=endpoint_dir,
            address=spec.configuration_address,
            port=spec.port,
            version=spec.discovery_version,
            nodes=tuple((n.address, n.address, spec.port) for n in spec.nodes),
            tls=endpoint_tls(self._layout, endpoint_dir) if spec.transit_encryption else None,
        )

    async def _boot_discovery(self, spec: CacheClusterSpec) -> None:
        """Start a missing configuration endpoint early: its Python start-up then
        overlaps the engines'. (A running one learns of new nodes only once they
        answer, in :meth:`_converge_discovery`.) A TLS cluster's endpoint gets its
        certificate, naming the endpoint's address, first."""
        discovery = self._discovery_spec(spec)
        if self._host.find(discovery.node_dir) is None:
            discovery.node_dir.mkdir(parents=True, exist_ok=True)
            write_discovery_config(discovery)
            await ensure_endpoint_certificate(self._layout, discovery, spec.cluster_id)
            self._host.start_discovery(discovery)

    async def _converge_discovery(self, spec: CacheClusterSpec, work: _Pass) -> None:
        await self._boot_discovery(spec)
        discovery = self._discovery_spec(spec)
        write_discovery_config(discovery)
        deadline = time.monotonic() + READY_TIMEOUT
        while not await self._host.probe_discovery(discovery):
            if time.monotonic() > deadline:
                work.ready = False
                return
            await asyncio.sleep(POLL)

    async def _remove_stray_nodes(
        self, spec: CacheClusterSpec, cluster_dir: Path, work: _Pass
    ) -> None:
        nodes_dir = cluster_dir / "nodes"
        if not nodes_dir.is_dir():
            return
        wanted = set(spec.node_ids)
        for node_dir in sorted(nodes_dir.iterdir()):
            if node_dir.name in wanted:
                continue
            await self._host.stop(node_dir, grace=_grace(spec))
            shutil.rmtree(node_dir, ignore_errors=True)
            work.observed.get("nodes", {}).pop(node_dir.name, None)
            work.messages.append(events.node_removed(node_dir.name))

    async def _delete(self, spec: CacheClusterSpec, cluster_dir: Path) -> float | None:
        if not await self._remove_everything(cluster_dir, grace=_grace(spec)):
            return RETRY
        async with self._store.transaction() as tx:
            await tx.delete(CACHE_CLUSTER, spec.cluster_id)
            await tx.add_event(
                events.Event(
                    events.CACHE_CLUSTER,
                    spec.cluster_id,
                    events.cluster_deleted(),
                    self._clock.now(),
                )
            )
        return None

    async def _remove_everything(self, cluster_dir: Path, grace: float = STOP_GRACE) -> bool:
        """Stop every process under the cluster's directory, then remove it."""
        running = self._host.find_all(cluster_dir)
        await asyncio.gather(*(self._host.stop(path, grace=grace) for path in running))
        if self._host.find_all(cluster_dir):
            return False
        shutil.rmtree(cluster_dir, ignore_errors=True)
        return True
