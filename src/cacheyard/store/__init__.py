"""Desired and observed state, events, tags and IAM (users, keys, policies), in one database.

SQLite (WAL) by default through SQLAlchemy Core; everything above talks to
:class:`~cacheyard.store.interface.Store` so PostgreSQL can serve later.
"""

from cacheyard.store.interface import EventQuery, Record, Store, Transaction
from cacheyard.store.sql import SqlStore

__all__ = ["EventQuery", "Record", "SqlStore", "Store", "Transaction"]
