"""The status words ElastiCache shows, as constants."""

from __future__ import annotations

from typing import Final

CREATING: Final = "creating"
AVAILABLE: Final = "available"
MODIFYING: Final = "modifying"
DELETING: Final = "deleting"
REBOOTING_CLUSTER: Final = "rebooting cache cluster nodes"
SNAPSHOTTING: Final = "snapshotting"
RESTORING: Final = "restoring"
RESTORE_FAILED: Final = "restore-failed"

NODE_CREATING: Final = "creating"
NODE_AVAILABLE: Final = "available"
NODE_REBOOTING: Final = "rebooting"

SUBNET_ACTIVE: Final = "Active"

SNAPSHOT_CREATING: Final = "creating"
SNAPSHOT_AVAILABLE: Final = "available"
SNAPSHOT_DELETING: Final = "deleting"
SNAPSHOT_FAILED: Final = "failed"

PARAMETERS_IN_SYNC: Final = "in-sync"
PARAMETERS_APPLYING: Final = "applying"
PARAMETERS_PENDING_REBOOT: Final = "pending-reboot"
