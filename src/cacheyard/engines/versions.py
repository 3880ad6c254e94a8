"""Which engine versions are installed: asked of the binaries themselves."""

from __future__ import annotations

import re
import shutil
import subprocess

from cacheyard.domain.engines import EngineVersion

_COMMANDS = {
    "redis": (["redis-server", "--version"], re.compile(r"v=(\d+\.\d+\.\d+)")),
    "memcached": (["memcached", "-V"], re.compile(r"memcached (\d+\.\d+\.\d+)")),
}


def installed_versions() -> tuple[EngineVersion, ...]:
    found = []
    for engine, (argv, pattern) in _COMMANDS.items():
        if shutil.which(argv[0]) is None:
            continue
        output = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        match = pattern.search(output.stdout + output.stderr)
        if match:
            found.append(EngineVersion(engine, match.group(1)))
    return tuple(found)
