"""ElastiCache IAM connect tokens, as the hashes a node accepts (ADR 14).

A token is the SigV4 query-presigned ``GET http://{cache-id}/?Action=connect&
User={user-id}`` for the service ``elasticache`` with ``X-Amz-Expires=900``, the
scheme stripped, parameters in the order AWS's SDKs write them. Everything in
it but the signing second is known to Cacheyard, which holds the keys. So for
every key allowed to connect, the token of every second of the last 15
minutes (and of the next few, for clocks a little ahead) can be computed, and
Redis is given their SHA-256 as the IAM user's ACL passwords: AUTH with a
valid token succeeds in Redis itself, and no other connection pays anything.

A :class:`TokenWindow` keeps the hashes already computed, so each refresh only
signs the seconds that entered the window.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

SERVICE = "elasticache"
LIFETIME = 900  # seconds a token is valid, fixed by ElastiCache
# Tokens dated this far ahead of our clock are accepted (a client's clock a little fast).
AHEAD = 120
# A token is refused this long before it expires, so that between two refreshes
# an expired token can never still be installed.
MARGIN = 30
_ALGORITHM = "AWS4-HMAC-SHA256"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class SigningKey:
    """An access key allowed to connect."""

    access_key_id: str
    secret: str = field(repr=False)


def _quote(value: str) -> str:
    return quote(value, safe="-._~")


def token(cache_id: str, user_id: str, region: str, key: SigningKey, when: datetime) -> str:
    """The connect token ``key`` signs at the second ``when``."""
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    scope = f"{day}/{region}/{SERVICE}/aws4_request"
    query = (
        f"Action=connect&User={_quote(user_id)}&X-Amz-Algorithm={_ALGORITHM}"
        f"&X-Amz-Credential={_quote(f'{key.access_key_id}/{scope}')}&X-Amz-Date={stamp}"
        f"&X-Amz-Expires={LIFETIME}&X-Amz-SignedHeaders=host"
    )
    # The parameters above are already in canonical (sorted) order.
    request = f"GET\n/\n{query}\nhost:{cache_id}\n\nhost\n{_EMPTY_SHA256}"
    to_sign = f"{_ALGORITHM}\n{stamp}\n{scope}\n{hashlib.sha256(request.encode()).hexdigest()}"
    signing = f"AWS4{key.secret}".encode()
    for part in (day, region, SERVICE, "aws4_request"):
        signing = hmac.new(signing, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{cache_id}/?{query}&X-Amz-Signature={signature}"


def token_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass
class TokenWindow:
    """Hashes of the tokens one (cache, user, key) may present now, by signing second."""

    cache_id: str
    user_id: str
    region: str
    key: SigningKey
    _hashes: dict[int, str] = field(default_factory=dict)

    def hashes(self, now: datetime) -> set[str]:
        second = int(now.timestamp())
        first, last = second - LIFETIME + MARGIN, second + AHEAD
        for stale in [s for s in self._hashes if s < first]:
            del self._hashes[stale]
        for moment in range(first, last + 1):
            if moment not in self._hashes:
                when = datetime.fromtimestamp(moment, UTC)
                self._hashes[moment] = token_hash(
                    token(self.cache_id, self.user_id, self.region, self.key, when)
                )
        return set(self._hashes.values())


def accepted(windows: Iterable[TokenWindow], now: datetime) -> set[str]:
    """Every hash a user's ACL must hold now, over all its allowed keys."""
    result: set[str] = set()
    for window in windows:
        result |= window.hashes(now)
    return result
