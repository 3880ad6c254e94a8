"""Spreading new connections to a reader endpoint over every synced replica.

An address can be bound by one process only, so without help a reader endpoint
reaches one replica. Where nftables can be used (root), a NAT rule in the
output hook, which all loopback clients pass, sends each new connection to the
endpoint to the next replica in turn (``numgen inc``); established connections
stay where they are. The rule is keyed by the endpoint address, unique to one
group, and replaced as a whole when the replicas change.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from cacheyard.engines import nft

TABLE = "cacheyard_readers"
_SETUP = f"""
table ip {TABLE} {{
  chain output {{
    type nat hook output priority -100; policy accept;
  }}
}}
"""
_RULE = re.compile(r'comment "(?P<tag>[^"]+)" # handle (?P<handle>\d+)')
_TARGET = re.compile(r"\d+ : (\d+\.\d+\.\d+\.\d+)")


def available() -> bool:
    return nft.unavailable_reason() is None


def _rules() -> dict[str, tuple[int, list[str]]]:
    """Endpoint address -> (rule handle, replica addresses) for every rule."""
    listed = nft.try_run("-a", "list", "chain", "ip", TABLE, "output")
    found: dict[str, tuple[int, list[str]]] = {}
    for line in (listed or "").splitlines():
        match = _RULE.search(line)
        if match:
            found[match["tag"]] = (int(match["handle"]), _TARGET.findall(line))
    return found


def targets(endpoint: str) -> list[str] | None:
    """The replicas new connections to ``endpoint`` go to, or None without a rule."""
    rule = _rules().get(endpoint)
    return None if rule is None else rule[1]


def spread(endpoint: str, port: int, replicas: Sequence[str]) -> None:
    """Send new connections to ``endpoint:port`` round-robin to ``replicas`` (none: stop)."""
    if nft.try_run("list", "table", "ip", TABLE) is None:
        nft.run("-f", "-", stdin=_SETUP)
    stop(endpoint)
    if not replicas:
        return
    choices = ", ".join(f"{i} : {address}" for i, address in enumerate(replicas))
    nft.run(
        "add",
        "rule",
        "ip",
        TABLE,
        "output",
        "ip",
        "daddr",
        endpoint,
        "tcp",
        "dport",
        str(port),
        "dnat",
        "to",
        "numgen",
        "inc",
        "mod",
        str(len(replicas)),
        "map",
        f"{{ {choices} }}",
        "comment",
        f'"{endpoint}"',
    )


def stop(endpoint: str) -> None:
    rule = _rules().get(endpoint)
    if rule is not None:
        nft.run("delete", "rule", "ip", TABLE, "output", "handle", str(rule[0]))


def purge(prefix: str, keep: Collection[str] = ()) -> None:
    """Remove every rule for an endpoint under ``prefix`` (a service's 127.<base>. range)
    except those in ``keep``: rules outlive the processes, and a stale one would send
    connections for a reused address to the wrong place."""
    for endpoint, (handle, _) in _rules().items():
        if endpoint.startswith(prefix) and endpoint not in keep:
            nft.run("delete", "rule", "ip", TABLE, "output", "handle", str(handle))
