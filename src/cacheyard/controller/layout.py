"""Where each resource's processes live under the data directory.

The directory is the identity of a node's process (its working directory), so
this mapping is all that ties a stored node to a running engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def ca(self) -> Path:
        """Cacheyard's certificate authority (cli.settings.Settings.ca_dir)."""
        return self.root / "ca"

    @property
    def clusters(self) -> Path:
        return self.root / "clusters"

    def cluster(self, cluster_id: str) -> Path:
        return self.clusters / cluster_id

    def node(self, cluster_id: str, node_id: str) -> Path:
        return self.cluster(cluster_id) / "nodes" / node_id

    def config_endpoint(self, cluster_id: str) -> Path:
        return self.cluster(cluster_id) / "config-endpoint"
