"""Reading ``/proc``: who runs where, since when, and what it listens on.

Linux only. Processes vanish between two reads all the time, so every reader
here treats "cannot read it" as "not there" instead of raising.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from cacheyard.engines.spec import RunningProcess

PROC = Path("/proc")
_DELETED = " (deleted)"
_TCP_LISTEN = "0A"


@dataclass(frozen=True)
class ProcStat:
    """The few fields of ``/proc/<pid>/stat`` that identity needs."""

    state: str
    ppid: int
    start_ticks: int


def is_live(pid: int, stat: ProcStat) -> bool:
    """Not exited: zombies hold a pid but serve nobody (and PID 1 may never reap them).

    A killed multi-threaded process (redis) shows its leader as a zombie while
    its other threads still exit; until they have, its sockets stay bound, so
    it does not count as gone yet.
    """
    if stat.state in ("X", "x"):
        return False
    if stat.state != "Z":
        return True
    try:
        return len(os.listdir(PROC / str(pid) / "task")) > 1
    except OSError:
        return False


def pids() -> list[int]:
    return [int(name) for name in os.listdir(PROC) if name.isdigit()]


def read_stat(pid: int) -> ProcStat | None:
    try:
        data = (PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after
    # its last ")". What follows starts at field 3 (state).
    fields = data[data.rindex(b")") + 2 :].split()
    return ProcStat(state=fields[0].decode(), ppid=int(fields[1]), start_ticks=int(fields[19]))


def _link(pid: int, name: str) -> str | None:
    try:
        target = os.readlink(PROC / str(pid) / name)
    except OSError:
        return None
    # A deleted directory or replaced binary still identifies the process.
    return target.removesuffix(_DELETED)


def cwd(pid: int) -> str | None:
    return _link(pid, "cwd")


def exe(pid: int) -> str | None:
    return _link(pid, "exe")


def cmdline(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]


def is_running(process: RunningProcess) -> bool:
    """The same process (not a reused pid) still lives and is not a zombie."""
    stat = read_stat(process.pid)
    return (
        stat is not None and stat.start_ticks == process.start_ticks and is_live(process.pid, stat)
    )


def listens(pid: int, address: str, port: int) -> bool:
    """Whether ``pid`` itself holds a listening TCP socket on ``address:port``.

    Connecting would not tell: another process may hold the address.
    """
    wanted = _listening_inodes(pid, address, port)
    if not wanted:
        return False
    fd_dir = PROC / str(pid) / "fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(fd_dir / fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in wanted:
            return True
    return False


def _listening_inodes(pid: int, address: str, port: int) -> set[str]:
    # The kernel prints the address as a host-order u32, hence the byte order.
    packed = int.from_bytes(socket.inet_aton(address), sys.byteorder)
    local = f"{packed:08X}:{port:04X}"
    try:
        # The process's own view, so it holds inside a network namespace too.
        lines = (PROC / str(pid) / "net" / "tcp").read_text().splitlines()[1:]
    except OSError:
        return set()
    inodes = set()
    for line in lines:
        fields = line.split()
        if fields[1] == local and fields[3] == _TCP_LISTEN:
            inodes.add(fields[9])
    return inodes
