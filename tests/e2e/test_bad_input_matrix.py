"""Missing and malformed parameters, for every implemented operation, from the model.

The cases are generated from botocore's ElastiCache model, not written by hand:
every required member left out in turn, every integer/boolean/timestamp member
given a value that does not parse, every enum member given a value outside
its enum, and every required string member sent empty. Each request is sent
raw and signed (boto3 would refuse to build most of them) to a live service;
each must be the model's error with its status, as an AWS XML error document
with a RequestId, never a 500; and none may leave anything behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from bad_input_helpers import (
    MODEL,
    PROBE_ID,
    TWO_VALUES,
    Path,
    call,
    form_for,
    put,
    sample,
    signed_post,
    walk,
)
from service_helpers import Service

from cacheyard.api.handlers import IMPLEMENTED

pytestmark = pytest.mark.timeout(60)


# Values that are not the member's type at all, by shape type.
UNPARSEABLE: dict[str, tuple[str, ...]] = {
    "integer": ("abc", "1.5", "99999999999"),
    "long": ("abc", "1.5", "99999999999999999999"),
    "boolean": ("maybe", "yes"),
    "timestamp": ("yesterday", "2024-13-45T00:00:00Z"),
    "float": ("abc",),
    "double": ("abc",),
}


def params_at(operation: str, path: Path, value: Any) -> dict[str, Any]:
    shape = MODEL.operation_model(operation).input_shape
    placed: dict[str, Any] = put(shape, sample(shape), path, value)
    return placed


def wire_key(operation: str, path: Path, kind: str) -> str:
    """The form field of the scalar at ``path``, as botocore's serializer names it."""
    first, second = (form_for(operation, params_at(operation, path, v)) for v in TWO_VALUES[kind])
    (key,) = [k for k in first if first[k] != second.get(k)]
    return key


def label(path: Path) -> str:
    return ".".join(str(p) for p in path)


@dataclass(frozen=True)
class Case:
    operation: str
    params: dict[str, Any]
    overrides: dict[str, str]
    status: int
    code: str
    mentions: str  # the parameter the message must name
    message: str | None = None  # the whole message, where AWS's wording is known

    def __str__(self) -> str:
        return self.operation


def _operations() -> list[tuple[str, Any]]:
    found = []
    for operation in sorted(IMPLEMENTED):
        shape = MODEL.operation_model(operation).input_shape
        assert shape is not None, f"{operation} has no input"
        found.append((operation, shape))
    return found


def missing_cases() -> Iterator[Any]:
    """(a) Each required member, top-level or nested, left out in turn."""
    for operation, shape in _operations():
        structures: list[tuple[Path, Any]] = [((), shape)]
        structures += [(p, m) for p, m in walk(shape) if m.type_name == "structure"]
        for path, struct in structures:
            for name in struct.required_members:
                without = {k: v for k, v in sample(struct).items() if k != name}
                params = without if not path else params_at(operation, path, without)
                wire = struct.members[name].serialization.get("name", name)
                message = None if path else f"The request must contain the parameter {wire}"
                case = Case(operation, params, {}, 400, "MissingParameter", wire, message)
                yield pytest.param(case, id=f"{operation}-{label((*path, name))}")


def unparseable_cases() -> Iterator[Any]:
    """(b) Every integer/boolean/timestamp member, at any depth, given a non-parsing value."""
    for operation, shape in _operations():
        for path, member in walk(shape):
            kind = member.type_name
            if kind not in UNPARSEABLE:
                continue
            key = wire_key(operation, path, kind)
            params = params_at(operation, path, TWO_VALUES[kind][0])
            for raw in UNPARSEABLE[kind]:
                case = Case(operation, params, {key: raw}, 400, "InvalidParameterValue", key)
                yield pytest.param(case, id=f"{operation}-{key}={raw!r}")


def enum_cases() -> Iterator[Any]:
    """(c) Every enum member, at any depth, given a value outside its enum."""
    for operation, shape in _operations():
        for path, member in walk(shape):
            if member.type_name != "string" or not member.enum:
                continue
            for bad in ("not-a-valid-value", member.enum[0].upper() + "X"):
                params = params_at(operation, path, bad)
                name = str(path[-1])
                case = Case(operation, params, {}, 400, "InvalidParameterValue", name)
                yield pytest.param(case, id=f"{operation}-{label(path)}={bad}")


MISSING = list(missing_cases())
UNPARSEABLE_CASES = list(unparseable_cases())
ENUMS = list(enum_cases())


def check(service: Service, case: Case) -> None:
    answer = call(service, case.operation, case.params, **case.overrides)
    error = answer.refused(case.status, case.code)
    assert case.mentions in error.message, error
    if case.message is not None:
        assert error.message == case.message


def test_every_operation_is_covered() -> None:
    """The generated matrix reaches every implemented operation, and every required member."""
    cases = [p.values[0] for p in MISSING + UNPARSEABLE_CASES + ENUMS]
    assert {c.operation for c in cases} == set(IMPLEMENTED)
    required = {
        (op, name)
        for op, shape in _operations()
        for name in shape.required_members  # top level; nested ones are in MISSING too
    }
    assert {(c.operation, c.mentions) for c in cases if c.code == "MissingParameter"} >= required
    # Sanity: the famous one is in there.
    assert any(
        c.operation == "CreateCacheCluster" and c.overrides == {"NumCacheNodes": "abc"}
        for c in cases
    )


@pytest.mark.parametrize("case", MISSING)
def test_missing_required_member(service: Service, case: Case) -> None:
    check(service, case)


@pytest.mark.parametrize("case", UNPARSEABLE_CASES)
def test_unparseable_value(service: Service, case: Case) -> None:
    check(service, case)


@pytest.mark.parametrize("case", ENUMS)
def test_value_outside_enum(service: Service, case: Case) -> None:
    check(service, case)


# Protocol-level refusals, before any operation is chosen.


def test_missing_action(service: Service) -> None:
    answer = signed_post(service, {"Version": MODEL.api_version, "CacheClusterId": PROBE_ID})
    answer.refused(400, "MissingAction")


def test_unknown_action(service: Service) -> None:
    answer = signed_post(service, {"Action": "LaunchRocket", "Version": MODEL.api_version})
    assert "LaunchRocket" in answer.refused(400, "InvalidAction").message


def test_garbage_version(service: Service) -> None:
    form = form_for("DescribeCacheClusters", {})
    form["Version"] = "1999-99-99"
    assert "1999-99-99" in signed_post(service, form).refused(400, "InvalidAction").message


def test_body_that_is_not_utf8(service: Service) -> None:
    body = b"Action=DescribeCacheClusters&Version=2015-02-02&CacheClusterId=\xff\xfe"
    signed_post(service, body).refused(404, "MalformedQueryString")


# Beyond the model's own constraints: required strings sent empty reach the
# handlers, which must answer with one of the operation's modeled errors.

_COMMON = {"MissingParameter", "InvalidParameterValue", "InvalidParameterCombination"}


def empty_cases() -> Iterator[Any]:
    for operation, shape in _operations():
        for name in shape.required_members:
            if shape.members[name].type_name == "string":
                params = {**sample(shape), name: ""}
                yield pytest.param(operation, params, id=f"{operation}-{name}=''")


@pytest.mark.parametrize(("operation", "params"), list(empty_cases()))
def test_empty_required_string(service: Service, operation: str, params: dict[str, Any]) -> None:
    answer = call(service, operation, params)
    assert 400 <= answer.status < 500, answer.body
    modeled = {
        shape.metadata.get("error", {}).get("code", shape.name)
        for shape in MODEL.operation_model(operation).error_shapes
    }
    assert answer.error().code in modeled | _COMMON


@pytest.mark.parametrize(
    "window",
    [{"EndTime": "0001-01-01T00:30:00Z"}, {"EndTime": "0001-01-01T00:00:00Z", "Duration": "5"}],
    ids=["EndTime-only", "EndTime-and-Duration"],
)
def test_event_window_before_the_calendar(service: Service, window: dict[str, str]) -> None:
    """A parseable but extreme timestamp must be answered, never a 500."""
    answer = call(service, "DescribeEvents", {}, **window)
    assert answer.status != 500, answer.body
    assert answer.status == 200 or answer.error().code == "InvalidParameterValue"


def test_zz_nothing_was_created(service: Service) -> None:
    """After the whole matrix: no cluster, no subnet group but the default, no engine."""
    ec = service.client()
    assert ec.describe_cache_clusters()["CacheClusters"] == []
    groups = ec.describe_cache_subnet_groups()["CacheSubnetGroups"]
    assert [g["CacheSubnetGroupName"] for g in groups] == ["default"]
    assert ec.list_tags_for_resource(ResourceName=groups[0]["ARN"])["TagList"] == []
    assert service.engines() == {}
