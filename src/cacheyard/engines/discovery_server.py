"""The configuration endpoint of a Memcached cluster, as its own process.

Run as ``python -m cacheyard.engines.discovery_server <node_dir>`` with the
node directory as working directory, in a session of its own: like an engine,
it outlives the control plane and is adopted by the next one. Standard
library only, so it starts fast and depends on nothing the engines don't.

Per connection: ``config get cluster`` and ``get AmazonElastiCache:cluster``
are answered from ``cluster.json``; ``version`` is asked of a node (clients
ask it before choosing the discovery command); ``quit`` closes. Any other
command turns the connection into a byte pipe to the first node that accepts,
because on AWS the configuration endpoint's name resolves to a node, and
clients pointed at it expect to cache through it.

A TLS cluster's endpoint (``tls`` in cluster.json) serves TLS only, with a
certificate naming its address, and relays over TLS, verifying each node's
certificate against the CA by the node's address: no plaintext leg.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import sys
from functools import partial
from pathlib import Path

from cacheyard.engines.discovery import (
    CLUSTER_FILE,
    LEGACY_KEY,
    DiscoverySpec,
    EndpointTls,
    config_get_cluster_reply,
    legacy_get_reply,
    read_discovery_config,
)

CONNECT_TIMEOUT = 1.0  # to a node, TLS handshake included
HANDSHAKE_TIMEOUT = 10.0  # a client's TLS handshake
LINE_LIMIT = 1 << 20  # memcached accepts long multi-key get lines
CHUNK = 1 << 16

log = logging.getLogger("cacheyard.discovery")

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class ClusterMap:
    """cluster.json, re-read whenever the controller has replaced it."""

    def __init__(self, node_dir: Path) -> None:
        self._node_dir = node_dir
        self._stamp: tuple[int, ...] = ()
        self._spec = read_discovery_config(node_dir)

    def current(self) -> DiscoverySpec:
        try:
            st = os.stat(self._node_dir / CLUSTER_FILE)
        except OSError:
            return self._spec
        # The file is replaced by rename: a new inode, size or time means new.
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if stamp != self._stamp:
            try:
                self._spec = read_discovery_config(self._node_dir)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("keeping cluster map version %s: %s", self._spec.version, exc)
            else:
                self._stamp = stamp
                log.info(
                    "cluster map version %s, %d nodes", self._spec.version, len(self._spec.nodes)
                )
        return self._spec


def server_context(tls: EndpointTls) -> ssl.SSLContext:
    """What the endpoint serves with: its certificate; clients show none."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert, tls.key)
    return context


def relay_context(tls: EndpointTls) -> ssl.SSLContext:
    """What the endpoint relays with: nodes verified against the CA by address."""
    return ssl.create_default_context(cafile=str(tls.ca))


async def _connect_node(spec: DiscoverySpec, relay: ssl.SSLContext | None) -> Stream | None:
    for _, ip, port in spec.nodes:
        try:
            return await asyncio.wait_for(
                asyncio.open_connection(
                    ip,
                    port,
                    limit=LINE_LIMIT,
                    ssl=relay,
                    server_hostname=ip if relay is not None else None,
                ),
                CONNECT_TIMEOUT,
            )
        except (OSError, TimeoutError):  # ssl.SSLError included: a node we cannot trust
            continue
    return None


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(CHUNK):
            sink.write(data)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()
        else:
            # TLS has no half-close: the far side learns of the end by a close.
            sink.close()
    except OSError:
        sink.close()


async def _pipe(client: Stream, node: Stream) -> None:
    """Relay both ways until the node side ends (it closes once the client does)."""
    upstream = asyncio.create_task(_copy(client[0], node[1]))
    try:
        await _copy(node[0], client[1])
    finally:
        upstream.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await upstream


async def handle(
    cluster: ClusterMap,
    relay: ssl.SSLContext | None,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    node: Stream | None = None
    try:
        while line := await reader.readline():
            words = line.split()
            if words == [b"config", b"get", b"cluster"]:
                writer.write(config_get_cluster_reply(cluster.current()))
            elif words == [b"get", LEGACY_KEY.encode()]:
                writer.write(legacy_get_reply(cluster.current()))
            elif words == [b"quit"]:
                break
            else:
                node = node or await _connect_node(cluster.current(), relay)
                if node is None:
                    writer.write(b"SERVER_ERROR no cache node is reachable\r\n")
                    break
                node[1].write(line)
                if words[:1] != [b"version"]:
                    await _pipe((reader, writer), node)
                    break
                # One line each way: the connection stays ours for the
                # discovery command that usually follows.
                writer.write(await node[0].readline() or b"SERVER_ERROR node closed\r\n")
            await writer.drain()
    except (OSError, ValueError) as exc:  # ValueError: a line over LINE_LIMIT
        log.debug("connection ended: %s", exc)
    finally:
        for stream_writer in (writer, node[1] if node else None):
            if stream_writer is not None:
                stream_writer.close()


async def serve(node_dir: Path) -> None:
    cluster = ClusterMap(node_dir)
    spec = cluster.current()
    tls = spec.tls
    server = await asyncio.start_server(
        partial(handle, cluster, relay_context(tls) if tls is not None else None),
        spec.address,
        spec.port,
        reuse_address=True,
        limit=LINE_LIMIT,
        ssl=server_context(tls) if tls is not None else None,
        ssl_handshake_timeout=HANDSHAKE_TIMEOUT if tls is not None else None,
    )
    log.info("configuration endpoint on %s:%d%s", spec.address, spec.port, " (TLS)" if tls else "")
    async with server:
        await server.serve_forever()


def main() -> None:
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} NODE_DIR")
    try:
        asyncio.run(serve(Path(sys.argv[1]).resolve()))
    except OSError as exc:
        log.error("cannot serve: %s", exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
