"""Loopback addresses for tests that start engines directly (engine and health-monitor tests).

They come from 127.226-250.x.y, never the same twice in a session, so these
tests never meet each other's engines, controller tests (127.200-225) or
services (tests/support/service_helpers.py).
"""

from __future__ import annotations

import random

_used: set[str] = set()


def new_address() -> str:
    """A loopback address in 127.226-250.x.y not handed out before in this session."""
    while True:
        octets = (random.randint(226, 250), random.randint(1, 254), random.randint(1, 254))
        address = "127.{}.{}.{}".format(*octets)
        if address not in _used:
            _used.add(address)
            return address
