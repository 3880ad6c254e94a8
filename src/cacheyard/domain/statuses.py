"""The status words ElastiCache shows, as constants."""

from __future__ import annotations

from typing import Final

CREATING: Final = "creating"
AVAILABLE: Final = "available"
MODIFYING: Final = "modifying"
DELETING: Final = "deleting"
REBOOTING_CLUSTER: Final = "rebooting cache cluster nodes"

NODE_CREATING: Final = "creating"
NODE_AVAILABLE: Final = "available"
NODE_REBOOTING: Final = "rebooting"

SUBNET_ACTIVE: Final = "Active"
