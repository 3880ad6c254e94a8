"""TransitEncryptionMode preferred: plain-text and TLS clients on one port, through the
front, to a real redis-server listening on its two internal ports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from engine_addresses import new_address
from engine_helpers import eventually

from cacheyard.engines.certificates import CertificateAuthority
from cacheyard.engines.host import LocalEngineHost
from cacheyard.engines.spec import NodeSpec, TlsFiles
from cacheyard.engines.tls_front import FRONT_DIR, PLAIN_OFFSET, FrontSpec

pytestmark = pytest.mark.timeout(30)

PASSWORD = "control-password-for-the-test"


def client(address: str, ca: Path | None = None, port: int = 6379) -> aioredis.Redis:
    tls = {"ssl": True, "ssl_ca_certs": str(ca)} if ca is not None else {}
    return aioredis.Redis(host=address, port=port, socket_timeout=2, **tls)  # type: ignore[arg-type]


async def start(
    host: LocalEngineHost, redis_spec: Callable[..., NodeSpec], tmp_path: Path, *addresses: str
) -> tuple[NodeSpec, CertificateAuthority]:
    authority = CertificateAuthority(tmp_path / "ca")
    authority.ensure()
    plain = redis_spec()
    issued = authority.issue(plain.node_dir / "tls", "node", [plain.address, *addresses])
    node = redis_spec(
        address=plain.address,
        port=6379 + PLAIN_OFFSET,
        preferred_tls=TlsFiles(issued.cert, issued.key, authority.cert_path),
        control_password=PASSWORD,
    )
    host.start(node)
    host.start_front(
        FrontSpec(node.node_dir / FRONT_DIR, node.address, 6379, "cacheyard", PASSWORD)
    )
    return node, authority


async def test_plain_and_tls_clients_share_the_public_port(
    host: LocalEngineHost, redis_spec: Callable[..., NodeSpec], tmp_path: Path
) -> None:
    node, authority = await start(host, redis_spec, tmp_path)
    plain, tls = client(node.address), client(node.address, authority.cert_path)
    await eventually(lambda: plain.ping())
    await plain.set("k", "plain")
    assert await tls.get("k") == b"plain"
    await tls.set("k", "tls")
    assert await plain.get("k") == b"tls"
    # Redis terminates TLS itself: the relayed connections reach its two ports.
    clients = await client(node.address, port=node.port).client_list()
    local_ports = {c["laddr"].rsplit(":", 1)[1] for c in clients}
    assert {str(node.port), str(node.port + 1)} <= local_ports
    with pytest.raises(redis.exceptions.ConnectionError):
        await client(node.address, Path(str(tmp_path / "nosuch.crt"))).ping()


async def test_the_front_follows_the_addresses_redis_binds(
    host: LocalEngineHost, redis_spec: Callable[..., NodeSpec], tmp_path: Path
) -> None:
    endpoint = new_address()
    node, authority = await start(host, redis_spec, tmp_path, endpoint)
    control = client(node.address, port=node.port)
    await control.execute_command("AUTH", "cacheyard", PASSWORD)
    await eventually(lambda: client(node.address).ping())
    await control.config_set("bind", f"{node.address} {endpoint}")
    on_endpoint = client(endpoint, authority.cert_path)
    await eventually(lambda: _answers(on_endpoint))
    await control.config_set("bind", node.address)
    await eventually(lambda: _refused(endpoint))
    assert await client(node.address).ping()


async def _answers(c: aioredis.Redis) -> bool:
    try:
        return bool(await c.ping())
    except (redis.exceptions.ConnectionError, OSError):
        return False


async def _refused(address: str) -> bool:
    return not await _answers(client(address))
