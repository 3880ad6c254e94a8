"""Results and errors as boto3 reads them, for the shapes that carry the protocol's quirks."""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError

from cacheyard.api.protocol import QueryProtocol
from cacheyard.domain import faults

PROTOCOL = QueryProtocol()
NS = "{http://elasticache.amazonaws.com/doc/2015-02-02/}"
CREATED = datetime(2024, 5, 6, 7, 8, 9, 250000, tzinfo=UTC)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _client(service: str = "elasticache") -> Any:
    """A real boto3 client of ``service`` that gets ``ANSWER`` back from every call."""
    client = boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name="us-east-1"
    ).client(
        service,
        endpoint_url="http://localhost:9",
        config=Config(retries={"total_max_attempts": 1}),
    )

    def reply(request: Any, **_: Any) -> AWSResponse:
        return AWSResponse(request.url, ANSWER["status"], {}, _Raw(ANSWER["body"]))

    client.meta.events.register(f"before-send.{service}", reply)
    return client


ANSWER: dict[str, Any] = {}
CLIENT = _client()
IAM = QueryProtocol("iam")
IAM_CLIENT = _client("iam")


def answered_by(status: int, body: bytes) -> Any:
    """The client, answering the next calls with this HTTP status and body."""
    ANSWER.update(status=status, body=body)
    return CLIENT


def call(operation: str, result: Mapping[str, Any], **params: Any) -> dict[str, Any]:
    """Serialize ``result`` and let boto3 read it back as the answer to ``operation``."""
    body = PROTOCOL.serialize_result(operation, result, "req-42")
    client = answered_by(200, body)
    response: dict[str, Any] = getattr(client, _snake(operation))(**params)
    assert response.pop("ResponseMetadata")["RequestId"] == "req-42"
    return response


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")


CLUSTER = {
    "CacheClusterId": "c1",
    "CacheNodeType": "cache.t3.micro",
    "Engine": "redis",
    "CacheClusterStatus": "available",
    "NumCacheNodes": 1,
    "CacheClusterCreateTime": CREATED,
    "AutoMinorVersionUpgrade": True,
    "CacheNodes": [
        {
            "CacheNodeId": "0001",
            "CacheNodeStatus": "available",
            "Endpoint": {"Address": "127.0.1.1", "Port": 6379},
            "CacheNodeCreateTime": CREATED,
        }
    ],
    "SecurityGroups": [{"SecurityGroupId": "sg-1", "Status": "active"}],
}


def test_describe_cache_clusters_with_nested_nodes() -> None:
    response = call("DescribeCacheClusters", {"CacheClusters": [CLUSTER], "Marker": "m"})
    assert response == {"CacheClusters": [CLUSTER], "Marker": "m"}


def test_list_items_carry_their_location_names() -> None:
    body = PROTOCOL.serialize_result(
        "DescribeReplicationGroups",
        {
            "ReplicationGroups": [
                {"ReplicationGroupId": "rg", "MemberClusters": ["rg-001"], "UserGroupIds": ["g"]}
            ]
        },
        "r",
    )
    root = ElementTree.fromstring(body)
    assert root.tag == f"{NS}DescribeReplicationGroupsResponse"
    group = root.find(
        f"{NS}DescribeReplicationGroupsResult/{NS}ReplicationGroups/{NS}ReplicationGroup"
    )
    assert group is not None
    assert group.findtext(f"{NS}MemberClusters/{NS}ClusterId") == "rg-001"
    assert group.findtext(f"{NS}UserGroupIds/{NS}member") == "g"
    assert root.findtext(f"{NS}ResponseMetadata/{NS}RequestId") == "r"


def test_create_cache_subnet_group_with_subnets() -> None:
    group = {
        "CacheSubnetGroupName": "sn",
        "CacheSubnetGroupDescription": "d & <e>",
        "VpcId": "vpc-1",
        "Subnets": [
            {
                "SubnetIdentifier": "subnet-a",
                "SubnetAvailabilityZone": {"Name": "us-east-1a"},
                "SupportedNetworkTypes": ["ipv4"],
            }
        ],
    }
    response = call(
        "CreateCacheSubnetGroup",
        {"CacheSubnetGroup": group},
        CacheSubnetGroupName="sn",
        CacheSubnetGroupDescription="d",
        SubnetIds=["subnet-a"],
    )
    assert response == {"CacheSubnetGroup": group}


def test_list_tags_for_resource() -> None:
    tags = {"TagList": [{"Key": "team", "Value": "cache"}, {"Key": "env", "Value": ""}]}
    assert call("ListTagsForResource", tags, ResourceName="arn:x") == tags


def test_describe_events_timestamps() -> None:
    events = [
        {"SourceIdentifier": "c1", "SourceType": "cache-cluster", "Message": "m", "Date": CREATED}
    ]
    response = call("DescribeEvents", {"Events": events})
    assert response == {"Events": events}
    assert response["Events"][0]["Date"].utcoffset().total_seconds() == 0


def test_describe_cache_engine_versions() -> None:
    versions = {
        "CacheEngineVersions": [
            {"Engine": "redis", "EngineVersion": "7.0.15", "CacheParameterGroupFamily": "redis7"},
            {"Engine": "memcached", "EngineVersion": "1.6.18"},
        ]
    }
    assert call("DescribeCacheEngineVersions", versions) == versions


def test_user_operations_put_fields_straight_in_the_result() -> None:
    user = {
        "UserId": "u1",
        "UserName": "u1",
        "Status": "active",
        "Engine": "redis",
        "AccessString": "on ~* +@all",
        "UserGroupIds": ["g1"],
        "Authentication": {"Type": "no-password", "PasswordCount": 0},
        "ARN": "arn:aws:elasticache:us-east-1:000000000000:user:u1",
    }
    assert call("DescribeUsers", {"Users": [user]}) == {"Users": [user]}
    created = call(
        "CreateUser",
        user,
        UserId="u1",
        UserName="u1",
        Engine="redis",
        AccessString="on",
        NoPasswordRequired=True,
    )
    assert created == user
    root = ElementTree.fromstring(PROTOCOL.serialize_result("CreateUser", user, "r"))
    assert root.findtext(f"{NS}CreateUserResult/{NS}UserId") == "u1"


def test_operation_without_output_has_no_result_element() -> None:
    body = PROTOCOL.serialize_result("DeleteCacheSubnetGroup", {}, "r")
    root = ElementTree.fromstring(body)
    assert [child.tag for child in root] == [f"{NS}ResponseMetadata"]
    assert call("DeleteCacheSubnetGroup", {}, CacheSubnetGroupName="sn") == {}


@pytest.mark.parametrize(
    ("operation", "result"),
    [
        ("DescribeCacheClusters", {"Clusters": []}),
        ("DescribeCacheClusters", {"CacheClusters": [{"NumCacheNodes": "1"}]}),
        ("DescribeCacheClusters", {"CacheClusters": [{"NumCacheNodes": True}]}),
        ("DescribeCacheClusters", {"CacheClusters": [{"AutoMinorVersionUpgrade": 1}]}),
        ("DescribeCacheClusters", {"CacheClusters": [{"CacheClusterId": 7}]}),
        ("DescribeCacheClusters", {"CacheClusters": {"CacheClusterId": "c"}}),
        ("DescribeCacheClusters", {"CacheClusters": [{"CacheClusterCreateTime": "2024"}]}),
        (
            "DescribeCacheClusters",
            {"CacheClusters": [{"CacheClusterCreateTime": datetime(2024, 1, 1)}]},
        ),
        ("DeleteCacheSubnetGroup", {"CacheSubnetGroupName": "x"}),
    ],
)
def test_results_the_shape_does_not_describe_are_bugs(
    operation: str, result: dict[str, Any]
) -> None:
    with pytest.raises(TypeError):
        PROTOCOL.serialize_result(operation, result, "r")


MODEL_FAULTS = [
    cls
    for _, cls in inspect.getmembers(faults, inspect.isclass)
    if issubclass(cls, faults.Fault)
    and not issubclass(cls, faults.CommonFault)
    and cls is not faults.Fault
]
COMMON_FAULTS = [
    cls
    for _, cls in inspect.getmembers(faults, inspect.isclass)
    if issubclass(cls, faults.CommonFault) and cls is not faults.CommonFault
]


def _home(fault: type[faults.Fault]) -> tuple[QueryProtocol, Any, str]:
    """The protocol, client and a call of the service whose model names ``fault``."""
    if fault.__name__ in PROTOCOL.service_model.shape_names:
        return PROTOCOL, CLIENT, "describe_cache_clusters"
    return IAM, IAM_CLIENT, "list_users"


@pytest.mark.parametrize("fault", MODEL_FAULTS, ids=lambda cls: cls.__name__)
def test_model_faults_reach_boto3_with_the_models_code(fault: type[faults.Fault]) -> None:
    protocol, client, operation = _home(fault)
    error = protocol.service_model.shape_for(fault.__name__).metadata["error"]
    status, body = protocol.serialize_error(fault("it failed"), "req-7")
    assert status == error["httpStatusCode"]
    ANSWER.update(status=status, body=body)
    with pytest.raises(getattr(client.exceptions, fault.__name__)) as caught:
        getattr(client, operation)()
    response = caught.value.response
    assert response["Error"] == {"Type": "Sender", "Code": error["code"], "Message": "it failed"}
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert response["ResponseMetadata"]["RequestId"] == "req-7"


def test_a_refused_value_is_a_validation_error_in_iam() -> None:
    """IAM has no InvalidParameterValue: the protocol's refusal reaches it as ValidationError."""
    fault = faults.InvalidParameterValueException("bad")
    status, body = IAM.serialize_error(fault, "r")
    ANSWER.update(status=status, body=body)
    with pytest.raises(ClientError) as caught:
        IAM_CLIENT.list_users()
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert (status, PROTOCOL.serialize_error(fault, "r")[0]) == (400, 400)
    assert b"<Code>InvalidParameterValue</Code>" in PROTOCOL.serialize_error(fault, "r")[1]


def test_an_iam_fault_is_a_bug_in_elasticache() -> None:
    with pytest.raises(TypeError):
        PROTOCOL.serialize_error(faults.NoSuchEntityException("x"), "r")


@pytest.mark.parametrize("fault", COMMON_FAULTS, ids=lambda cls: cls.__name__)
def test_common_faults_carry_their_own_code(fault: type[faults.CommonFault]) -> None:
    status, body = PROTOCOL.serialize_error(fault("no <way> & no how"), "req-8")
    assert status == fault.status
    with pytest.raises(ClientError) as caught:
        answered_by(status, body).describe_cache_clusters()
    error = caught.value.response["Error"]
    assert error["Code"] == fault.code
    assert error["Message"] == "no <way> & no how"
    assert error["Type"] == ("Sender" if fault.status < 500 else "Receiver")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_cache_cluster_not_found_is_a_404_with_its_irregular_code() -> None:
    status, body = PROTOCOL.serialize_error(faults.CacheClusterNotFoundFault("gone"), "r")
    assert status == 404
    assert b"<Code>CacheClusterNotFound</Code>" in body


def test_a_fault_the_model_does_not_know_is_a_bug() -> None:
    class NoSuchFault(faults.Fault):
        pass

    with pytest.raises(TypeError):
        PROTOCOL.serialize_error(NoSuchFault("x"), "r")
    with pytest.raises(TypeError):  # a shape of the model, but not an error
        PROTOCOL.serialize_error(type("CacheCluster", (faults.Fault,), {})("x"), "r")
