"""Access strings judged by a throwaway redis-server; Redis takes a password as its SHA-256."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis
from engine_helpers import eventually
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError

from cacheyard.engines.acl_check import AclCheckError, refusal
from cacheyard.engines.host import LocalEngineHost
from cacheyard.engines.spec import NodeSpec

SpecFactory = Callable[..., NodeSpec]

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed"),
]


@pytest.mark.parametrize(
    "rules",
    [
        [],
        ["on", "~*", "+@all"],
        ["on", "~app:*", "%R~ro:*", "%W~wo:*", "&chan:*", "-@all", "+@read", "-config|set"],
        ["(~sel:*", "+get)", "clearselectors", "resetkeys", "allkeys", "resetchannels"],
        ["off", "nocommands", "allcommands", "allchannels", "skip-sanitize-payload"],
    ],
)
async def test_rules_redis_takes(rules: list[str]) -> None:
    assert await refusal(rules) is None


@pytest.mark.parametrize(
    ("rules", "why"),
    [
        (["on", "+nosuch"], "rule '+nosuch': Unknown command or category name in ACL"),
        (["+@nosuch"], "rule '+@nosuch': Unknown command or category name in ACL"),
        (["bogus"], "rule 'bogus': Syntax error"),
        (["(~unclosed"], "Unmatched parenthesis in acl selector starting at '(~unclosed'."),
    ],
)
async def test_rules_redis_refuses_in_its_own_words(rules: list[str], why: str) -> None:
    assert await refusal(rules) == why


async def test_a_missing_binary_is_an_engine_error() -> None:
    with pytest.raises(AclCheckError, match="cannot run"):
        await refusal(["on"], binary="/nonexistent/redis-server")


async def test_the_stored_hash_is_a_password_redis_accepts(
    host: LocalEngineHost, redis_spec: SpecFactory
) -> None:
    """What Cacheyard keeps of a password, its SHA-256 hex, is all ACL SETUSER needs."""
    password = "an-rbac-user-password"
    digest = hashlib.sha256(password.encode()).hexdigest()
    spec = redis_spec()
    host.start(spec)
    await eventually(lambda: host.probe(spec))
    async with aioredis.Redis(host=spec.address, port=spec.port) as admin:
        assert await admin.acl_setuser(
            "app", enabled=True, hashed_passwords=[f"+{digest}"], keys=["*"], commands=["+@all"]
        )
    async with aioredis.Redis(
        host=spec.address, port=spec.port, username="app", password=password
    ) as app:
        assert await app.ping()
    async with aioredis.Redis(
        host=spec.address,
        port=spec.port,
        username="app",
        password=password[::-1],
        retry=Retry(NoBackoff(), 0),
    ) as wrong:
        with pytest.raises(AuthenticationError):
            await wrong.ping()
