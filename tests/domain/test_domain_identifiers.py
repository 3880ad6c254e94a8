"""Identifiers as ElastiCache accepts them: letters first, single hyphens, stored lowercase."""

from __future__ import annotations

import pytest

from cacheyard.domain import identifiers
from cacheyard.domain.faults import InvalidParameterValueException

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize("value", ["a", "my-cluster", "A1-b2-C3", "x" * 50, "redis-0001"])
def test_valid_cluster_ids_are_accepted(value: str) -> None:
    assert identifiers.cache_cluster_id(value) == value.lower()


def test_cluster_ids_are_stored_lowercase() -> None:
    assert identifiers.cache_cluster_id("MyCluster-One") == "mycluster-one"
    assert identifiers.replication_group_id("MyGroup") == "mygroup"
    assert identifiers.subnet_group_name("My.Subnet_Group-1") == "my.subnet_group-1"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "1starts-with-digit",
        "-leading-hyphen",
        "trailing-hyphen-",
        "double--hyphen",
        "under_score",
        "dot.ted",
        "spa ce",
        "ümlaut",
        "x" * 51,
    ],
)
def test_invalid_cluster_ids_are_refused(value: str) -> None:
    with pytest.raises(InvalidParameterValueException) as caught:
        identifiers.cache_cluster_id(value)
    assert "CacheClusterId" in caught.value.message


def test_parameter_name_appears_in_the_message() -> None:
    with pytest.raises(InvalidParameterValueException, match="TargetId"):
        identifiers.cache_cluster_id("", parameter="TargetId")


def test_blank_and_too_long_have_their_own_messages() -> None:
    with pytest.raises(InvalidParameterValueException, match="must not be blank"):
        identifiers.cache_cluster_id("")
    with pytest.raises(InvalidParameterValueException, match="1 to 50 characters"):
        identifiers.cache_cluster_id("a" * 51)


def test_replication_group_ids_are_limited_to_40() -> None:
    assert identifiers.replication_group_id("g" * 40) == "g" * 40
    with pytest.raises(InvalidParameterValueException, match="1 to 40 characters"):
        identifiers.replication_group_id("g" * 41)
    with pytest.raises(InvalidParameterValueException, match="ReplicationGroupId"):
        identifiers.replication_group_id("bad--id")


def test_subnet_group_names_are_limited_to_255() -> None:
    assert identifiers.subnet_group_name("s" * 255) == "s" * 255
    with pytest.raises(InvalidParameterValueException):
        identifiers.subnet_group_name("s" * 256)
    with pytest.raises(InvalidParameterValueException):
        identifiers.subnet_group_name("")
    with pytest.raises(InvalidParameterValueException):
        identifiers.subnet_group_name("no/slashes")


def test_node_ids_are_four_digits_one_based() -> None:
    assert identifiers.node_id(1) == "0001"
    assert identifiers.node_id(42) == "0042"
    assert identifiers.node_id(1000) == "1000"


def test_cluster_id_with_trailing_newline_is_refused() -> None:
    with pytest.raises(InvalidParameterValueException):
        identifiers.cache_cluster_id("abc\n")


def test_subnet_group_name_with_trailing_newline_is_refused() -> None:
    with pytest.raises(InvalidParameterValueException):
        identifiers.subnet_group_name("group\n")
