"""Fixtures for end-to-end tests: a real service with real engines."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.client import BaseClient
from service_helpers import Service


def _finish(service: Service) -> None:
    service.down()
    assert service.engines() == {}, "engine processes outlived `cacheyard down`"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One service shared by the tests of a module."""
    running = Service(tmp_path_factory.mktemp("svc") / "data")
    running.start()
    yield running
    _finish(running)


@pytest.fixture
def fresh_service(tmp_path: Path) -> Iterator[Service]:
    """A service of the test's own, for tests that kill or restart it."""
    running = Service(tmp_path / "data")
    running.start()
    yield running
    _finish(running)


@pytest.fixture(scope="module")
def ec(service: Service) -> BaseClient:
    """An ElastiCache client of the module's service, as its administrator."""
    return service.client()


@pytest.fixture(scope="module")
def ca(service: Service) -> str:
    """The path of the service's CA certificate, as `cacheyard ca` prints it."""
    done = subprocess.run(
        service.command("ca"), capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout.strip()
