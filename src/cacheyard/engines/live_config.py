"""A node's configuration: what its process was started with.

A parameter group's ``immediate`` values reach a running node by CONFIG SET
(replication.set_config); its ``requires-reboot`` values only through the files
written at the next start, which started_config reads back so a reconciler can
tell whether the running process already has them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from cacheyard.engines import launch

AOF_DIRECTORY = "appendonlydir"

# The escapes launch.quote_redis writes: \\xHH, or a backslash before one character.
_ESCAPE = re.compile(r"\\(x[0-9a-f]{2}|.)", re.DOTALL)
_UNESCAPED = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"'}


def started_config(node_dir: Path) -> dict[str, str]:
    """What the node's process was started with: the directives of its redis.conf,
    or a memcached node's parameters; {} if it never started."""
    options = node_dir / launch.MEMCACHED_OPTIONS
    if options.exists():
        return {str(k): str(v) for k, v in json.loads(options.read_text()).items()}
    try:
        text = (node_dir / launch.REDIS_CONF).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    directives = {}
    for line in text.split("\n"):  # not splitlines(): values may hold U+2028 and the like
        if not line or line.startswith(("#", "user ")):  # ACL users are not parameters
            continue
        name, quoted = line.split(" ", 1)
        if len(quoted) < 2 or quoted[0] != '"' or quoted[-1] != '"':
            raise ValueError(f"{node_dir / launch.REDIS_CONF}: not written by cacheyard: {line!r}")
        directives[name] = _ESCAPE.sub(_unescape, quoted[1:-1])
    return directives


def _unescape(match: re.Match[str]) -> str:
    escape = match[1]
    if escape.startswith("x"):
        return chr(int(escape[1:], 16))
    return _UNESCAPED[escape]


def aof_ready(node_dir: Path) -> bool:
    """Whether the node's AOF exists: redis writes its manifest only once the first
    rewrite after AOF was switched on has finished; until then nothing is durable."""
    return any((node_dir / AOF_DIRECTORY).glob("*.manifest"))
