"""Memcached nodes and configuration endpoints with TLS in transit (ADR 12).

Against the real memcached 1.6.18: with ``-Z`` the node's port speaks TLS only
(a plaintext client's connection is reset), its certificate comes from
Cacheyard's CA and names its address, and clients show no certificate. Probes
verify the node against the CA by address; SASL runs inside TLS (binary
protocol); the configuration endpoint serves TLS and relays over TLS.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import bmemcached
import pytest
from bmemcached.exceptions import MemcachedException
from engine_addresses import new_address
from engine_helpers import eventually
from pymemcache.client.base import Client

from cacheyard.engines import probes
from cacheyard.engines.certificates import CA_CERT, CertificateAuthority
from cacheyard.engines.discovery import DiscoverySpec, EndpointTls
from cacheyard.engines.host import LocalEngineHost
from cacheyard.engines.launch import memcached_argv
from cacheyard.engines.probes import KeptMemcachedProbes
from cacheyard.engines.spec import NodeSpec, TlsFiles
from cacheyard.ha.monitor import HealthMonitor, Watched

SpecFactory = Callable[..., NodeSpec]

ALICE = ("alice", "correct-horse-1")
AUTH_ERROR = 0x20  # the binary protocol's "Auth failure."


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    authority = CertificateAuthority(tmp_path / "ca")
    authority.ensure()
    return authority


def tls_files(ca: CertificateAuthority, directory: Path, *addresses: str) -> TlsFiles:
    """A certificate from ``ca`` naming ``addresses``, in ``directory/tls``."""
    issued = ca.issue(directory / "tls", "test", list(addresses))
    return TlsFiles(issued.cert, issued.key, ca.cert_path)


def tls_node(memcached_spec: SpecFactory, ca: CertificateAuthority, **overrides: Any) -> NodeSpec:
    """A TLS node whose certificate names its own address."""
    plain = memcached_spec(**overrides)
    tls = tls_files(ca, plain.node_dir, plain.address)
    return memcached_spec(address=plain.address, tls=tls, **overrides)


def context(ca_cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_cert))


@contextmanager
def tls_client(address: str, port: int, ca_cert: Path) -> Iterator[Client]:
    client = Client((address, port), tls_context=context(ca_cert), connect_timeout=2, timeout=2)
    try:
        yield client
    finally:
        client.close()


def plaintext_answer(address: str, port: int, request: bytes) -> bytes:
    """What a plaintext client gets: b"" when the connection is closed or reset."""
    with socket.create_connection((address, port), timeout=1) as sock:
        sock.sendall(request)
        try:
            return sock.recv(100)
        except (ConnectionResetError, TimeoutError):
            return b""


def curr_connections(node: NodeSpec) -> int:
    assert node.tls is not None
    with tls_client(node.address, node.port, node.tls.ca) as client:
        # this client's own connection is counted too
        return int(client.stats()[b"curr_connections"]) - 1


async def start_serving(host: LocalEngineHost, spec: NodeSpec) -> None:
    host.start(spec)
    await eventually(lambda: host.probe(spec))


def test_a_tls_node_runs_tls_only_on_its_port(
    memcached_spec: SpecFactory, ca: CertificateAuthority
) -> None:
    spec = tls_node(memcached_spec, ca)
    assert spec.tls is not None
    argv = memcached_argv("memcached", spec)
    assert argv[argv.index("-Z") + 1 : argv.index("-Z") + 3] == [
        "-o",
        f"ssl_chain_cert={spec.tls.cert},ssl_key={spec.tls.key},ssl_verify_mode=0",
    ]
    assert "-Z" not in memcached_argv("memcached", memcached_spec())
    # memcached splits its -o list at commas
    comma = TlsFiles(Path("/a,b/node.crt"), Path("/a/node.key"), Path("/a/ca.crt"))
    with pytest.raises(ValueError, match="cannot hold ','"):
        memcached_spec(tls=comma)


@pytest.mark.timeout(15)
async def test_a_tls_node_is_probed_and_serves_tls_clients_only(
    host: LocalEngineHost, memcached_spec: SpecFactory, ca: CertificateAuthority
) -> None:
    spec = tls_node(memcached_spec, ca)
    await start_serving(host, spec)
    assert await host.probe(spec)
    assert await probes.memcached_version(spec.address, spec.port, 1.0, tls=spec.tls)
    # plaintext: the connection ends at the first bytes, without an answer
    assert not await probes.memcached_version(spec.address, spec.port, 0.5)
    assert plaintext_answer(spec.address, spec.port, b"version\r\n") == b""
    plain = Client((spec.address, spec.port), connect_timeout=1, timeout=1)
    with pytest.raises(OSError):
        plain.set("k", b"v", noreply=False)
    plain.close()
    # a TLS client verifying the CA and the node's address
    with tls_client(spec.address, spec.port, ca.cert_path) as client:
        assert client.set("greeting", b"hello", noreply=False)
        assert client.get("greeting") == b"hello"
        assert client.version().startswith(b"1.6")
        settings = client.stats("settings")
        assert settings[b"ssl_enabled"] == b"yes"
        assert settings[b"ssl_verify_mode"] == 0  # no client certificate asked


@pytest.mark.timeout(15)
async def test_a_certificate_for_another_address_or_from_another_ca_is_refused(
    host: LocalEngineHost, memcached_spec: SpecFactory, ca: CertificateAuthority, tmp_path: Path
) -> None:
    plain = memcached_spec()
    wrong_name = tls_files(ca, plain.node_dir, new_address())  # names another address
    spec = memcached_spec(address=plain.address, tls=wrong_name)
    host.start(spec)
    good = tls_node(memcached_spec, ca, name="memcached-2")
    await start_serving(host, good)
    # the node serves, but neither the probe nor a client trusts it
    assert not await probes.memcached_version(spec.address, spec.port, 0.5, tls=spec.tls)
    with (
        pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch"),
        tls_client(spec.address, spec.port, ca.cert_path) as client,
    ):
        client.version()
    other_ca = CertificateAuthority(tmp_path / "other-ca")
    other_ca.ensure()
    with (
        pytest.raises(ssl.SSLCertVerificationError),
        tls_client(good.address, good.port, other_ca.cert_path) as client,
    ):
        client.version()
    assert host.find(spec.node_dir) is not None


@pytest.mark.timeout(15)
async def test_kept_probes_speak_tls_to_tls_nodes(
    host: LocalEngineHost, memcached_spec: SpecFactory, ca: CertificateAuthority
) -> None:
    spec = tls_node(memcached_spec, ca)
    await start_serving(host, spec)
    kept = KeptMemcachedProbes()
    try:
        assert not await kept.version(spec.address, spec.port, 0.5)
        for _ in range(3):
            assert await kept.version(spec.address, spec.port, 0.5, tls=spec.tls)
        # one kept connection for the probes (the plaintext one was dropped)
        assert curr_connections(spec) == 1
        await host.stop(spec.node_dir, grace=0)
        assert not await kept.version(spec.address, spec.port, 0.3, tls=spec.tls)
        await start_serving(host, spec)
        assert await kept.version(spec.address, spec.port, 0.5, tls=spec.tls)
    finally:
        kept.forget_all_but(set())


@pytest.mark.timeout(15)
async def test_sasl_runs_inside_tls(
    host: LocalEngineHost, memcached_spec: SpecFactory, ca: CertificateAuthority
) -> None:
    spec = tls_node(memcached_spec, ca, sasl_users=(ALICE,))
    await start_serving(host, spec)
    # the binary VERSION, over TLS, before any login
    assert await probes.memcached_version(spec.address, spec.port, 1.0, binary=True, tls=spec.tls)
    assert not await probes.memcached_version(spec.address, spec.port, 0.5, binary=True)
    assert not await probes.memcached_version(spec.address, spec.port, 0.5, tls=spec.tls)
    server = f"{spec.address}:{spec.port}"
    tls = context(ca.cert_path)
    alice = bmemcached.Client([server], *ALICE, tls_context=tls, socket_timeout=2)
    try:
        assert alice.set("greeting", "hello")
        assert alice.get("greeting") == "hello"
    finally:
        alice.disconnect_all()
    wrong = bmemcached.Client([server], "alice", "wrong", tls_context=tls, socket_timeout=2)
    try:
        with pytest.raises(MemcachedException) as refused:
            wrong.get("greeting")
        assert refused.value.code == AUTH_ERROR
    finally:
        wrong.disconnect_all()
    # the right password in plaintext gets nothing: the port speaks TLS only
    assert plaintext_answer(spec.address, spec.port, b"\x80" + b"\x00" * 23) == b""


@pytest.mark.timeout(15)
async def test_the_health_monitor_probes_tls_nodes_over_tls(
    host: LocalEngineHost, memcached_spec: SpecFactory, ca: CertificateAuthority, tmp_path: Path
) -> None:
    tls = tls_node(memcached_spec, ca, name="tls")
    tls_sasl = tls_node(memcached_spec, ca, name="tls-sasl", sasl_users=(ALICE,))
    for node in (tls, tls_sasl):
        await start_serving(host, node)
    watched: list[Watched] = [("cache-cluster/tls", tls), ("cache-cluster/tls-sasl", tls_sasl)]
    notified: list[str] = []
    for targets in (
        watched,
        # The same node probed without TLS never answers: the check is not vacuous.
        [("cache-cluster/as-plain", dataclasses.replace(tls, tls=None))],
    ):

        async def current(targets: list[Watched] = targets) -> list[Watched]:
            return targets

        watcher = HealthMonitor(
            host,
            current,
            notified.append,
            tmp_path,
            probe_timeout=0.3,
            failures_to_report=2,
        )
        try:
            for _ in range(3):
                await watcher.check_once()
        finally:
            await watcher.stop()
    assert set(notified) == {"cache-cluster/as-plain"}


# -- the configuration endpoint --------------------------------------------------------


def ask_config(endpoint: DiscoverySpec, ca_cert: Path) -> bytes:
    with (
        socket.create_connection((endpoint.address, endpoint.port), timeout=2) as raw,
        context(ca_cert).wrap_socket(raw, server_hostname=endpoint.address) as sock,
    ):
        sock.sendall(b"config get cluster\r\n")
        reply = b""
        while not reply.endswith(b"END\r\n"):
            chunk = sock.recv(4096)
            assert chunk, "connection closed"
            reply += chunk
        return reply


@pytest.mark.timeout(20)
async def test_a_tls_configuration_endpoint_answers_and_relays_over_tls(
    host: LocalEngineHost,
    memcached_spec: SpecFactory,
    ca: CertificateAuthority,
    tmp_path: Path,
) -> None:
    nodes = [tls_node(memcached_spec, ca, name=f"memcached-{i}") for i in (1, 2)]
    for node in nodes:
        host.start(node)
    for node in nodes:
        await eventually(partial(host.probe, node))
    endpoint_dir = tmp_path / "config-endpoint"
    address = new_address()
    files = tls_files(ca, endpoint_dir, address)
    endpoint = DiscoverySpec(
        node_dir=endpoint_dir,
        address=address,
        port=11211,
        version=1,
        nodes=tuple((n.address, n.address, n.port) for n in nodes),
        tls=EndpointTls(files.cert, files.key, tmp_path / "ca" / CA_CERT),
    )
    host.start_discovery(endpoint)
    await eventually(lambda: host.probe_discovery(endpoint))
    assert not await probes.config_endpoint(endpoint.address, endpoint.port, 0.5)
    assert plaintext_answer(endpoint.address, endpoint.port, b"config get cluster\r\n") == b""
    reply = await asyncio.to_thread(ask_config, endpoint, ca.cert_path)
    assert reply.startswith(b"CONFIG cluster 0 ")
    assert f"{nodes[0].address}|{nodes[0].address}|11211".encode() in reply

    # Relayed to a node over TLS, which closes when the client does.
    before = curr_connections(nodes[0])
    with tls_client(endpoint.address, endpoint.port, ca.cert_path) as through:
        assert through.version().startswith(b"1.6")
        assert through.set("relayed", b"yes", noreply=False)
        assert through.get("relayed") == b"yes"
        assert curr_connections(nodes[0]) == before + 1
    with tls_client(nodes[0].address, nodes[0].port, ca.cert_path) as direct:
        assert direct.get("relayed") == b"yes"

    async def relay_closed() -> bool:
        return await asyncio.to_thread(curr_connections, nodes[0]) == before

    await eventually(relay_closed)


@pytest.mark.timeout(20)
async def test_the_endpoint_relays_only_to_nodes_it_can_verify(
    host: LocalEngineHost, memcached_spec: SpecFactory, ca: CertificateAuthority, tmp_path: Path
) -> None:
    plain = memcached_spec()
    impostor = memcached_spec(
        address=plain.address, tls=tls_files(ca, plain.node_dir, new_address())
    )
    good = tls_node(memcached_spec, ca, name="memcached-2")
    host.start(impostor)
    await start_serving(host, good)
    endpoint_dir = tmp_path / "config-endpoint"
    address = new_address()
    files = tls_files(ca, endpoint_dir, address)
    endpoint = DiscoverySpec(
        endpoint_dir,
        address,
        11211,
        1,
        ((impostor.address, impostor.address, 11211), (good.address, good.address, 11211)),
        EndpointTls(files.cert, files.key, ca.cert_path),
    )
    host.start_discovery(endpoint)
    await eventually(lambda: host.probe_discovery(endpoint))
    with tls_client(endpoint.address, endpoint.port, ca.cert_path) as through:
        assert through.set("k", b"v", noreply=False)
    with tls_client(good.address, good.port, ca.cert_path) as direct:
        assert direct.get("k") == b"v"  # the first node's certificate names another address
