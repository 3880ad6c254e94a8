"""TLS, AUTH tokens, RBAC users and IAM token providers through ``connect``.

Against a bare TLS ``redis-server`` with a certificate from Cacheyard's own CA
for a loopback address (it also listens on a second address the certificate
does not name). ElastiCache's IAM tokens are not verified by the server yet,
so the IAM tests give an ACL user the token the provider will produce as its
password: that shows the provider's caching and renewal (on a fake clock) and
that its token is what reaches AUTH.
"""

from __future__ import annotations

import asyncio
import logging
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from cacheyard.client.connect import (
    ROTATING_CREDENTIALS_MAX_AGE,
    CacheEndpoints,
    Connection,
    connect,
    connect_async,
)
from cacheyard.client.iam_token import (
    AwsCredentials,
    IamCredentialProvider,
    generate_auth_token,
)
from cacheyard.client.retry import NO_RETRY
from cacheyard.engines.certificates import CertificateAuthority

pytestmark = pytest.mark.timeout(30)

PORT = 6379
AUTH_TOKEN = "auth-token-0123456789-abcdef"  # ElastiCache: 16-128 printable characters
CACHE_ID = "tls-cache"
IAM_USER = "iam-user"
REGION = "us-east-1"
AWS = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
START = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)

# ---- a TLS redis-server ---------------------------------------------------------------------


@dataclass
class TlsRedis:
    address: str  # named by the certificate
    other: str  # also served, but not in the certificate
    ca: Path
    process: subprocess.Popen[bytes]

    def endpoints(self, host: str | None = None, *, tls: bool = False) -> CacheEndpoints:
        return CacheEndpoints(host or self.address, PORT, tls=tls)

    def admin(self, password: str | None = None) -> Connection:
        return connect(self.endpoints(), ssl=self.ca, password=password, retry=NO_RETRY)


def _loopback_pair() -> tuple[str, str]:
    """Two loopback addresses in 127.251-254.x.y (engine tests use 127.200-250, services
    127.100-199) where nothing listens on the port."""
    while True:
        pair = tuple(
            "127.{}.{}.{}".format(random.randint(251, 254), *random.sample(range(1, 255), 2))
            for _ in range(2)
        )
        if pair[0] == pair[1]:
            continue
        try:
            for address in pair:
                with socket.create_server((address, PORT)):
                    pass
        except OSError:
            continue
        return pair[0], pair[1]


def _start(tmp_path: Path, ca: CertificateAuthority, *extra: str) -> TlsRedis:
    binary = shutil.which("redis-server")
    assert binary is not None, "redis-server is needed (make engines)"
    for _ in range(5):  # another process may take an address between the probe and the bind
        address, other = _loopback_pair()
        issued = ca.issue(tmp_path / "node", "tls-node", [address])
        process = subprocess.Popen(
            [
                binary,
                *("--port", "0", "--tls-port", str(PORT), "--bind", f"{address} {other}"),
                *("--tls-cert-file", str(issued.cert), "--tls-key-file", str(issued.key)),
                *("--tls-ca-cert-file", str(ca.cert_path), "--tls-auth-clients", "no"),
                *("--save", "", "--appendonly", "no", "--dir", str(tmp_path)),
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while process.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection((address, PORT), timeout=0.2).close()
                return TlsRedis(address, other, ca.cert_path, process)
            except OSError:
                time.sleep(0.01)
        process.kill()
        process.wait()
    raise AssertionError("redis-server did not start with TLS")


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[Callable[..., TlsRedis]]:
    """Starts a TLS redis-server with extra flags; all are stopped at teardown."""
    ca = CertificateAuthority(tmp_path / "ca")
    started: list[TlsRedis] = []

    def start(*extra: str) -> TlsRedis:
        server = _start(tmp_path, ca, *extra)
        started.append(server)
        return server

    yield start
    for server in started:
        server.process.kill()
        server.process.wait()


def refused(conn: Connection, error: type[Exception], match: str | None = None) -> None:
    """``conn`` cannot be used: its first command raises ``error``; then it is closed."""
    with conn, pytest.raises(error, match=match):
        conn.writer.ping()


@pytest.fixture
def server(tls_redis: Callable[..., TlsRedis]) -> TlsRedis:
    return tls_redis()


# ---- TLS ------------------------------------------------------------------------------------


def test_tls_with_cacheyards_ca_verifies_the_address(server: TlsRedis) -> None:
    with connect(server.endpoints(), ssl=server.ca) as conn:
        assert conn.writer.ping() is True
        conn.writer.set("tls:k", "v")
        assert conn.reader.get("tls:k") == b"v"
        kwargs = conn.writer.connection_pool.connection_kwargs
        assert kwargs["ssl_cert_reqs"] == "required"
        assert kwargs["ssl_check_hostname"] is True
        assert kwargs["ssl_ca_certs"] == str(server.ca)


async def test_async_tls_with_cacheyards_ca(server: TlsRedis) -> None:
    async with connect_async(server.endpoints(), ssl=str(server.ca)) as conn:
        assert await conn.writer.ping() is True


def test_a_certificate_from_another_ca_is_refused_at_once(server: TlsRedis, tmp_path: Path) -> None:
    stranger = CertificateAuthority(tmp_path / "other-ca").ensure()
    started = time.monotonic()  # with the default retry policy
    refused(
        connect(server.endpoints(), ssl=stranger),
        redis.ConnectionError,
        "certificate verify failed",
    )
    assert time.monotonic() - started < 2, "a certificate failure is not a failover to ride"


async def test_async_a_certificate_from_another_ca_is_refused(
    server: TlsRedis, tmp_path: Path
) -> None:
    stranger = CertificateAuthority(tmp_path / "other-ca").ensure()
    started = time.monotonic()
    async with connect_async(server.endpoints(), ssl=stranger) as conn:
        with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
            await conn.writer.ping()
    assert time.monotonic() - started < 2, "a certificate failure is not a failover to ride"


def test_an_address_the_certificate_does_not_name_is_refused(server: TlsRedis) -> None:
    refused(
        connect(server.endpoints(server.other), ssl=server.ca),
        redis.ConnectionError,
        "IP address mismatch",
    )


def test_the_system_trust_store_does_not_trust_cacheyards_ca(server: TlsRedis) -> None:
    refused(
        connect(server.endpoints(), ssl=True), redis.ConnectionError, "certificate verify failed"
    )


def test_a_plaintext_client_cannot_talk_to_the_tls_port(server: TlsRedis) -> None:
    refused(connect(server.endpoints(), retry=NO_RETRY, socket_timeout=2), redis.ConnectionError)


def test_a_description_with_transit_encryption_turns_tls_on(server: TlsRedis) -> None:
    endpoint = {"Address": server.address, "Port": PORT}
    group = {
        "ReplicationGroups": [
            {
                "ReplicationGroupId": "tls-group",
                "TransitEncryptionEnabled": True,
                "NodeGroups": [{"PrimaryEndpoint": endpoint, "ReaderEndpoint": endpoint}],
            }
        ]
    }
    endpoints = CacheEndpoints.from_replication_group(group)
    assert endpoints.tls is True
    # the CA is the caller's; TLS itself comes from the description
    with connect(endpoints, ssl_ca_certs=server.ca) as conn:
        assert conn.writer.ping() is True and conn.reader.ping() is True
    cluster = {
        "CacheClusterId": "tls-node",
        "Engine": "redis",
        "TransitEncryptionEnabled": True,
        "CacheNodes": [{"Endpoint": endpoint}],
    }
    assert CacheEndpoints.from_cache_cluster(cluster).tls is True
    plain = dict(cluster, TransitEncryptionEnabled=False)
    assert CacheEndpoints.from_cache_cluster(plain).tls is False
    assert CacheEndpoints.from_addresses(server.address, tls=True).tls is True
    # ssl=False overrides the description (ElastiCache's "preferred" transit mode)
    refused(connect(endpoints, ssl=False, retry=NO_RETRY, socket_timeout=2), redis.ConnectionError)


# ---- AUTH token and RBAC users --------------------------------------------------------------


def test_an_auth_token_is_required_and_checked(tls_redis: Callable[..., TlsRedis]) -> None:
    server = tls_redis("--requirepass", AUTH_TOKEN)
    with connect(server.endpoints(), ssl=server.ca, password=AUTH_TOKEN) as conn:
        assert conn.writer.ping() is True
        assert conn.writer.execute_command("ACL", "WHOAMI") == b"default"
    started = time.monotonic()
    refused(
        connect(server.endpoints(), ssl=server.ca, password="not-the-token-00"),
        redis.AuthenticationError,
    )
    assert time.monotonic() - started < 2, "a refused AUTH is not retried"
    no_token = connect(server.endpoints(), ssl=server.ca, retry=NO_RETRY)
    refused(no_token, redis.AuthenticationError)  # NOAUTH


async def test_async_auth_token(tls_redis: Callable[..., TlsRedis]) -> None:
    server = tls_redis("--requirepass", AUTH_TOKEN)
    async with connect_async(server.endpoints(), ssl=server.ca, password=AUTH_TOKEN) as conn:
        assert await conn.writer.ping() is True
    started = time.monotonic()
    async with connect_async(server.endpoints(), ssl=server.ca, password="wrong-0000") as conn:
        with pytest.raises(redis.AuthenticationError):
            await conn.writer.ping()
    assert time.monotonic() - started < 2, "a refused AUTH is not retried"


def test_an_rbac_user_reaches_only_its_keys(server: TlsRedis) -> None:
    with server.admin() as admin:
        admin.writer.execute_command("ACL", "SETUSER", "app", "on", ">pass", "~app:*", "+@all")
    with connect(server.endpoints(), ssl=server.ca, username="app", password="pass") as conn:
        assert conn.writer.execute_command("ACL", "WHOAMI") == b"app"
        assert conn.writer.set("app:1", "mine") is True
        assert conn.reader.get("app:1") == b"mine"
        with pytest.raises(redis.exceptions.NoPermissionError):
            conn.writer.set("other:1", "not mine")
        with pytest.raises(redis.exceptions.NoPermissionError):
            conn.writer.get("other:1")
    refused(
        connect(server.endpoints(), ssl=server.ca, username="app", password="nope"),
        redis.AuthenticationError,
    )


async def test_async_rbac_user(server: TlsRedis) -> None:
    with server.admin() as admin:
        admin.writer.execute_command("ACL", "SETUSER", "app", "on", ">pass", "~app:*", "+@all")
    async with connect_async(
        server.endpoints(), ssl=server.ca, username="app", password="pass"
    ) as conn:
        assert await conn.writer.execute_command("ACL", "WHOAMI") == b"app"
        with pytest.raises(redis.exceptions.NoPermissionError):
            await conn.writer.set("other:1", "x")


def test_a_credential_provider_excludes_username_and_password(server: TlsRedis) -> None:
    provider = IamCredentialProvider(CACHE_ID, IAM_USER, REGION, AWS)
    with pytest.raises(ValueError, match="not both"):
        connect(server.endpoints(), username=IAM_USER, credential_provider=provider)
    with pytest.raises(ValueError, match="max_connection_age"):
        connect(server.endpoints(), max_connection_age=0)


# ---- IAM tokens -----------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class CountingProvider(IamCredentialProvider):
    """Counts what redis-py asks for (every new connection) and the tokens signed."""

    def __init__(self, clock: FakeClock) -> None:
        self.asked = 0
        self.signed = 0

        def credentials() -> AwsCredentials:
            self.signed += 1
            return AWS

        super().__init__(CACHE_ID, IAM_USER, REGION, credentials, clock=clock, refresh_before=60)

    def get_credentials(self) -> tuple[str, str]:
        self.asked += 1
        return super().get_credentials()


def token_at(moment: datetime) -> str:
    return generate_auth_token(CACHE_ID, IAM_USER, REGION, AWS, now=moment)


def accept_token(server: TlsRedis, token: str) -> None:
    """The IAM user's only password becomes ``token`` (existing connections stay)."""
    with server.admin() as admin:
        admin.writer.execute_command(
            "ACL", "SETUSER", IAM_USER, "on", "resetpass", f">{token}", "~*", "+@all"
        )


def test_an_iam_token_is_cached_then_renewed_before_it_expires(server: TlsRedis) -> None:
    clock = FakeClock()
    provider = CountingProvider(clock)
    accept_token(server, token_at(START))
    with connect(server.endpoints(), ssl=server.ca, credential_provider=provider) as conn:
        assert conn.writer.execute_command("ACL", "WHOAMI") == IAM_USER.encode()
        assert (provider.asked, provider.signed) == (1, 1)
        assert provider.expires_at == START + timedelta(seconds=900)

        # 100 s left: a new connection is given the same token
        clock.advance(800)
        conn.writer.connection_pool.disconnect()
        assert conn.writer.ping() is True
        assert (provider.asked, provider.signed) == (2, 1)

        # 50 s left, under refresh_before: the next connection gets a new token, and
        # only that one is accepted now
        clock.advance(50)
        renewed = token_at(START + timedelta(seconds=850))
        accept_token(server, renewed)
        conn.writer.connection_pool.disconnect()
        assert conn.writer.execute_command("ACL", "WHOAMI") == IAM_USER.encode()
        assert (provider.asked, provider.signed) == (3, 2)
        assert provider.token() == renewed
    stale = token_at(START)
    old = connect(
        server.endpoints(), ssl=server.ca, username=IAM_USER, password=stale, retry=NO_RETRY
    )
    refused(old, redis.AuthenticationError)


async def test_async_iam_token_reaches_auth(server: TlsRedis) -> None:
    clock = FakeClock()
    provider = CountingProvider(clock)
    accept_token(server, token_at(START))
    async with connect_async(server.endpoints(), ssl=server.ca, credential_provider=provider) as c:
        assert await c.writer.execute_command("ACL", "WHOAMI") == IAM_USER.encode()
        clock.advance(900)  # expired: the next connection signs a new one
        accept_token(server, token_at(START + timedelta(seconds=900)))
        await c.writer.connection_pool.disconnect()
        assert await c.writer.execute_command("ACL", "WHOAMI") == IAM_USER.encode()
    assert (provider.asked, provider.signed) == (2, 2)


def test_old_connections_are_reopened_with_a_fresh_token(server: TlsRedis) -> None:
    """What keeps IAM connections under ElastiCache's 12-hour limit, on a short age."""
    clock = FakeClock()
    provider = CountingProvider(clock)
    accept_token(server, token_at(START))
    with connect(
        server.endpoints(), ssl=server.ca, credential_provider=provider, max_connection_age=0.3
    ) as conn:
        first = conn.writer.client_id()
        assert conn.writer.client_id() == first  # young: reused
        clock.advance(900)
        accept_token(server, token_at(START + timedelta(seconds=900)))
        assert conn.writer.client_id() == first  # the old token does not matter to it
        time.sleep(0.35)
        second = conn.writer.client_id()
        assert second != first
        assert conn.writer.client_id() == second
    assert (provider.asked, provider.signed) == (2, 2)


async def test_async_old_connections_are_reopened(server: TlsRedis) -> None:
    provider = CountingProvider(FakeClock())
    accept_token(server, token_at(START))
    async with connect_async(
        server.endpoints(), ssl=server.ca, credential_provider=provider, max_connection_age=0.3
    ) as conn:
        first = await conn.writer.client_id()
        assert await conn.writer.client_id() == first
        await asyncio.sleep(0.35)
        assert await conn.writer.client_id() != first
    assert provider.asked == 2


def test_connection_age_is_limited_by_default_only_with_a_provider(server: TlsRedis) -> None:
    provider = IamCredentialProvider(CACHE_ID, IAM_USER, REGION, AWS)
    with connect(server.endpoints(), ssl=server.ca, credential_provider=provider) as conn:
        kwargs = conn.writer.connection_pool.connection_kwargs
        assert kwargs["max_connection_age"] == ROTATING_CREDENTIALS_MAX_AGE < 12 * 3600
    with connect(server.endpoints(), ssl=server.ca, password=AUTH_TOKEN) as conn:
        assert conn.writer.connection_pool.connection_kwargs["max_connection_age"] is None


# ---- secrets stay secret --------------------------------------------------------------------


def shown(*objects: Any) -> str:
    return "\n".join(f"{o!r} {o!s}" for o in objects)


def test_no_secret_in_reprs_or_logs(
    tls_redis: Callable[..., TlsRedis], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = tls_redis("--requirepass", AUTH_TOKEN)
    clock = FakeClock()
    provider = CountingProvider(clock)
    token = token_at(START)
    with server.admin(AUTH_TOKEN) as admin:
        admin.writer.execute_command("ACL", "SETUSER", IAM_USER, "on", f">{token}", "~*", "+@all")
    secrets = [AUTH_TOKEN, token, token.split("X-Amz-Signature=")[1], AWS.secret_access_key]
    with (
        connect(server.endpoints(), ssl=server.ca, password=AUTH_TOKEN) as with_token,
        connect(server.endpoints(), ssl=server.ca, credential_provider=provider) as with_iam,
        connect(server.endpoints(), ssl=server.ca, password="wrong-token-000000") as wrong,
    ):
        assert with_token.writer.ping() and with_iam.writer.ping()
        with pytest.raises(redis.AuthenticationError) as refused:
            wrong.writer.ping()
        pool = with_iam.writer.connection_pool
        pooled = pool.get_connection()
        text = shown(
            with_token,
            with_iam,
            with_token.writer,
            with_iam.writer,
            with_token.writer.connection_pool,
            pool,
            pooled,
            provider,
            AWS,
            refused.value,
        )
        pool.release(pooled)
    assert "tls=True auth=token" in repr(with_token)
    assert "auth=CountingProvider" in repr(with_iam)
    leaked = [s for s in secrets if s in text or s in caplog.text]
    assert not leaked
