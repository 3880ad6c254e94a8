"""ARNs: parsed into their parts and printed back unchanged."""

from __future__ import annotations

import pytest

from cacheyard.domain.arns import RESOURCE_TYPES, Arn, parse
from cacheyard.domain.faults import InvalidARNFault

pytestmark = pytest.mark.timeout(10)


def test_parse_and_str_round_trip() -> None:
    text = "arn:aws:elasticache:us-east-1:000000000000:cluster:my-cluster"
    arn = parse(text)
    assert arn == Arn("us-east-1", "000000000000", "cluster", "my-cluster")
    assert str(arn) == text


@pytest.mark.parametrize("resource_type", sorted(RESOURCE_TYPES))
def test_every_resource_type_round_trips(resource_type: str) -> None:
    arn = Arn("eu-west-1", "123456789012", resource_type, "thing-1")
    assert parse(str(arn)) == arn


def test_resource_id_may_hold_colons() -> None:
    arn = parse("arn:aws:elasticache:us-east-1:000000000000:snapshot:a:b")
    assert arn.resource_id == "a:b"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not-an-arn",
        "arn:aws:elasticache:us-east-1:000000000000:cluster",
        "arn:aws:elasticache:us-east-1:000000000000:cluster:",
        "arn:aws:s3:us-east-1:000000000000:cluster:x",
        "arx:aws:elasticache:us-east-1:000000000000:cluster:x",
        "arn:aws:elasticache:us-east-1:000000000000:bucket:x",
        "arn:aws:elasticache:us-east-1:000000000000:cache-cluster:x",
        "arn:aws:elasticache::000000000000:cluster:x",
        "arn:aws:elasticache:us-east-1::cluster:x",
    ],
)
def test_invalid_arns_are_refused(text: str) -> None:
    with pytest.raises(InvalidARNFault) as caught:
        parse(text)
    assert text in caught.value.message
