"""Cache node types: the real ElastiCache list, with each type's vCPUs and memory.

The memory becomes the engine's limit (redis ``maxmemory``, memcached ``-m``)
and, for Memcached, the vCPUs its worker thread count (``-t``).
"""

from __future__ import annotations

from dataclasses import dataclass

from cacheyard.domain.faults import InvalidParameterValueException


@dataclass(frozen=True)
class NodeType:
    name: str
    vcpus: int
    memory_gib: float

    @property
    def memory_mb(self) -> int:
        return int(self.memory_gib * 1024)

    @property
    def memcached_threads(self) -> int:
        # Memcached warns above 64 worker threads; AWS's largest types stay near it.
        return max(1, min(self.vcpus, 64))


def _family(prefix: str, sizes: dict[str, tuple[int, float]]) -> dict[str, NodeType]:
    return {
        f"cache.{prefix}.{size}": NodeType(f"cache.{prefix}.{size}", cpu, mem)
        for size, (cpu, mem) in sizes.items()
    }


_M5 = {
    "large": (2, 6.38),
    "xlarge": (4, 12.93),
    "2xlarge": (8, 26.04),
    "4xlarge": (16, 52.26),
    "12xlarge": (48, 157.12),
    "24xlarge": (96, 314.32),
}
_M6G = {
    "large": (2, 6.38),
    "xlarge": (4, 12.93),
    "2xlarge": (8, 26.04),
    "4xlarge": (16, 52.26),
    "8xlarge": (32, 103.68),
    "12xlarge": (48, 157.12),
    "16xlarge": (64, 209.55),
}
_R5 = {
    "large": (2, 13.07),
    "xlarge": (4, 26.32),
    "2xlarge": (8, 52.82),
    "4xlarge": (16, 105.81),
    "12xlarge": (48, 317.77),
    "24xlarge": (96, 635.61),
}
_R6G = {
    "large": (2, 13.07),
    "xlarge": (4, 26.32),
    "2xlarge": (8, 52.82),
    "4xlarge": (16, 105.81),
    "8xlarge": (32, 209.55),
    "12xlarge": (48, 317.77),
    "16xlarge": (64, 419.09),
}
_BURSTABLE = {"micro": (2, 0.5), "small": (2, 1.37), "medium": (2, 3.09)}

NODE_TYPES: dict[str, NodeType] = {
    **_family("t2", {"micro": (1, 0.555), "small": (1, 1.55), "medium": (2, 3.22)}),
    **_family("t3", _BURSTABLE),
    **_family("t4g", _BURSTABLE),
    **_family("m5", _M5),
    **_family("m6g", _M6G),
    **_family("m7g", _M6G),
    **_family("r5", _R5),
    **_family("r6g", _R6G),
    **_family("r7g", _R6G),
    **_family(
        "m4",
        {
            "large": (2, 6.42),
            "xlarge": (4, 14.28),
            "2xlarge": (8, 29.70),
            "4xlarge": (16, 60.78),
            "10xlarge": (40, 154.64),
        },
    ),
    **_family(
        "r4",
        {
            "large": (2, 12.3),
            "xlarge": (4, 25.05),
            "2xlarge": (8, 50.47),
            "4xlarge": (16, 101.38),
            "8xlarge": (32, 203.26),
            "16xlarge": (64, 407.0),
        },
    ),
    **_family(
        "m3", {"medium": (1, 2.78), "large": (2, 6.05), "xlarge": (4, 13.3), "2xlarge": (8, 27.9)}
    ),
    **_family(
        "r3",
        {
            "large": (2, 13.5),
            "xlarge": (4, 28.4),
            "2xlarge": (8, 58.2),
            "4xlarge": (16, 118.0),
            "8xlarge": (32, 237.0),
        },
    ),
    **_family("t1", {"micro": (1, 0.213)}),
    **_family(
        "m1", {"small": (1, 1.3), "medium": (1, 3.35), "large": (2, 7.1), "xlarge": (4, 14.6)}
    ),
    **_family("m2", {"xlarge": (2, 16.7), "2xlarge": (4, 33.8), "4xlarge": (8, 68.0)}),
    **_family("c1", {"xlarge": (8, 6.6)}),
}


def node_type(name: str) -> NodeType:
    try:
        return NODE_TYPES[name]
    except KeyError:
        raise InvalidParameterValueException(
            f"Invalid CacheNodeType: {name}. The node type is not supported."
        ) from None
