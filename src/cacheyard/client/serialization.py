"""How cached values become bytes: a two-method protocol, JSON unless told otherwise.

JSON is the default because any service (in any language) can read what it
wrote, and loading it cannot run code. Pickle keeps arbitrary Python objects
but runs code on load, so it is opt-in: use it only for a cache that nobody
else can write to.
"""

from __future__ import annotations

import json
import pickle
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Serializer(Protocol):
    """Turns a value into bytes and back; ``loads(dumps(v))`` must equal ``v``."""

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class JsonSerializer:
    """Compact UTF-8 JSON: portable and safe to load (tuples come back as lists)."""

    def dumps(self, value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


class PickleSerializer:
    """Any picklable object. Loading runs code: only for caches you alone write to."""

    def __init__(self, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        self.protocol = protocol

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value, protocol=self.protocol)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)  # opt-in, documented above


JSON: Serializer = JsonSerializer()
PICKLE: Serializer = PickleSerializer()
