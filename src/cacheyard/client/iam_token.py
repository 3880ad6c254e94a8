"""ElastiCache IAM authentication tokens, and a redis-py credential provider for them.

With IAM authentication a Redis user authenticates with a short-lived token
instead of a stored password: a SigV4 *query-presigned* request
``GET http://{cache-id}/?Action=connect&User={user-id}`` for the service
``elasticache``, valid for 900 seconds, with the ``http://`` stripped. It is
sent as the AUTH password with the user id as the user name, over TLS.

The signature is computed here with ``hmac``/``hashlib`` rather than botocore,
so the client library stays free of the AWS SDK; the algorithm is the one
botocore's ``SigV4QueryAuth`` implements (the tests check it against botocore
byte for byte). The clock is injectable, so expiry can be tested without
waiting.

A token only matters at AUTH time: a connection stays authenticated after its
token expires (ElastiCache drops it after 12 hours). ``IamCredentialProvider``
therefore only has to hand every *new* connection a token that is still
valid, which it does by generating a fresh one some time before the current
one expires.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from redis.credentials import CredentialProvider

SERVICE = "elasticache"
TOKEN_LIFETIME = 900  # seconds, fixed by ElastiCache
ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AwsCredentials:
    """An access key pair, with the session token of temporary credentials."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:  # never print the secret
        return f"AwsCredentials(access_key_id={self.access_key_id!r}, ...)"


#: Fixed credentials, or a callable for rotating ones (e.g. a boto3
#: session's ``get_frozen_credentials`` wrapped into ``AwsCredentials``).
CredentialsSource = AwsCredentials | Callable[[], AwsCredentials]


def _encode(value: str) -> str:
    return quote(value.encode("utf-8"), safe="-._~")


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def generate_auth_token(
    cache_id: str,
    user_id: str,
    region: str,
    credentials: AwsCredentials,
    *,
    now: datetime | None = None,
    expires: int = TOKEN_LIFETIME,
) -> str:
    """The IAM auth token for ``user_id`` on the replication group or cluster ``cache_id``."""
    moment = (now or utc_now()).astimezone(UTC)
    timestamp = moment.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{timestamp[:8]}/{region}/{SERVICE}/aws4_request"
    # Operation parameters first, then the signing parameters, as botocore
    # orders them; the signature is appended last.
    params = [
        ("Action", "connect"),
        ("User", user_id),
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", f"{credentials.access_key_id}/{scope}"),
        ("X-Amz-Date", timestamp),
        ("X-Amz-Expires", str(expires)),
        ("X-Amz-SignedHeaders", "host"),
    ]
    if credentials.session_token is not None:
        params.append(("X-Amz-Security-Token", credentials.session_token))
    encoded = [(_encode(k), _encode(v)) for k, v in params]
    query = "&".join(f"{k}={v}" for k, v in encoded)
    canonical_request = "\n".join(
        [
            "GET",
            "/",
            "&".join(f"{k}={v}" for k, v in sorted(encoded)),
            f"host:{cache_id.lower()}\n",
            "host",
            EMPTY_SHA256,  # a plain-http request with no body signs the empty payload
        ]
    )
    string_to_sign = "\n".join(
        [ALGORITHM, timestamp, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(f"AWS4{credentials.secret_access_key}".encode(), timestamp[:8])
    for part in (region, SERVICE, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{cache_id}/?{query}&X-Amz-Signature={signature}"


class IamCredentialProvider(CredentialProvider):
    """Gives redis-py ``(user_id, token)`` for every new connection's AUTH.

    The token is reused while it has more than ``refresh_before`` seconds to
    live, then replaced, so a connection opened at any moment authenticates
    with a valid token without signing on every connect.
    """

    def __init__(
        self,
        cache_id: str,
        user_id: str,
        region: str,
        credentials: CredentialsSource,
        *,
        clock: Clock = utc_now,
        refresh_before: float = 120.0,
    ) -> None:
        if not 0 <= refresh_before < TOKEN_LIFETIME:
            raise ValueError(f"refresh_before must be within [0, {TOKEN_LIFETIME})")
        self.cache_id = cache_id
        self.user_id = user_id
        self.region = region
        self._credentials = credentials
        self._clock = clock
        self._refresh_before = timedelta(seconds=refresh_before)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = datetime.min.replace(tzinfo=UTC)

    @property
    def expires_at(self) -> datetime:
        """When the current token stops being accepted."""
        return self._expires_at

    def token(self) -> str:
        """A token valid for at least ``refresh_before`` more seconds."""
        with self._lock:
            now = self._clock()
            if self._token is None or now >= self._expires_at - self._refresh_before:
                source = self._credentials
                credentials = source if isinstance(source, AwsCredentials) else source()
                self._token = generate_auth_token(
                    self.cache_id, self.user_id, self.region, credentials, now=now
                )
                self._expires_at = now + timedelta(seconds=TOKEN_LIFETIME)
            return self._token

    def get_credentials(self) -> tuple[str, str]:
        return self.user_id, self.token()

    async def get_credentials_async(self) -> tuple[str, str]:
        # Signing is a few microseconds of hashing: no need for a thread.
        return self.get_credentials()
