"""Fixtures for store tests: a real SQLite database in the test's directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cacheyard.store import SqlStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqlStore]:
    opened = await SqlStore.open_sqlite(db_path)
    yield opened
    await opened.close()
