"""Cache parameter groups' parameters: what each family offers and which values it takes.

The catalog is learned from the installed engines (``engines/parameter_probe.py``);
this module holds what Cacheyard decides on top of what the engines say: the
Redis directives it manages itself, the aliases it hides, ElastiCache's own
defaults, and how each Memcached parameter reaches the command line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from cacheyard.domain.faults import InvalidParameterValueException

# AWS's words. Redis parameters are "string" (yes/no and enums too) or
# "integer"; AWS documents Memcached's switches as "boolean" (0,1) and its
# growth factor as "float".
STRING = "string"
INTEGER = "integer"
BOOLEAN = "boolean"
FLOAT = "float"
IMMEDIATE = "immediate"
REQUIRES_REBOOT = "requires-reboot"

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_INTEGER = re.compile(r"0|-?[1-9][0-9]*")
_FLOAT = re.compile(r"[0-9]+(\.[0-9]+)?")
_RANGE = re.compile(r"(-?[0-9.]+)-(-?[0-9.]+)?")


@dataclass(frozen=True)
class ParameterInfo:
    name: str
    default: str  # the value a new parameter group has
    data_type: str
    allowed_values: str | None  # AWS's form: "yes,no", "0-2147483647", "1-"; None: any value
    modifiable: bool
    change_type: str
    description: str
    minimum_engine_version: str


@dataclass(frozen=True)
class ParameterFamily:
    family: str  # "redis7", "memcached1.6"
    engine: str
    engine_version: str
    parameters: tuple[ParameterInfo, ...]  # sorted by name
    _by_name: dict[str, ParameterInfo] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.parameters, key=lambda p: p.name))
        object.__setattr__(self, "parameters", ordered)
        object.__setattr__(self, "_by_name", {p.name: p for p in ordered})

    def get(self, name: str) -> ParameterInfo:
        info = self._by_name.get(name)
        if info is None:
            raise InvalidParameterValueException(
                f"Unrecognized parameter name {name} for cache parameter group family"
                f" {self.family}."
            )
        return info

    def validate(self, name: str, value: str) -> str:
        """The value to store: checked, and lowercased where the engine ignores case."""
        info = self.get(name)
        if not info.modifiable:
            raise InvalidParameterValueException(f"Parameter {name} is not modifiable.")
        step = self._multiple_of(name)
        if info.data_type in (INTEGER, FLOAT):
            if _accepts_number(info, value) and (step is None or int(value) % step == 0):
                return value
        elif info.allowed_values is None:
            return value  # free strings keep their case (notify-keyspace-events: E is not e)
        else:
            # Redis compares yes/no and enum words without case; memcached does not.
            candidate = value.lower() if self.engine == "redis" else value
            if candidate in info.allowed_values.split(","):
                return candidate
        allowed = info.allowed_values or f"any {info.data_type}"
        if step is not None:
            allowed += f", in multiples of {step}"
        raise InvalidParameterValueException(
            f"Invalid value for parameter {name}: {value!r}. Allowed values: {allowed}."
        )

    def defaults(self) -> dict[str, str]:
        return {p.name: p.default for p in self.parameters}

    def _multiple_of(self, name: str) -> int | None:
        option = MEMCACHED_PARAMETERS.get(name) if self.engine == "memcached" else None
        return option.multiple_of if option else None


@dataclass(frozen=True)
class ParameterCatalog:
    families: Mapping[str, ParameterFamily] = field(hash=False)

    def family(self, name: str) -> ParameterFamily:
        found = self.families.get(name)
        if found is None:
            valid = ", ".join(sorted(self.families)) or "none (no engine is installed)"
            raise InvalidParameterValueException(
                f"Invalid value for CacheParameterGroupFamily: {name}. Valid values are: {valid}."
            )
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            name: {
                "family": f.family,
                "engine": f.engine,
                "engine_version": f.engine_version,
                "parameters": [asdict(p) for p in f.parameters],
            }
            for name, f in self.families.items()
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParameterCatalog:
        """The inverse of to_dict; TypeError or KeyError when ``data`` is not of its shape."""
        return cls(
            {
                name: ParameterFamily(
                    family=f["family"],
                    engine=f["engine"],
                    engine_version=f["engine_version"],
                    parameters=tuple(ParameterInfo(**p) for p in f["parameters"]),
                )
                for name, f in data.items()
            }
        )


def _accepts_number(info: ParameterInfo, value: str) -> bool:
    if info.data_type == INTEGER:
        if not _INTEGER.fullmatch(value) or not INT64_MIN <= int(value) <= INT64_MAX:
            return False
    elif not _FLOAT.fullmatch(value):
        return False
    if info.allowed_values is None:
        return True
    number = Decimal(value)
    for item in info.allowed_values.split(","):
        bounds = _RANGE.fullmatch(item)
        if bounds is None:
            if number == Decimal(item):
                return True
        elif Decimal(bounds[1]) <= number and (bounds[2] is None or number <= Decimal(bounds[2])):
            return True
    return False


# Directives that make a node what it is (its identity, its supervision): the
# engine host refuses them in a node's configuration.
RESERVED_REDIS_DIRECTIVES = frozenset(
    {
        "bind",
        "port",
        "dir",
        "logfile",
        "daemonize",
        "pidfile",
        "include",
        "supervised",
        "replica-announce-ip",
        "bind-source-addr",
    }
)

# Redis directives that Cacheyard sets itself, or that make no sense on a
# managed node: they are never parameters of a group.
MANAGED_REDIS_DIRECTIVES = RESERVED_REDIS_DIRECTIVES | frozenset(
    {
        # Replicas are announced by their own address and port, set by the host.
        "replica-announce-port",
        # The node type decides the memory.
        "maxmemory",
        # Automatic failover decides when a primary refuses writes.
        "min-replicas-to-write",
        "min-replicas-max-lag",
        # Roles are set by the group reconciler (REPLICAOF), not by a file.
        "replicaof",
        # Only Sentinel and cluster failover read these; Cacheyard's failover chooses itself.
        "replica-priority",
        "replica-announced",
        # Replicas must mirror their primary (no writes, no evictions of their own)
        # for a promotion to lose nothing.
        "replica-read-only",
        "replica-ignore-maxmemory",
        # Authentication and users belong to AUTH and user groups, not to parameters.
        "requirepass",
        "masterauth",
        "masteruser",
        "aclfile",
        "acl-pubsub-default",
        # Clients reach a node over TCP on its own address only.
        "unixsocket",
        "unixsocketperm",
        "protected-mode",
        # Files in the node's directory are named and scheduled by Cacheyard
        # (snapshots are their own API, not `save`).
        "save",
        "dbfilename",
        "appenddirname",
        "appendfilename",
        "rdb-del-sync-files",
        # Commands and configs a managed service keeps locked.
        "enable-debug-command",
        "enable-protected-configs",
        "enable-module-command",
        # Cacheyard sets 0: the default of 5 s keeps a new replica's link down that long.
        "repl-diskless-sync-delay",
        # The engine log is Cacheyard's diagnostics: start failures are read from it.
        "loglevel",
        "always-show-logo",
        "crash-log-enabled",
        "crash-memcheck-enabled",
        # Host settings, not a cache's: kernel limits, CPU pinning, OOM killer,
        # process titles, firewall marks.
        "tcp-backlog",
        "disable-thp",
        "oom-score-adj",
        "oom-score-adj-values",
        "ignore-warnings",
        "set-proc-title",
        "proc-title-template",
        "server_cpulist",
        "bio_cpulist",
        "aof_rewrite_cpulist",
        "bgsave_cpulist",
        "socket-mark-id",
        "locale-collate",
        # The node type's vCPUs decide the I/O threads (ElastiCache's enhanced I/O).
        "io-threads",
        "io-threads-do-reads",
        # The host stops engines with SIGTERM, then SIGKILL after its own grace period.
        "shutdown-on-sigint",
        "shutdown-on-sigterm",
        "shutdown-timeout",
    }
)
# Whole families: TLS is a feature of its own, cluster mode is not supported,
# and the engine logs to its file, never to syslog.
MANAGED_REDIS_PREFIXES = ("tls-", "cluster-", "syslog-")

# Old names redis 7 still answers to (CONFIG GET * lists both): only the modern one is offered.
REDIS_ALIASES = {
    "slaveof": "replicaof",
    "slave-announce-ip": "replica-announce-ip",
    "slave-announce-port": "replica-announce-port",
    "slave-ignore-maxmemory": "replica-ignore-maxmemory",
    "slave-lazy-flush": "replica-lazy-flush",
    "slave-priority": "replica-priority",
    "slave-read-only": "replica-read-only",
    "slave-serve-stale-data": "replica-serve-stale-data",
    "min-slaves-max-lag": "min-replicas-max-lag",
    "min-slaves-to-write": "min-replicas-to-write",
    "repl-ping-slave-period": "repl-ping-replica-period",
    "cluster-slave-no-failover": "cluster-replica-no-failover",
    "cluster-slave-validity-factor": "cluster-replica-validity-factor",
    "hash-max-ziplist-entries": "hash-max-listpack-entries",
    "hash-max-ziplist-value": "hash-max-listpack-value",
    "list-max-ziplist-size": "list-max-listpack-size",
    "zset-max-ziplist-entries": "zset-max-listpack-entries",
    "zset-max-ziplist-value": "zset-max-listpack-value",
    "lua-time-limit": "busy-reply-threshold",
}

# ElastiCache's defaults, over the engine's own (appendonly no is redis' too, kept explicit).
ELASTICACHE_REDIS_DEFAULTS = {"maxmemory-policy": "volatile-lru", "appendonly": "no"}


def is_exposed_redis_directive(name: str) -> bool:
    """Whether a directive of ``CONFIG GET *`` is a parameter of a group."""
    return (
        name not in MANAGED_REDIS_DIRECTIVES
        and name not in REDIS_ALIASES
        and not name.startswith(MANAGED_REDIS_PREFIXES)
    )


@dataclass(frozen=True)
class MemcachedParameter:
    """An ElastiCache Memcached parameter, as memcached takes and reports it.

    ``flag`` is the argv words for a value ("{}" stands for it) or, for a
    boolean, the words for 1, ``off_flag`` those for 0. ``stats_words``
    translates what ``stats settings`` shows under ``stats_key`` into the
    parameter's value.
    """

    name: str
    flag: str
    stats_key: str
    data_type: str
    allowed_values: str | None  # None: the choices memcached -h lists
    description: str
    minimum_engine_version: str
    off_flag: str = ""
    stats_words: Mapping[str, str] = field(default_factory=dict)
    modifiable: bool = True
    multiple_of: int | None = None

    def argv(self, value: str) -> list[str]:
        if self.data_type == BOOLEAN:
            return (self.flag if value == "1" else self.off_flag).split()
        return [word.replace("{}", value) for word in self.flag.split()]


_YES_IS_1 = {"yes": "1", "no": "0"}
_NO_IS_1 = {"yes": "0", "no": "1"}
_SLAB_CHUNK_MAX = 524288  # memcached's default; item sizes must be multiples of it

MEMCACHED_PARAMETERS = {
    p.name: p
    for p in (
        MemcachedParameter(
            "backlog_queue_limit",
            "-b {}",
            "tcp_backlog",
            INTEGER,
            "1-2147483647",
            "The backlog queue limit.",
            "1.4.5",
            modifiable=False,
        ),
        MemcachedParameter(
            "binding_protocol",
            "-B {}",
            "binding_protocol",
            STRING,
            "ascii,auto",
            "The binding protocol: ascii, or auto (ascii and binary).",
            "1.4.5",
            stats_words={"auto-negotiate": "auto"},
        ),
        MemcachedParameter(
            "cas_disabled",
            "-C",
            "cas_enabled",
            BOOLEAN,
            "0,1",
            "If 1, check and set (CAS) is disabled and items take 8 bytes less.",
            "1.4.5",
            stats_words=_NO_IS_1,
        ),
        MemcachedParameter(
            "chunk_size",
            "-n {}",
            "chunk_size",
            INTEGER,
            "1-2147483647",
            "The minimum space, in bytes, allocated for the smallest item's key, value and flags.",
            "1.4.5",
        ),
        MemcachedParameter(
            "chunk_size_growth_factor",
            "-f {}",
            "growth_factor",
            FLOAT,
            "1.01-2",
            "The factor by which each slab class' chunk size grows over the previous one.",
            "1.4.5",
        ),
        MemcachedParameter(
            "disable_flush_all",
            "-F",
            "flush_enabled",
            BOOLEAN,
            "0,1",
            "If 1, the flush_all command is disabled.",
            "1.4.24",
            stats_words=_NO_IS_1,
        ),
        MemcachedParameter(
            "error_on_memory_exhausted",
            "-M",
            "evictions",
            BOOLEAN,
            "0,1",
            "If 1, memcached answers an error when memory is full instead of evicting items.",
            "1.4.5",
            stats_words={"on": "0", "off": "1"},
        ),
        MemcachedParameter(
            "hash_algorithm",
            "-o hash_algorithm={}",
            "hash_algorithm",
            STRING,
            None,
            "The hash table's hash algorithm.",
            "1.4.24",
        ),
        MemcachedParameter(
            "idle_timeout",
            "-o idle_timeout={}",
            "idle_timeout",
            INTEGER,
            "0-86400",
            "Seconds a client may stay idle before it is disconnected; 0 disables the timeout.",
            "1.4.33",
        ),
        MemcachedParameter(
            "lru_crawler",
            "-o lru_crawler",
            "lru_crawler",
            BOOLEAN,
            "0,1",
            "If 1, a background thread reclaims expired items.",
            "1.4.24",
            off_flag="-o no_lru_crawler",
            stats_words=_YES_IS_1,
        ),
        MemcachedParameter(
            "lru_maintainer",
            "-o lru_maintainer",
            "lru_maintainer_thread",
            BOOLEAN,
            "0,1",
            "If 1, a background thread moves items between the LRUs (segmented LRU).",
            "1.4.24",
            off_flag="-o no_lru_maintainer",
            stats_words=_YES_IS_1,
        ),
        MemcachedParameter(
            "max_item_size",
            "-I {}",
            "item_size_max",
            INTEGER,
            f"{_SLAB_CHUNK_MAX}-1073741824",
            "The size, in bytes, of the largest item; at most half of the node's memory.",
            "1.4.5",
            multiple_of=_SLAB_CHUNK_MAX,
        ),
        MemcachedParameter(
            "max_simultaneous_connections",
            "-c {}",
            "maxconns",
            INTEGER,
            "1-65000",
            "The maximum number of simultaneous connections.",
            "1.4.5",
        ),
        MemcachedParameter(
            "maxconns_fast",
            "-o maxconns_fast",
            "maxconns_fast",
            BOOLEAN,
            "0,1",
            "If 1, connections over the limit are answered an error and closed at once.",
            "1.4.14",
            off_flag="-o no_maxconns_fast",
            stats_words=_YES_IS_1,
        ),
        MemcachedParameter(
            "requests_per_event",
            "-R {}",
            "reqs_per_event",
            INTEGER,
            "1-2147483647",
            "The maximum number of requests per event for one connection.",
            "1.4.5",
            modifiable=False,
        ),
        MemcachedParameter(
            "slab_automove",
            "-o slab_automove={}",
            "slab_automove",
            INTEGER,
            "0-2",
            "Slab automove: 0 off, 1 conservative, 2 aggressive (at every eviction).",
            "1.4.14",
        ),
        MemcachedParameter(
            "slab_reassign",
            "-o slab_reassign",
            "slab_reassign",
            BOOLEAN,
            "0,1",
            "If 1, memory pages can move between slab classes.",
            "1.4.14",
            off_flag="-o no_slab_reassign",
            stats_words=_YES_IS_1,
        ),
        MemcachedParameter(
            "track_sizes",
            "-o track_sizes",
            "track_sizes",
            BOOLEAN,
            "0,1",
            "If 1, `stats sizes` is available without `stats sizes_enable`.",
            "1.4.33",
            stats_words=_YES_IS_1,
        ),
    )
}
