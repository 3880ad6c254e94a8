"""Every operation of the model, both ways, against botocore's own serializer and parser.

Requests are written by botocore's Query serializer and must parse back to the
same parameters; results written by the protocol must parse in botocore to the
same values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from cacheyard.api.protocol import QueryProtocol

STAMP = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
# Strings that satisfy the few patterns a plain sample cannot (IAM only).
EXAMPLES = {
    "OrganizationIdType": "o-abcdefghij",
    "accountIdType": "123456789012",
    "organizationsEntityPathType": "o-abcdefghij/r-abcd",
    "organizationsPolicyIdType": "p-abcdefgh",
    "pathPrefixType": "/abc/",
    "pathType": "/abc/",
    "policyPathType": "/abc/",
    "policyVersionIdType": "v1",
    "redirectUrlType": "https://example.com/",
    "rolePathPatternType": "/abc/",
}

PROTOCOLS = {name: QueryProtocol(name) for name in ("elasticache", "iam", "sts")}
CASES = [(name, op) for name, proto in PROTOCOLS.items() for op in proto.operation_names()]


def sample(shape: Any, required_only: bool, depth: int = 0) -> Any:
    """A value of ``shape`` that satisfies the model's constraints."""
    kind = shape.type_name
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if kind == "structure":
        names = shape.required_members if required_only else list(shape.members)
        if depth > 6:
            return {}
        if (not names and depth) or shape.metadata.get("union"):
            names = list(shape.members)[:1]  # an empty structure is not sent at all
        return {name: sample(shape.members[name], required_only, depth + 1) for name in names}
    if kind == "list":
        return [sample(shape.member, required_only, depth + 1) for _ in range(max(low or 1, 1))]
    if kind == "map":
        return {sample(shape.key, required_only): sample(shape.value, required_only, depth + 1)}
    if kind == "string":
        if shape.enum:
            return shape.enum[0]
        if shape.name in EXAMPLES:
            return EXAMPLES[shape.name]
        length = min(max(low or 0, 4), high or 4)
        return ("abc1" * length)[:length]
    if kind in ("integer", "long"):
        return min(max(low or 0, 2), high or 2)
    return {"boolean": True, "double": 1.5, "float": 2.5, "timestamp": STAMP, "blob": b"\x00b"}[
        kind
    ]


def round_trip(service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    protocol = PROTOCOLS[service]
    model = protocol.service_model.operation_model(operation)
    body = create_serializer("query").serialize_to_request(params, model)["body"]
    form = {key: str(value) for key, value in body.items()}
    parsed = protocol.parse(form)
    assert parsed.operation == operation
    return parsed.params


@pytest.mark.parametrize(("service", "operation"), CASES)
def test_minimal_request_round_trips(service: str, operation: str) -> None:
    shape = PROTOCOLS[service].service_model.operation_model(operation).input_shape
    params = sample(shape, required_only=True) if shape is not None else {}
    assert round_trip(service, operation, params) == params


@pytest.mark.parametrize(("service", "operation"), CASES)
def test_full_request_round_trips(service: str, operation: str) -> None:
    shape = PROTOCOLS[service].service_model.operation_model(operation).input_shape
    params = sample(shape, required_only=False) if shape is not None else {}
    assert round_trip(service, operation, params) == params


@pytest.mark.parametrize(("service", "operation"), CASES)
def test_full_result_parses_in_botocore(service: str, operation: str) -> None:
    protocol = PROTOCOLS[service]
    shape = protocol.service_model.operation_model(operation).output_shape
    result = sample(shape, required_only=False) if shape is not None else {}
    body = protocol.serialize_result(operation, result, "req-1")
    response = {"body": body, "headers": {}, "status_code": 200}
    parsed = create_parser("query").parse(response, shape)
    assert parsed.pop("ResponseMetadata")["RequestId"] == "req-1"
    assert parsed == result
