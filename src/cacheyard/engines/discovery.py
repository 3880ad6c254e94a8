"""Memcached auto discovery: the cluster map a configuration endpoint serves.

The controller writes the map into the endpoint's directory (``cluster.json``);
the endpoint process re-reads it when it changes. Standard library only: the
endpoint process imports this module and nothing heavier.

Wire format, as ElastiCache answers and as AWS's own cluster clients parse
it: ``CONFIG cluster 0 <n>\\r\\n<body>\\r\\nEND\\r\\n`` with body
``<version>\\n<host|ip|port host|ip|port ...>\\n`` and ``<n>`` the length of
the body, exactly like a ``VALUE`` item (the clients read ``n`` bytes plus
``\\r\\n``, then expect ``END``).
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path

CLUSTER_FILE = "cluster.json"
LEGACY_KEY = "AmazonElastiCache:cluster"

Node = tuple[str, str, int]


@dataclass(frozen=True)
class EndpointTls:
    """A TLS cluster's configuration endpoint: its certificate and key (naming its
    own address), and the CA its nodes' certificates are verified with when it
    relays to them. (engines.spec.TlsFiles has the same fields; this module
    stays standard library only.)"""

    cert: Path
    key: Path
    ca: Path


@dataclass(frozen=True)
class DiscoverySpec:
    """A configuration endpoint and the cluster map it answers with.

    ``tls``: the endpoint serves TLS only and relays to its nodes over TLS. Like
    the address and port, it is read once, when the endpoint starts.
    """

    node_dir: Path
    address: str
    port: int
    version: int
    nodes: tuple[Node, ...]
    tls: EndpointTls | None = None

    def __post_init__(self) -> None:
        if not self.node_dir.is_absolute():
            raise ValueError(f"node_dir must be absolute: {self.node_dir}")
        ipaddress.IPv4Address(self.address)
        for hostname, ip, _ in self.nodes:
            if not hostname or any(c in hostname + ip for c in " |\r\n"):
                raise ValueError(f"invalid node {hostname!r} {ip!r}")


def write_discovery_config(spec: DiscoverySpec) -> None:
    """Replace cluster.json atomically: the endpoint never reads half a file."""
    spec.node_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "address": spec.address,
        "port": spec.port,
        "version": spec.version,
        "nodes": [list(node) for node in spec.nodes],
        "tls": None
        if spec.tls is None
        else {"cert": str(spec.tls.cert), "key": str(spec.tls.key), "ca": str(spec.tls.ca)},
    }
    path = spec.node_dir / CLUSTER_FILE
    tmp = path.with_name(f".{CLUSTER_FILE}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as out:
        json.dump(payload, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def read_discovery_config(node_dir: Path) -> DiscoverySpec:
    """Raises OSError when missing, ValueError (or KeyError) when malformed."""
    data = json.loads((node_dir / CLUSTER_FILE).read_text(encoding="utf-8"))
    tls = data.get("tls")  # absent in files written before TLS
    return DiscoverySpec(
        node_dir=node_dir,
        address=str(data["address"]),
        port=int(data["port"]),
        version=int(data["version"]),
        nodes=tuple((str(h), str(ip), int(port)) for h, ip, port in data["nodes"]),
        tls=None
        if tls is None
        else EndpointTls(Path(tls["cert"]), Path(tls["key"]), Path(tls["ca"])),
    )


def cluster_body(spec: DiscoverySpec) -> bytes:
    nodes = " ".join(f"{hostname}|{ip}|{port}" for hostname, ip, port in spec.nodes)
    return f"{spec.version}\n{nodes}\n".encode("ascii")


def config_get_cluster_reply(spec: DiscoverySpec) -> bytes:
    """The answer to ``config get cluster`` (memcached 1.4.14 and later)."""
    body = cluster_body(spec)
    return b"CONFIG cluster 0 %d\r\n%s\r\nEND\r\n" % (len(body), body)


def legacy_get_reply(spec: DiscoverySpec) -> bytes:
    """The answer to ``get AmazonElastiCache:cluster`` (clients before 1.4.14)."""
    body = cluster_body(spec)
    return b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (LEGACY_KEY.encode(), len(body), body)
