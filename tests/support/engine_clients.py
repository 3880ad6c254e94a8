"""Talking to the engines the service runs, as an application would."""

from __future__ import annotations

import socket

import redis
from pymemcache.client.base import Client as MemcacheClient


def redis_roundtrip(address: str, port: int, key: str, value: str) -> None:
    client = redis.Redis(host=address, port=port, socket_timeout=5)
    try:
        client.set(key, value)
        assert client.get(key) == value.encode()
    finally:
        client.close()


def memcached_roundtrip(address: str, port: int, key: str, value: str) -> None:
    client = MemcacheClient((address, port), timeout=5, connect_timeout=5)
    try:
        client.set(key, value)
        assert client.get(key) == value.encode()
    finally:
        client.close()


def config_get_cluster(address: str, port: int) -> tuple[int, list[tuple[str, str, int]]]:
    """The auto discovery answer: (version, [(host, ip, port), ...])."""
    with socket.create_connection((address, port), timeout=5) as sock:
        sock.sendall(b"config get cluster\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            chunk = sock.recv(65536)
            assert chunk, "connection closed before END"
            data += chunk
    header, _, rest = data.partition(b"\r\n")
    assert header.startswith(b"CONFIG cluster 0 ")
    length = int(header.split()[-1])
    body = rest[:length].decode()
    assert rest[length:] == b"\r\nEND\r\n"
    version_line, nodes_line = body.rstrip("\n").split("\n")
    nodes = []
    for item in nodes_line.split(" "):
        host, ip, node_port = item.split("|")
        nodes.append((host, ip, int(node_port)))
    return int(version_line), nodes
