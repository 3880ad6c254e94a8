"""Logging in to a SASL Memcached node with a real binary-protocol client (bmemcached)."""

from __future__ import annotations

import ssl

import bmemcached
from bmemcached.exceptions import MemcachedException


def sasl_refusal(
    address: str, user: str, password: str, tls_context: ssl.SSLContext | None = None
) -> str | None:
    """None when ``user`` logs in on the node (port 11211) and a value round-trips;
    otherwise the client's error, for tests that check what a refusal shows."""
    client = bmemcached.Client(
        [f"{address}:11211"], user, password, tls_context=tls_context, socket_timeout=5
    )
    try:
        client.set("probe", "v")
        return None if client.get("probe") == "v" else "the value did not round-trip"
    except MemcachedException as exc:
        return str(exc)
    finally:
        client.disconnect_all()
