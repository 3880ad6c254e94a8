"""Network isolation of a node, for fault injection: nftables on the loopback.

Every packet from or to an isolated node address is dropped in the output hook,
which loopback traffic passes on its way; one named set holds the isolated
addresses, so isolating and healing are single idempotent element changes.
Needs root and the ``nft`` command; :func:`unavailable_reason` says why not.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from cacheyard.engines.errors import EngineError

TABLE = "cacheyard"
_SETUP = f"""
table inet {TABLE} {{
  set isolated {{ type ipv4_addr; }}
  chain output {{
    type filter hook output priority 0; policy accept;
    ip saddr @isolated drop
    ip daddr @isolated drop
  }}
}}
"""


def unavailable_reason() -> str | None:
    if shutil.which("nft") is None:
        return "isolation needs nftables (the nft command), which is not installed"
    if os.geteuid() != 0:
        return "isolation needs root to change nftables rules"
    return None


def _nft(*args: str, stdin: str | None = None) -> str:
    reason = unavailable_reason()
    if reason is not None:
        raise EngineError(reason)
    done = subprocess.run(
        ["nft", *args], input=stdin, capture_output=True, text=True, timeout=10, check=False
    )
    if done.returncode != 0:
        raise EngineError(f"nft {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def _ensure_table() -> None:
    listed = subprocess.run(
        ["nft", "list", "table", "inet", TABLE], capture_output=True, timeout=10, check=False
    )
    if listed.returncode != 0:
        _nft("-f", "-", stdin=_SETUP)


def isolate(address: str) -> None:
    _ensure_table()
    _nft("add", "element", "inet", TABLE, "isolated", f"{{ {address} }}")


def heal(address: str) -> None:
    if address in isolated():
        _nft("delete", "element", "inet", TABLE, "isolated", f"{{ {address} }}")


def isolated() -> set[str]:
    if unavailable_reason() is not None:
        return set()
    listed = subprocess.run(
        ["nft", "list", "set", "inet", TABLE, "isolated"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if listed.returncode != 0:
        return set()
    text = listed.stdout
    if "elements = {" not in text:
        return set()
    inside = text.split("elements = {", 1)[1].split("}", 1)[0]
    return {item.strip() for item in inside.replace("\n", " ").split(",") if item.strip()}
