"""``cacheyard up | down | credentials | fault | iam``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from pathlib import Path

import click
from rich.console import Console
from rich.logging import RichHandler

from cacheyard.cli import admin, iam_commands, network_rules, service
from cacheyard.cli.credentials import configured_region, read_files
from cacheyard.cli.options import data_dir_option
from cacheyard.cli.settings import (
    DEFAULT_ADDRESS_BASE,
    DEFAULT_HOST,
    DEFAULT_IAM_CONNECTION_MAX_AGE,
    DEFAULT_PORT,
    DEFAULT_REGION,
    Settings,
)
from cacheyard.engines.certificates import CertificateAuthority
from cacheyard.engines.host import LocalEngineHost
from cacheyard.store.secret_box import SecretKeyError

console = Console()


@click.group()
def main() -> None:
    """Cacheyard: ElastiCache on your own machine, with real Redis and Memcached."""


@main.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="API listen address.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="API listen port.")
@click.option("--region", default=DEFAULT_REGION, show_default=True)
@click.option(
    "--address-base",
    default=DEFAULT_ADDRESS_BASE,
    show_default=True,
    type=click.IntRange(1, 254),
    help="Nodes get addresses in 127.<address-base>.0.0/16.",
)
@click.option(
    "--buckets-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    show_default="DATA_DIR/buckets",
    help="Stands in for S3: CopySnapshot's TargetBucket and SnapshotArns' buckets "
    "are its subdirectories.",
)
@click.option(
    "--iam-connection-max-age",
    default=DEFAULT_IAM_CONNECTION_MAX_AGE,
    show_default=True,
    type=click.IntRange(1),
    help="Seconds after which an IAM-authenticated connection is closed (ElastiCache: 12 h).",
)
@data_dir_option
def up(
    host: str,
    port: int,
    region: str,
    address_base: int,
    buckets_dir: Path | None,
    iam_connection_max_age: int,
    data_dir: Path,
) -> None:
    """Run the service in the foreground (engines keep running when it stops)."""
    logging.basicConfig(
        level=logging.INFO, format="%(message)s", handlers=[RichHandler(console=console)]
    )
    settings = Settings(
        data_dir=data_dir.resolve(),
        host=host,
        port=port,
        region=region,
        address_base=address_base,
        buckets_dir=buckets_dir.resolve() if buckets_dir is not None else None,
        iam_connection_max_age=iam_connection_max_age,
    )

    def announce(started: service.Started) -> None:
        if started.first_start:
            console.print(
                "[bold]First start:[/] created the administrator user admin and its access key."
            )
        elif started.new_admin_key:
            console.print("[bold]No access key was left:[/] created a new one for the user admin.")
        console.print(
            f"Cacheyard is serving the ElastiCache API at [bold]{settings.endpoint_url}[/]"
        )
        console.print(f"  region:      {settings.region}")
        console.print(f"  credentials: {settings.credentials_file} (profile default)")
        console.print(f"  data:        {settings.data_dir}")
        console.print("Try it:")
        console.print(
            f"  export AWS_SHARED_CREDENTIALS_FILE={settings.credentials_file} "
            f"AWS_CONFIG_FILE={settings.config_file}",
            soft_wrap=True,
        )
        console.print(
            f"  aws --endpoint-url {settings.endpoint_url} elasticache describe-cache-clusters",
            soft_wrap=True,
        )

    with contextlib.suppress(KeyboardInterrupt):
        try:
            service.run(settings, announce)
        except (service.AlreadyRunning, SecretKeyError) as exc:
            raise click.ClickException(str(exc)) from None


@main.command()
@data_dir_option
def credentials(data_dir: Path) -> None:
    """Print the access keys as shell export lines."""
    settings = Settings(data_dir=data_dir.resolve())
    pair = read_files(settings)
    if pair is None:
        raise click.ClickException(
            f"No credentials in {settings.data_dir}: start the service once with `cacheyard up`."
        )
    click.echo(f"export AWS_ACCESS_KEY_ID={pair.access_key_id}")
    click.echo(f"export AWS_SECRET_ACCESS_KEY={pair.secret_access_key}")
    click.echo(f"export AWS_DEFAULT_REGION={configured_region(settings)}")
    if settings.endpoint_file.exists():
        click.echo(
            f"export AWS_ENDPOINT_URL_ELASTICACHE={settings.endpoint_file.read_text().strip()}"
        )


@main.command()
@data_dir_option
def ca(data_dir: Path) -> None:
    """Print the path of Cacheyard's CA certificate, for `redis-cli --tls --cacert`."""
    settings = Settings(data_dir=data_dir.resolve())
    click.echo(CertificateAuthority(settings.ca_dir).ensure())


@main.command()
@data_dir_option
def down(data_dir: Path) -> None:
    """Stop the service and every engine it runs."""
    settings = Settings(data_dir=data_dir.resolve())
    _stop_service(settings)
    host = LocalEngineHost()
    running = host.find_all(settings.data_dir)

    async def stop_all() -> None:
        await asyncio.gather(*(host.stop(path) for path in running))

    asyncio.run(stop_all())
    if settings.address_base_file.exists():
        base = int(settings.address_base_file.read_text().strip())
        network_rules.forget_all(
            Settings(data_dir=settings.data_dir, address_base=base).address_prefix
        )
    console.print(f"Stopped {len(running)} engine process(es).")


def _stop_service(settings: Settings, grace: float = 10.0) -> None:
    if not settings.pid_file.exists():
        console.print("The service is not running.")
        return
    pid = int(settings.pid_file.read_text().strip())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        settings.pid_file.unlink(missing_ok=True)
        console.print("The service was not running (stale pid file removed).")
        return
    deadline = time.monotonic() + grace
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    settings.pid_file.unlink(missing_ok=True)
    console.print(f"Stopped the service (pid {pid}).")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@main.command()
@click.argument("action", type=click.Choice(["kill", "pause", "resume", "isolate", "heal"]))
@click.argument("cache_cluster_id")
@click.option("--node-id", default="0001", show_default=True)
@data_dir_option
def fault(action: str, cache_cluster_id: str, node_id: str, data_dir: Path) -> None:
    """Inject a fault into a node: kill (SIGKILL), pause (SIGSTOP), resume (SIGCONT),
    isolate (drop its traffic with nftables) or heal."""
    settings = Settings(data_dir=data_dir.resolve())
    pair = read_files(settings)
    if pair is None or not settings.endpoint_file.exists():
        raise click.ClickException(f"No running service found for {settings.data_dir}.")
    endpoint = settings.endpoint_file.read_text().strip()
    status, answer = admin.post_fault(
        endpoint, configured_region(settings), pair, action, cache_cluster_id, node_id
    )
    if status != 200:
        error = answer.get("Error", {})
        raise click.ClickException(f"{error.get('Code')}: {error.get('Message')}")
    console.print(answer["Done"])


main.add_command(iam_commands.iam)
