"""Bounded retries that ride through a failover.

During a failover the primary endpoint's address moves from the old primary
to the promoted replica: for a moment nothing listens there (connection
refused), connections to the old owner are dropped, and a node that lost the
primary role answers writes with ``READONLY``. Each of these heals by itself
within seconds, so a command that fails with one of them is sent again on a
fresh connection to the *same* endpoint address, after a short backoff, until
a bounded number of attempts or a total time runs out. Both bounds exist so a
real outage surfaces as an error instead of hanging the caller.

Not every command may be retried this way: ``WAIT`` counts the replicas that
acknowledged the writes *of its own connection*, so on a fresh connection it
would count acknowledgements of nothing (see ``connect.set_acknowledged``).

A retry after a dropped connection may repeat a command the server already
applied (its reply was lost). Plain writes (SET, HSET, ...) are idempotent;
for INCR-like commands or MULTI/EXEC blocks that must not run twice, use a
client built with ``NO_RETRY`` and decide at the call site.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio.retry
import redis.retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    ConnectionError,
    ReadOnlyError,
    ResponseError,
    TimeoutError,
)

T = TypeVar("T")

#: What a failover looks like from a client: the address is not (yet) served,
#: the connection was dropped or stalled, or the node is now a replica.
FAILOVER_ERRORS: tuple[type[Exception], ...] = (ConnectionError, TimeoutError, ReadOnlyError)


def is_failover_error(error: Exception) -> bool:
    """Also NOREPLICAS: a primary just promoted refuses writes until a replica has caught
    up (``min-replicas-to-write``). The write was refused, not applied, so a retry is safe.
    redis-py has no exception class for it, hence the look at the message.

    A refused AUTH or server certificate is a ConnectionError too, but no failover
    heals it: it is raised at once."""
    if isinstance(error, AuthenticationError) or _certificate_rejected(error):
        return False
    if isinstance(error, FAILOVER_ERRORS):
        return True
    return isinstance(error, ResponseError) and str(error).startswith("NOREPLICAS")


def _certificate_rejected(error: BaseException) -> bool:
    """redis-py reports a failed verification as a ConnectionError raised while
    handling the ``ssl.SSLCertVerificationError``; look down the chain for it."""
    seen: BaseException | None = error
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep retrying a command that failed the way failovers fail.

    ``attempts`` counts every try, the first included; ``total_seconds``
    bounds the time from the first failure on. The backoff doubles from
    ``base_backoff`` up to ``max_backoff``: short first waits catch a quick
    endpoint move, the cap keeps the retries frequent enough to notice the new
    primary soon after it binds the address.
    """

    attempts: int = 50
    total_seconds: float = 20.0
    base_backoff: float = 0.02
    max_backoff: float = 0.5

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.total_seconds < 0 or self.base_backoff < 0 or self.max_backoff < 0:
            raise ValueError("times must not be negative")

    def backoff(self, failures: int) -> float:
        """The pause after the ``failures``-th failure (1-based)."""
        return float(min(self.max_backoff, self.base_backoff * 2 ** (failures - 1)))

    def sync_retry(self) -> PolicyRetry:
        """A redis-py ``Retry`` for ``redis.Redis(retry=...)``."""
        return PolicyRetry(self)

    def async_retry(self) -> AsyncPolicyRetry:
        """A redis-py ``Retry`` for ``redis.asyncio.Redis(retry=...)``."""
        return AsyncPolicyRetry(self)


#: No retry at all: for callers that must see every failure (and for WAIT).
NO_RETRY = RetryPolicy(attempts=1, total_seconds=0)


def _fail(fail: Callable[..., Any], error: Exception, failures: int, with_count: bool) -> Any:
    return fail(error, failures) if with_count else fail(error)


class PolicyRetry(redis.retry.Retry):
    """redis-py's retry loop, bounded by attempts *and* elapsed time.

    redis-py calls ``fail`` after every failure, which disconnects the
    connection, so the next try runs on a fresh connection to the same address.
    """

    def __init__(self, policy: RetryPolicy) -> None:
        super().__init__(NoBackoff(), policy.attempts - 1, (*FAILOVER_ERRORS, ResponseError))
        self.policy = policy

    def call_with_retry(
        self,
        do: Callable[[], T],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        failures = 0
        deadline: float | None = None
        while True:
            try:
                return do()
            except self._supported_errors as error:
                if not is_failover_error(error) or (
                    is_retryable is not None and not is_retryable(error)
                ):
                    raise
                failures += 1
                _fail(fail, error, failures, with_failure_count)
                now = time.monotonic()
                deadline = now + self.policy.total_seconds if deadline is None else deadline
                pause = self.policy.backoff(failures)
                if failures >= self.policy.attempts or now + pause > deadline:
                    raise error
                time.sleep(pause)


class AsyncPolicyRetry(redis.asyncio.retry.Retry):
    """The asyncio twin of ``PolicyRetry``."""

    def __init__(self, policy: RetryPolicy) -> None:
        super().__init__(NoBackoff(), policy.attempts - 1, (ConnectionError, TimeoutError))
        # ReadOnlyError and ResponseError are RedisErrors like the others; the base
        # class types its errors narrowly, so they are added here.
        self.update_supported_errors([ReadOnlyError, ResponseError])
        self.policy = policy

    async def call_with_retry(
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        failures = 0
        deadline: float | None = None
        while True:
            try:
                return await do()
            except self._supported_errors as error:
                if not is_failover_error(error) or (
                    is_retryable is not None and not is_retryable(error)
                ):
                    raise
                failures += 1
                await _fail(fail, error, failures, with_failure_count)
                now = time.monotonic()
                deadline = now + self.policy.total_seconds if deadline is None else deadline
                pause = self.policy.backoff(failures)
                if failures >= self.policy.attempts or now + pause > deadline:
                    raise error
                await asyncio.sleep(pause)
