"""A real Cacheyard service in a subprocess, and ways to talk to it.

Each service gets its own data directory, a free API port and its own
loopback range (127.<base>.0.0/16 with base 100-199, unique per test run), so
services never collide with each other, with engine tests (127.200-250) or
with a Cacheyard a developer runs (127.10).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config

from cacheyard.engines.host import LocalEngineHost

FIRST_BASE, LAST_BASE = 100, 199
_next_base = itertools.count(os.getpid() % 50)
REGION = "us-east-1"


def busy_bases() -> set[int]:
    """Second octets of the 127.x.0.0/16 ranges with a listening TCP socket."""
    busy = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] != "0A":  # LISTEN
            continue
        address = bytes.fromhex(fields[1].split(":")[0])[::-1]  # little-endian
        if address[0] == 127:
            busy.add(address[1])
    return busy


def free_base() -> int:
    """A loopback /16 nobody listens on (a benchmark, a developer's Cacheyard, another run)."""
    busy = busy_bases()
    span = LAST_BASE - FIRST_BASE + 1
    for _ in range(span):
        base = FIRST_BASE + next(_next_base) % span
        if base not in busy:
            return base
    raise AssertionError("every 127.100-199 range has a listener")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[..., Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


class Service:
    def __init__(self, data_dir: Path, *options: str) -> None:
        self.data_dir = data_dir
        self.options = options  # more `cacheyard up` options
        self.port = free_port()
        self.address_base = free_base()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-service.log"

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "cacheyard", *args, "--data-dir", str(self.data_dir)]

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                *self.command("up"),
                "--port",
                str(self.port),
                "--address-base",
                str(self.address_base),
                *self.options,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        wait_for(self._listening, timeout=30)

    def _listening(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"service exited: {self.log_path.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
        except OSError:
            return False
        return (self.data_dir / "service.pid").exists()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the control plane only (the engines keep running)."""
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=30)
        self.process = None

    def down(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None
        subprocess.run(self.command("down"), check=True, capture_output=True, timeout=60)

    def engines(self) -> dict[Path, Any]:
        return LocalEngineHost().find_all(self.data_dir)

    def credentials(self) -> tuple[str, str]:
        lines = (self.data_dir / "credentials").read_text().splitlines()
        values = dict(line.split(" = ", 1) for line in lines if " = " in line)
        return values["aws_access_key_id"], values["aws_secret_access_key"]

    def client(self, **config: Any) -> BaseClient:
        key, secret = self.credentials()
        return boto3.client(
            "elasticache",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1}, **config),
        )

    def aws_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_SHARED_CREDENTIALS_FILE=str(self.data_dir / "credentials"),
            AWS_CONFIG_FILE=str(self.data_dir / "config"),
        )
        return env

    def aws(self, *args: str, check: bool = True) -> Any:
        """Run the real AWS CLI against the service; JSON output parsed."""
        done = subprocess.run(
            [
                str(Path(sys.executable).parent / "aws"),
                "--endpoint-url",
                self.endpoint,
                "--output",
                "json",
                "elasticache",
                *args,
            ],
            env=self.aws_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed: {done.stderr}")
        if not check:
            return done
        return json.loads(done.stdout) if done.stdout.strip() else None


def wait_available(client: BaseClient, cluster_id: str, timeout: float = 60) -> dict[str, Any]:
    """Poll DescribeCacheClusters until the cluster is available; the cluster."""

    def available() -> dict[str, Any] | None:
        found = describe(client, cluster_id)
        return found if found["CacheClusterStatus"] == "available" else None

    cluster: dict[str, Any] = wait_for(available, timeout=timeout)
    return cluster


def describe(client: BaseClient, cluster_id: str) -> dict[str, Any]:
    clusters = client.describe_cache_clusters(CacheClusterId=cluster_id, ShowCacheNodeInfo=True)
    return dict(clusters["CacheClusters"][0])


def messages(client: BaseClient, cluster_id: str) -> list[str]:
    found = client.describe_events(SourceType="cache-cluster", SourceIdentifier=cluster_id)
    return [e["Message"] for e in found["Events"]]
