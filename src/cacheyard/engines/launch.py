"""How each process is launched: command lines and the redis configuration file.

Pure functions of the spec, so what a node runs with can be read (and tested)
without starting anything.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

import cacheyard
from cacheyard.domain.parameters import MEMCACHED_PARAMETERS
from cacheyard.engines import sasl
from cacheyard.engines.control import CONTROL_USER
from cacheyard.engines.spec import NodeSpec

REDIS_CONF = "redis.conf"
# What a memcached node was started with, as redis.conf is for redis.
MEMCACHED_OPTIONS = "memcached-options.json"
RDB_FILE = "dump.rdb"
ENGINE_LOG = "engine.log"
DISCOVERY_MODULE = "cacheyard.engines.discovery_server"
FRONT_MODULE = "cacheyard.engines.tls_front"
MEMCACHED_MAX_CONNECTIONS = 4096

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def redis_directives(spec: NodeSpec) -> dict[str, str]:
    """ElastiCache's defaults for a node, then the spec's parameter overrides."""
    node_dir = spec.node_dir
    directives = {
        "bind": spec.address,
        "port": str(spec.port),
        # A primary lists its replicas by their node addresses, and replication
        # leaves from the node's own address, not 127.0.0.1 (loopback's default
        # source): per-node firewall rules can then isolate nodes from each other.
        "replica-announce-ip": spec.address,
        "bind-source-addr": spec.address,
        # Absolute paths: redis changes into `dir` before it reads some files.
        "dir": str(node_dir),
        "logfile": str(node_dir / ENGINE_LOG),
        "daemonize": "no",
        "protected-mode": "no",
        "save": "",
        "appendonly": "no",
        "maxmemory": f"{spec.max_memory_mb}mb",
        "maxmemory-policy": "volatile-lru",
        # The default of 5 s keeps a new replica's link down that long.
        "repl-diskless-sync-delay": "0",
        "dbfilename": RDB_FILE,
    }
    if spec.control_password is not None:
        # Replicas authenticate to their primary as the control user.
        directives["masteruser"] = CONTROL_USER
        directives["masterauth"] = spec.control_password
    if spec.tls is not None:
        directives.update(
            {
                "port": "0",
                "tls-port": str(spec.port),
                "tls-cert-file": str(spec.tls.cert),
                "tls-key-file": str(spec.tls.key),
                "tls-ca-cert-file": str(spec.tls.ca),
                # Clients prove nothing by certificate; AUTH and ACLs say who they are.
                "tls-auth-clients": "no",
                "tls-replication": "yes",
            }
        )
    if spec.preferred_tls is not None:
        directives.update(
            {
                "tls-port": str(spec.port + 1),
                "tls-cert-file": str(spec.preferred_tls.cert),
                "tls-key-file": str(spec.preferred_tls.key),
                "tls-ca-cert-file": str(spec.preferred_tls.ca),
                "tls-auth-clients": "no",
                "tls-replication": "no",
            }
        )
    if spec.replicate_over_tls is not None:
        directives["tls-replication"] = "yes" if spec.replicate_over_tls else "no"
    directives.update(spec.redis_config)
    return directives


def render_redis_conf(spec: NodeSpec) -> str:
    lines = [f"{name} {quote_redis(value)}" for name, value in redis_directives(spec).items()]
    for user, rules in acl_users(spec):
        lines.append(" ".join(["user", *(quote_redis(word) for word in (user, *rules))]))
    header = "# Written by cacheyard at every start; edits here do not survive.\n"
    return header + "\n".join(lines) + "\n"


def acl_users(spec: NodeSpec) -> list[tuple[str, tuple[str, ...]]]:
    """The ACL users a node starts with: the control plane's own, then the spec's."""
    users = list(spec.acl_users)
    if spec.control_password is not None:
        digest = hashlib.sha256(spec.control_password.encode()).hexdigest()
        users.insert(0, (CONTROL_USER, ("on", "resetpass", f"#{digest}", "~*", "&*", "+@all")))
    return users


def quote_redis(value: str) -> str:
    """Quote one value for redis.conf (its parser takes C-style escapes).

    Multi-word values ("900 1 300 10") stay one quoted argument: redis splits
    multi-argument directives itself.
    """
    out = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def render_memcached_options(spec: NodeSpec) -> str:
    return json.dumps(dict(spec.memcached_options), sort_keys=True) + "\n"


def redis_argv(binary: str, spec: NodeSpec) -> list[str]:
    return [binary, str(spec.node_dir / REDIS_CONF)]


def memcached_argv(binary: str, spec: NodeSpec) -> list[str]:
    return [
        binary,
        *("-l", spec.address, "-p", str(spec.port)),
        *("-U", "0"),  # no UDP listener, as on ElastiCache
        *("-m", str(spec.max_memory_mb), "-t", str(spec.threads)),
        *memcached_option_argv(spec.memcached_options),
        # SASL (engines/sasl.py): users and passwords are in files, not here.
        *(["-S"] if spec.sasl_users else []),
        *memcached_tls_argv(spec),
        *memcached_user_argv(),
    ]


def memcached_tls_argv(spec: NodeSpec) -> list[str]:
    """TLS only on the node's port: with ``-Z`` every listener speaks TLS (a
    plaintext client's first bytes end its connection). Clients are not asked
    for certificates (``ssl_verify_mode=0``, memcached's default, said anyway),
    so no CA file is given. Absolute paths: memcached reads them at start."""
    if spec.tls is None:
        return []
    files = f"ssl_chain_cert={spec.tls.cert},ssl_key={spec.tls.key},ssl_verify_mode=0"
    return ["-Z", "-o", files]


def memcached_env(spec: NodeSpec) -> dict[str, str] | None:
    """A SASL node's environment points Cyrus at its files; None inherits ours."""
    return sasl.env(spec) if spec.sasl_users else None


def memcached_option_argv(options: Mapping[str, str]) -> list[str]:
    """The flags of a node's parameters, over Cacheyard's own defaults."""
    values = {"max_simultaneous_connections": str(MEMCACHED_MAX_CONNECTIONS), **options}
    return [
        word for name, value in values.items() for word in MEMCACHED_PARAMETERS[name].argv(value)
    ]


def memcached_user_argv() -> list[str]:
    # memcached refuses to run as root without it
    return ["-u", "root"] if os.geteuid() == 0 else []


def front_argv(python: str, front_dir: Path) -> list[str]:
    return [python, "-P", "-m", FRONT_MODULE, str(front_dir)]


def discovery_argv(python: str, node_dir: Path) -> list[str]:
    # -P: the working directory (the node's) must not shadow any module.
    return [python, "-P", "-m", DISCOVERY_MODULE, str(node_dir)]


def discovery_env() -> dict[str, str]:
    """The environment, with this package importable from any directory.

    A relative PYTHONPATH (``PYTHONPATH=src``) would break once the child
    runs in the node's directory: entries are made absolute, and the package's
    own root is put first.
    """
    env = dict(os.environ)
    package_root = str(Path(cacheyard.__file__).resolve().parent.parent)
    inherited = [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([package_root, *inherited])
    return env


def is_helper_cmdline(argv: list[str]) -> bool:
    """A Python process of ours: a configuration endpoint or a preferred-mode front."""
    return DISCOVERY_MODULE in argv or FRONT_MODULE in argv
