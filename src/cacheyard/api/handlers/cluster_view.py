"""A stored cache cluster as DescribeCacheClusters shows it."""

from __future__ import annotations

from typing import Any

from cacheyard.domain import statuses
from cacheyard.domain.cache_clusters import CacheClusterSpec
from cacheyard.domain.codec import load
from cacheyard.domain.snapshots import default_window
from cacheyard.store import Record


def cluster_view(record: Record, show_nodes: bool, snapshotting: bool = False) -> dict[str, Any]:
    """``snapshotting``: a snapshot is being read from the cluster's node, which
    ElastiCache shows as the cluster's status while it lasts."""
    spec = load(CacheClusterSpec, record.spec)
    status = (
        statuses.SNAPSHOTTING
        if snapshotting and record.status == statuses.AVAILABLE
        else record.status
    )
    observed: dict[str, dict[str, Any]] = record.observed.get("nodes", {})
    pending = _pending(record, spec, observed)
    to_reboot = [n for n in spec.node_ids if observed.get(n, {}).get("pending_reboot")]
    applying = {n for n in spec.node_ids if observed.get(n, {}).get("applying")}
    view: dict[str, Any] = {
        "CacheClusterId": spec.cluster_id,
        "ClientDownloadLandingPage": "https://console.aws.amazon.com/elasticache/home#client-download:",
        "CacheNodeType": spec.node_type,
        "Engine": spec.engine,
        "EngineVersion": spec.engine_version,
        "CacheClusterStatus": status,
        "NumCacheNodes": len(_answered(observed)) if pending else len(spec.nodes),
        "PreferredAvailabilityZone": spec.preferred_zone,
        "CacheClusterCreateTime": spec.created_at,
        "PreferredMaintenanceWindow": spec.maintenance_window,
        "PendingModifiedValues": pending,
        "CacheSecurityGroups": [],
        "CacheParameterGroup": {
            "CacheParameterGroupName": spec.parameter_group,
            "ParameterApplyStatus": _apply_status(bool(applying), bool(to_reboot)),
            "CacheNodeIdsToReboot": to_reboot,
        },
        "CacheSubnetGroupName": spec.subnet_group,
        "AutoMinorVersionUpgrade": spec.auto_minor_version_upgrade,
        "SecurityGroups": [
            {"SecurityGroupId": sg, "Status": "active"} for sg in spec.security_group_ids
        ],
        "AuthTokenEnabled": bool(spec.auth_tokens),
        "TransitEncryptionEnabled": spec.transit_encryption,
        "AtRestEncryptionEnabled": False,
        "ARN": record.arn,
        "ReplicationGroupLogDeliveryEnabled": False,
        "LogDeliveryConfigurations": [],
        "NetworkType": spec.network_type,
        "IpDiscovery": "ipv4",
    }
    if spec.transit_encryption:
        view["TransitEncryptionMode"] = spec.transit_mode
    if spec.auth_token_modified is not None:
        view["AuthTokenLastModifiedDate"] = spec.auth_token_modified
    if spec.notification_topic_arn:
        view["NotificationConfiguration"] = {
            "TopicArn": spec.notification_topic_arn,
            "TopicStatus": spec.notification_topic_status or "active",
        }
    if spec.engine == "redis":
        view["SnapshotRetentionLimit"] = spec.snapshot_retention_limit
        view["SnapshotWindow"] = spec.snapshot_window or default_window(
            spec.replication_group_id or spec.cluster_id
        )
    if spec.replication_group_id is not None:
        view["ReplicationGroupId"] = spec.replication_group_id
    if spec.configuration_address is not None:
        view["ConfigurationEndpoint"] = {"Address": spec.configuration_address, "Port": spec.port}
    if record.status == statuses.CREATING and not observed:
        return view
    if show_nodes:
        view["CacheNodes"] = [
            {
                "CacheNodeId": node.node_id,
                "CacheNodeStatus": observed.get(node.node_id, {}).get(
                    "status", statuses.NODE_CREATING
                ),
                "CacheNodeCreateTime": node.created_at,
                "Endpoint": {"Address": node.address, "Port": spec.port},
                "ParameterGroupStatus": _apply_status(
                    node.node_id in applying, node.node_id in to_reboot
                ),
                "CustomerAvailabilityZone": node.zone,
            }
            for node in spec.nodes
        ]
    return view


def _pending(
    record: Record, spec: CacheClusterSpec, observed: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    if record.status != statuses.MODIFYING:
        return {}
    present = _answered(observed)
    wanted = set(spec.node_ids)
    if present == wanted:
        return {}
    pending: dict[str, Any] = {"NumCacheNodes": len(wanted)}
    removing = sorted(present - wanted)
    if removing:
        pending["CacheNodeIdsToRemove"] = removing
    return pending


def _answered(observed: dict[str, dict[str, Any]]) -> set[str]:
    """The nodes that have answered; one that is only being started is still pending."""
    return {n for n, seen in observed.items() if seen.get("status") != statuses.NODE_CREATING}


def _apply_status(applying: bool, pending_reboot: bool) -> str:
    """``applying`` while a live change is still under way (a new AOF being written)."""
    if applying:
        return statuses.PARAMETERS_APPLYING
    return statuses.PARAMETERS_PENDING_REBOOT if pending_reboot else statuses.PARAMETERS_IN_SYNC
