"""Network isolation of a node, for fault injection: nftables on the loopback.

Every packet from or to an isolated node address is dropped in the output hook,
which loopback traffic passes on its way; one named set holds the isolated
addresses, so isolating and healing are single idempotent element changes.
Needs root and the ``nft`` command; :func:`unavailable_reason` says why not.
"""

from __future__ import annotations

from cacheyard.engines import nft

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
    reason = nft.unavailable_reason()
    return None if reason is None else f"isolation needs root and nftables: {reason}"


def isolate(address: str) -> None:
    if nft.try_run("list", "table", "inet", TABLE) is None:
        nft.run("-f", "-", stdin=_SETUP)
    nft.run("add", "element", "inet", TABLE, "isolated", f"{{ {address} }}")


def heal(address: str) -> None:
    if address in isolated():
        nft.run("delete", "element", "inet", TABLE, "isolated", f"{{ {address} }}")


def isolated() -> set[str]:
    if nft.unavailable_reason() is not None:
        return set()
    listed = nft.try_run("list", "set", "inet", TABLE, "isolated")
    if listed is None or "elements = {" not in listed:
        return set()
    inside = listed.split("elements = {", 1)[1].split("}", 1)[0]
    return {item.strip() for item in inside.replace("\n", " ").split(",") if item.strip()}


def heal_all(prefix: str) -> None:
    """Heal every isolated address under ``prefix`` (a service's 127.<base>. range)."""
    for address in isolated():
        if address.startswith(prefix):
            heal(address)
