"""The IAM auth token is exactly what botocore's SigV4 query signer produces.

The client library signs with hashlib/hmac; botocore (allowed in tests) is
the reference: same clock, same credentials, same request, same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cacheyard.client.iam_token import (
    TOKEN_LIFETIME,
    AwsCredentials,
    IamCredentialProvider,
    generate_auth_token,
)

pytestmark = pytest.mark.timeout(30)

NOW = datetime(2026, 11, 26, 12, 34, 56, tzinfo=UTC)
KEYS = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


def botocore_token(
    cache_id: str, user_id: str, region: str, creds: AwsCredentials, now: datetime
) -> str:
    """What AWS's documented recipe yields: SigV4QueryAuth on the connect request."""
    request = AWSRequest(
        method="GET", url=f"http://{cache_id}/", params={"Action": "connect", "User": user_id}
    )
    signer = SigV4QueryAuth(
        Credentials(creds.access_key_id, creds.secret_access_key, creds.session_token),
        "elasticache",
        region,
        expires=TOKEN_LIFETIME,
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=now.replace(tzinfo=None)):
        signer.add_auth(request)
    prepared = request.prepare()
    return str(prepared.url).removeprefix("http://")


@pytest.mark.parametrize(
    ("cache_id", "user_id", "creds"),
    [
        ("my-group", "app-user", KEYS),
        ("lib-redis", "user with/odd+chars=&", KEYS),
        ("lib-group", "iam-user", AwsCredentials("ASIATEMP", "secret/+=", "FQoGZXIvYXdz/+Tok=en")),
    ],
)
def test_token_matches_botocore_sigv4_query_signature(
    cache_id: str, user_id: str, creds: AwsCredentials
) -> None:
    ours = generate_auth_token(cache_id, user_id, "us-east-1", creds, now=NOW)
    assert ours == botocore_token(cache_id, user_id, "us-east-1", creds, NOW)
    assert not ours.startswith("http")
    query = parse_qs(urlsplit("http://" + ours).query)
    assert query["Action"] == ["connect"]
    assert query["User"] == [user_id]
    assert query["X-Amz-Expires"] == ["900"]
    assert query["X-Amz-Date"] == ["20261126T123456Z"]
    assert query["X-Amz-Credential"] == [
        f"{creds.access_key_id}/20261126/us-east-1/elasticache/aws4_request"
    ]


def test_token_depends_on_region_secret_and_time() -> None:
    base = generate_auth_token("g", "u", "us-east-1", KEYS, now=NOW)
    assert base != generate_auth_token("g", "u", "eu-west-1", KEYS, now=NOW)
    assert base != generate_auth_token(
        "g", "u", "us-east-1", AwsCredentials(KEYS.access_key_id, "other"), now=NOW
    )
    assert base != generate_auth_token("g", "u", "us-east-1", KEYS, now=NOW + timedelta(seconds=1))
    assert "wJalr" not in repr(KEYS)


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_provider_reuses_token_until_refresh_margin_then_refreshes() -> None:
    clock = FakeClock(NOW)
    provider = IamCredentialProvider(
        "lib-group", "app-user", "us-east-1", KEYS, clock=clock, refresh_before=120
    )
    user, first = provider.get_credentials()
    assert user == "app-user"
    assert first == generate_auth_token("lib-group", "app-user", "us-east-1", KEYS, now=NOW)
    assert provider.expires_at == NOW + timedelta(seconds=900)

    clock.advance(900 - 121)  # still more than the margin left: same token
    assert provider.get_credentials() == ("app-user", first)

    clock.advance(2)  # inside the margin: a fresh token, valid from now
    _, second = provider.get_credentials()
    assert second != first
    assert second == generate_auth_token("lib-group", "app-user", "us-east-1", KEYS, now=clock.now)
    assert provider.expires_at == clock.now + timedelta(seconds=900)
    # every token handed out has at least the margin left before it expires
    assert provider.expires_at - clock.now >= timedelta(seconds=120)


def test_provider_reads_rotating_credentials_at_each_refresh() -> None:
    clock = FakeClock(NOW)
    rotated = [KEYS, AwsCredentials("AKIDNEXT", "next-secret", "tok")]
    source: Callable[[], AwsCredentials] = lambda: rotated[0]  # noqa: E731
    provider = IamCredentialProvider("g", "u", "us-east-1", source, clock=clock)
    first = provider.token()
    rotated.pop(0)
    clock.advance(TOKEN_LIFETIME)
    second = provider.token()
    assert "AKIDEXAMPLE" in first
    assert "AKIDNEXT" in second
    assert "X-Amz-Security-Token=tok" in second


async def test_provider_async_matches_sync() -> None:
    clock = FakeClock(NOW)
    provider = IamCredentialProvider("g", "u", "us-east-1", KEYS, clock=clock)
    assert await provider.get_credentials_async() == provider.get_credentials()


def test_provider_rejects_margin_beyond_lifetime() -> None:
    with pytest.raises(ValueError):
        IamCredentialProvider("g", "u", "us-east-1", KEYS, refresh_before=900)
