"""Seeding a new node with a snapshot's data before its first start."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cacheyard.domain.cache_clusters import RestoreSource
from cacheyard.domain.replication_groups import NODE_GROUP_ID
from cacheyard.engines.launch import RDB_FILE
from cacheyard.store.snapshot_files import SnapshotFiles, check_foreign_rdb


class RestoreFailed(Exception):
    """The snapshot's data cannot be loaded; the message says why."""


def seed_node(files: SnapshotFiles, source: RestoreSource, node_dir: Path) -> None:
    """Put the snapshot's RDB where the node loads it at start, verified first.

    A stored snapshot is checked against its manifest; an exported file (from
    SnapshotArns) by its checksum sidecar, if any, and redis-check-rdb.
    Blocking: run it in a thread.
    """
    node_dir.mkdir(parents=True, exist_ok=True)
    dest = node_dir / RDB_FILE
    if source.snapshot is not None:
        files.place(source.snapshot, NODE_GROUP_ID, dest)
        return
    path = Path(source.files[0])
    check_foreign_rdb(path)
    partial = dest.with_name(dest.name + ".seeding")
    shutil.copyfile(path, partial)
    os.replace(partial, dest)


def discard_rdb(node_dir: Path) -> None:
    """Forget the RDB a snapshot left in the node's directory before a restart.

    Redis loads ``dump.rdb`` at start. Without AOF a restarted cache must come
    back empty, as ElastiCache's does: serving the keys of the last snapshot
    would resurrect values that were changed or deleted since.
    """
    (node_dir / RDB_FILE).unlink(missing_ok=True)
