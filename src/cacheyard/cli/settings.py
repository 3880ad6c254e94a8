"""Where the service keeps its state and how it is reached."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8510
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "000000000000"
DEFAULT_ADDRESS_BASE = 10
DEFAULT_IAM_CONNECTION_MAX_AGE = 12 * 3600  # ElastiCache's limit


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/cacheyard``, i.e. ``~/.local/share/cacheyard`` by default."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "cacheyard"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT
    address_base: int = DEFAULT_ADDRESS_BASE
    buckets_dir: Path | None = None
    iam_connection_max_age: int = DEFAULT_IAM_CONNECTION_MAX_AGE

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def database(self) -> Path:
        return self.data_dir / "state.db"

    @property
    def ca_dir(self) -> Path:
        """Cacheyard's certificate authority for TLS in transit."""
        return self.data_dir / "ca"

    @property
    def snapshots_dir(self) -> Path:
        return self.data_dir / "snapshots"

    @property
    def buckets(self) -> Path:
        """Where exported snapshots go: one directory per bucket, standing in for S3."""
        return self.buckets_dir or self.data_dir / "buckets"

    @property
    def parameter_cache(self) -> Path:
        """The parameters read from the installed engines, kept until they change."""
        return self.data_dir / "parameters.json"

    @property
    def credentials_file(self) -> Path:
        return self.data_dir / "credentials"

    @property
    def config_file(self) -> Path:
        return self.data_dir / "config"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "service.pid"

    @property
    def endpoint_file(self) -> Path:
        return self.data_dir / "endpoint"

    @property
    def address_base_file(self) -> Path:
        """Where `up` records its address range, so `down` can clean up after it."""
        return self.data_dir / "address-base"

    @property
    def address_prefix(self) -> str:
        return f"127.{self.address_base}."
