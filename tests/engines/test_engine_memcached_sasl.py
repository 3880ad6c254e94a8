"""Memcached nodes with SASL (Cacheyard's extension): only the spec's users get in.

Against the real memcached and Cyrus SASL; the client is python-binary-memcached
(SASL PLAIN over the binary protocol), as an application would use.
"""

from __future__ import annotations

import socket
import stat
import struct
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bmemcached
import pytest
from bmemcached.exceptions import MemcachedException
from engine_helpers import eventually
from pymemcache.client.base import Client as TextClient
from pymemcache.exceptions import MemcacheError

from cacheyard.engines import probes, sasl
from cacheyard.engines.errors import EngineStartError
from cacheyard.engines.host import LocalEngineHost
from cacheyard.engines.launch import ENGINE_LOG, MEMCACHED_OPTIONS
from cacheyard.engines.probes import KeptMemcachedProbes
from cacheyard.engines.spec import NodeSpec

SpecFactory = Callable[..., NodeSpec]

ALICE = ("alice", "correct-horse-1")
BOB = ("bob", "battery staple: 2")  # spaces and a colon are fine in a password
USERS = (ALICE, BOB)
PASSWORDS = [password for _, password in USERS]
AUTH_ERROR = 0x20  # the binary protocol's "Auth failure."
SASL_LIST_MECHS = 0x20
HEADER = struct.Struct(">BBHBBHIIQ")


@contextmanager
def sasl_client(
    spec: NodeSpec, user: str | None = None, password: str | None = None
) -> Iterator[Any]:
    client = bmemcached.Client([f"{spec.address}:{spec.port}"], user, password, socket_timeout=1)
    try:
        yield client
    finally:
        client.disconnect_all()


def set_and_get(spec: NodeSpec, user: str | None, password: str | None) -> object:
    with sasl_client(spec, user, password) as client:
        assert client.set("greeting", "hello")
        return client.get("greeting")


def assert_refused(spec: NodeSpec, user: str | None, password: str | None) -> None:
    for operation in ("set", "get"):
        with sasl_client(spec, user, password) as client:
            with pytest.raises(MemcachedException) as refused:
                if operation == "set":
                    client.set("greeting", "hello")
                else:
                    client.get("greeting")
            assert refused.value.code == AUTH_ERROR, operation


def total_connections(spec: NodeSpec, client: Any) -> int:
    stats = client.stats()[f"{spec.address}:{spec.port}"]
    return int(stats["total_connections"])


async def start_serving(host: LocalEngineHost, spec: NodeSpec) -> int:
    pid = host.start(spec).pid
    await eventually(lambda: host.probe(spec))
    return pid


def raw_exchange(spec: NodeSpec, opcode: int) -> tuple[int, bytes]:
    """One binary-protocol request without key or body: (status, body)."""
    with socket.create_connection((spec.address, spec.port), timeout=1) as sock:
        sock.sendall(HEADER.pack(0x80, opcode, 0, 0, 0, 0, 0, 0, 0))
        reply = b""
        while (
            len(reply) < HEADER.size
            or len(reply) < HEADER.size + HEADER.unpack(reply[: HEADER.size])[6]
        ):
            chunk = sock.recv(4096)
            assert chunk, "connection closed"
            reply += chunk
    header = HEADER.unpack(reply[: HEADER.size])
    return header[5], reply[HEADER.size :]


@pytest.mark.timeout(10)
async def test_a_sasl_node_is_probed_and_serves_its_users(
    host: LocalEngineHost, memcached_spec: SpecFactory
) -> None:
    spec = memcached_spec(sasl_users=USERS)
    await start_serving(host, spec)
    assert await host.probe(spec)
    # -S: the binary protocol only; the text probe gets no answer.
    assert not await probes.memcached_version(spec.address, spec.port, 0.3)
    for user, password in USERS:
        assert set_and_get(spec, user, password) == "hello"


@pytest.mark.timeout(10)
async def test_wrong_passwords_and_unknown_users_are_refused(
    host: LocalEngineHost, memcached_spec: SpecFactory
) -> None:
    spec = memcached_spec(sasl_users=USERS)
    await start_serving(host, spec)
    assert_refused(spec, "alice", "wrong")
    assert_refused(spec, "alice", BOB[1])  # another user's password
    assert_refused(spec, "alice", ALICE[1] + "x")
    assert_refused(spec, "carol", ALICE[1])
    assert_refused(spec, "Alice", ALICE[1])


@pytest.mark.timeout(10)
async def test_without_authentication_get_and_set_are_refused(
    host: LocalEngineHost, memcached_spec: SpecFactory
) -> None:
    spec = memcached_spec(sasl_users=(ALICE,))
    await start_serving(host, spec)
    assert_refused(spec, None, None)
    text = TextClient((spec.address, spec.port), connect_timeout=1, timeout=0.3)
    try:
        with pytest.raises((OSError, MemcacheError)):  # no text protocol at all
            text.set("greeting", b"hello", noreply=False)
    finally:
        text.close()


@pytest.mark.timeout(10)
async def test_only_plain_is_offered(host: LocalEngineHost, memcached_spec: SpecFactory) -> None:
    spec = memcached_spec(sasl_users=(ALICE,))
    await start_serving(host, spec)
    assert raw_exchange(spec, SASL_LIST_MECHS) == (0, b"PLAIN")


def sasldb_users(database: Path) -> list[str]:
    lister = Path(sasl.find_saslpasswd2()).with_name("sasldblistusers2")
    listed = subprocess.run(
        [str(lister), "-f", str(database)], capture_output=True, text=True, check=True, timeout=5
    )
    return sorted(listed.stdout.splitlines())


def proc_words(pid: int, name: str) -> list[bytes]:
    return Path(f"/proc/{pid}/{name}").read_bytes().split(b"\0")


def assert_private_files(spec: NodeSpec, pid: int) -> None:
    node_dir = spec.node_dir
    for name in sasl.SASL_FILES:
        assert stat.S_IMODE((node_dir / name).stat().st_mode) == 0o600, name
    assert sorted(p.name for p in node_dir.iterdir()) == sorted(
        [*sasl.SASL_FILES, MEMCACHED_OPTIONS, ENGINE_LOG]
    )
    conf = (node_dir / sasl.SASL_CONF).read_text()
    assert conf.splitlines() == [
        "mech_list: plain",
        "pwcheck_method: auxprop",
        "auxprop_plugin: sasldb",
        f"sasldb_path: {node_dir / sasl.SASLDB}",
    ]
    # The database holds exactly the spec's users, in memcached's realm.
    realm = socket.gethostname()
    assert sasldb_users(node_dir / sasl.SASLDB) == [
        f"alice@{realm}: userPassword",
        f"bob@{realm}: userPassword",
    ]
    cmdline = proc_words(pid, "cmdline")
    assert "-S" in [word.decode() for word in cmdline]
    environ = proc_words(pid, "environ")
    assert f"SASL_CONF_PATH={node_dir}".encode() in environ
    log = (node_dir / ENGINE_LOG).read_bytes()
    for password in PASSWORDS:
        secret = password.encode()
        assert not any(secret in word for word in cmdline)
        assert not any(secret in word for word in environ)
        assert secret not in log


@pytest.mark.timeout(10)
async def test_files_are_private_and_passwords_stay_out_of_argv(
    host: LocalEngineHost, memcached_spec: SpecFactory
) -> None:
    spec = memcached_spec(sasl_users=USERS)
    pid = await start_serving(host, spec)
    assert_private_files(spec, pid)


@pytest.mark.timeout(10)
async def test_a_changed_user_list_takes_effect_at_the_next_start(
    host: LocalEngineHost, memcached_spec: SpecFactory
) -> None:
    spec = memcached_spec(sasl_users=(ALICE,))
    await start_serving(host, spec)
    assert set_and_get(spec, *ALICE) == "hello"

    await host.stop(spec.node_dir, grace=0)
    changed = memcached_spec(address=spec.address, sasl_users=(("alice", "rotated-3"), BOB))
    await start_serving(host, changed)
    assert_refused(changed, *ALICE)
    assert set_and_get(changed, "alice", "rotated-3") == "hello"
    assert set_and_get(changed, *BOB) == "hello"

    # SASL off: the files go, and the node speaks text again.
    await host.stop(spec.node_dir, grace=0)
    plain = memcached_spec(address=spec.address)
    await start_serving(host, plain)
    assert not any((spec.node_dir / name).exists() for name in sasl.SASL_FILES)
    assert await probes.memcached_version(plain.address, plain.port, 1.0)
    text = TextClient((plain.address, plain.port), connect_timeout=1, timeout=1)
    try:
        assert text.set("greeting", b"hello", noreply=False)
    finally:
        text.close()


@pytest.mark.timeout(10)
async def test_kept_probes_speak_binary_to_sasl_nodes(
    host: LocalEngineHost, memcached_spec: SpecFactory
) -> None:
    spec = memcached_spec(sasl_users=(ALICE,))
    await start_serving(host, spec)
    kept = KeptMemcachedProbes()
    try:
        with sasl_client(spec, *ALICE) as client:
            assert await kept.version(spec.address, spec.port, 1.0, binary=True)
            before = total_connections(spec, client)
            for _ in range(20):
                assert await kept.version(spec.address, spec.port, 1.0, binary=True)
            after = total_connections(spec, client)
            assert after == before  # one kept connection
        assert not await kept.version(spec.address, spec.port, 0.3)  # text: no answer
        assert await kept.version(spec.address, spec.port, 1.0, binary=True)
        await host.stop(spec.node_dir, grace=0)
        assert not await kept.version(spec.address, spec.port, 0.3, binary=True)
        host.start(spec)
        await eventually(lambda: kept.version(spec.address, spec.port, 0.5, binary=True))
    finally:
        kept.forget_all_but(set())


@pytest.mark.timeout(10)
async def test_binary_version_answers_on_a_node_without_sasl_too(
    host: LocalEngineHost, memcached_spec: SpecFactory
) -> None:
    # Kept for nodes without SASL: the text probe, which `-B ascii` nodes need.
    spec = memcached_spec()
    await start_serving(host, spec)
    assert await probes.memcached_version(spec.address, spec.port, 1.0, binary=True)
    ascii_only = memcached_spec("memcached-2", memcached_options={"binding_protocol": "ascii"})
    await start_serving(host, ascii_only)
    assert not await probes.memcached_version(ascii_only.address, ascii_only.port, 0.3, binary=True)


@pytest.mark.timeout(10)
def test_a_failing_saslpasswd2_never_shows_the_password(
    memcached_spec: SpecFactory, tmp_path: Path
) -> None:
    tattler = tmp_path / "saslpasswd2"
    tattler.write_text('#!/bin/sh\necho "bad password: $(cat)" >&2\nexit 3\n')
    tattler.chmod(0o700)
    spec = memcached_spec(sasl_users=(ALICE,))
    with pytest.raises(EngineStartError, match="status 3") as failed:
        sasl.write_files(spec, saslpasswd2=str(tattler))
    assert ALICE[1] not in str(failed.value)
    assert "***" in str(failed.value)
    assert not any(spec.node_dir.iterdir())  # no staging left behind


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "users",
    [
        (("", "pw"),),
        (("al ice", "pw"),),
        (("al:ice", "pw"),),
        (("alice@vm", "pw"),),
        (("al\nice", "pw"),),
        (("a" * 129, "pw"),),
        (("alice", ""),),
        (("alice", "line\nbreak"),),
        (("alice", "nul\0byte"),),
        (("alice", "x" * 1025),),
        (("alice", "pw"), ("alice", "other")),
    ],
)
def test_invalid_sasl_users_are_refused_without_naming_passwords(
    memcached_spec: SpecFactory, users: tuple[tuple[str, str], ...]
) -> None:
    with pytest.raises(ValueError, match="SASL user") as refused:
        memcached_spec(sasl_users=users)
    for _, password in users:
        if password:
            assert password not in str(refused.value)


@pytest.mark.timeout(10)
def test_sasl_is_for_binary_capable_memcached_nodes(
    memcached_spec: SpecFactory, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="for memcached nodes"):
        NodeSpec("redis", tmp_path, "127.0.0.1", 6379, 64, sasl_users=(ALICE,))
    with pytest.raises(ValueError, match="binary protocol"):
        memcached_spec(sasl_users=(ALICE,), memcached_options={"binding_protocol": "ascii"})
    with pytest.raises(ValueError, match="':'"):
        memcached_spec("odd:name", sasl_users=(ALICE,))
    spec = memcached_spec(sasl_users=(ALICE,))
    assert ALICE[1] not in repr(spec)
    assert memcached_spec(memcached_options={"binding_protocol": "auto"}, sasl_users=(ALICE,))
