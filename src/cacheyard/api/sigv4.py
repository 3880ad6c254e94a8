"""Verify AWS Signature Version 4 on incoming requests, by header or presigned query.

The expected signature is computed by botocore's own signer over exactly what the
client says it signed, so the canonicalization cannot drift from the SDKs'.
Session tokens (``X-Amz-Security-Token``) are not supported yet and are refused.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from hashlib import sha256
from typing import Any
from urllib.parse import unquote

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cacheyard.domain.faults import (
    Fault,
    IncompleteSignature,
    InvalidClientTokenId,
    MissingAuthenticationToken,
    RequestExpired,
    SignatureDoesNotMatch,
)

_ALGORITHM = "AWS4-HMAC-SHA256"
_MAX_EXPIRES = 604800  # a presigned URL lives at most a week
_SIGNATURE = "X-Amz-Signature"
BAD_TOKEN = "The security token included in the request is invalid."
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)


@dataclass(frozen=True)
class SignedRequest:
    """An incoming request as it came off the wire.

    ``path`` is the raw, still percent-encoded path; ``query_string`` the raw query.
    """

    method: str
    path: str
    query_string: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Caller:
    """Who signed the request, and for which region and service."""

    access_key_id: str
    region: str
    service: str


@dataclass(frozen=True)
class _Claim:
    """What the client says it signed, from the Authorization header or the query."""

    access_key_id: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    signed_at: datetime
    expires: timedelta | None  # presigned requests only


def verify(
    request: SignedRequest,
    secret_for: Callable[[str], str | None],
    now: datetime,
    *,
    service: str,
    regions: Collection[str] | None = None,
    max_skew: timedelta = timedelta(minutes=15),
) -> Caller:
    """The caller of a correctly signed, current request; otherwise the fault AWS answers.

    ``regions`` are the credential scopes accepted (any when None).
    """
    headers = {name.lower(): value for name, value in request.headers.items()}
    query = _query_pairs(request.query_string)
    claim = _read_claim(headers, query)
    if "x-amz-security-token" in headers or any(n == "X-Amz-Security-Token" for n, _ in query):
        raise InvalidClientTokenId(BAD_TOKEN)
    if claim.service != service:
        raise SignatureDoesNotMatch(f"Credential should be scoped to correct service: '{service}'.")
    if regions is not None and claim.region not in regions:
        raise SignatureDoesNotMatch("Credential should be scoped to a valid region.")
    secret = secret_for(claim.access_key_id)
    if secret is None:
        raise InvalidClientTokenId(BAD_TOKEN)
    _check_time(claim, now, max_skew)
    _check_payload_hash(headers, request.body)
    signed_query = [(name, value) for name, value in query if name != _SIGNATURE]
    expected = _signature(request, headers, signed_query, claim, secret)
    if not hmac.compare_digest(expected, claim.signature):
        raise SignatureDoesNotMatch(_MISMATCH)
    return Caller(claim.access_key_id, claim.region, claim.service)


def claimed_service(request: SignedRequest) -> str | None:
    """The service the request says it is signed for (not verified), to route it by."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    try:
        return _read_claim(headers, _query_pairs(request.query_string)).service
    except Fault:
        return None


def _read_claim(headers: Mapping[str, str], query: list[tuple[str, str]]) -> _Claim:
    presigned = any(name == _SIGNATURE for name, _ in query)
    if "authorization" in headers and presigned:
        raise IncompleteSignature("Only one auth mechanism allowed")
    if "authorization" in headers:
        return _claim_from_header(headers)
    if presigned:
        return _claim_from_query(dict(query))
    raise MissingAuthenticationToken("Request is missing Authentication Token")


def _query_pairs(query_string: str) -> list[tuple[str, str]]:
    """Decoded query parameters; ``+`` stays literal, as SigV4 encodes spaces as ``%20``."""
    pairs = []
    for part in query_string.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((unquote(name), unquote(value)))
    return pairs


def _claim_from_header(headers: Mapping[str, str]) -> _Claim:
    algorithm, _, rest = headers["authorization"].strip().partition(" ")
    if algorithm != _ALGORITHM:
        raise IncompleteSignature(f"Unsupported AWS 'algorithm': '{algorithm}'")
    fields = {}
    for part in rest.split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value
    for name in ("Credential", "SignedHeaders", "Signature"):
        if not fields.get(name):
            raise IncompleteSignature(f"Authorization header requires '{name}' parameter.")
    if "x-amz-date" in headers:
        signed_at = _amz_date(headers["x-amz-date"])
    elif "date" in headers:
        signed_at = _http_date(headers["date"])
    else:
        raise IncompleteSignature(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    return _claim(fields["Credential"], fields["SignedHeaders"], fields["Signature"], signed_at)


def _claim_from_query(query: Mapping[str, str]) -> _Claim:
    for name in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-SignedHeaders", "X-Amz-Date"):
        if not query.get(name):
            raise IncompleteSignature(f"Query-string authentication requires the {name} parameter.")
    if query["X-Amz-Algorithm"] != _ALGORITHM:
        raise IncompleteSignature(f"Unsupported AWS 'algorithm': '{query['X-Amz-Algorithm']}'")
    expires = query.get("X-Amz-Expires", "")
    if not (expires.isascii() and expires.isdigit() and 0 < int(expires) <= _MAX_EXPIRES):
        raise IncompleteSignature(
            f"X-Amz-Expires must be a number of seconds from 1 to {_MAX_EXPIRES}."
        )
    return _claim(
        query["X-Amz-Credential"],
        query["X-Amz-SignedHeaders"],
        query[_SIGNATURE],
        _amz_date(query["X-Amz-Date"]),
        timedelta(seconds=int(expires)),
    )


def _claim(
    credential: str,
    signed_headers: str,
    signature: str,
    signed_at: datetime,
    expires: timedelta | None = None,
) -> _Claim:
    """Check the credential scope ``key/yyyymmdd/region/service/aws4_request``."""
    parts = credential.split("/")
    if len(parts) != 5 or not all(parts) or parts[4] != "aws4_request":
        raise IncompleteSignature(
            f"Credential must have the form <key>/<date>/<region>/<service>/aws4_request, "
            f"got '{credential}'."
        )
    names = tuple(signed_headers.split(";"))
    if "host" not in names:
        raise IncompleteSignature("'Host' must be a 'SignedHeader' in the AWS Authorization.")
    return _Claim(parts[0], parts[2], parts[3], names, signature, signed_at, expires)


def _amz_date(value: str) -> datetime:
    try:
        return datetime.strptime(value, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        raise IncompleteSignature(
            f"Date must be in ISO-8601 'basic format'. Got '{value}'."
        ) from None


def _http_date(value: str) -> datetime:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise IncompleteSignature(f"Date header is not an HTTP date: '{value}'.") from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _check_time(claim: _Claim, now: datetime, max_skew: timedelta) -> None:
    """A header-signed request must be within the skew; a presigned one unexpired."""
    if claim.signed_at - now > max_skew:
        raise RequestExpired("Request has expired.")
    deadline = claim.signed_at + (claim.expires if claim.expires is not None else max_skew)
    if now > deadline:
        raise RequestExpired("Request has expired.")


def _check_payload_hash(headers: Mapping[str, str], body: bytes) -> None:
    """botocore signs a declared payload hash as given: it must be the body's own."""
    declared = headers.get("x-amz-content-sha256")
    if declared is not None and declared != sha256(body).hexdigest():
        raise SignatureDoesNotMatch(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        )


class _ClaimedHeadersSigner(SigV4Auth):  # type: ignore[misc]  # botocore is untyped
    """botocore's SigV4 signer over every header of the request, as given.

    botocore would drop headers it never signs itself (``User-Agent``, which some
    SDKs do sign) and add a missing ``Host``; the request here holds exactly the
    headers the client listed as signed.
    """

    def headers_to_sign(self, request: Any) -> Any:
        return request.headers


def _signature(
    request: SignedRequest,
    headers: Mapping[str, str],
    query: list[tuple[str, str]],
    claim: _Claim,
    secret: str,
) -> str:
    """The signature botocore computes for what the client claims to have signed."""
    signed = {name: headers[name] for name in claim.signed_headers if name in headers}
    # Only the path of the URL enters the canonical request; the host is a signed header.
    aws_request = AWSRequest(
        method=request.method,
        url=f"http://localhost{request.path}",
        headers=signed,
        data=request.body,
        params=query,
    )
    aws_request.context["timestamp"] = claim.signed_at.strftime(SIGV4_TIMESTAMP)
    credentials = Credentials(claim.access_key_id, secret)
    signer = _ClaimedHeadersSigner(credentials, claim.service, claim.region)
    canonical = signer.canonical_request(aws_request)
    string_to_sign = signer.string_to_sign(aws_request, canonical)
    signature: str = signer.signature(string_to_sign, aws_request)
    return signature
