"""A cache's parameter group, as its nodes must run with it.

Immediate parameters are applied to running nodes with CONFIG SET; the others
are written to the node's configuration at its next start and reported as
pending until then. What a node was started with is read back from the files
the engine host wrote for that start, so the report is about the process
itself, not about what the control plane remembers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cacheyard.controller.keys import CACHE_PARAMETER_GROUP
from cacheyard.domain.parameters import ParameterCatalog, ParameterFamily
from cacheyard.store import Transaction

IMMEDIATE = "immediate"


@dataclass(frozen=True)
class NodeParameters:
    family: ParameterFamily | None = None
    overrides: Mapping[str, str] = field(default_factory=dict)

    def _default(self, name: str) -> str | None:
        if self.family is None:
            return None
        return self.family.defaults().get(name)

    def _is_immediate(self, name: str) -> bool:
        if self.family is None:
            return False
        return any(p.name == name and p.change_type == IMMEDIATE for p in self.family.parameters)

    @property
    def wants_aof(self) -> bool:
        return self.overrides.get("appendonly") == "yes"

    def immediate(self) -> dict[str, str]:
        return {n: v for n, v in self.overrides.items() if self._is_immediate(n)}

    def live_changes(self, live: Mapping[str, str]) -> dict[str, str]:
        """The CONFIG SET that brings a node whose immediate values are ``live`` (as
        last set, or as started) to the group's: changed values, and reset ones
        back to their defaults."""
        wanted = self.immediate()
        changes: dict[str, str] = {}
        for name in sorted(set(wanted) | {n for n in live if self._is_immediate(n)}):
            value = wanted.get(name, self._default(name))
            if value is not None and live.get(name) != value:
                changes[name] = value
        return changes

    def pending_reboot(self, started: Mapping[str, str]) -> list[str]:
        """Requires-reboot parameters whose value differs from the one the running
        process was started with."""
        if self.family is None:
            return []
        pending = []
        for info in self.family.parameters:
            if info.change_type == IMMEDIATE:
                continue
            wanted = self.overrides.get(info.name, info.default)
            if started.get(info.name, info.default) != wanted:
                pending.append(info.name)
        return pending


async def node_parameters(
    tx: Transaction, catalog: ParameterCatalog, group_name: str, family: str
) -> NodeParameters:
    """The parameters of a group (a group that is gone counts as the defaults)."""
    if family not in catalog.families:
        return NodeParameters()
    record = await tx.get(CACHE_PARAMETER_GROUP, group_name)
    values = dict(record.spec.get("values", {})) if record is not None else {}
    return NodeParameters(catalog.families[family], values)
