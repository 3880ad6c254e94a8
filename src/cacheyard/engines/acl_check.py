"""Access strings judged by the engine itself.

An access string is a list of Redis ACL rules whose syntax (commands,
categories, first arguments, selectors, key and channel patterns) grows with
every Redis version. Rather than parse it here, the rules are given to a
throwaway redis-server (a unix socket, no files) with ``ACL SETUSER``, as the
parameters are read from the engine (ADR 8): a string it takes is one the
nodes, running the same binary, will take. A check costs about 10 ms.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from redis.exceptions import ResponseError

from cacheyard.engines.errors import EngineError
from cacheyard.engines.host import ENGINE_BINARIES
from cacheyard.engines.scratch import scratch_redis

_PROBE_USER = "cacheyard-acl-check"
_MODIFIER = re.compile(r"^Error in ACL SETUSER modifier (.*)$")


class AclCheckError(EngineError):
    """The throwaway redis-server did not start or answer."""


async def refusal(rules: Sequence[str], binary: str = ENGINE_BINARIES["redis"]) -> str | None:
    """Why Redis refuses these ACL rules (its own words), or None when it takes them."""
    async with scratch_redis(binary, error=AclCheckError) as connection:
        try:
            await connection.send_command("ACL", "SETUSER", _PROBE_USER, *rules)
            await connection.read_response()
        except ResponseError as exc:
            message = str(exc)
            modifier = _MODIFIER.match(message)
            return f"rule {modifier.group(1)}" if modifier else message
        return None
