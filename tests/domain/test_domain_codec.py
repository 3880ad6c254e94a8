"""The codec: specs to JSON-ready dicts and back, unchanged."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from cacheyard.domain.cache_clusters import CacheClusterSpec, NodePlan
from cacheyard.domain.codec import dump, load
from cacheyard.domain.subnet_groups import SubnetGroupSpec

pytestmark = pytest.mark.timeout(10)

NOW = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)


def spec() -> CacheClusterSpec:
    return CacheClusterSpec(
        cluster_id="mc",
        engine="memcached",
        engine_version="1.6.18",
        family="memcached1.6",
        node_type="cache.t3.micro",
        port=11211,
        az_mode="cross-az",
        subnet_group="default",
        parameter_group="default.memcached1.6",
        nodes=(
            NodePlan("0001", "us-east-1a", "127.10.10.1", NOW),
            NodePlan(
                "0002",
                "us-east-1b",
                "127.10.20.1",
                NOW.astimezone(timezone(timedelta(hours=2))),
                reboot_seq=3,
            ),
        ),
        created_at=NOW,
        configuration_address="127.10.10.2",
        discovery_version=4,
        security_group_ids=("sg-1", "sg-2"),
        notification_topic_arn=None,
        snapshot_window="05:00-06:00",
        deleting=True,
        extra={"note": "kept", "count": 2},
    )


def test_round_trip_through_json() -> None:
    original = spec()
    data = json.loads(json.dumps(dump(original)))
    restored = load(CacheClusterSpec, data)
    assert restored == original
    assert isinstance(restored.nodes, tuple)
    assert isinstance(restored.nodes[0], NodePlan)
    assert isinstance(restored.security_group_ids, tuple)
    assert restored.created_at.tzinfo is not None
    assert restored.nodes[1].created_at.utcoffset() == timedelta(hours=2)


def test_dump_shapes() -> None:
    data = dump(spec())
    assert data["created_at"] == "2024-05-01T12:30:15.123456+00:00"
    assert data["nodes"][1] == {
        "node_id": "0002",
        "zone": "us-east-1b",
        "address": "127.10.20.1",
        "created_at": "2024-05-01T14:30:15.123456+02:00",
        "reboot_seq": 3,
    }
    assert data["security_group_ids"] == ["sg-1", "sg-2"]
    assert data["notification_topic_arn"] is None


def test_missing_fields_take_their_defaults_and_unknown_ones_are_ignored() -> None:
    data = dump(spec())
    for name in ("discovery_version", "deleting", "extra", "security_group_ids"):
        del data[name]
    data["from_a_newer_version"] = 1
    restored = load(CacheClusterSpec, data)
    assert restored.discovery_version == 1
    assert restored.deleting is False
    assert restored.extra == {}
    assert restored.security_group_ids == ()


def test_other_dataclasses() -> None:
    group = SubnetGroupSpec("g", "desc", ("subnet-1", "subnet-2"))
    assert load(SubnetGroupSpec, json.loads(json.dumps(dump(group)))) == group
