"""Reading and writing stored resources, shared by the handlers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cacheyard.api.handlers.context import Context
from cacheyard.controller import keys
from cacheyard.domain import arns, faults, statuses
from cacheyard.domain.cache_clusters import Placement
from cacheyard.domain.codec import dump, load
from cacheyard.domain.network import DEFAULT_SUBNET_GROUP, VPC_ID
from cacheyard.domain.subnet_groups import SubnetGroupSpec, subnets_of
from cacheyard.domain.users import USER, USER_GROUP
from cacheyard.store import Record, Transaction

MAX_TAGS = 50

# The resource-type word in an ARN, the store kind, and the fault for a missing one.
ARN_KINDS: dict[str, tuple[str, type[faults.Fault], str]] = {
    "cluster": (keys.CACHE_CLUSTER, faults.CacheClusterNotFoundFault, "CacheCluster"),
    "replicationgroup": (
        keys.REPLICATION_GROUP,
        faults.ReplicationGroupNotFoundFault,
        "ReplicationGroup",
    ),
    "parametergroup": (
        keys.CACHE_PARAMETER_GROUP,
        faults.CacheParameterGroupNotFoundFault,
        "CacheParameterGroup",
    ),
    "snapshot": (keys.SNAPSHOT, faults.SnapshotNotFoundFault, "Snapshot"),
    "subnetgroup": (
        keys.CACHE_SUBNET_GROUP,
        faults.CacheSubnetGroupNotFoundFault,
        "CacheSubnetGroup",
    ),
    "user": (USER, faults.UserNotFoundFault, "User"),
    "usergroup": (USER_GROUP, faults.UserGroupNotFoundFault, "UserGroup"),
}


def new_record(
    ctx: Context,
    kind: str,
    arn_type: str,
    resource_id: str,
    spec: Any,
    now: datetime,
    status: str = statuses.CREATING,
) -> Record:
    """A resource as a create call writes it: generation 1, nothing observed yet."""
    return Record(
        kind=kind,
        id=resource_id,
        arn=ctx.arn(arn_type, resource_id),
        spec=dump(spec),
        status=status,
        observed={},
        generation=1,
        observed_generation=0,
        created_at=now,
    )


# Parameters whose features arrive with later work: refused clearly, never ignored.
NOT_YET = {
    "LogDeliveryConfigurations": "Log delivery",
}


def transit_encryption(params: Mapping[str, Any], engine: str) -> bool:
    """TransitEncryptionEnabled of a new cache (its TransitEncryptionMode checked): TLS
    on the node's port, for Redis and Memcached (whose configuration endpoint speaks
    TLS too)."""
    enabled = bool(params.get("TransitEncryptionEnabled"))
    mode = params.get("TransitEncryptionMode")
    if mode is not None and not enabled:
        raise faults.InvalidParameterCombinationException(
            "TransitEncryptionMode needs TransitEncryptionEnabled."
        )
    if mode not in (None, "preferred", "required"):
        raise faults.InvalidParameterValueException(
            f"Invalid TransitEncryptionMode {mode}: preferred or required."
        )
    if engine != "redis" and params.get("AuthToken") is not None:
        # An AUTH token is a Redis password; Memcached logs in through SASL instead.
        raise faults.InvalidParameterCombinationException(
            "AuthToken is only supported for Redis; Memcached clusters can use SASL through "
            "the cacheyard:sasl-user-group tag."
        )
    return enabled


def refuse_not_yet(params: Mapping[str, Any], features: Mapping[str, str]) -> None:
    """Parameters whose feature is not built yet are refused clearly, never ignored."""
    for name, feature in features.items():
        if params.get(name) not in (None, False, [], ""):
            raise faults.InvalidParameterValueException(
                f"{feature} ({name}) is not supported by this Cacheyard version."
            )
    if params.get("NetworkType", "ipv4") != "ipv4" or params.get("IpDiscovery", "ipv4") != "ipv4":
        raise faults.InvalidParameterValueException("Only the ipv4 network type is supported.")


def tags_param(params: Mapping[str, Any]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for tag in params.get("Tags") or []:
        key = tag.get("Key")
        if not key:
            raise faults.InvalidParameterValueException("Tag keys must not be empty.")
        tags[key] = tag.get("Value") or ""
    if len(tags) > MAX_TAGS:
        raise faults.TagQuotaPerResourceExceeded(f"A resource can have at most {MAX_TAGS} tags.")
    return tags


async def resource_for_arn(ctx: Context, tx: Transaction, arn_text: str) -> Record:
    arn = arns.parse(arn_text)
    if arn.region != ctx.region or arn.account != ctx.account:
        raise faults.InvalidARNFault(f"The ARN {arn_text} is not valid for this service.")
    kind = ARN_KINDS.get(arn.resource_type)
    if kind is None:
        raise faults.InvalidARNFault(f"The ARN {arn_text} does not name a supported resource.")
    store_kind, not_found, label = kind
    record = await tx.get(store_kind, arn.resource_id)
    if record is None or record.status == statuses.DELETING:
        raise not_found(f"{label} {arn.resource_id} not found.")
    return record


async def placement_for(ctx: Context, tx: Transaction, group: str) -> Placement:
    """The subnets of a subnet group and every address already taken."""
    group_record = await tx.get(keys.CACHE_SUBNET_GROUP, group)
    if group_record is None:
        raise faults.CacheSubnetGroupNotFoundFault(f"CacheSubnetGroup {group} not found.")
    used: set[str] = set()
    for cluster in await tx.all(keys.CACHE_CLUSTER):
        used.update(n["address"] for n in cluster.spec["nodes"])
        if cluster.spec.get("configuration_address"):
            used.add(cluster.spec["configuration_address"])
    for replication_group in await tx.all(keys.REPLICATION_GROUP):
        used.update(
            (replication_group.spec["primary_endpoint"], replication_group.spec["reader_endpoint"])
        )
    subnets = subnets_of(load(SubnetGroupSpec, group_record.spec), ctx.network)
    return Placement(subnets, used)


async def ensure_default_subnet_group(ctx: Context) -> None:
    """The default subnet group exists from the first start, as in a default VPC."""
    async with ctx.store.transaction() as tx:
        if await tx.get(keys.CACHE_SUBNET_GROUP, DEFAULT_SUBNET_GROUP) is not None:
            return
        spec = SubnetGroupSpec(
            DEFAULT_SUBNET_GROUP,
            "Default CacheSubnetGroup",
            tuple(ctx.network.default_subnet_ids()),
        )
        await tx.insert(
            new_record(
                ctx,
                keys.CACHE_SUBNET_GROUP,
                "subnetgroup",
                spec.name,
                spec,
                ctx.clock.now(),
                status=statuses.SUBNET_ACTIVE,
            )
        )


def subnet_group_view(ctx: Context, record: Record) -> dict[str, Any]:
    spec = record.spec
    return {
        "CacheSubnetGroupName": spec["name"],
        "CacheSubnetGroupDescription": spec["description"],
        "VpcId": VPC_ID,
        "Subnets": [
            {
                "SubnetIdentifier": subnet.subnet_id,
                "SubnetAvailabilityZone": {"Name": subnet.availability_zone},
                "SupportedNetworkTypes": ["ipv4"],
            }
            for subnet in (ctx.network.subnet(s) for s in spec["subnet_ids"])
        ],
        "ARN": record.arn,
        "SupportedNetworkTypes": ["ipv4"],
    }
