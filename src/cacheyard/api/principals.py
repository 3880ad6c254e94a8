"""Who holds which access key and what they may do, kept in memory for the request path.

The directory is read from the store at start and again after every change made
through the IAM API, before that call answers: a new key works with the next
request, and a deleted or deactivated one is refused with it.
"""

from __future__ import annotations

import asyncio

from cacheyard.domain.iam import User
from cacheyard.store import Store
from cacheyard.store.principals import Principal, Principals, load_principals

__all__ = ["Directory", "Principal"]


class Directory:
    def __init__(self, store: Store, account: str) -> None:
        self._store = store
        self._account = account
        self._lock = asyncio.Lock()
        self._known = Principals({}, {})

    async def refresh(self) -> None:
        # One refresh at a time, so an older read can never replace a newer one.
        async with self._lock, self._store.transaction() as tx:
            self._known = await load_principals(tx, self._account)

    def secret_for(self, access_key_id: str) -> str | None:
        """The secret of an active key; None for an unknown or inactive one."""
        key = self._known.active_keys.get(access_key_id)
        return None if key is None else key.secret

    def principal(self, access_key_id: str) -> Principal | None:
        return self._known.of_key(access_key_id)

    def user(self, name: str) -> User | None:
        principal = self._known.by_name.get(name)
        return None if principal is None else principal.user
