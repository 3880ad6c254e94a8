"""Amazon Resource Names of the resources Cacheyard serves."""

from __future__ import annotations

from dataclasses import dataclass

from cacheyard.domain.faults import InvalidARNFault

# ElastiCache's resource-type words in ARNs, by the type name used here.
RESOURCE_TYPES = {
    "cluster": "cache-cluster",
    "replicationgroup": "replication-group",
    "subnetgroup": "cache-subnet-group",
    "parametergroup": "cache-parameter-group",
    "securitygroup": "cache-security-group",
    "snapshot": "snapshot",
    "user": "user",
    "usergroup": "user-group",
    "reserved-instance": "reserved-instance",
    "serverlesscache": "serverless-cache",
}


@dataclass(frozen=True)
class Arn:
    region: str
    account: str
    resource_type: str
    resource_id: str

    def __str__(self) -> str:
        return (
            f"arn:aws:elasticache:{self.region}:{self.account}:"
            f"{self.resource_type}:{self.resource_id}"
        )


def parse(text: str) -> Arn:
    parts = text.split(":", 6)
    if (
        len(parts) != 7
        or parts[0] != "arn"
        or parts[2] != "elasticache"
        or parts[5] not in RESOURCE_TYPES
        or not all(parts[3:])
    ):
        raise InvalidARNFault(f"The ARN {text} is not valid.")
    return Arn(parts[3], parts[4], parts[5], parts[6])
