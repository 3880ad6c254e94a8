"""Resource identifiers as ElastiCache accepts and stores them."""

from __future__ import annotations

import re

from cacheyard.domain.faults import InvalidParameterValueException

_NAME = re.compile(r"[a-zA-Z](?:[a-zA-Z0-9]|-(?!-))*")


def _identifier(value: str, parameter: str, max_length: int) -> str:
    if not 1 <= len(value) <= max_length:
        raise InvalidParameterValueException(
            f"The parameter {parameter} must be provided and must not be blank."
            if not value
            else f"The parameter {parameter} is not a valid identifier. "
            f"Identifiers must be 1 to {max_length} characters long."
        )
    if not _NAME.fullmatch(value) or value.endswith("-"):
        raise InvalidParameterValueException(
            f"The parameter {parameter} is not a valid identifier. Identifiers must begin "
            "with a letter; must contain only ASCII letters, digits, and hyphens; and must "
            "not end with a hyphen or contain two consecutive hyphens."
        )
    return value.lower()


def cache_cluster_id(value: str, parameter: str = "CacheClusterId") -> str:
    """A cluster id: 1-50 letters, digits or single hyphens, starting with a letter."""
    return _identifier(value, parameter, 50)


def replication_group_id(value: str, parameter: str = "ReplicationGroupId") -> str:
    return _identifier(value, parameter, 40)


def subnet_group_name(value: str, parameter: str = "CacheSubnetGroupName") -> str:
    """Subnet group names: up to 255 letters, digits, hyphens, periods or underscores."""
    if not value or len(value) > 255 or not re.fullmatch(r"[a-zA-Z0-9._ -]+", value):
        raise InvalidParameterValueException(
            f"The parameter {parameter} must contain no more than 255 alphanumeric "
            "characters or hyphens."
        )
    return value.lower()


def parameter_group_name(value: str, parameter: str = "CacheParameterGroupName") -> str:
    """A new group's name; ``default.*`` names belong to the service."""
    return _identifier(value, parameter, 255)


def node_id(index: int) -> str:
    """Cache node ids are four-digit, one-based: 0001, 0002, ..."""
    return f"{index:04d}"
