"""nftables rules a service leaves behind (reader spreading, isolation) outlive its
processes; they are cleaned for the service's own address range when it starts
and when `cacheyard down` stops its engines."""

from __future__ import annotations

from collections.abc import Collection

from cacheyard.engines import isolation, nft, reader_spread


def forget_stale(prefix: str, live_readers: Collection[str]) -> None:
    """At start: drop reader rules of groups that no longer exist in this range."""
    if nft.unavailable_reason() is None:
        reader_spread.purge(prefix, keep=live_readers)


def forget_all(prefix: str) -> None:
    """At `down`: nothing of this range runs any more."""
    if nft.unavailable_reason() is None:
        reader_spread.purge(prefix)
        isolation.heal_all(prefix)
