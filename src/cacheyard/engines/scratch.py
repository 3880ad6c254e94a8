"""Throwaway engine processes, for asking the installed engine itself.

Parameters (ADR 8) and access strings are judged by the engine binary the
nodes run, started just for the question: on a unix socket in a temporary
directory, with no files, and always killed and reaped on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from redis.asyncio.connection import UnixDomainSocketConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from cacheyard.engines.cancellation import deadline_after, pause
from cacheyard.engines.errors import EngineError

START_TIMEOUT = 2.0
POLL = 0.002


@contextlib.asynccontextmanager
async def running(
    argv: list[str], cwd: str | None, error: type[EngineError] = EngineError
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A child process that is killed and reaped on the way out, whatever happens."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as exc:
        raise error(f"cannot run {argv[0]}: {exc}") from exc
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def check_alive(
    process: asyncio.subprocess.Process, error: type[EngineError] = EngineError
) -> None:
    """Raise ``error`` with the process's output if it has exited."""
    if process.returncode is not None:
        assert process.stdout is not None
        output = (await process.stdout.read()).decode(errors="replace")
        raise error(f"the throwaway engine exited ({process.returncode}): {output}")


@contextlib.asynccontextmanager
async def scratch_redis(
    binary: str, parent: Path | None = None, error: type[EngineError] = EngineError
) -> AsyncIterator[UnixDomainSocketConnection]:
    """A connection to a throwaway redis-server; ``error`` if it does not answer."""
    # A short path by default: unix socket paths are limited to about 100 bytes.
    with tempfile.TemporaryDirectory(prefix="cacheyard-redis-", dir=parent) as scratch:
        socket_path = Path(scratch) / "redis.sock"
        argv = [binary, "--port", "0", "--unixsocket", str(socket_path), "--unixsocketperm", "700"]
        argv += ["--dir", scratch, "--save", "", "--logfile", ""]
        async with running(argv, scratch, error) as process:
            connection = await _connect(socket_path, process, error)
            try:
                yield connection
            finally:
                await connection.disconnect()


async def _connect(
    path: Path, process: asyncio.subprocess.Process, error: type[EngineError]
) -> UnixDomainSocketConnection:
    deadline = deadline_after(START_TIMEOUT)
    try:
        async with asyncio.timeout_at(deadline):
            while True:
                await check_alive(process, error)
                connection = UnixDomainSocketConnection(
                    path=str(path),
                    socket_timeout=START_TIMEOUT,
                    retry=Retry(NoBackoff(), 0),
                    protocol=2,
                    decode_responses=True,
                )
                try:
                    await connection.send_command("PING")  # the first command connects
                    await connection.read_response()
                except (RedisError, OSError):
                    await pause(deadline, POLL)
                else:
                    return connection
    except TimeoutError:
        raise error(f"the throwaway redis-server did not answer on {path}") from None
