"""What the controller asks an engine host for, and what it gets back.

A node is identified by its directory, not by a pid: the process whose working
directory is ``node_dir`` is that node's engine. That survives control-plane
restarts with nothing to persist besides the directory itself.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cacheyard.domain.parameters import MEMCACHED_PARAMETERS, RESERVED_REDIS_DIRECTIVES

Engine = Literal["redis", "memcached"]

_DIRECTIVE = re.compile(r"[a-z][a-z0-9-]*")
# One argv word that cannot smuggle in another option (nor an -o suboption).
_OPTION_VALUE = re.compile(r"[A-Za-z0-9.]+")


@dataclass(frozen=True)
class TlsFiles:
    """A TLS node's certificate and key, and the CA its peers are verified with."""

    cert: Path
    key: Path
    ca: Path

    def client_options(self) -> dict[str, Any]:
        """redis-py options for a client of such a node: the CA, and the node's
        address checked against its certificate."""
        return {
            "ssl_ca_certs": str(self.ca),
            "ssl_cert_reqs": "required",
            "ssl_check_hostname": True,
        }


@dataclass(frozen=True)
class NodeSpec:
    """One engine process: which engine, where it lives and what it may use."""

    engine: Engine
    node_dir: Path
    address: str
    port: int
    max_memory_mb: int
    threads: int = 4
    redis_config: Mapping[str, str] = field(default_factory=dict, hash=False)
    # TLS only on the node's port (ElastiCache's TransitEncryptionMode required).
    tls: TlsFiles | None = None
    # ACL users written into redis.conf: (name, rules) with rules such as "on",
    # "#<sha256>", "~*" (words without spaces or quotes).
    acl_users: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # The control plane's password (engines/control.py); also used by replicas
    # to authenticate to their primary.
    control_password: str | None = field(default=None, repr=False)
    # ElastiCache parameter name -> value (domain/parameters.py MEMCACHED_PARAMETERS).
    memcached_options: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.engine not in ("redis", "memcached"):
            raise ValueError(f"unknown engine {self.engine!r}")
        if not self.node_dir.is_absolute():
            raise ValueError(f"node_dir must be absolute: {self.node_dir}")
        ipaddress.IPv4Address(self.address)  # its own address, never a name
        if not 0 < self.port < 65536:
            raise ValueError(f"invalid port {self.port}")
        if self.max_memory_mb <= 0 or self.threads <= 0:
            raise ValueError("max_memory_mb and threads must be positive")
        for name in self.redis_config:
            if not _DIRECTIVE.fullmatch(name):
                raise ValueError(f"invalid redis directive {name!r}")
            if name in RESERVED_REDIS_DIRECTIVES:
                raise ValueError(f"redis directive {name!r} is managed by the engine host")
        if self.tls is not None and self.engine != "redis":
            raise ValueError("TLS is offered for redis nodes only")
        if self.memcached_options and self.engine != "memcached":
            raise ValueError("memcached_options are for memcached nodes")
        for name, value in self.memcached_options.items():
            if name not in MEMCACHED_PARAMETERS:
                raise ValueError(f"unknown memcached parameter {name!r}")
            if not _OPTION_VALUE.fullmatch(value):
                raise ValueError(f"invalid value {value!r} for memcached parameter {name}")


@dataclass(frozen=True)
class RunningProcess:
    """A live process; the start time tells a reused pid from the original."""

    pid: int
    start_ticks: int
