"""Reading ElastiCache requests: wire names, types, and AWS's errors for bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from cacheyard.api.protocol import ParsedRequest, QueryProtocol
from cacheyard.domain.faults import (
    InvalidAction,
    InvalidParameterValueException,
    MissingAction,
    MissingParameter,
)

PROTOCOL = QueryProtocol()
VERSION = "2015-02-02"


def parse(action: str, **form: str) -> ParsedRequest:
    return PROTOCOL.parse({"Action": action, "Version": VERSION, **form})


def test_create_cache_cluster_reads_wire_names_and_types() -> None:
    request = parse(
        "CreateCacheCluster",
        **{
            "CacheClusterId": "x",
            "NumCacheNodes": "3",
            "AutoMinorVersionUpgrade": "TRUE",
            "Tags.Tag.1.Key": "k",
            "Tags.Tag.1.Value": "v",
            "Tags.Tag.2.Key": "k2",
            "PreferredAvailabilityZones.PreferredAvailabilityZone.1": "us-east-1a",
            "PreferredAvailabilityZones.PreferredAvailabilityZone.2": "us-east-1b",
        },
    )
    assert request == ParsedRequest(
        "CreateCacheCluster",
        {
            "CacheClusterId": "x",
            "NumCacheNodes": 3,
            "AutoMinorVersionUpgrade": True,
            "Tags": [{"Key": "k", "Value": "v"}, {"Key": "k2"}],
            "PreferredAvailabilityZones": ["us-east-1a", "us-east-1b"],
        },
    )


def test_list_items_follow_their_index_not_the_form_order() -> None:
    form = {"CacheNodeIdsToRemove.CacheNodeId.10": "c", "CacheNodeIdsToRemove.CacheNodeId.2": "b"}
    form["CacheNodeIdsToRemove.CacheNodeId.1"] = "a"
    request = parse("ModifyCacheCluster", CacheClusterId="x", **form)
    assert request.params["CacheNodeIdsToRemove"] == ["a", "b", "c"]


def test_default_member_name_and_empty_list() -> None:
    request = parse(
        "ModifyReplicationGroup",
        ReplicationGroupId="rg",
        **{"UserGroupIdsToAdd.member.1": "g1", "SecurityGroupIds": ""},
    )
    assert request.params == {
        "ReplicationGroupId": "rg",
        "UserGroupIdsToAdd": ["g1"],
        "SecurityGroupIds": [],
    }


def test_unknown_and_signature_parameters_are_ignored() -> None:
    request = parse(
        "DeleteCacheCluster",
        CacheClusterId="x",
        Bogus="1",
        **{"X-Amz-Signature": "abc", "X-Amz-Credential": "k/d/r/s/aws4_request"},
    )
    assert request.params == {"CacheClusterId": "x"}


def test_operation_without_parameters() -> None:
    assert PROTOCOL.parse({"Action": "DescribeCacheEngineVersions"}).params == {}


def test_missing_version_is_accepted() -> None:
    request = PROTOCOL.parse({"Action": "DeleteCacheCluster", "CacheClusterId": "x"})
    assert request.operation == "DeleteCacheCluster"


@pytest.mark.parametrize("form", [{}, {"Action": ""}, {"Version": VERSION}])
def test_missing_action(form: dict[str, str]) -> None:
    with pytest.raises(MissingAction):
        PROTOCOL.parse(form)


def test_unknown_action_is_named() -> None:
    with pytest.raises(InvalidAction, match="Could not find operation LaunchRockets for version"):
        parse("LaunchRockets")


def test_other_version_is_an_unknown_action() -> None:
    with pytest.raises(InvalidAction, match="DeleteCacheCluster for version 2014-01-01"):
        PROTOCOL.parse({"Action": "DeleteCacheCluster", "Version": "2014-01-01"})


def test_missing_required_parameter() -> None:
    with pytest.raises(MissingParameter) as caught:
        parse("CreateCacheCluster", NumCacheNodes="1")
    assert caught.value.message == "The request must contain the parameter CacheClusterId"


def test_missing_required_parameter_in_a_list_item() -> None:
    with pytest.raises(MissingParameter, match=r"parameter Filters\.member\.1\.Name$"):
        parse("DescribeUsers", **{"Filters.member.1.Values.member.1": "v"})


def test_missing_required_parameter_in_a_nested_structure() -> None:
    with pytest.raises(MissingParameter, match=r"CacheUsageLimits\.DataStorage\.Unit$"):
        parse(
            "CreateServerlessCache",
            ServerlessCacheName="s",
            Engine="redis",
            **{"CacheUsageLimits.DataStorage.Maximum": "10"},
        )


@pytest.mark.parametrize(
    ("action", "form", "message"),
    [
        (
            "CreateCacheCluster",
            {"CacheClusterId": "x", "NumCacheNodes": "abc"},
            'Invalid value "abc" for parameter NumCacheNodes: must be a 32-bit integer',
        ),
        (
            "CreateCacheCluster",
            {"CacheClusterId": "x", "NumCacheNodes": "99999999999"},
            "for parameter NumCacheNodes",
        ),
        (
            "CreateCacheCluster",
            {"CacheClusterId": "x", "NumCacheNodes": "1.5"},
            "for parameter NumCacheNodes",
        ),
        (
            "CreateCacheCluster",
            {"CacheClusterId": "x", "AutoMinorVersionUpgrade": "maybe"},
            'Invalid value "maybe" for parameter AutoMinorVersionUpgrade: must be true or false',
        ),
        (
            "CreateCacheCluster",
            {"CacheClusterId": "x", "AZMode": "everywhere"},
            'Invalid value "everywhere" for parameter AZMode: must be one of: single-az, cross-az',
        ),
        (
            "DescribeEvents",
            {"StartTime": "yesterday"},
            'Invalid value "yesterday" for parameter StartTime',
        ),
        (
            "CreateUser",
            {"UserId": "123", "UserName": "u", "Engine": "redis", "AccessString": "on"},
            'Invalid value "123" for parameter UserId: must match the pattern',
        ),
        (
            "CreateUser",
            {"UserId": "u1", "UserName": "", "Engine": "redis", "AccessString": "on"},
            "parameter UserName: length must be at least 1",
        ),
        (
            "DescribeUpdateActions",
            {f"CacheClusterIds.member.{i}": f"c{i}" for i in range(1, 22)},
            "Invalid value for parameter CacheClusterIds: entry count must be at most 20",
        ),
        (
            "CreateUserGroup",
            {"UserGroupId": "g", "Engine": "redis", "UserIds": ""},
            "Invalid value for parameter UserIds: entry count must be at least 1",
        ),
        (
            "CreateCacheCluster",
            {"CacheClusterId": "a\x00b"},
            "parameter CacheClusterId: contains characters that are not allowed",
        ),
    ],
)
def test_invalid_values(action: str, form: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidParameterValueException) as caught:
        parse(action, **form)
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-05-06T07:08:09Z", datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("2024-05-06T07:08:09.250Z", datetime(2024, 5, 6, 7, 8, 9, 250000, tzinfo=UTC)),
        ("2024-05-06T07:08:09", datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        (
            "2024-05-06T09:08:09+02:00",
            datetime(2024, 5, 6, 9, 8, 9, tzinfo=timezone(timedelta(hours=2))),
        ),
        ("1714979289", datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("1714979289.5", datetime(2024, 5, 6, 7, 8, 9, 500000, tzinfo=UTC)),
    ],
)
def test_timestamps(raw: str, expected: datetime) -> None:
    start = parse("DescribeEvents", StartTime=raw).params["StartTime"]
    assert start == expected
    assert start.tzinfo is UTC


def test_booleans_ignore_case() -> None:
    request = parse("DeleteReplicationGroup", ReplicationGroupId="r", RetainPrimaryCluster="False")
    assert request.params["RetainPrimaryCluster"] is False


def test_operation_names_are_the_models() -> None:
    names = PROTOCOL.operation_names()
    assert len(names) == len(PROTOCOL.service_model.operation_names)
    assert "CreateReplicationGroup" in names
    assert names == sorted(names)


def test_only_query_services() -> None:
    with pytest.raises(ValueError, match="Query protocol"):
        QueryProtocol("dynamodb")
