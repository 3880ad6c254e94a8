"""Fault injection for people and tests: kill, pause, resume, isolate, heal a node.

Beyond AWS: users rehearse outages with the same tool the chaos tests use.
The fault is real (a signal to the engine process, nftables rules on its
address); what follows it is the service's ordinary reaction.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

from cacheyard.controller.keys import CACHE_CLUSTER
from cacheyard.controller.layout import Layout
from cacheyard.domain import faults
from cacheyard.engines import isolation
from cacheyard.engines.host import EngineHost
from cacheyard.store import Store

_SIGNALS = {"kill": signal.SIGKILL, "pause": signal.SIGSTOP, "resume": signal.SIGCONT}
ACTIONS = (*_SIGNALS, "isolate", "heal")


class FaultInjector:
    def __init__(
        self,
        store: Store,
        host: EngineHost,
        layout: Layout,
        notify: Callable[[str, str], None],
    ) -> None:
        self._store = store
        self._host = host
        self._layout = layout
        self._notify = notify

    async def inject(self, action: str, cluster_id: str, node_id: str = "0001") -> str:
        """Do it and say what was done."""
        if action not in ACTIONS:
            raise faults.InvalidParameterValueException(
                f"Unknown fault {action!r}; choose one of {', '.join(ACTIONS)}."
            )
        async with self._store.transaction() as tx:
            record = await tx.get(CACHE_CLUSTER, cluster_id.lower())
        if record is None:
            raise faults.CacheClusterNotFoundFault(f"CacheCluster {cluster_id} not found.")
        node = next((n for n in record.spec["nodes"] if n["node_id"] == node_id), None)
        if node is None:
            raise faults.InvalidParameterValueException(
                f"Cache node {node_id} not found in cluster {record.id}."
            )
        address = node["address"]
        if action in _SIGNALS:
            if not self._host.kill(self._layout.node(record.id, node_id), _SIGNALS[action]):
                raise faults.InvalidCacheClusterStateFault(
                    f"Cache node {node_id} of {record.id} has no running process."
                )
        else:
            reason = isolation.unavailable_reason()
            if reason is not None:
                raise faults.InvalidParameterValueException(f"Cannot {action}: {reason}.")
            if action == "isolate":
                isolation.isolate(address)
            else:
                isolation.heal(address)
        self._notify(CACHE_CLUSTER, record.id)
        return f"{action} {record.id}/{node_id} ({address})"
