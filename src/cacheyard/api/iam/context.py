"""What every IAM and STS handler is given: the store, the clock, the account, the caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cacheyard.api.principals import Principal
from cacheyard.domain.clock import Clock
from cacheyard.store import Store

Params = dict[str, Any]


@dataclass(frozen=True)
class IamContext:
    store: Store
    clock: Clock
    account: str


IamHandler = Callable[[IamContext, Principal, Params], Awaitable[Params]]
