"""A stored replication group as DescribeReplicationGroups shows it."""

from __future__ import annotations

from typing import Any

from cacheyard.domain.codec import load
from cacheyard.domain.replication_groups import NODE_GROUP_ID, ReplicationGroupSpec
from cacheyard.domain.snapshots import default_window
from cacheyard.store import Record


def current_primary(record: Record) -> str:
    """The member that is primary now: observed, else the one the spec asks for."""
    spec = record.spec
    observed = record.observed.get("primary")
    return str(observed) if observed in spec["member_ids"] else str(spec["preferred_primary"])


def group_view(record: Record, members: dict[str, Record]) -> dict[str, Any]:
    spec = load(ReplicationGroupSpec, record.spec)
    primary = current_primary(record)
    endpoint = {"Address": spec.primary_endpoint, "Port": spec.port}
    node_members = []
    for member_id in spec.member_ids:
        member = members.get(member_id)
        if member is None:
            continue
        node = member.spec["nodes"][0]
        node_members.append(
            {
                "CacheClusterId": member_id,
                "CacheNodeId": node["node_id"],
                "ReadEndpoint": {"Address": node["address"], "Port": spec.port},
                "PreferredAvailabilityZone": node["zone"],
                "CurrentRole": "primary" if member_id == primary else "replica",
            }
        )
    pending: dict[str, Any] = {}
    if spec.switchover_seq > record.observed.get("switchover_seq", 0):
        pending["PrimaryClusterId"] = spec.preferred_primary
    return {
        "ReplicationGroupId": spec.group_id,
        "Description": spec.description,
        "Status": record.status,
        "PendingModifiedValues": pending,
        "MemberClusters": list(spec.member_ids),
        "NodeGroups": [
            {
                "NodeGroupId": NODE_GROUP_ID,
                "Status": record.status,
                "PrimaryEndpoint": endpoint,
                "ReaderEndpoint": {"Address": spec.reader_endpoint, "Port": spec.port},
                "NodeGroupMembers": node_members,
            }
        ],
        "AutomaticFailover": "enabled" if spec.automatic_failover else "disabled",
        "MultiAZ": "enabled" if spec.multi_az else "disabled",
        "SnapshotRetentionLimit": spec.snapshot_retention_limit,
        "SnapshotWindow": spec.snapshot_window or default_window(spec.group_id),
        "SnapshottingClusterId": spec.snapshot_source(primary),
        "ClusterEnabled": False,
        "CacheNodeType": spec.node_type,
        "AuthTokenEnabled": bool(spec.auth_tokens),
        **(
            {"AuthTokenLastModifiedDate": spec.auth_token_modified}
            if spec.auth_token_modified is not None
            else {}
        ),
        "TransitEncryptionEnabled": spec.transit_encryption,
        **({"TransitEncryptionMode": spec.transit_mode} if spec.transit_encryption else {}),
        "AtRestEncryptionEnabled": False,
        "ARN": record.arn,
        "UserGroupIds": list(spec.user_group_ids),
        "LogDeliveryConfigurations": [],
        "ReplicationGroupCreateTime": spec.created_at,
        "DataTiering": "disabled",
        "AutoMinorVersionUpgrade": spec.auto_minor_version_upgrade,
        "NetworkType": "ipv4",
        "IpDiscovery": "ipv4",
        "ClusterMode": "disabled",
        "Engine": "redis",
    }
