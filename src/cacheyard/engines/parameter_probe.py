"""The parameter catalog, learned from the installed engines themselves.

Redis: a throwaway redis-server (unix socket only) lists its directives with
CONFIG GET *. Each exposed one is set to its own value (accepted: changes are
immediate; "can't set immutable config": they take a restart) and then to
deliberately wrong values, whose error messages tell the type and the allowed
values ("argument must be 'yes' or 'no'", "argument must be between 0 and
2147483647 inclusive", ...), and to each word of an enum (a build may refuse
one); a probe value that is accepted is undone at once. It takes about 0.1 s.
An immutable directive cannot be set at run time, but a redis-server started
with the wrong value on its command line answers the same messages while it
reads its configuration, then exits (an unknown directive after it makes it
exit when the value passed), so those are learned the same way.

Memcached: the parameters are ElastiCache's (domain/parameters.py). A
throwaway memcached's ``stats settings`` gives their defaults and, by the keys
it shows, which of them this binary has; ``memcached -h`` lists the hash
algorithms.

load_or_probe keeps the result in a file, keyed by the binaries (path,
version, mtime) and by this code.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

from redis.asyncio.connection import UnixDomainSocketConnection
from redis.exceptions import ResponseError

from cacheyard.domain import parameters
from cacheyard.domain.engines import EngineVersion
from cacheyard.domain.parameters import (
    ELASTICACHE_REDIS_DEFAULTS,
    IMMEDIATE,
    INT64_MAX,
    INT64_MIN,
    INTEGER,
    MEMCACHED_PARAMETERS,
    REQUIRES_REBOOT,
    STRING,
    MemcachedParameter,
    ParameterCatalog,
    ParameterFamily,
    ParameterInfo,
    is_exposed_redis_directive,
)
from cacheyard.engines import launch
from cacheyard.engines.errors import EngineError
from cacheyard.engines.scratch import POLL, START_TIMEOUT, check_alive, running, scratch_redis

_VERSIONS = {
    "redis": ("--version", re.compile(r"v=(\d+\.\d+\.\d+)")),
    "memcached": ("-V", re.compile(r"memcached (\d+\.\d+\.\d+)")),
}
# A value no directive takes: not a number, not a word of any enum.
_WRONG = "cacheyard-probe?"
# Unknown to redis: a start-time probe stops there once its value passed.
_END = "cacheyard-probe-end"
_IMMUTABLE = "can't set immutable config"
_YES_NO = "argument must be 'yes' or 'no'"
_ONE_OF = re.compile(r"must be one of the following: (.+)$")
_NOT_INTEGER = "couldn't be parsed into an integer"
_NOT_MEMORY = "argument must be a memory value"
_BETWEEN = re.compile(r"must be between (-?\d+) and (-?\d+) inclusive")
_INTEGER_PROBES = (str(INT64_MIN), str(INT64_MAX))
_MEMORY_PROBES = ("99999999999999999999",)  # above any limit; below zero is no memory value
# What redis prints when its configuration stops it: the line, then why.
_CONFIG_ERROR = re.compile(r"^>>> '([^ ']+)[^\n]*\n([^\n]+)", re.MULTILINE)

# The engine's refusal of a value (its error message), None when it takes it.
Answer = Callable[[str], Awaitable[str | None]]


class ParameterProbeError(EngineError):
    """An engine did not answer the probe as expected."""


async def probe_catalog(
    redis_binary: str | None, memcached_binary: str | None, workdir: Path
) -> ParameterCatalog:
    """The families of whichever engines are given (None: not installed)."""
    async with asyncio.TaskGroup() as probes:
        tasks = []
        if redis_binary is not None:
            tasks.append(probes.create_task(probe_redis(redis_binary, workdir)))
        if memcached_binary is not None:
            tasks.append(probes.create_task(probe_memcached(memcached_binary)))
    families = [task.result() for task in tasks]
    return ParameterCatalog({f.family: f for f in families})


async def load_or_probe(
    redis_binary: str | None,
    memcached_binary: str | None,
    workdir: Path,
    cache_file: Path,
) -> ParameterCatalog:
    """The cached catalog if it was probed from these very binaries, else a new probe."""
    key = await _cache_key(redis_binary, memcached_binary)
    cached = await asyncio.to_thread(_read_cache, cache_file, key)
    if cached is not None:
        return cached
    catalog = await probe_catalog(redis_binary, memcached_binary, workdir)
    text = json.dumps({"key": key, "catalog": catalog.to_dict()}, indent=1)
    await asyncio.to_thread(_write_private, cache_file, text)
    return catalog


async def probe_redis(binary: str, workdir: Path) -> ParameterFamily:
    version = await _version(binary, "redis")
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    async with scratch_redis(binary, workdir, ParameterProbeError) as connection:
        # Restart-only settings are asked of short runs that stop at parsing them.
        infos = await _redis_parameters(connection, binary, str(workdir), version)
    return ParameterFamily(EngineVersion("redis", version).family, "redis", version, infos)


async def probe_memcached(binary: str) -> ParameterFamily:
    version = await _version(binary, "memcached")
    help_text = await _output([binary, "-h"])
    # A short path of its own: unix socket paths are limited to about 100 bytes.
    with tempfile.TemporaryDirectory(prefix="memcached-probe-") as scratch:
        socket_path = Path(scratch) / "memcached.sock"
        # Cacheyard's own defaults (-c), as every node runs with them.
        argv = [binary, "-s", str(socket_path), "-U", "0", *launch.memcached_option_argv({})]
        memcached = [*argv, *launch.memcached_user_argv()]
        async with running(memcached, scratch, ParameterProbeError) as process:
            settings = await _stats_settings(socket_path, process)
    infos = []
    for option in MEMCACHED_PARAMETERS.values():
        allowed = option.allowed_values or _help_choices(help_text, option.name)
        # Offered when this binary has it and its choices can be told.
        if option.stats_key in settings and allowed is not None:
            infos.append(_memcached_info(option, settings[option.stats_key], allowed))
    family = EngineVersion("memcached", version).family
    return ParameterFamily(family, "memcached", version, tuple(infos))


async def _redis_parameters(
    connection: UnixDomainSocketConnection, binary: str, scratch: str, version: str
) -> tuple[ParameterInfo, ...]:
    reply = await _call(connection, "CONFIG", "GET", "*")
    current: dict[str, str] = dict(zip(reply[::2], reply[1::2], strict=True))
    learned: dict[str, tuple[str, tuple[str, str | None]]] = {}
    immutable = []
    for name in sorted(filter(is_exposed_redis_directive, current)):
        refusal = await _config_set(connection, name, current[name])
        if refusal is None:
            answer = partial(_live_answer, connection, name, current[name])
            learned[name] = (IMMEDIATE, await _learn(answer))
        elif _IMMUTABLE in refusal:
            immutable.append(name)
        else:
            raise ParameterProbeError(f"redis refuses its own value of {name}: {refusal}")
    # Each start-time probe is a process of its own: run them side by side.
    async with asyncio.TaskGroup() as probes:
        tasks = {
            name: probes.create_task(_learn(partial(_start_answer, binary, scratch, name)))
            for name in immutable
        }
    learned |= {name: (REQUIRES_REBOOT, task.result()) for name, task in tasks.items()}
    return tuple(
        ParameterInfo(
            name=name,
            default=ELASTICACHE_REDIS_DEFAULTS.get(name, current[name]),
            data_type=data_type,
            allowed_values=allowed,
            modifiable=True,
            change_type=change_type,
            description=f"The {name} directive of redis.conf.",
            minimum_engine_version=f"{version.split('.')[0]}.0.0",
        )
        for name, (change_type, (data_type, allowed)) in learned.items()
    )


async def _learn(answer: Answer) -> tuple[str, str | None]:
    """The data type and allowed values (AWS's forms) a directive's answers tell."""
    refusal = await answer(_WRONG)
    if refusal is None:
        return STRING, None
    if _YES_NO in refusal:
        return STRING, await _choices(answer, ["yes", "no"])
    if one_of := _ONE_OF.search(refusal):
        return STRING, await _choices(answer, one_of[1].split(", "))
    if _NOT_INTEGER in refusal:
        return INTEGER, await _bounds(answer, _INTEGER_PROBES)
    if _NOT_MEMORY in refusal:
        return INTEGER, await _bounds(answer, _MEMORY_PROBES)
    # A value of its own syntax: save, client-output-buffer-limit,
    # notify-keyspace-events (flags), latency percentiles...
    return STRING, None


async def _choices(answer: Answer, words: list[str]) -> str:
    """The words the engine really takes: a build may refuse one (activedefrag yes
    needs redis' own jemalloc)."""
    return ",".join([word for word in words if await answer(word) is None])


async def _bounds(answer: Answer, probes: tuple[str, ...]) -> str | None:
    for probe in probes:
        refusal = await answer(probe)
        between = _BETWEEN.search(refusal or "")
        if between:
            low, high = between[1], between[2]
            return f"{low}-" if int(high) >= INT64_MAX else f"{low}-{high}"
    return None  # the engine took every probe: no bounds to tell


async def _live_answer(
    connection: UnixDomainSocketConnection, name: str, original: str, value: str
) -> str | None:
    refusal = await _config_set(connection, name, value)
    if refusal is None:
        restored = await _config_set(connection, name, original)
        if restored is not None:
            raise ParameterProbeError(f"redis cannot restore {name} to {original!r}: {restored}")
    return refusal


async def _start_answer(binary: str, scratch: str, name: str, value: str) -> str | None:
    argv = [binary, "--port", "0", "--save", "", f"--{name}", value, f"--{_END}", "yes"]
    output = await _output(argv, cwd=scratch)
    stopped = _CONFIG_ERROR.search(output)
    if stopped is None:
        raise ParameterProbeError(f"redis-server --{name} {value!r} did not stop: {output[:300]}")
    return None if stopped[1] == _END else stopped[2].strip()


async def _config_set(connection: UnixDomainSocketConnection, name: str, value: str) -> str | None:
    try:
        await _call(connection, "CONFIG", "SET", name, value)
    except ResponseError as exc:
        return str(exc)
    return None


async def _call(connection: UnixDomainSocketConnection, *command: str) -> Any:
    await connection.send_command(*command)
    return await connection.read_response()


def _memcached_info(option: MemcachedParameter, reported: str, allowed: str) -> ParameterInfo:
    return ParameterInfo(
        name=option.name,
        default=option.stats_words.get(reported, reported),
        data_type=option.data_type,
        allowed_values=allowed,
        modifiable=option.modifiable,
        change_type=REQUIRES_REBOOT,  # command-line flags
        description=option.description,
        minimum_engine_version=option.minimum_engine_version,
    )


def _help_choices(help_text: str, suboption: str) -> str | None:
    """The choices ``memcached -h`` lists for an -o suboption ("options: a, b")."""
    found = re.search(rf"- {suboption}:.*?options: ([\w, ]+)", help_text, re.DOTALL)
    return found[1].replace(" ", "") if found else None


async def _stats_settings(path: Path, process: asyncio.subprocess.Process) -> dict[str, str]:
    try:
        async with asyncio.timeout(START_TIMEOUT):
            while True:
                await check_alive(process, ParameterProbeError)
                try:
                    reader, writer = await asyncio.open_unix_connection(str(path))
                except OSError:
                    await asyncio.sleep(POLL)
                    continue
                try:
                    writer.write(b"stats settings\r\n")
                    reply = await reader.readuntil(b"END\r\n")
                finally:
                    writer.close()
                    await writer.wait_closed()
                lines = reply.decode().splitlines()
                return dict(line.split(" ", 2)[1:] for line in lines if line.startswith("STAT "))
    except TimeoutError:
        raise ParameterProbeError(f"the probe's memcached did not answer on {path}") from None


async def _version(binary: str, engine: str) -> str:
    flag, pattern = _VERSIONS[engine]
    output = await _output([binary, flag])
    found = pattern.search(output)
    if found is None:
        raise ParameterProbeError(f"{binary} {flag} does not tell a version: {output[:300]}")
    return found[1]


async def _output(argv: list[str], cwd: str | None = None) -> str:
    """What a short-lived command prints (stdout and stderr)."""
    async with running(argv, cwd, ParameterProbeError) as process:
        try:
            async with asyncio.timeout(START_TIMEOUT):
                output, _ = await process.communicate()
        except TimeoutError:
            raise ParameterProbeError(f"{' '.join(argv)} did not exit") from None
    return output.decode(errors="replace")


async def _cache_key(redis_binary: str | None, memcached_binary: str | None) -> dict[str, Any]:
    return {
        "code": _code_digest(),
        "redis": await _fingerprint(redis_binary, "redis"),
        "memcached": await _fingerprint(memcached_binary, "memcached"),
    }


def _code_digest() -> str:
    """Of the code that makes the catalog: a change to it must not reuse an older probe."""
    code = hashlib.sha256()
    for module in (__file__, parameters.__file__, launch.__file__):
        code.update(Path(module).read_bytes())
    return code.hexdigest()


async def _fingerprint(binary: str | None, engine: str) -> dict[str, Any] | None:
    if binary is None:
        return None
    path = shutil.which(binary)
    if path is None:
        raise ParameterProbeError(f"{binary} is not an executable")
    return {**_file_identity(path), "version": await _version(path, engine)}


def _file_identity(path: str) -> dict[str, Any]:
    return {"path": os.path.realpath(path), "mtime_ns": os.stat(path).st_mtime_ns}


def _read_cache(cache_file: Path, key: dict[str, Any]) -> ParameterCatalog | None:
    try:
        cached = json.loads(cache_file.read_text(encoding="utf-8"))
        if cached["key"] == key:
            return ParameterCatalog.from_dict(cached["catalog"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        pass  # missing, unreadable or of another shape: probe again
    return None


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically by a file only its owner can read (mkstemp's 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
