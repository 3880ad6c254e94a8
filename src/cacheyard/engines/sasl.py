"""SASL for Memcached nodes (Cacheyard's extension): the files and environment.

memcached 1.6.18 as Debian builds it authenticates through Cyrus SASL; it has
no MEMCACHED_SASL_PWDB password file (that needs --enable-sasl-pwdb). So a
SASL node gets, in its own directory and nowhere else:

- ``sasldb2``: the Cyrus user database, written by ``saslpasswd2`` (the
  password on its stdin, never in argv), one entry per user in the realm
  memcached asks for: the machine's host name;
- ``memcached.conf``: Cyrus's configuration for the ``memcached`` service,
  PLAIN only, users from that database only.

memcached finds the configuration through ``SASL_CONF_PATH``, which names the
*directory* holding ``memcached.conf`` (a file path there is not read, and
Cyrus silently falls back to /etc/sasldb2). Both files are mode 0600 and are
rewritten at every start; a node started without SASL has them removed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

from cacheyard.engines.errors import EngineStartError
from cacheyard.engines.spec import NodeSpec

SERVICE = "memcached"  # memcached's sasl_server_init() application name
SASL_CONF = f"{SERVICE}.conf"  # Cyrus reads <SASL_CONF_PATH>/<service>.conf
SASLDB = "sasldb2"
SASL_FILES = (SASL_CONF, SASLDB)
SASL_CONF_PATH = "SASL_CONF_PATH"
SASLPASSWD2 = "saslpasswd2"
# Debian's sasl2-bin installs to /usr/sbin, often not on a user's PATH.
_SBIN = os.pathsep.join(["/usr/sbin", "/sbin"])
_STAGING = ".sasl.tmp"
_SASLPASSWD2_TIMEOUT = 10.0


def render_conf(node_dir: Path) -> str:
    return (
        "mech_list: plain\n"
        "pwcheck_method: auxprop\n"
        "auxprop_plugin: sasldb\n"
        f"sasldb_path: {node_dir / SASLDB}\n"
    )


def env(spec: NodeSpec) -> dict[str, str]:
    """The engine's environment: ours, with Cyrus pointed at the node directory."""
    return {**os.environ, SASL_CONF_PATH: str(spec.node_dir)}


def write_files(spec: NodeSpec, saslpasswd2: str | None = None) -> None:
    """Write the node's SASL files for ``spec.sasl_users``, or remove them.

    The files are made in a private (0700) staging directory inside the node
    directory and moved into place, so an engine never reads a half-written
    database and no other user can read one at any moment.
    """
    node_dir = spec.node_dir
    if not spec.sasl_users:
        remove_files(node_dir)
        return
    program = saslpasswd2 or find_saslpasswd2()
    node_dir.mkdir(parents=True, exist_ok=True)
    staging = node_dir / _STAGING
    shutil.rmtree(staging, ignore_errors=True)  # a crash's leftover
    staging.mkdir(mode=0o700)
    try:
        for user, password in spec.sasl_users:
            _add_user(program, staging / SASLDB, user, password)
        os.chmod(staging / SASLDB, 0o600)
        fd = os.open(staging / SASL_CONF, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(render_conf(node_dir))
        for name in (SASLDB, SASL_CONF):
            os.replace(staging / name, node_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_files(node_dir: Path) -> None:
    for name in SASL_FILES:
        (node_dir / name).unlink(missing_ok=True)
    shutil.rmtree(node_dir / _STAGING, ignore_errors=True)


def find_saslpasswd2() -> str:
    program = shutil.which(SASLPASSWD2) or shutil.which(SASLPASSWD2, path=_SBIN)
    if program is None:
        raise EngineStartError(f"{SASLPASSWD2} is not installed (Debian package sasl2-bin)")
    return program


def realm() -> str | None:
    """The realm memcached authenticates in: its gethostname(), if any.

    Given to saslpasswd2 explicitly: its own default is the fully qualified
    name, which may differ from the bare host name memcached uses.
    """
    return socket.gethostname() or None


def _add_user(program: str, database: Path, user: str, password: str) -> None:
    host_realm = realm()
    argv = [
        program,
        *("-f", str(database), "-a", SERVICE),
        *(("-u", host_realm) if host_realm else ()),
        "-p",  # the password is the first line of stdin
        "-c",
        "--",  # a name starting with '-' is a name
        user,
    ]
    try:
        done = subprocess.run(
            argv,
            input=password.encode(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=_SASLPASSWD2_TIMEOUT,
            umask=0o077,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        # Neither carries the input, so the password is not in the message.
        raise EngineStartError(f"cannot add SASL user {user!r}: {exc}") from None
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").replace(password, "***").strip()
        raise EngineStartError(
            f"{SASLPASSWD2} exited with status {done.returncode} adding SASL user {user!r}: {said}"
        )
