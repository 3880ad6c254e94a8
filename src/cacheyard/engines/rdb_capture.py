"""Capturing a node's dataset as an RDB file, the first step of a snapshot.

Redis writes ``dump.rdb`` in the node's directory (launch.redis_directives)
to a temporary file and renames it into place, so a finished file is never
edited afterwards: callers may hard-link it.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from redis.asyncio.connection import Connection
from redis.exceptions import RedisError, ResponseError

from cacheyard.engines.cancellation import deadline_after, pause
from cacheyard.engines.errors import EngineError
from cacheyard.engines.launch import ENGINE_LOG, RDB_FILE
from cacheyard.engines.replication import control_connection, info_fields
from cacheyard.engines.spec import TlsFiles

POLL = 0.01
_SAVE_RUNNING = "Background save already in progress"


async def capture_rdb(
    address: str,
    port: int,
    node_dir: Path,
    timeout: float,  # noqa: ASYNC109
    tls: TlsFiles | None = None,
) -> Path:
    """Have the node save a new RDB holding every write made before the call; its path.

    Works on primaries and replicas, and while an AOF rewrite runs. Raises
    EngineError when the save fails, the node cannot be reached, or all of
    this takes longer than ``timeout`` seconds.
    """
    connection = control_connection(address, port, timeout, tls)
    deadline = deadline_after(timeout)
    try:
        async with asyncio.timeout_at(deadline):
            saves_before = await _request_save(connection, deadline)
            while True:
                info = info_fields(await _run(connection, "INFO", "persistence"))
                if int(info["rdb_saves"]) > saves_before and info["rdb_bgsave_in_progress"] == "0":
                    break
                await pause(deadline, POLL)
    except TimeoutError as exc:
        raise EngineError(f"no RDB from {address}:{port} within {timeout}s") from exc
    except (RedisError, OSError) as exc:
        raise EngineError(f"BGSAVE on {address}:{port} failed: {exc}") from exc
    finally:
        with contextlib.suppress(RedisError, OSError):
            await connection.disconnect()
    if info["rdb_last_bgsave_status"] != "ok":
        raise EngineError(f"BGSAVE on {address}:{port} failed; see {node_dir / ENGINE_LOG}")
    return node_dir / RDB_FILE


async def _request_save(connection: Connection, deadline: float) -> int:
    """Schedule a BGSAVE; the number of saves started before it.

    rdb_saves counts saves as they start, so once it has grown past this
    number and no RDB child runs, a save that started after the request has
    finished. Reading it in the same transaction leaves no gap for another
    save to start in between; inside MULTI redis always schedules the save
    (it starts within one serverCron period, 100 ms). A save already running
    may predate the caller's writes and makes redis refuse even a scheduled
    BGSAVE, so ask again once it is over.
    """
    while True:
        await _run(connection, "MULTI")
        for command in (("INFO", "persistence"), ("BGSAVE", "SCHEDULE")):
            await _run(connection, *command)
        info, reply = await _run(connection, "EXEC")
        if not isinstance(reply, ResponseError):
            return int(info_fields(info)["rdb_saves"])
        if _SAVE_RUNNING not in str(reply):
            raise reply
        await pause(deadline, POLL)


async def _run(connection: Connection, *command: str) -> Any:
    await connection.send_command(*command)
    return await connection.read_response()
