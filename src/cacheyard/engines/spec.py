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
# A SASL user name: printable, no whitespace or ':'; no '@' either, which Cyrus
# SASL reads as user@realm (so "bob@<hostname>" and "bob" would be one entry).
SASL_USER_MAX_LENGTH = 128
_SASL_USER_BREAKERS = frozenset(":@")
# saslpasswd2 -p reads one line (up to CR or LF); PLAIN separates fields by NUL.
_SASL_PASSWORD_BREAKERS = frozenset("\x00\r\n")
SASL_PASSWORD_MAX_BYTES = 1024  # saslpasswd2 reads at most 2048
_SASL_PATH_BREAKERS = frozenset(":\r\n")
# memcached reads its TLS files from one -o list, split at commas.
_MEMCACHED_TLS_PATH_BREAKERS = frozenset(",")


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
    # TLS only on the node's port (ElastiCache's TransitEncryptionMode required),
    # for redis and memcached alike; clients are not asked for certificates.
    tls: TlsFiles | None = None
    # TransitEncryptionMode preferred (redis): ``port`` is then Redis' internal
    # plain-text port, TLS listens on ``port + 1``, and a front holds the public
    # port (engines/tls_front.py). Control connections stay plain text, on ``port``.
    preferred_tls: TlsFiles | None = None
    # Whether replication to the primary uses TLS; by default, when the node is TLS.
    # A node migrating between modes may replicate from a primary of the other mode.
    replicate_over_tls: bool | None = None
    # ACL users written into redis.conf: (name, rules) with rules such as "on",
    # "#<sha256>", "~*" (words without spaces or quotes).
    acl_users: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # The control plane's password (engines/control.py); also used by replicas
    # to authenticate to their primary.
    control_password: str | None = field(default=None, repr=False)
    # ElastiCache parameter name -> value (domain/parameters.py MEMCACHED_PARAMETERS).
    memcached_options: Mapping[str, str] = field(default_factory=dict, hash=False)
    # Memcached SASL users (Cacheyard's extension): (user name, clear password).
    # Empty: no SASL. Non-empty: the node runs with -S and answers only the
    # binary protocol, and only these users authenticate (engines/sasl.py).
    sasl_users: tuple[tuple[str, str], ...] = field(default=(), repr=False)

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
        if self.preferred_tls is not None and (self.tls is not None or self.engine != "redis"):
            raise ValueError("preferred TLS is for redis nodes without required TLS")
        if self.tls is not None and self.engine == "memcached":
            for path in (self.tls.cert, self.tls.key):
                if _MEMCACHED_TLS_PATH_BREAKERS.intersection(str(path)):
                    raise ValueError(f"memcached TLS file paths cannot hold ',': {path}")
        if self.memcached_options and self.engine != "memcached":
            raise ValueError("memcached_options are for memcached nodes")
        for name, value in self.memcached_options.items():
            if name not in MEMCACHED_PARAMETERS:
                raise ValueError(f"unknown memcached parameter {name!r}")
            if not _OPTION_VALUE.fullmatch(value):
                raise ValueError(f"invalid value {value!r} for memcached parameter {name}")
        if self.sasl_users:
            self._check_sasl()

    def _check_sasl(self) -> None:
        """Messages name users, never passwords."""
        if self.engine != "memcached":
            raise ValueError("sasl_users are for memcached nodes")
        if self.memcached_options.get("binding_protocol") == "ascii":
            # memcached exits: "You cannot allow the ASCII protocol while using SASL."
            raise ValueError("SASL needs the binary protocol, not binding_protocol ascii")
        if _SASL_PATH_BREAKERS.intersection(str(self.node_dir)):
            # SASL_CONF_PATH is a colon-separated list; the config file is line-based.
            raise ValueError(
                f"node_dir of a SASL node cannot hold ':' or line breaks: {self.node_dir}"
            )
        names = set()
        for user, password in self.sasl_users:
            if not _valid_sasl_user(user):
                raise ValueError(
                    f"invalid SASL user name {user!r}: printable, without whitespace, ':' or '@'"
                )
            if user in names:
                raise ValueError(f"SASL user {user!r} is listed twice")
            names.add(user)
            if not password or _SASL_PASSWORD_BREAKERS.intersection(password):
                raise ValueError(
                    f"invalid password for SASL user {user!r}: empty, or a NUL or line break"
                )
            if len(password.encode()) > SASL_PASSWORD_MAX_BYTES:
                raise ValueError(
                    f"password for SASL user {user!r} over {SASL_PASSWORD_MAX_BYTES} bytes"
                )


def _valid_sasl_user(user: str) -> bool:
    return (
        0 < len(user) <= SASL_USER_MAX_LENGTH
        and user.isprintable()
        and not any(char.isspace() or char in _SASL_USER_BREAKERS for char in user)
    )


@dataclass(frozen=True)
class RunningProcess:
    """A live process; the start time tells a reused pid from the original."""

    pid: int
    start_ticks: int
