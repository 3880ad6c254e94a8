"""Cache subnet groups, tags and paging (Describe* markers and DescribeEvents filters).

One Memcached cluster of 21 nodes serves the whole module: it makes its subnet
group "in use", carries tags, and emits 22 events (one per node added, then
"Cache cluster created"), enough to page DescribeEvents at MaxRecords=20.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from service_helpers import Service, describe, wait_for

from cacheyard.domain.network import Network, Subnet

pytestmark = pytest.mark.timeout(90)

BUSY_GROUP = "busy-group"
CLUSTER = "paging-mc"
NODES = 21


def refused(call: Callable[..., Any], code: str, status: int, **params: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call(**params)
    response = raised.value.response
    got = (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"])
    assert got == (code, status), response["Error"]
    message: str = response["Error"]["Message"]
    return message


@pytest.fixture(scope="module")
def subnets(service: Service) -> list[Subnet]:
    return Network("us-east-1", service.address_base).subnets()


def in_zone(subnets: list[Subnet], zone: str) -> list[str]:
    return [s.subnet_id for s in subnets if s.availability_zone == f"us-east-1{zone}"]


def group_names(ec: BaseClient) -> list[str]:
    return [
        g["CacheSubnetGroupName"] for g in ec.describe_cache_subnet_groups()["CacheSubnetGroups"]
    ]


def tags(ec: BaseClient, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in ec.list_tags_for_resource(ResourceName=arn)["TagList"]}


@pytest.fixture(scope="module")
def busy(ec: BaseClient, subnets: list[Subnet]) -> Iterator[dict[str, Any]]:
    """A 21-node Memcached cluster, available, in a subnet group of its own (zone d)."""
    ec.create_cache_subnet_group(
        CacheSubnetGroupName=BUSY_GROUP,
        CacheSubnetGroupDescription="holds the paging cluster",
        SubnetIds=in_zone(subnets, "d")[:1],
    )
    ec.create_cache_cluster(
        CacheClusterId=CLUSTER,
        Engine="memcached",
        CacheNodeType="cache.t3.micro",
        NumCacheNodes=NODES,
        CacheSubnetGroupName=BUSY_GROUP,
        Tags=[{"Key": "team", "Value": "paging"}],
    )
    wait_for(lambda: describe(ec, CLUSTER)["CacheClusterStatus"] == "available", timeout=60)
    yield describe(ec, CLUSTER)
    try:
        if describe(ec, CLUSTER)["CacheClusterStatus"] != "deleting":
            ec.delete_cache_cluster(CacheClusterId=CLUSTER)
    except ClientError as gone:
        assert gone.response["Error"]["Code"] == "CacheClusterNotFound"
    wait_for(lambda: not ec.describe_cache_clusters()["CacheClusters"], timeout=30)
    ec.delete_cache_subnet_group(CacheSubnetGroupName=BUSY_GROUP)


# Subnet groups.


def test_default_subnet_group(ec: BaseClient) -> None:
    (group,) = ec.describe_cache_subnet_groups(CacheSubnetGroupName="default")["CacheSubnetGroups"]
    zones = [s["SubnetAvailabilityZone"]["Name"] for s in group["Subnets"]]
    assert zones == ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert group["ARN"].endswith(":subnetgroup:default")
    assert group["VpcId"]


def test_default_subnet_group_cannot_be_deleted(ec: BaseClient) -> None:
    for name in ("default", "DEFAULT"):
        refused(
            ec.delete_cache_subnet_group, "InvalidParameterValue", 400, CacheSubnetGroupName=name
        )
    assert "default" in group_names(ec)


def test_subnet_group_lifecycle(ec: BaseClient, subnets: list[Subnet]) -> None:
    first, second = in_zone(subnets, "e")[0], in_zone(subnets, "f")[0]
    created = ec.create_cache_subnet_group(
        CacheSubnetGroupName="Life-Group",
        CacheSubnetGroupDescription="for a while",
        SubnetIds=[first, first],
        Tags=[{"Key": "owner", "Value": "tests"}],
    )["CacheSubnetGroup"]
    assert created["CacheSubnetGroupName"] == "life-group"
    assert [s["SubnetIdentifier"] for s in created["Subnets"]] == [first]
    assert [s["SubnetAvailabilityZone"]["Name"] for s in created["Subnets"]] == ["us-east-1e"]
    arn = created["ARN"]
    assert tags(ec, arn) == {"owner": "tests"}

    (found,) = ec.describe_cache_subnet_groups(CacheSubnetGroupName="LIFE-GROUP")[
        "CacheSubnetGroups"
    ]
    assert found == created

    described = ec.modify_cache_subnet_group(
        CacheSubnetGroupName="life-group", CacheSubnetGroupDescription="still here"
    )["CacheSubnetGroup"]
    assert described["CacheSubnetGroupDescription"] == "still here"
    assert [s["SubnetIdentifier"] for s in described["Subnets"]] == [first]

    moved = ec.modify_cache_subnet_group(
        CacheSubnetGroupName="life-group", SubnetIds=[first, second]
    )["CacheSubnetGroup"]
    assert [s["SubnetIdentifier"] for s in moved["Subnets"]] == [first, second]
    assert moved["CacheSubnetGroupDescription"] == "still here"
    (found,) = ec.describe_cache_subnet_groups(CacheSubnetGroupName="life-group")[
        "CacheSubnetGroups"
    ]
    assert found == moved

    ec.delete_cache_subnet_group(CacheSubnetGroupName="life-group")
    assert "life-group" not in group_names(ec)
    for call, extra in (
        (ec.describe_cache_subnet_groups, {}),
        (ec.delete_cache_subnet_group, {}),
        (ec.modify_cache_subnet_group, {"CacheSubnetGroupDescription": "x"}),
    ):
        refused(
            call, "CacheSubnetGroupNotFoundFault", 400, CacheSubnetGroupName="life-group", **extra
        )
    refused(ec.list_tags_for_resource, "CacheSubnetGroupNotFoundFault", 400, ResourceName=arn)


def test_unknown_subnet_id(ec: BaseClient, subnets: list[Subnet]) -> None:
    real = subnets[0].subnet_id
    for ids in (["subnet-deadbeef"], [real, "subnet-deadbeef"], ["not-a-subnet"]):
        message = refused(
            ec.create_cache_subnet_group,
            "InvalidSubnet",
            400,
            CacheSubnetGroupName="bad-subnets",
            CacheSubnetGroupDescription="never",
            SubnetIds=ids,
        )
        assert ids[-1] in message
    assert "bad-subnets" not in group_names(ec)
    before = ec.describe_cache_subnet_groups(CacheSubnetGroupName="default")
    refused(
        ec.modify_cache_subnet_group,
        "InvalidSubnet",
        400,
        CacheSubnetGroupName="default",
        SubnetIds=["subnet-deadbeef"],
    )
    after = ec.describe_cache_subnet_groups(CacheSubnetGroupName="default")
    assert after["CacheSubnetGroups"] == before["CacheSubnetGroups"]


def test_subnet_group_in_use(ec: BaseClient, subnets: list[Subnet], busy: dict[str, Any]) -> None:
    assert busy["CacheSubnetGroupName"] == BUSY_GROUP
    message = refused(
        ec.delete_cache_subnet_group, "CacheSubnetGroupInUse", 400, CacheSubnetGroupName=BUSY_GROUP
    )
    assert BUSY_GROUP in message
    in_use = in_zone(subnets, "d")[0]
    other = in_zone(subnets, "d")[1]
    # Removing the subnet the nodes live in is refused; adding one is fine.
    refused(
        ec.modify_cache_subnet_group,
        "SubnetInUse",
        400,
        CacheSubnetGroupName=BUSY_GROUP,
        SubnetIds=[other],
    )
    grown = ec.modify_cache_subnet_group(
        CacheSubnetGroupName=BUSY_GROUP, SubnetIds=[in_use, other]
    )["CacheSubnetGroup"]
    assert len(grown["Subnets"]) == 2
    ec.modify_cache_subnet_group(CacheSubnetGroupName=BUSY_GROUP, SubnetIds=[in_use])
    assert BUSY_GROUP in group_names(ec)


# Tags.


def test_cluster_tags(ec: BaseClient, account_arn: str, busy: dict[str, Any]) -> None:
    arn = busy["ARN"]
    assert arn == f"{account_arn}:cluster:{CLUSTER}"
    assert tags(ec, arn) == {"team": "paging"}
    added = ec.add_tags_to_resource(
        ResourceName=arn, Tags=[{"Key": "team", "Value": "games"}, {"Key": "env", "Value": ""}]
    )
    assert {t["Key"]: t["Value"] for t in added["TagList"]} == {"team": "games", "env": ""}
    removed = ec.remove_tags_from_resource(ResourceName=arn, TagKeys=["env"])
    assert removed["TagList"] == [{"Key": "team", "Value": "games"}]
    message = refused(
        ec.remove_tags_from_resource, "TagNotFound", 404, ResourceName=arn, TagKeys=["env"]
    )
    assert "env" in message
    assert tags(ec, arn) == {"team": "games"}


def test_subnet_group_tags(ec: BaseClient, subnets: list[Subnet]) -> None:
    arn = ec.create_cache_subnet_group(
        CacheSubnetGroupName="tagged-group",
        CacheSubnetGroupDescription="tags",
        SubnetIds=in_zone(subnets, "b")[:1],
    )["CacheSubnetGroup"]["ARN"]
    try:
        assert tags(ec, arn) == {}
        ec.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "a", "Value": "1"}])
        ec.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "b", "Value": "2"}])
        assert tags(ec, arn) == {"a": "1", "b": "2"}
        # A removal naming one missing key removes nothing.
        refused(
            ec.remove_tags_from_resource, "TagNotFound", 404, ResourceName=arn, TagKeys=["a", "z"]
        )
        assert tags(ec, arn) == {"a": "1", "b": "2"}
        ec.remove_tags_from_resource(ResourceName=arn, TagKeys=["a", "b"])
        assert tags(ec, arn) == {}
        # 50 tags fit; the 51st does not, and nothing of that call is kept.
        fifty = [{"Key": f"k{i:02d}", "Value": "v"} for i in range(50)]
        ec.add_tags_to_resource(ResourceName=arn, Tags=fifty)
        refused(
            ec.add_tags_to_resource,
            "TagQuotaPerResourceExceeded",
            400,
            ResourceName=arn,
            Tags=[{"Key": "one-more", "Value": "v"}],
        )
        assert len(tags(ec, arn)) == 50
    finally:
        ec.delete_cache_subnet_group(CacheSubnetGroupName="tagged-group")


@pytest.fixture(scope="module")
def account_arn(ec: BaseClient) -> str:
    arn: str = ec.describe_cache_subnet_groups(CacheSubnetGroupName="default")["CacheSubnetGroups"][
        0
    ]["ARN"]
    return arn.rsplit(":", 2)[0]


# Paging DescribeCacheSubnetGroups.


def test_subnet_groups_page_by_marker(
    service: Service, ec: BaseClient, subnets: list[Subnet]
) -> None:
    names = [f"page-{i:02d}" for i in range(25)]
    for i, name in enumerate(names):
        ec.create_cache_subnet_group(
            CacheSubnetGroupName=name,
            CacheSubnetGroupDescription=f"page {i}",
            SubnetIds=[subnets[i % len(subnets)].subnet_id],
        )
    try:
        everything = group_names(ec)  # one page of up to 100
        assert set(names) | {"default"} <= set(everything)
        assert set(everything) - set(names) <= {"default", BUSY_GROUP}  # the module's own
        assert everything == sorted(set(everything))

        first = ec.describe_cache_subnet_groups(MaxRecords=20)
        assert len(first["CacheSubnetGroups"]) == 20
        second = ec.describe_cache_subnet_groups(MaxRecords=20, Marker=first["Marker"])
        assert "Marker" not in second
        paged = [
            g["CacheSubnetGroupName"]
            for g in first["CacheSubnetGroups"] + second["CacheSubnetGroups"]
        ]
        assert paged == everything

        pages = list(
            ec.get_paginator("describe_cache_subnet_groups").paginate(
                PaginationConfig={"PageSize": 20}
            )
        )
        assert [len(p["CacheSubnetGroups"]) for p in pages] == [20, len(everything) - 20]
        by_paginator = [g["CacheSubnetGroupName"] for p in pages for g in p["CacheSubnetGroups"]]
        assert by_paginator == everything  # all of them, once each

        cli = service.aws("describe-cache-subnet-groups", "--page-size", "20")
        assert [g["CacheSubnetGroupName"] for g in cli["CacheSubnetGroups"]] == everything

        # markers it never handed out, including ones base64 decoding would
        # quietly make something of, are refused rather than restarting the list
        for marker in ("/w==", "ü", "A" * 1000, "%%%", first["Marker"] + "x"):
            refused(
                ec.describe_cache_subnet_groups,
                "InvalidParameterValue",
                400,
                Marker=marker,
                MaxRecords=20,
            )
        refused(ec.describe_events, "InvalidParameterValue", 400, Marker=first["Marker"])
    finally:
        for name in names:
            ec.delete_cache_subnet_group(CacheSubnetGroupName=name)
    assert not set(names) & set(group_names(ec))


# DescribeEvents: filters and paging.


def cluster_events(ec: BaseClient, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ec.describe_events(
        SourceType="cache-cluster", SourceIdentifier=CLUSTER, **params
    )["Events"]
    return found


def test_events_of_the_cluster(ec: BaseClient, busy: dict[str, Any]) -> None:
    events = cluster_events(ec)
    messages = [e["Message"] for e in events]
    added = sorted(m for m in messages if m.startswith("Added cache node"))
    assert added == [
        f"Added cache node {i:04d} in availability zone us-east-1d" for i in range(1, NODES + 1)
    ]
    assert messages[-1] == "Cache cluster created"
    assert len(events) == NODES + 1
    assert {(e["SourceType"], e["SourceIdentifier"]) for e in events} == {
        ("cache-cluster", CLUSTER)
    }


def test_events_page_at_twenty(service: Service, ec: BaseClient, busy: dict[str, Any]) -> None:
    everything = cluster_events(ec)
    first = cluster_events(ec, MaxRecords=20)
    assert first == everything[:20]
    page = ec.describe_events(SourceType="cache-cluster", SourceIdentifier=CLUSTER, MaxRecords=20)
    rest = ec.describe_events(
        SourceType="cache-cluster", SourceIdentifier=CLUSTER, MaxRecords=20, Marker=page["Marker"]
    )
    assert "Marker" not in rest
    assert page["Events"] + rest["Events"] == everything

    pages = list(
        ec.get_paginator("describe_events").paginate(
            SourceType="cache-cluster",
            SourceIdentifier=CLUSTER,
            PaginationConfig={"PageSize": 20},
        )
    )
    assert [len(p["Events"]) for p in pages] == [20, NODES + 1 - 20]
    assert [e for p in pages for e in p["Events"]] == everything

    cli = service.aws(
        "describe-events",
        "--source-type",
        "cache-cluster",
        "--source-identifier",
        CLUSTER,
        "--page-size",
        "20",
    )
    assert [e["Message"] for e in cli["Events"]] == [e["Message"] for e in everything]


def test_events_by_source(ec: BaseClient, busy: dict[str, Any]) -> None:
    all_clusters = ec.describe_events(SourceType="cache-cluster")["Events"]
    assert len([e for e in all_clusters if e["SourceIdentifier"] == CLUSTER]) == NODES + 1
    assert ec.describe_events(SourceType="cache-subnet-group")["Events"] == []
    assert cluster_events(ec, MaxRecords=20)[0]["SourceIdentifier"] == CLUSTER
    assert (
        ec.describe_events(SourceType="cache-cluster", SourceIdentifier="no-such-cluster")["Events"]
        == []
    )


def test_events_by_time(ec: BaseClient, busy: dict[str, Any]) -> None:
    events = cluster_events(ec)
    dates: list[datetime] = [e["Date"] for e in events]
    earliest, latest = min(dates), max(dates)
    second = timedelta(seconds=1)
    window = {"StartTime": earliest - second, "EndTime": latest + second}
    assert cluster_events(ec, **window) == events
    assert cluster_events(ec, StartTime=latest + second) == []
    assert cluster_events(ec, EndTime=earliest - second) == []
    # Duration counts back from EndTime (or now): one minute covers the burst, zero nothing.
    assert cluster_events(ec, EndTime=latest + second, Duration=1) == events
    assert cluster_events(ec, EndTime=earliest - second, Duration=1) == []
    assert cluster_events(ec, Duration=60) == events
    assert cluster_events(ec, Duration=20160) == events
    refused(ec.describe_events, "InvalidParameterValue", 400, Duration=20161)
    refused(
        ec.describe_events,
        "InvalidParameterCombination",
        400,
        StartTime=latest,
        EndTime=earliest - second,
    )


def test_zz_deleted_cluster_frees_its_group(ec: BaseClient, busy: dict[str, Any]) -> None:
    ec.delete_cache_cluster(CacheClusterId=CLUSTER)
    wait_for(lambda: not ec.describe_cache_clusters()["CacheClusters"], timeout=30)
    assert cluster_events(ec)[-1]["Message"] == "Cache cluster deleted"
    refused(ec.list_tags_for_resource, "CacheClusterNotFound", 404, ResourceName=busy["ARN"])
    # The group is no longer in use: the fixture's teardown deletes it.
