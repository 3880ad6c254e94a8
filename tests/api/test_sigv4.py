"""SigV4 verification against requests signed by botocore and sent by a real boto3 client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials

from cacheyard.api.protocol import QueryProtocol
from cacheyard.api.sigv4 import Caller, SignedRequest, verify
from cacheyard.domain.faults import (
    Fault,
    IncompleteSignature,
    InvalidClientTokenId,
    MissingAuthenticationToken,
    RequestExpired,
    SignatureDoesNotMatch,
)

KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SIGNED_AT = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
BODY = {"Action": "DescribeCacheClusters", "Version": "2015-02-02", "CacheClusterId": "my cache"}


@pytest.fixture(autouse=True)
def _signing_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore signs at SIGNED_AT; each test says what time the server sees."""

    def signing_time(remove_tzinfo: bool = True) -> datetime:
        return SIGNED_AT.replace(tzinfo=None) if remove_tzinfo else SIGNED_AT

    monkeypatch.setattr("botocore.auth.get_current_datetime", signing_time)


def secret_for(key: str) -> str | None:
    return {KEY: SECRET}.get(key)


def check(request: SignedRequest, after: timedelta = timedelta(0)) -> Caller:
    return verify(request, secret_for, SIGNED_AT + after, service="elasticache")


def received(request: AWSRequest) -> SignedRequest:
    """What a server receives for a signed botocore request, Host header included."""
    prepared = request.prepare()
    url = urlsplit(prepared.url)
    body = prepared.body or b""
    return SignedRequest(
        method=prepared.method,
        path=url.path or "/",
        query_string=url.query,
        headers={"Host": url.netloc, **prepared.headers},
        body=body.encode() if isinstance(body, str) else body,
    )


def header_signed(
    secret: str = SECRET,
    region: str = "us-east-1",
    service: str = "elasticache",
    headers: dict[str, str] | None = None,
) -> SignedRequest:
    request = AWSRequest(
        method="POST",
        url=f"https://elasticache.{region}.amazonaws.com/",
        data=urlencode(BODY),
        headers={"Content-Type": FORM_TYPE, **(headers or {})},
    )
    SigV4Auth(Credentials(KEY, secret), service, region).add_auth(request)
    return received(request)


def presigned(
    expires: int = 900, url: str = "http://my-cache/?Action=connect&User=u1"
) -> SignedRequest:
    request = AWSRequest(method="GET", url=url)
    SigV4QueryAuth(Credentials(KEY, SECRET), "elasticache", "us-east-1", expires).add_auth(request)
    return received(request)


def test_header_signed_request_is_accepted() -> None:
    caller = check(header_signed(), timedelta(minutes=14))
    assert caller == Caller(access_key_id=KEY, region="us-east-1", service="elasticache")


def test_region_comes_from_the_credential_scope() -> None:
    assert check(header_signed(region="eu-west-1")).region == "eu-west-1"


def test_header_names_are_case_insensitive() -> None:
    request = header_signed()
    lowered = {name.lower(): value for name, value in request.headers.items()}
    assert check(replace(request, headers=lowered)).access_key_id == KEY
    upper = {name.upper(): value for name, value in request.headers.items()}
    assert check(replace(request, headers=upper)).access_key_id == KEY


def test_date_header_instead_of_x_amz_date() -> None:
    request = header_signed(headers={"Date": "placeholder"})
    assert "X-Amz-Date" not in request.headers
    assert check(request).access_key_id == KEY


def test_headers_botocore_never_signs_are_honoured_when_another_client_signs_them() -> None:
    """Some SDKs sign User-Agent; reconstruct exactly the headers the client listed."""
    request = header_signed(headers={"User-Agent": "aws-sdk-java/1.12"})
    authorization = request.headers["Authorization"]
    assert "user-agent" not in authorization
    assert check(request).access_key_id == KEY


def test_presigned_url_is_accepted_until_it_expires() -> None:
    request = presigned(expires=900)
    assert check(request, timedelta(seconds=900)).access_key_id == KEY
    with pytest.raises(RequestExpired, match=r"Request has expired\."):
        check(request, timedelta(seconds=901))


def test_presigned_form_request_moves_its_parameters_into_the_query() -> None:
    request = AWSRequest(
        method="POST",
        url="https://elasticache.us-east-1.amazonaws.com/",
        data=BODY,
        headers={"Content-Type": FORM_TYPE},
    )
    SigV4QueryAuth(Credentials(KEY, SECRET), "elasticache", "us-east-1", 60).add_auth(request)
    signed = received(request)
    assert "CacheClusterId=my%20cache" in signed.query_string
    assert check(signed).access_key_id == KEY


def test_boto3_presigned_url() -> None:
    client = _client(lambda request: None)
    url = client.generate_presigned_url(
        "describe_cache_clusters",
        Params={"CacheClusterId": "c1"},
        ExpiresIn=300,
        HttpMethod="GET",
    )
    parts = urlsplit(url)
    request = SignedRequest("GET", parts.path, parts.query, {"Host": parts.netloc}, b"")
    assert check(request).region == "us-east-1"


def _client(on_send: Callable[[SignedRequest], bytes | None]) -> Any:
    """A real boto3 client whose requests go to ``on_send`` instead of the network."""
    client = boto3.session.Session(
        aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name="us-east-1"
    ).client(
        "elasticache",
        endpoint_url="http://localhost:8080",
        config=Config(retries={"total_max_attempts": 1}),
    )

    def send(request: Any, **_: Any) -> AWSResponse:
        url = urlsplit(request.url)
        body = request.body or b""
        signed = SignedRequest(
            method=request.method,
            path=url.path,
            query_string=url.query,
            headers={"Host": url.netloc, **{k: _text(v) for k, v in request.headers.items()}},
            body=body.encode() if isinstance(body, str) else body,
        )
        return AWSResponse(request.url, 200, {}, _Raw(on_send(signed) or b""))

    client.meta.events.register("before-send.elasticache", send)
    return client


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def test_boto3_requests_verify_and_parse_end_to_end() -> None:
    protocol = QueryProtocol()
    seen: list[dict[str, Any]] = []

    def serve(request: SignedRequest) -> bytes:
        check(request)
        assert request.headers["Content-Type"] == FORM_TYPE
        parsed = protocol.parse(dict(parse_qsl(request.body.decode(), keep_blank_values=True)))
        seen.append(parsed.params)
        return protocol.serialize_result(parsed.operation, {"TagList": []}, "r1")

    client = _client(serve)
    tags = [{"Key": "team name", "Value": "caché & co=1"}]
    client.add_tags_to_resource(ResourceName="arn:aws:elasticache:x", Tags=tags)
    assert seen == [{"ResourceName": "arn:aws:elasticache:x", "Tags": tags}]


def _tampered(**changes: Any) -> SignedRequest:
    return replace(header_signed(), **changes)


@pytest.mark.parametrize(
    ("request_", "fault", "message"),
    [
        (lambda: _tampered(body=b"Action=DeleteCacheCluster"), SignatureDoesNotMatch, "calculated"),
        (
            lambda: _tampered(headers={**header_signed().headers, "Content-Type": "text/plain"}),
            SignatureDoesNotMatch,
            "Check your AWS Secret Access Key",
        ),
        (lambda: _tampered(path="/other"), SignatureDoesNotMatch, "does not match"),
        (lambda: _tampered(query_string="Action=x"), SignatureDoesNotMatch, "does not match"),
        (lambda: _tampered(method="PUT"), SignatureDoesNotMatch, "does not match"),
        (lambda: header_signed(secret="wrong"), SignatureDoesNotMatch, "does not match"),
        (lambda: header_signed(service="iam"), SignatureDoesNotMatch, "'elasticache'"),
        (
            lambda: _tampered(headers=_without(header_signed().headers, "Host")),
            SignatureDoesNotMatch,
            "does not match",
        ),
        (
            lambda: _tampered(headers=_without(header_signed().headers, "Authorization")),
            MissingAuthenticationToken,
            "Request is missing Authentication Token",
        ),
        (
            lambda: _tampered(
                headers={**header_signed().headers, "X-Amz-Security-Token": "session"}
            ),
            InvalidClientTokenId,
            "The security token included in the request is invalid.",
        ),
    ],
)
def test_refused_requests(
    request_: Callable[[], SignedRequest], fault: type[Fault], message: str
) -> None:
    with pytest.raises(fault, match=message):
        check(request_())


def test_a_signed_payload_hash_must_be_the_bodys() -> None:
    digest = sha256(urlencode(BODY).encode()).hexdigest()
    request = header_signed(headers={"X-Amz-Content-SHA256": digest})
    assert "x-amz-content-sha256" in request.headers["Authorization"]
    assert check(request).access_key_id == KEY
    with pytest.raises(SignatureDoesNotMatch, match="x-amz-content-sha256"):
        check(replace(request, body=b"Action=DeleteCacheCluster"))


def test_unknown_access_key() -> None:
    with pytest.raises(InvalidClientTokenId, match="security token included in the request"):
        verify(header_signed(), lambda key: None, SIGNED_AT, service="elasticache")


@pytest.mark.parametrize("skew", [timedelta(minutes=16), -timedelta(minutes=16)])
def test_stale_or_future_dates_are_expired(skew: timedelta) -> None:
    with pytest.raises(RequestExpired, match=r"Request has expired\."):
        check(header_signed(), skew)


def test_presigned_url_from_the_future_is_expired() -> None:
    with pytest.raises(RequestExpired):
        check(presigned(), -timedelta(minutes=16))


def test_presigned_expiry_is_at_most_a_week() -> None:
    assert check(presigned(expires=604800), timedelta(days=7)).access_key_id == KEY
    with pytest.raises(IncompleteSignature, match="X-Amz-Expires"):
        check(presigned(expires=604801))


def test_tampered_presigned_query() -> None:
    request = presigned()
    with pytest.raises(SignatureDoesNotMatch):
        check(replace(request, query_string=request.query_string.replace("u1", "admin")))


def _without(headers: Any, name: str) -> dict[str, str]:
    return {key: value for key, value in headers.items() if key != name}


def _with_authorization(value: str) -> SignedRequest:
    return _tampered(headers={**header_signed().headers, "Authorization": value})


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA256",
        "AWS AKIDEXAMPLE:abc",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240506/us-east-1/elasticache/aws4_request, "
        "SignedHeaders=host;x-amz-date",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240506/us-east-1/elasticache, "
        "SignedHeaders=host;x-amz-date, Signature=abc",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240506/us-east-1/elasticache/aws5, "
        "SignedHeaders=host;x-amz-date, Signature=abc",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240506/us-east-1/elasticache/aws4_request, "
        "SignedHeaders=content-type;x-amz-date, Signature=abc",
    ],
)
def test_malformed_authorization_header(authorization: str) -> None:
    with pytest.raises(IncompleteSignature):
        check(_with_authorization(authorization))


@pytest.mark.parametrize("date", ["2024-05-06T07:08:09Z", "yesterday"])
def test_malformed_date(date: str) -> None:
    headers = {**header_signed().headers, "X-Amz-Date": date}
    with pytest.raises(IncompleteSignature, match="Date"):
        check(_tampered(headers=headers))


def test_no_date_at_all() -> None:
    with pytest.raises(IncompleteSignature, match="X-Amz-Date"):
        check(_tampered(headers=_without(header_signed().headers, "X-Amz-Date")))


def test_header_and_query_signature_together() -> None:
    request = header_signed()
    with pytest.raises(IncompleteSignature, match="Only one auth mechanism"):
        check(replace(request, query_string=presigned().query_string))


def test_a_service_with_a_region_refuses_other_regions() -> None:
    signed = header_signed(region="eu-west-1")
    with pytest.raises(SignatureDoesNotMatch, match="valid region"):
        verify(signed, secret_for, SIGNED_AT, service="elasticache", regions={"us-east-1"})
    caller = verify(signed, secret_for, SIGNED_AT, service="elasticache", regions={"eu-west-1"})
    assert caller.region == "eu-west-1"
