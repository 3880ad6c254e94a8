"""Raw, signed HTTP against a live service: for bodies boto3 cannot produce at all.

boto3 only sends what the model allows; these helpers build the Query-protocol
form with botocore's own serializer (so the wire names are the model's), let a
test overwrite any field with an arbitrary string, sign it with botocore's
SigV4 signer (with a clock the test controls) and send it with botocore's HTTP
session. Answers are parsed as the AWS XML error document.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from unittest import mock
from urllib.parse import urlencode
from xml.etree import ElementTree

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.httpsession import URLLib3Session
from botocore.serialize import create_serializer
from service_helpers import REGION, Service

from cacheyard.api.protocol import QueryProtocol

MODEL = QueryProtocol("elasticache").service_model
NAMESPACE = MODEL.metadata["xmlNamespace"]
FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
_SERIALIZER = create_serializer("query", include_validation=False)
_SESSION = URLLib3Session(timeout=30)
PROBE_ID = "matrix-probe"
Path = tuple[str | int, ...]  # member names, with 0 for "the first item of a list"

# Two different valid values of each scalar type: where they differ is the field's wire name.
TWO_VALUES: dict[str, tuple[Any, Any]] = {
    "integer": (20, 21),
    "long": (20, 21),
    "boolean": (True, False),
    "timestamp": (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)),
    "float": (1.0, 2.0),
    "double": (1.0, 2.0),
}


def sample(shape: Any) -> Any:
    """A value of ``shape`` that parses: structures carry their required members (or one)."""
    kind = shape.type_name
    if kind == "structure":
        names = list(shape.required_members)
        if not names:  # an empty structure would not be on the wire at all
            names = [n for n, m in shape.members.items() if m.type_name == "string"][:1]
        return {name: sample(shape.members[name]) for name in names}
    if kind == "list":
        return [sample(shape.member)]
    if kind == "map":
        return {}
    if kind == "string":
        if shape.enum:
            return shape.enum[0]
        limit = shape.metadata.get("max")
        return PROBE_ID if limit is None or limit >= len(PROBE_ID) else "1" * limit  # node groups
    if kind == "blob":
        return b"probe"
    return TWO_VALUES[kind][0]


def walk(shape: Any, path: Path = (), depth: int = 0) -> Iterator[tuple[Path, Any]]:
    """Every member below ``shape``, top-level and nested, with its path."""
    if depth > 8:
        return
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            yield (*path, name), member
            yield from walk(member, (*path, name), depth + 1)
    elif shape.type_name == "list":
        yield from walk(shape.member, (*path, 0), depth + 1)


def put(shape: Any, current: Any, path: Path, value: Any) -> Any:
    """``current`` (or a sample of ``shape``) with ``value`` placed at ``path``."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if shape.type_name == "list":
        return [put(shape.member, None, rest, value)]
    assert isinstance(head, str)
    built = dict(current) if current is not None else sample(shape)
    built[head] = put(shape.members[head], built.get(head), rest, value)
    return built


@dataclass(frozen=True)
class AwsError:
    """The ``<ErrorResponse>`` AWS answers a refused Query request with."""

    type: str
    code: str
    message: str
    request_id: str


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def error(self) -> AwsError:
        """The AWS XML error in the body; fails the test if the body is anything else."""
        root = ElementTree.fromstring(self.body)
        ns = {"e": NAMESPACE}
        assert root.tag == f"{{{NAMESPACE}}}ErrorResponse", self.body
        fields = {
            name: root.findtext(f"e:Error/e:{name}", namespaces=ns)
            for name in ("Type", "Code", "Message")
        }
        request_id = root.findtext("e:RequestId", namespaces=ns)
        assert all(fields.values()) and request_id, self.body
        assert self.headers.get("x-amzn-requestid") == request_id
        return AwsError(
            str(fields["Type"]), str(fields["Code"]), str(fields["Message"]), request_id
        )

    def refused(self, status: int, code: str) -> AwsError:
        """Assert the answer is the AWS error ``code`` with HTTP ``status``."""
        assert self.status == status, (self.status, self.body)
        error = self.error()
        assert (self.status, error.code) == (status, code), (error, self.status)
        assert error.type == ("Sender" if status < 500 else "Receiver")
        return error


def form_for(operation: str, params: Mapping[str, Any]) -> dict[str, str]:
    """The form fields botocore sends for ``operation`` with ``params`` (no validation)."""
    request = _SERIALIZER.serialize_to_request(dict(params), MODEL.operation_model(operation))
    return {str(k): str(v) for k, v in request["body"].items()}


@contextlib.contextmanager
def signing_clock(when: datetime) -> Iterator[None]:
    """botocore signs (headers and presigned URLs alike) as if it were ``when``."""

    def fixed(remove_tzinfo: bool = True) -> datetime:
        utc = when.astimezone(UTC)
        return utc.replace(tzinfo=None) if remove_tzinfo else utc

    with mock.patch("botocore.auth.get_current_datetime", fixed):
        yield


def sign(
    request: AWSRequest,
    key: str,
    secret: str,
    *,
    region: str = REGION,
    service_name: str = "elasticache",
    when: datetime | None = None,
) -> AWSRequest:
    """Sign ``request`` in place with botocore's SigV4 (headers), at ``when`` if given."""
    signer = SigV4Auth(Credentials(key, secret), service_name, region)
    if when is None:
        signer.add_auth(request)
    else:
        with signing_clock(when):
            signer.add_auth(request)
    return request


def send(request: AWSRequest) -> Answer:
    response = _SESSION.send(request.prepare())
    headers = {k.lower(): v for k, v in response.headers.items()}
    return Answer(response.status_code, headers, response.content)


def post_request(service: Service, body: bytes | str | Mapping[str, str]) -> AWSRequest:
    data = urlencode(body) if isinstance(body, Mapping) else body
    return AWSRequest(
        method="POST", url=f"{service.endpoint}/", data=data, headers={"Content-Type": FORM_TYPE}
    )


def signed_post(
    service: Service,
    body: bytes | str | Mapping[str, str],
    *,
    key: str | None = None,
    secret: str | None = None,
    region: str = REGION,
    when: datetime | None = None,
) -> Answer:
    """POST ``body`` signed with the service's credentials unless others are given."""
    real_key, real_secret = service.credentials()
    request = post_request(service, body)
    sign(request, key or real_key, secret or real_secret, region=region, when=when)
    return send(request)


def call(service: Service, operation: str, params: Mapping[str, Any], **overrides: str) -> Answer:
    """A signed call of ``operation``: ``params`` as botocore writes them, then raw overrides."""
    form = form_for(operation, params)
    form.update(overrides)
    return signed_post(service, form)
