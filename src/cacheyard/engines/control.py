"""The control plane's own user on every Redis node.

Once a cache has an AUTH token or user groups, its `default` user no longer
lets anyone in, but the control plane must still reach every node (probes,
replication commands, snapshots) and replicas must still authenticate to
their primary. Each node therefore has an ACL user of Cacheyard's own, whose
password is one secret per data directory (a 0600 file), used by every
control connection of this process once configured.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

CONTROL_USER = "cacheyard"
_password: str | None = None


def load_or_create(path: Path) -> str:
    """The control password kept in ``path``, made on first use (mode 0600)."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    password = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(password + "\n")
    return password


def configure(password: str | None) -> None:
    """Make every control connection of this process authenticate with ``password``."""
    global _password
    _password = password


def password() -> str | None:
    return _password


def credentials() -> dict[str, Any]:
    """redis-py options for a control connection: empty until configured."""
    if _password is None:
        return {}
    return {"username": CONTROL_USER, "password": _password}
