"""Errors raised at the engine-host boundary.

The controller treats them as temporary (retry with backoff): a failed start
usually means the address is still held or the configuration is refused, and
the engine log named in the message says which.
"""

from __future__ import annotations


class EngineError(Exception):
    """Something about an engine process did not go as asked."""


class EngineStartError(EngineError):
    """The process could not be spawned or exited right after spawning."""


class EngineStopError(EngineError):
    """A process outlived SIGKILL (e.g. stuck in uninterruptible I/O)."""
