"""What every handler is given: the store, the controller and the world's facts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cacheyard.controller.manager import Controller
from cacheyard.domain.arns import Arn
from cacheyard.domain.clock import Clock
from cacheyard.domain.engines import EngineCatalog
from cacheyard.domain.network import Network
from cacheyard.domain.parameters import ParameterCatalog
from cacheyard.store import Store
from cacheyard.store.snapshot_files import SnapshotFiles


@dataclass(frozen=True)
class Context:
    store: Store
    controller: Controller
    clock: Clock
    network: Network
    catalog: EngineCatalog
    account: str
    parameters: ParameterCatalog
    snapshots: SnapshotFiles
    # Where CopySnapshot's TargetBucket and SnapshotArns' s3 buckets live: one
    # directory per bucket name.
    buckets: Path

    @property
    def region(self) -> str:
        return self.network.region

    def arn(self, resource_type: str, resource_id: str) -> str:
        return str(Arn(self.region, self.account, resource_type, resource_id))
