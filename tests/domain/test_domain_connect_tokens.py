"""The connect tokens Cacheyard installs are the very strings AWS's signers produce,
and the window holds exactly the seconds whose tokens are valid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cacheyard.client.iam_token import AwsCredentials, generate_auth_token
from cacheyard.domain.connect_tokens import (
    AHEAD,
    LIFETIME,
    MARGIN,
    SigningKey,
    TokenWindow,
    token,
    token_hash,
)

pytestmark = pytest.mark.timeout(30)

NOW = datetime(2026, 11, 26, 12, 34, 56, tzinfo=UTC)
KEY = SigningKey("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


def botocore_token(cache_id: str, user_id: str, when: datetime) -> str:
    request = AWSRequest(
        method="GET", url=f"http://{cache_id}/", params={"Action": "connect", "User": user_id}
    )
    signer = SigV4QueryAuth(
        Credentials(KEY.access_key_id, KEY.secret), "elasticache", "us-east-1", expires=900
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=when.replace(tzinfo=None)):
        signer.add_auth(request)
    return str(request.prepare().url).removeprefix("http://")


@pytest.mark.parametrize("user_id", ["app-user", "iam-user-2"])
def test_tokens_match_botocore_and_the_client_library(user_id: str) -> None:
    ours = token("my-group", user_id, "us-east-1", KEY, NOW)
    assert ours == botocore_token("my-group", user_id, NOW)
    client = AwsCredentials(KEY.access_key_id, KEY.secret)
    assert ours == generate_auth_token("my-group", user_id, "us-east-1", client, now=NOW)


def test_the_window_holds_the_valid_seconds_only() -> None:
    window = TokenWindow("my-group", "app-user", "us-east-1", KEY)
    hashes = window.hashes(NOW)
    assert len(hashes) == LIFETIME - MARGIN + AHEAD + 1

    def signed(seconds_ago: int) -> str:
        return token_hash(
            token("my-group", "app-user", "us-east-1", KEY, NOW - timedelta(seconds=seconds_ago))
        )

    assert signed(0) in hashes
    assert signed(LIFETIME - MARGIN) in hashes
    assert signed(LIFETIME - MARGIN + 1) not in hashes  # about to expire: refused early
    assert signed(LIFETIME + 1) not in hashes
    assert signed(-AHEAD) in hashes  # a client clock a little ahead
    assert signed(-AHEAD - 1) not in hashes


def test_the_window_moves_and_signs_only_new_seconds() -> None:
    window = TokenWindow("my-group", "app-user", "us-east-1", KEY)
    before = window.hashes(NOW)
    with mock.patch("cacheyard.domain.connect_tokens.token", wraps=token) as signer:
        after = window.hashes(NOW + timedelta(seconds=5))
    assert signer.call_count == 5
    assert len(before - after) == 5 and len(after - before) == 5
