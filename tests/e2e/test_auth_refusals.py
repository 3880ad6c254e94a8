"""Unsigned, wrongly signed and stale requests, refused by a live service with AWS's codes.

Requests are built and signed with botocore's own SigV4 signer (with a clock the
test controls) and sent raw, so every refusal is the real HTTP answer: status,
AWS XML error and RequestId. A refused request must not act.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import boto3
import pytest
from bad_input_helpers import (
    Answer,
    form_for,
    post_request,
    send,
    sign,
    signed_post,
    signing_clock,
)
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from service_helpers import REGION, Service

pytestmark = pytest.mark.timeout(60)

DESCRIBE = form_for("DescribeCacheClusters", {})
GROUP = "auth-probe"
CREATE_GROUP = {"CacheSubnetGroupName": GROUP, "CacheSubnetGroupDescription": "never created"}


def now() -> datetime:
    return datetime.now(UTC)


def describe_ok(answer: Answer) -> None:
    assert answer.status == 200, answer.body
    assert b"<DescribeCacheClustersResponse" in answer.body


def get(url: str) -> Answer:
    return send(AWSRequest(method="GET", url=url))


def test_correctly_signed_request_is_answered(service: Service) -> None:
    """The baseline every refusal below differs from by one thing."""
    describe_ok(signed_post(service, DESCRIBE))


def test_unsigned_request(service: Service) -> None:
    answer = send(post_request(service, DESCRIBE))
    answer.refused(403, "MissingAuthenticationToken")


def test_unsigned_create_creates_nothing(service: Service) -> None:
    subnet = service.client().describe_cache_subnet_groups(CacheSubnetGroupName="default")
    subnet_id = subnet["CacheSubnetGroups"][0]["Subnets"][0]["SubnetIdentifier"]
    form = form_for("CreateCacheSubnetGroup", {**CREATE_GROUP, "SubnetIds": [subnet_id]})
    send(post_request(service, form)).refused(403, "MissingAuthenticationToken")
    _, secret = service.credentials()
    signed_post(service, form, secret=secret + "x").refused(403, "SignatureDoesNotMatch")
    signed_post(service, form, when=now() - timedelta(minutes=20)).refused(400, "RequestExpired")
    with pytest.raises(ClientError) as refused:
        service.client().describe_cache_subnet_groups(CacheSubnetGroupName=GROUP)
    assert refused.value.response["Error"]["Code"] == "CacheSubnetGroupNotFoundFault"


def test_unknown_access_key(service: Service) -> None:
    _, secret = service.credentials()
    answer = signed_post(service, DESCRIBE, key="AKIAUNKNOWNUNKNOWN00", secret=secret)
    error = answer.refused(403, "InvalidClientTokenId")
    assert error.message == "The security token included in the request is invalid."


def test_wrong_secret(service: Service) -> None:
    answer = signed_post(service, DESCRIBE, secret="not-the-secret")
    assert "signature" in answer.refused(403, "SignatureDoesNotMatch").message


def test_session_token_that_was_never_issued(service: Service) -> None:
    key, secret = service.credentials()
    request = post_request(service, DESCRIBE)
    SigV4Auth(Credentials(key, secret, token="forged-session"), "elasticache", REGION).add_auth(
        request
    )
    send(request).refused(403, "InvalidClientTokenId")


def test_signed_for_another_service(service: Service) -> None:
    key, secret = service.credentials()
    request = sign(post_request(service, DESCRIBE), key, secret, service_name="ec2")
    send(request).refused(403, "SignatureDoesNotMatch")


def test_signed_for_another_region(service: Service) -> None:
    answer = signed_post(service, DESCRIBE, region="eu-west-1")
    assert "region" in answer.refused(403, "SignatureDoesNotMatch").message


@pytest.mark.parametrize("minutes", [-20, 20], ids=["20-min-old", "20-min-ahead"])
def test_stale_or_future_date(service: Service, minutes: int) -> None:
    answer = signed_post(service, DESCRIBE, when=now() + timedelta(minutes=minutes))
    answer.refused(400, "RequestExpired")


def test_date_within_the_allowed_skew(service: Service) -> None:
    describe_ok(signed_post(service, DESCRIBE, when=now() - timedelta(minutes=10)))
    describe_ok(signed_post(service, DESCRIBE, when=now() + timedelta(minutes=10)))


def test_body_tampered_after_signing(service: Service) -> None:
    key, secret = service.credentials()
    request = sign(post_request(service, DESCRIBE), key, secret)
    request.data = urlencode({**DESCRIBE, "CacheClusterId": "someone-else"})
    send(request).refused(403, "SignatureDoesNotMatch")


def test_body_tampered_under_a_declared_payload_hash(service: Service) -> None:
    key, secret = service.credentials()
    request = post_request(service, DESCRIBE)
    request.headers["X-Amz-Content-SHA256"] = SigV4Auth(
        Credentials(key, secret), "elasticache", REGION
    ).payload(request)
    sign(request, key, secret)
    request.data = urlencode({**DESCRIBE, "MaxRecords": "20"})
    send(request).refused(403, "SignatureDoesNotMatch")


def test_unsupported_algorithm(service: Service) -> None:
    request = post_request(service, DESCRIBE)
    request.headers["Authorization"] = "AWS3-HTTPS AWSAccessKeyId=x,Signature=y"
    request.headers["X-Amz-Date"] = now().strftime("%Y%m%dT%H%M%SZ")
    send(request).refused(400, "IncompleteSignature")


def test_header_and_query_signature_together(service: Service) -> None:
    key, secret = service.credentials()
    url = service.client().generate_presigned_url(
        "describe_cache_clusters", Params={}, ExpiresIn=60, HttpMethod="GET"
    )
    request = sign(AWSRequest(method="GET", url=url), key, secret)
    send(request).refused(400, "IncompleteSignature")


# Presigned URLs (query-string SigV4), as boto3 makes them.


def presigned(service: Service, expires: int = 60, **params: str) -> str:
    url: str = service.client().generate_presigned_url(
        "describe_cache_clusters", Params=params, ExpiresIn=expires, HttpMethod="GET"
    )
    return url


def test_presigned_get_url_works(service: Service) -> None:
    describe_ok(get(presigned(service)))


def test_presigned_url_with_parameters_works(service: Service) -> None:
    """Parameters are signed too: one that needs encoding reaches the operation intact."""
    answer = get(presigned(service, CacheClusterId="no such cluster+/"))
    assert "no such cluster+/" in answer.refused(404, "CacheClusterNotFound").message


def test_expired_presigned_url(service: Service) -> None:
    with signing_clock(now() - timedelta(minutes=20)):
        url = presigned(service, expires=60)
    get(url).refused(400, "RequestExpired")


def test_presigned_url_still_valid_long_after_signing(service: Service) -> None:
    """A presigned URL lives for its X-Amz-Expires, not the 15-minute header skew."""
    with signing_clock(now() - timedelta(minutes=20)):
        url = presigned(service, expires=3600)
    describe_ok(get(url))


def test_presigned_url_with_tampered_parameter(service: Service) -> None:
    url = presigned(service, CacheClusterId="mine")
    parts = urlsplit(url)
    query = [(k, "theirs" if k == "CacheClusterId" else v) for k, v in parse_qsl(parts.query)]
    get(urlunsplit(parts._replace(query=urlencode(query)))).refused(403, "SignatureDoesNotMatch")


def test_boto3_with_wrong_secret(service: Service) -> None:
    key, _ = service.credentials()
    client = boto3.client(
        "elasticache",
        endpoint_url=service.endpoint,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key="wrong-secret",
        config=Config(retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError) as refused:
        client.describe_cache_clusters()
    error = refused.value.response
    assert error["Error"]["Code"] == "SignatureDoesNotMatch"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["ResponseMetadata"]["RequestId"]


def run_cli(service: Service, key: str, secret: str) -> subprocess.CompletedProcess[str]:
    env = service.aws_env()
    env.update(AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION=REGION)
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "aws"),
            "--endpoint-url",
            service.endpoint,
            "elasticache",
            "describe-cache-clusters",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("which", ["key", "secret"])
def test_aws_cli_with_wrong_credentials(service: Service, which: str) -> None:
    key, secret = service.credentials()
    if which == "key":
        done = run_cli(service, "AKIAUNKNOWNUNKNOWN00", secret)
        code = "InvalidClientTokenId"
    else:
        done = run_cli(service, key, secret[::-1])
        code = "SignatureDoesNotMatch"
    assert done.returncode != 0
    assert f"({code})" in done.stderr, done.stderr
    assert "DescribeCacheClusters" in done.stderr
    assert done.stdout == ""


def test_aws_cli_with_right_credentials(service: Service) -> None:
    assert service.aws("describe-cache-clusters") == {"CacheClusters": []}
