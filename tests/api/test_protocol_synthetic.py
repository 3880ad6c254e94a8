"""Query-protocol features ElastiCache's model does not use, on a small hand-made model.

Flattened lists and maps, renamed map entries, longs, doubles, blobs and sensitive
values must still match what botocore writes and reads.
"""

from __future__ import annotations

import math
from typing import Any
from xml.etree import ElementTree

import pytest
from botocore.model import ServiceModel
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from cacheyard.api.protocol.parsing import parse_input
from cacheyard.api.protocol.serializing import result_document
from cacheyard.domain.faults import InvalidParameterValueException, MissingParameter

MEMBERS = {
    "Renamed": {"shape": "String", "locationName": "renamed"},
    "FlatNames": {"shape": "FlatNames"},
    "FlatIds": {"shape": "FlatIds"},
    "Attributes": {"shape": "Attributes"},
    "FlatMap": {"shape": "FlatMap"},
    "Big": {"shape": "Long"},
    "Ratio": {"shape": "Double"},
    "Score": {"shape": "Float"},
    "Data": {"shape": "Blob"},
    "Secret": {"shape": "Secret"},
    "Count": {"shape": "Count"},
}
MODEL = ServiceModel(
    {
        "metadata": {
            "apiVersion": "2020-01-01",
            "endpointPrefix": "toy",
            "protocol": "query",
            "serviceId": "Toy",
            "signatureVersion": "v4",
        },
        "operations": {
            "Echo": {
                "name": "Echo",
                "http": {"method": "POST", "requestUri": "/"},
                "input": {"shape": "Echo"},
                "output": {"shape": "Echo", "resultWrapper": "EchoResult"},
            }
        },
        "shapes": {
            "Echo": {"type": "structure", "members": MEMBERS},
            "String": {"type": "string"},
            "FlatNames": {
                "type": "list",
                "member": {"shape": "String", "locationName": "Name"},
                "flattened": True,
            },
            "FlatIds": {"type": "list", "member": {"shape": "String"}, "flattened": True},
            "Attributes": {
                "type": "map",
                "key": {"shape": "String", "locationName": "Name"},
                "value": {"shape": "String", "locationName": "Value"},
            },
            "FlatMap": {
                "type": "map",
                "key": {"shape": "String"},
                "value": {"shape": "Long"},
                "flattened": True,
            },
            "Long": {"type": "long"},
            "Double": {"type": "double"},
            "Float": {"type": "float"},
            "Blob": {"type": "blob"},
            "Secret": {"type": "string", "sensitive": True, "min": 8},
            "Count": {"type": "integer", "min": 1, "max": 10},
        },
    },
    service_name="toy",
)
OPERATION = MODEL.operation_model("Echo")
FULL = {
    "Renamed": "r",
    "FlatNames": ["a", "b"],
    "FlatIds": ["i1"],
    "Attributes": {"colour": "blue", "size": "L"},
    "FlatMap": {"x": 1, "y": 2},
    "Big": 2**40,
    "Ratio": 0.25,
    "Score": 1e-3,
    "Data": b"\x00\xffbytes",
    "Secret": "s3cret-value",
    "Count": 10,
}


def botocore_form(params: dict[str, Any]) -> dict[str, str]:
    body = create_serializer("query").serialize_to_request(params, OPERATION)["body"]
    return {key: str(value) for key, value in body.items()}


def test_botocore_request_round_trips() -> None:
    form = botocore_form(FULL)
    assert form["renamed"] == "r"
    assert form["Name.2"] == "b"
    assert form["Attributes.entry.1.Name"] == "colour"
    assert form["FlatMap.2.value"] == "2"
    assert parse_input(OPERATION.input_shape, form) == FULL


def test_result_round_trips_through_botocore() -> None:
    body = result_document(MODEL, "Echo", FULL, "r1")
    root = ElementTree.fromstring(body)
    assert root.tag == "{https://toy.amazonaws.com/doc/2020-01-01/}EchoResponse"
    response = {"body": body, "headers": {}, "status_code": 200}
    parsed = create_parser("query").parse(response, OPERATION.output_shape)
    parsed.pop("ResponseMetadata")
    assert parsed == FULL


def test_non_finite_doubles() -> None:
    form = botocore_form({"Ratio": float("inf"), "Score": float("-inf")})
    assert form == {
        "Action": "Echo",
        "Version": "2020-01-01",
        "Ratio": "Infinity",
        "Score": "-Infinity",
    }
    assert parse_input(OPERATION.input_shape, form) == {"Ratio": math.inf, "Score": -math.inf}
    assert b"<Ratio>NaN</Ratio>" in result_document(MODEL, "Echo", {"Ratio": math.nan}, "r")


def test_map_entry_without_value_is_missing() -> None:
    with pytest.raises(MissingParameter, match=r"parameter Attributes\.entry\.1\.Value$"):
        parse_input(OPERATION.input_shape, {"Attributes.entry.1.Name": "k"})


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"Count": "0"}, 'Invalid value "0" for parameter Count: must be at least 1'),
        ({"Count": "11"}, 'Invalid value "11" for parameter Count: must be at most 10'),
        ({"Big": "9223372036854775808"}, "must be a 64-bit integer"),
        ({"Ratio": "1_0"}, "must be a number"),
        ({"Data": "not base64!"}, "must be base64-encoded"),
        ({"Secret": "short"}, "Invalid value for parameter Secret: length must be at least 8"),
    ],
)
def test_constraints(form: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidParameterValueException) as caught:
        parse_input(OPERATION.input_shape, form)
    assert message in caught.value.message
    assert "short" not in caught.value.message  # sensitive values are never echoed
