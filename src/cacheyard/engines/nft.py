"""Running nftables: the one place that knows how, and when it cannot be used."""

from __future__ import annotations

import os
import shutil
import subprocess

from cacheyard.engines.errors import EngineError


def unavailable_reason() -> str | None:
    if shutil.which("nft") is None:
        return "nftables (the nft command) is not installed"
    if os.geteuid() != 0:
        return "changing nftables rules needs root"
    return None


def run(*args: str, stdin: str | None = None) -> str:
    reason = unavailable_reason()
    if reason is not None:
        raise EngineError(reason)
    done = subprocess.run(
        ["nft", *args], input=stdin, capture_output=True, text=True, timeout=10, check=False
    )
    if done.returncode != 0:
        raise EngineError(f"nft {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def try_run(*args: str) -> str | None:
    """The output, or None when the object asked about does not exist."""
    try:
        return run(*args)
    except EngineError:
        return None
