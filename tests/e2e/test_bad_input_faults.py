"""AWS's specific faults through boto3: duplicates, unknown ids, invalid identifiers,
out-of-range counts, impossible placements, wrong states and unimplemented calls.

Every refusal is checked for its code and HTTP status, and for leaving nothing
behind. Wrong states are made deterministic rather than raced: the test binds
the address a node is about to get, so the engine cannot start and the cluster
stays ``creating`` (or ``modifying``) for exactly as long as the test wants.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from bad_input_helpers import MODEL, call, sample
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from service_helpers import Service, describe, wait_for

from cacheyard.api.handlers import IMPLEMENTED
from cacheyard.domain.network import Network, Subnet

pytestmark = pytest.mark.timeout(90)

MEMCACHED = {"Engine": "memcached", "CacheNodeType": "cache.t3.micro"}
REDIS = {"Engine": "redis", "CacheNodeType": "cache.t3.micro"}
CLUSTER = "faults-mc"
GROUP = "faults-blocked"


def refused(call: Callable[..., Any], code: str, status: int, **params: Any) -> str:
    """Call a boto3 operation that must fail with ``code``/``status``; its message."""
    with pytest.raises(ClientError) as raised:
        call(**params)
    response = raised.value.response
    got = (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"])
    assert got == (code, status), response["Error"]
    assert response["ResponseMetadata"]["RequestId"]
    message: str = response["Error"]["Message"]
    return message


def absent(ec: BaseClient, cluster_id: str) -> None:
    refused(ec.describe_cache_clusters, "CacheClusterNotFound", 404, CacheClusterId=cluster_id)


@pytest.fixture(scope="module")
def account(ec: BaseClient) -> str:
    arn: str = ec.describe_cache_subnet_groups()["CacheSubnetGroups"][0]["ARN"]
    return arn.split(":")[4]


# Unknown ids and ARNs.


@pytest.mark.parametrize(
    ("operation", "extra"),
    [
        ("describe_cache_clusters", {}),
        ("modify_cache_cluster", {"NumCacheNodes": 2}),
        ("reboot_cache_cluster", {"CacheNodeIdsToReboot": ["0001"]}),
        ("delete_cache_cluster", {}),
    ],
)
def test_unknown_cache_cluster(ec: BaseClient, operation: str, extra: dict[str, Any]) -> None:
    message = refused(
        getattr(ec, operation), "CacheClusterNotFound", 404, CacheClusterId="no-such", **extra
    )
    assert "no-such" in message


@pytest.mark.parametrize(
    ("operation", "extra"),
    [
        ("describe_cache_subnet_groups", {}),
        ("modify_cache_subnet_group", {"CacheSubnetGroupDescription": "x"}),
        ("delete_cache_subnet_group", {}),
    ],
)
def test_unknown_subnet_group(ec: BaseClient, operation: str, extra: dict[str, Any]) -> None:
    refused(
        getattr(ec, operation),
        "CacheSubnetGroupNotFoundFault",
        400,
        CacheSubnetGroupName="no-such-group",
        **extra,
    )


def test_cluster_in_unknown_subnet_group(ec: BaseClient) -> None:
    refused(
        ec.create_cache_cluster,
        "CacheSubnetGroupNotFoundFault",
        400,
        CacheClusterId="in-no-group",
        CacheSubnetGroupName="no-such-group",
        **MEMCACHED,
    )
    absent(ec, "in-no-group")


@pytest.mark.parametrize(
    ("kind", "code", "status"),
    [
        ("cluster", "CacheClusterNotFound", 404),
        ("subnetgroup", "CacheSubnetGroupNotFoundFault", 400),
    ],
)
def test_tags_on_unknown_resource(
    ec: BaseClient, account: str, kind: str, code: str, status: int
) -> None:
    arn = f"arn:aws:elasticache:us-east-1:{account}:{kind}:no-such"
    refused(ec.list_tags_for_resource, code, status, ResourceName=arn)
    refused(ec.add_tags_to_resource, code, status, ResourceName=arn, Tags=[{"Key": "k"}])
    refused(ec.remove_tags_from_resource, code, status, ResourceName=arn, TagKeys=["k"])


@pytest.mark.parametrize(
    "arn",
    [
        "not-an-arn",
        "arn:aws:s3:::a-bucket",
        "arn:aws:elasticache:us-east-1:{account}:widget:x",
        "arn:aws:elasticache:us-east-1:{account}:cluster:",
        "arn:aws:elasticache:us-east-1:{account}",
        "arn:aws:elasticache::{account}:cluster:x",
    ],
)
def test_malformed_arn(ec: BaseClient, account: str, arn: str) -> None:
    name = arn.format(account=account)
    refused(ec.list_tags_for_resource, "InvalidARN", 400, ResourceName=name)
    refused(ec.add_tags_to_resource, "InvalidARN", 400, ResourceName=name, Tags=[{"Key": "k"}])


# Invalid identifiers and out-of-range values: refused, and nothing created.


@pytest.mark.parametrize(
    "cluster_id", ["1abc", "a--b", "abc-", "a" * 51, "bad_id", "-abc", "abc\n", "", "ab c"]
)
def test_invalid_cluster_identifier(ec: BaseClient, cluster_id: str) -> None:
    message = refused(
        ec.create_cache_cluster,
        "InvalidParameterValue",
        400,
        CacheClusterId=cluster_id,
        NumCacheNodes=1,
        **MEMCACHED,
    )
    assert "CacheClusterId" in message
    assert ec.describe_cache_clusters()["CacheClusters"] == []


def test_fifty_characters_is_a_valid_identifier(ec: BaseClient) -> None:
    """The longest valid id passes identifier validation (and fails on the next check)."""
    refused(
        ec.create_cache_cluster,
        "CacheSubnetGroupNotFoundFault",
        400,
        CacheClusterId="a" * 50,
        CacheSubnetGroupName="no-such-group",
        **MEMCACHED,
    )


def test_subnet_group_name_with_trailing_newline(service: Service, ec: BaseClient) -> None:
    """A '$' anchor would let "name\\n" through; the group must not be created."""
    subnet = Network("us-east-1", service.address_base).subnets()[0].subnet_id
    try:
        refused(
            ec.create_cache_subnet_group,
            "InvalidParameterValue",
            400,
            CacheSubnetGroupName="nl-group\n",
            CacheSubnetGroupDescription="d",
            SubnetIds=[subnet],
        )
    finally:
        names = [
            g["CacheSubnetGroupName"]
            for g in ec.describe_cache_subnet_groups()["CacheSubnetGroups"]
        ]
        if "nl-group\n" in names:
            ec.delete_cache_subnet_group(CacheSubnetGroupName="nl-group\n")


@pytest.mark.parametrize("port", [70000, -5])
def test_port_out_of_range(fresh_service: Service, port: int) -> None:
    ec = fresh_service.client()
    refused(
        ec.create_cache_cluster,
        "InvalidParameterValue",
        400,
        CacheClusterId="bad-port",
        NumCacheNodes=1,
        Port=port,
        **MEMCACHED,
    )


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({**REDIS, "NumCacheNodes": 2}, "InvalidParameterValue"),
        ({**MEMCACHED, "NumCacheNodes": 41}, "NodeQuotaForClusterExceeded"),
        ({**MEMCACHED, "NumCacheNodes": 0}, "InvalidParameterValue"),
        ({**MEMCACHED, "NumCacheNodes": -1}, "InvalidParameterValue"),
        ({**REDIS, "SnapshotRetentionLimit": 36}, "InvalidParameterValue"),
        ({**REDIS, "SnapshotRetentionLimit": -1}, "InvalidParameterValue"),
    ],
    ids=["redis-2", "memcached-41", "memcached-0", "memcached-minus-1", "retention-36", "ret--1"],
)
def test_out_of_range_count(ec: BaseClient, params: dict[str, Any], code: str) -> None:
    refused(ec.create_cache_cluster, code, 400, CacheClusterId="out-of-range", **params)
    absent(ec, "out-of-range")


@pytest.mark.parametrize(
    "operation",
    [
        "describe_cache_clusters",
        "describe_cache_subnet_groups",
        "describe_events",
        "describe_cache_engine_versions",
    ],
)
@pytest.mark.parametrize("max_records", [10, 19, 101])
def test_max_records_out_of_range(ec: BaseClient, operation: str, max_records: int) -> None:
    message = refused(getattr(ec, operation), "InvalidParameterValue", 400, MaxRecords=max_records)
    assert "MaxRecords" in message


# Impossible creations: each refused with AWS's fault, nothing created.

CREATE_FAULTS: list[Any] = [
    pytest.param({**MEMCACHED, "Engine": "postgres"}, "InvalidParameterValue", 400, id="engine"),
    pytest.param({**REDIS, "EngineVersion": "2.8.99"}, "InvalidParameterValue", 400, id="version"),
    pytest.param(
        {**REDIS, "CacheNodeType": "cache.x9.huge"}, "InvalidParameterValue", 400, id="type"
    ),
    pytest.param({"CacheNodeType": "cache.t3.micro"}, "InvalidParameterValue", 400, id="no-engine"),
    pytest.param({"Engine": "redis"}, "InvalidParameterValue", 400, id="no-node-type"),
    pytest.param(
        {**REDIS, "CacheParameterGroupName": "no-such-pg"},
        "CacheParameterGroupNotFound",
        404,
        id="parameter-group",
    ),
    pytest.param(
        {**MEMCACHED, "PreferredAvailabilityZone": "us-east-1f"},
        "InvalidParameterValue",
        400,
        id="zone-not-in-group",
    ),
    pytest.param(
        {**MEMCACHED, "PreferredAvailabilityZone": "mars-1a"},
        "InvalidParameterValue",
        400,
        id="zone-that-does-not-exist",
    ),
    pytest.param(
        {
            **MEMCACHED,
            "NumCacheNodes": 3,
            "PreferredAvailabilityZones": ["us-east-1a", "us-east-1b"],
        },
        "InvalidParameterValue",
        400,
        id="zones-count-mismatch",
    ),
    pytest.param(
        {
            **MEMCACHED,
            "NumCacheNodes": 2,
            "PreferredAvailabilityZones": ["us-east-1a", "us-east-1f"],
        },
        "InvalidParameterValue",
        400,
        id="zones-not-in-group",
    ),
    pytest.param(
        {
            **MEMCACHED,
            "NumCacheNodes": 2,
            "PreferredAvailabilityZone": "us-east-1a",
            "PreferredAvailabilityZones": ["us-east-1a", "us-east-1b"],
        },
        "InvalidParameterCombination",
        400,
        id="zone-and-zones",
    ),
    pytest.param(
        {**REDIS, "AZMode": "cross-az"}, "InvalidParameterCombination", 400, id="azmode-redis"
    ),
    pytest.param(
        {**MEMCACHED, "NumCacheNodes": 1, "AZMode": "cross-az"},
        "InvalidParameterValue",
        400,
        id="cross-az-one-node",
    ),
    pytest.param(
        {**MEMCACHED, "SnapshotRetentionLimit": 1},
        "InvalidParameterCombination",
        400,
        id="snapshots-memcached",
    ),
    pytest.param(
        {**MEMCACHED, "CacheSecurityGroupNames": ["sg"]},
        "InvalidParameterCombination",
        400,
        id="cache-security-groups",
    ),
    pytest.param(
        {**REDIS, "ReplicationGroupId": "no-such-rg"},
        "ReplicationGroupNotFoundFault",
        404,
        id="replication-group",
    ),
    pytest.param(
        {**MEMCACHED, "Tags": [{"Key": f"k{i}", "Value": "v"} for i in range(51)]},
        "TagQuotaPerResourceExceeded",
        400,
        id="51-tags",
    ),
    pytest.param(
        {**MEMCACHED, "Tags": [{"Key": "", "Value": "v"}]},
        "InvalidParameterValue",
        400,
        id="empty-tag-key",
    ),
]


@pytest.mark.parametrize(("params", "code", "status"), CREATE_FAULTS)
def test_impossible_creation(
    service: Service, ec: BaseClient, params: dict[str, Any], code: str, status: int
) -> None:
    refused(ec.create_cache_cluster, code, status, CacheClusterId="impossible", **params)
    absent(ec, "impossible")
    assert service.engines() == {}


# Subnet group duplicates and quotas.


def test_duplicate_subnet_group(service: Service, ec: BaseClient) -> None:
    subnet = Network("us-east-1", service.address_base).subnets()[5].subnet_id
    ec.create_cache_subnet_group(
        CacheSubnetGroupName="dup-group", CacheSubnetGroupDescription="one", SubnetIds=[subnet]
    )
    try:
        for name in ("dup-group", "DUP-GROUP"):
            refused(
                ec.create_cache_subnet_group,
                "CacheSubnetGroupAlreadyExists",
                400,
                CacheSubnetGroupName=name,
                CacheSubnetGroupDescription="two",
                SubnetIds=[subnet],
            )
        (group,) = ec.describe_cache_subnet_groups(CacheSubnetGroupName="dup-group")[
            "CacheSubnetGroups"
        ]
        assert group["CacheSubnetGroupDescription"] == "one"
    finally:
        ec.delete_cache_subnet_group(CacheSubnetGroupName="dup-group")
    refused(
        ec.create_cache_subnet_group,
        "CacheSubnetGroupAlreadyExists",
        400,
        CacheSubnetGroupName="default",
        CacheSubnetGroupDescription="again",
        SubnetIds=[subnet],
    )


def test_too_many_subnets(service: Service, ec: BaseClient) -> None:
    subnets = [s.subnet_id for s in Network("us-east-1", service.address_base).subnets()]
    refused(
        ec.create_cache_subnet_group,
        "CacheSubnetQuotaExceededFault",
        400,
        CacheSubnetGroupName="too-many",
        CacheSubnetGroupDescription="21 subnets",
        SubnetIds=subnets[:21],
    )
    refused(
        ec.describe_cache_subnet_groups,
        "CacheSubnetGroupNotFoundFault",
        400,
        CacheSubnetGroupName="too-many",
    )


# Operations of the model that Cacheyard does not implement: 501, never a 500.


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("create_serverless_cache", {"ServerlessCacheName": "s", "Engine": "redis"}),
        ("describe_serverless_caches", {}),
    ],
)
def test_unimplemented_operation_through_boto3(
    ec: BaseClient, operation: str, params: dict[str, Any]
) -> None:
    message = refused(getattr(ec, operation), "NotImplemented", 501, **params)
    assert ec.meta.method_to_api_mapping[operation] in message


def test_every_unimplemented_operation_is_501(service: Service) -> None:
    """Each operation of the model without a handler, called with its required members."""
    missing = sorted(set(MODEL.operation_names) - IMPLEMENTED)
    assert missing, "every operation is implemented: drop this test"
    for operation in missing:
        shape = MODEL.operation_model(operation).input_shape
        params = sample(shape) if shape is not None else {}
        error = call(service, operation, params).refused(501, "NotImplemented")
        assert operation in error.message


# States: creating and modifying held deterministically by a port the test holds.


class BlockedCluster:
    """A 2-node Memcached cluster whose nodes' addresses the test can hold busy."""

    def __init__(self, service: Service, ec: BaseClient) -> None:
        self.service = service
        self.ec = ec
        self.subnet: Subnet = Network("us-east-1", service.address_base).subnets()[1]
        self.hosts = list(self.subnet.hosts())[:8]
        self.held: list[socket.socket] = []

    def hold(self, *addresses: str) -> None:
        """Listen on the engine's port at ``addresses``: an engine there cannot bind."""
        for address in addresses:
            sock = socket.socket()
            sock.bind((address, 11211))
            sock.listen()
            self.held.append(sock)

    def release(self) -> None:
        while self.held:
            self.held.pop().close()

    def status(self) -> str:
        status: str = describe(self.ec, CLUSTER)["CacheClusterStatus"]
        return status

    def ready(self) -> dict[str, Any]:
        self.release()
        wait_for(lambda: self.status() == "available")
        return describe(self.ec, CLUSTER)

    def engines(self) -> set[str]:
        return {str(p) for p in self.service.engines() if CLUSTER in p.parts}


@pytest.fixture(scope="module")
def blocked(service: Service, ec: BaseClient) -> Iterator[BlockedCluster]:
    cluster = BlockedCluster(service, ec)
    ec.create_cache_subnet_group(
        CacheSubnetGroupName=GROUP,
        CacheSubnetGroupDescription="one subnet, so addresses are predictable",
        SubnetIds=[cluster.subnet.subnet_id],
    )
    # Node 0001, node 0002 and the configuration endpoint take the first three hosts.
    cluster.hold(*cluster.hosts[:3])
    created = ec.create_cache_cluster(
        CacheClusterId=CLUSTER, NumCacheNodes=2, CacheSubnetGroupName=GROUP, **MEMCACHED
    )["CacheCluster"]
    assert created["CacheClusterStatus"] == "creating"
    yield cluster
    cluster.release()
    try:
        if cluster.status() != "deleting":
            cluster.ready()
            ec.delete_cache_cluster(CacheClusterId=CLUSTER)
        wait_for(lambda: not ec.describe_cache_clusters()["CacheClusters"])
    except ClientError as gone:
        assert gone.response["Error"]["Code"] == "CacheClusterNotFound"
    ec.delete_cache_subnet_group(CacheSubnetGroupName=GROUP)


def refused_while_busy(ec: BaseClient) -> None:
    """Modify, Reboot and Delete all need an available cluster."""
    for operation, extra in (
        (ec.modify_cache_cluster, {"NumCacheNodes": 4, "ApplyImmediately": True}),
        (ec.modify_cache_cluster, {"AutoMinorVersionUpgrade": False}),
        (ec.reboot_cache_cluster, {"CacheNodeIdsToReboot": ["0001"]}),
        (ec.delete_cache_cluster, {}),
    ):
        refused(operation, "InvalidCacheClusterState", 400, CacheClusterId=CLUSTER, **extra)


def test_creating_cluster_refuses_duplicates_and_changes(
    ec: BaseClient, blocked: BlockedCluster
) -> None:
    assert blocked.held, "run in file order: this test needs the cluster still creating"
    for duplicate in (CLUSTER, CLUSTER.upper()):
        message = refused(
            ec.create_cache_cluster,
            "CacheClusterAlreadyExists",
            400,
            CacheClusterId=duplicate,
            **REDIS,
        )
        assert CLUSTER in message
    refused_while_busy(ec)
    # Still creating (the nodes cannot bind), and still what was asked for.
    cluster = describe(ec, CLUSTER)
    assert cluster["CacheClusterStatus"] == "creating"
    assert (cluster["Engine"], cluster["NumCacheNodes"]) == ("memcached", 2)
    assert cluster["AutoMinorVersionUpgrade"] is True
    # Released, it becomes available on its own: nothing was half-applied.
    available = blocked.ready()
    assert [n["CacheNodeId"] for n in available["CacheNodes"]] == ["0001", "0002"]
    assert available["Engine"] == "memcached"


AVAILABLE_FAULTS: list[Any] = [
    pytest.param(
        "reboot", {"CacheNodeIdsToReboot": ["0009"]}, "InvalidParameterValue", 400, id="reboot-0009"
    ),
    pytest.param(
        "reboot", {"CacheNodeIdsToReboot": []}, "InvalidParameterValue", 400, id="reboot-none"
    ),
    pytest.param(
        "modify", {"NumCacheNodes": 1}, "InvalidParameterValue", 400, id="shrink-without-ids"
    ),
    pytest.param(
        "modify",
        {"NumCacheNodes": 1, "CacheNodeIdsToRemove": ["0009"]},
        "InvalidParameterValue",
        400,
        id="remove-unknown-node",
    ),
    pytest.param(
        "modify",
        {"NumCacheNodes": 0, "CacheNodeIdsToRemove": ["0001", "0002"]},
        "InvalidParameterValue",
        400,
        id="shrink-to-0",
    ),
    pytest.param(
        "modify", {"NumCacheNodes": 41}, "NodeQuotaForClusterExceeded", 400, id="grow-to-41"
    ),
    pytest.param(
        "modify",
        {"CacheNodeIdsToRemove": ["0001"]},
        "InvalidParameterCombination",
        400,
        id="remove-without-count",
    ),
    pytest.param(
        "modify",
        {"NumCacheNodes": 3, "NewAvailabilityZones": ["us-east-1f"]},
        "InvalidParameterValue",
        400,
        id="grow-into-zone-not-in-group",
    ),
    pytest.param(
        "modify",
        {"NumCacheNodes": 4, "NewAvailabilityZones": ["us-east-1a"]},
        "InvalidParameterValue",
        400,
        id="new-zones-count-mismatch",
    ),
    pytest.param(
        "modify", {"Engine": "redis"}, "InvalidParameterCombination", 400, id="change-engine"
    ),
    pytest.param(
        "modify", {"EngineVersion": "1.4.5"}, "InvalidParameterValue", 400, id="change-version"
    ),
    pytest.param(
        "modify",
        {"CacheNodeType": "cache.x9.huge"},
        "InvalidParameterValue",
        400,
        id="unknown-node-type",
    ),
    pytest.param(
        "modify",
        {"CacheParameterGroupName": "no-such-pg"},
        "CacheParameterGroupNotFound",
        404,
        id="unknown-parameter-group",
    ),
    pytest.param(
        "modify",
        {"SnapshotRetentionLimit": 1},
        "InvalidParameterCombination",
        400,
        id="snapshots-memcached",
    ),
    pytest.param(
        "delete",
        {"FinalSnapshotIdentifier": "final"},
        "SnapshotFeatureNotSupportedFault",
        400,
        id="final-snapshot-memcached",
    ),
]


@pytest.mark.parametrize(("action", "params", "code", "status"), AVAILABLE_FAULTS)
def test_available_cluster_refuses(
    ec: BaseClient,
    blocked: BlockedCluster,
    action: str,
    params: dict[str, Any],
    code: str,
    status: int,
) -> None:
    before = blocked.ready()
    engines = blocked.engines()
    operation = getattr(ec, f"{action}_cache_cluster")
    refused(operation, code, status, CacheClusterId=CLUSTER, **params)
    after = describe(ec, CLUSTER)
    assert after["CacheClusterStatus"] == "available"
    assert after["CacheNodes"] == before["CacheNodes"]
    assert after["PendingModifiedValues"] == {}
    assert blocked.engines() == engines


def test_malformed_maintenance_window(ec: BaseClient, blocked: BlockedCluster) -> None:
    blocked.ready()
    refused(
        ec.modify_cache_cluster,
        "InvalidParameterValue",
        400,
        CacheClusterId=CLUSTER,
        PreferredMaintenanceWindow="whenever you like",
    )


def test_modifying_cluster_refuses_changes(ec: BaseClient, blocked: BlockedCluster) -> None:
    blocked.ready()
    # The third node takes the first free host after the two nodes and the endpoint.
    blocked.hold(blocked.hosts[3])
    modifying = ec.modify_cache_cluster(
        CacheClusterId=CLUSTER, NumCacheNodes=3, ApplyImmediately=True
    )["CacheCluster"]
    assert modifying["CacheClusterStatus"] == "modifying"
    node = describe(ec, CLUSTER)["CacheNodes"][2]
    assert node["Endpoint"]["Address"] == blocked.hosts[3], "placement changed: re-aim the hold"
    refused_while_busy(ec)
    assert describe(ec, CLUSTER)["CacheClusterStatus"] == "modifying"
    grown = blocked.ready()
    assert [n["CacheNodeId"] for n in grown["CacheNodes"]] == ["0001", "0002", "0003"]


def test_deleting_cluster_refuses_changes(ec: BaseClient, blocked: BlockedCluster) -> None:
    blocked.ready()
    deleting = ec.delete_cache_cluster(CacheClusterId=CLUSTER)["CacheCluster"]
    assert deleting["CacheClusterStatus"] == "deleting"
    # Deletion runs concurrently: until the record is gone, every change is refused with
    # InvalidCacheClusterState; once gone, with CacheClusterNotFound. Nothing else.
    for operation, extra in (
        (ec.delete_cache_cluster, {}),
        (ec.modify_cache_cluster, {"NumCacheNodes": 4, "ApplyImmediately": True}),
        (ec.reboot_cache_cluster, {"CacheNodeIdsToReboot": ["0001"]}),
    ):
        with pytest.raises(ClientError) as raised:
            operation(CacheClusterId=CLUSTER, **extra)
        error = raised.value.response
        assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) in {
            ("InvalidCacheClusterState", 400),
            ("CacheClusterNotFound", 404),
        }, error["Error"]
    wait_for(lambda: not ec.describe_cache_clusters()["CacheClusters"])
    absent(ec, CLUSTER)
    assert blocked.engines() == set()


def test_zz_nothing_left_behind(service: Service, ec: BaseClient) -> None:
    assert ec.describe_cache_clusters()["CacheClusters"] == []
    names = {
        g["CacheSubnetGroupName"] for g in ec.describe_cache_subnet_groups()["CacheSubnetGroups"]
    }
    assert names <= {"default", GROUP}
    assert service.engines() == {}
