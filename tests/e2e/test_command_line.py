"""The `cacheyard` command: first-start credentials, one service per data directory."""

from __future__ import annotations

import signal
import stat
import subprocess
from pathlib import Path

import boto3
import pytest
from service_helpers import REGION, Service

from cacheyard.engines.versions import installed_versions

pytestmark = pytest.mark.timeout(60)


def test_first_start_writes_private_credentials(service: Service) -> None:
    credentials = service.data_dir / "credentials"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    text = credentials.read_text()
    assert text.startswith("[default]\naws_access_key_id = AKIA")
    assert "aws_secret_access_key = " in text
    assert (service.data_dir / "config").read_text() == f"[default]\nregion = {REGION}\n"


def test_credentials_command_prints_exports_that_work(service: Service) -> None:
    done = subprocess.run(
        service.command("credentials"), capture_output=True, text=True, timeout=30, check=True
    )
    exports = dict(line.removeprefix("export ").split("=", 1) for line in done.stdout.splitlines())
    key, secret = service.credentials()
    assert exports == {
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL_ELASTICACHE": service.endpoint,
    }
    client = boto3.client(
        "elasticache",
        endpoint_url=exports["AWS_ENDPOINT_URL_ELASTICACHE"],
        region_name=exports["AWS_DEFAULT_REGION"],
        aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
    )
    versions = client.describe_cache_engine_versions()["CacheEngineVersions"]
    assert {(v["Engine"], v["EngineVersion"]) for v in versions} == {
        (v.engine, v.version) for v in installed_versions()
    }


def test_a_second_service_on_the_same_data_directory_is_refused(service: Service) -> None:
    done = subprocess.run(
        [*service.command("up"), "--port", "0"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode != 0
    assert "already running" in done.stderr


def test_a_data_directory_that_existed_is_made_private(tmp_path: Path) -> None:
    """Cached data (dump.rdb) and logs below it must not be readable by other users."""
    data_dir = tmp_path / "shared"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    running = Service(data_dir)
    running.start()
    try:
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    finally:
        running.down()


def test_restart_keeps_the_key_pair(fresh_service: Service) -> None:
    before = fresh_service.credentials()
    fresh_service.kill()
    fresh_service.start()
    assert fresh_service.credentials() == before
    fresh_service.client().describe_cache_clusters()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_shuts_the_service_down_cleanly(
    fresh_service: Service, sig: signal.Signals
) -> None:
    """The service finishes its own shutdown (store, pid file) and exits 0, so a
    stale pid file can never send `cacheyard down`'s signal to another process."""
    process = fresh_service.process
    assert process is not None
    process.send_signal(sig)
    assert process.wait(timeout=30) == 0
    fresh_service.process = None
    assert not (fresh_service.data_dir / "service.pid").exists()
    assert "Traceback" not in fresh_service.log_path.read_text()

    fresh_service.start()
    fresh_service.client().describe_cache_clusters()


def test_ca_command_prints_the_certificate_the_service_made(service: Service) -> None:
    done = subprocess.run(
        service.command("ca"), capture_output=True, text=True, timeout=30, check=True
    )
    path = done.stdout.strip()
    assert path == str(service.data_dir / "ca" / "ca.crt")
    assert Path(path).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert stat.S_IMODE((service.data_dir / "ca" / "ca.key").stat().st_mode) == 0o600
