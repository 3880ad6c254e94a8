"""TransitEncryptionMode `preferred`: TLS and plain text on a node's one port.

Redis decides a listener's protocol by its port, so while a group migrates to
or from TLS each node's Redis listens on two internal ports (plain text on
``port + 10000``, TLS on ``port + 10001``) and this process, one per node,
holds the public port. It reads a connection's first byte: a TLS ClientHello
starts with 0x16, a Redis command never does. It then relays the connection,
unchanged, to the matching internal port of the address the client reached,
so Redis itself terminates TLS, and ``CLIENT KILL LADDR`` of an endpoint still
finds the relayed connections.

It binds exactly the addresses Redis binds (read with ``CONFIG GET bind`` as
the control user every 100 ms): when the controller moves an endpoint with
``CONFIG SET bind``, the front follows within a tenth of a second and closes
the connections it accepted on an address it lets go.

Run as ``python -m cacheyard.engines.tls_front <front_dir>``, the working
directory being ``front_dir`` (``<node_dir>/front``) with ``front.json``:
like an engine, it outlives the control plane and is adopted by the next one.
Standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

FRONT_DIR = "front"
CONFIG = "front.json"
PLAIN_OFFSET = 10000  # the node's internal plain-text port: public + 10000
TLS_OFFSET = 10001  # and its internal TLS port
TLS_RECORD = 0x16  # the first byte of a TLS handshake record
POLL = 0.1
FIRST_BYTE_TIMEOUT = 60.0
CHUNK = 1 << 16

log = logging.getLogger("cacheyard.tls_front")


@dataclass(frozen=True)
class FrontSpec:
    front_dir: Path
    address: str  # the node's own address, where Redis is asked what it binds
    port: int  # the public port
    control_user: str
    control_password: str = field(repr=False)

    @property
    def plain_port(self) -> int:
        return self.port + PLAIN_OFFSET

    @property
    def tls_port(self) -> int:
        return self.port + TLS_OFFSET


def render_front_config(spec: FrontSpec) -> str:
    """The front's configuration (CONFIG in its directory); it holds the control
    password, so the host writes it 0600 like a node's."""
    body = {
        "address": spec.address,
        "port": spec.port,
        "control_user": spec.control_user,
        "control_password": spec.control_password,
    }
    return json.dumps(body)


def read_front_config(front_dir: Path) -> FrontSpec:
    body = json.loads((front_dir / CONFIG).read_text())
    return FrontSpec(
        front_dir,
        body["address"],
        int(body["port"]),
        body["control_user"],
        body["control_password"],
    )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()  # TLS has no half-close: the whole connection goes


class Front:
    def __init__(self, spec: FrontSpec) -> None:
        self._spec = spec
        self._servers: dict[str, asyncio.Server] = {}
        self._connections: dict[str, set[asyncio.StreamWriter]] = {}

    async def run(self) -> None:
        while True:
            wanted = await self._redis_binds()
            if wanted is not None:
                await self._follow(wanted)
            await asyncio.sleep(POLL)

    async def _redis_binds(self) -> list[str] | None:
        """The addresses Redis listens on, asked on its internal plain-text port."""
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(1.0):
                reader, writer = await asyncio.open_connection(
                    self._spec.address, self._spec.plain_port
                )
                writer.write(
                    _command("AUTH", self._spec.control_user, self._spec.control_password)
                    + _command("CONFIG", "GET", "bind")
                )
                await writer.drain()
                if not (await reader.readline()).startswith(b"+OK"):
                    return None
                reply = await _read_array(reader)
            return reply[1].split() if len(reply) == 2 else None
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
            return None
        finally:
            if writer is not None:
                writer.close()

    async def _follow(self, wanted: list[str]) -> None:
        for address in [a for a in self._servers if a not in wanted]:
            self._servers.pop(address).close()
            for writer in self._connections.pop(address, set()):
                writer.close()
        for address in [a for a in wanted if a not in self._servers]:
            try:
                self._servers[address] = await asyncio.start_server(
                    functools.partial(self._serve, address), address, self._spec.port
                )
            except OSError:
                continue  # still held by its previous owner: next poll

    async def _serve(
        self, address: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        held = self._connections.setdefault(address, set())
        held.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(FIRST_BYTE_TIMEOUT):
                first = await reader.read(CHUNK)
            if not first:
                return
            port = self._spec.tls_port if first[0] == TLS_RECORD else self._spec.plain_port
            up_reader, upstream = await asyncio.open_connection(address, port)
            upstream.write(first)
            await upstream.drain()
            await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
        except (OSError, TimeoutError):
            pass
        finally:
            held.discard(writer)
            writer.close()
            if upstream is not None:
                upstream.close()


def _command(*words: str) -> bytes:
    parts = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


async def _read_array(reader: asyncio.StreamReader) -> list[str]:
    header = await reader.readline()
    if not header.startswith(b"*"):
        raise ValueError(f"not an array: {header[:40]!r}")
    items = []
    for _ in range(int(header[1:])):
        length = int((await reader.readline())[1:])
        items.append((await reader.readexactly(length + 2))[:-2].decode())
    return items


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    front_dir = Path(sys.argv[1])
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(Front(read_front_config(front_dir)).run())


if __name__ == "__main__":
    main()
