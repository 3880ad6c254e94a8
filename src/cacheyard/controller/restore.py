"""Seeding a new node with a snapshot's data before its first start."""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from cacheyard.domain.cache_clusters import RestoreSource
from cacheyard.domain.replication_groups import NODE_GROUP_ID
from cacheyard.engines.launch import RDB_FILE
from cacheyard.engines.spec import NodeSpec
from cacheyard.store.snapshot_files import SnapshotCorrupt, SnapshotFiles, check_foreign_rdb


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


async def seed_first_start(
    files: SnapshotFiles, source: RestoreSource, node: NodeSpec, seen: dict[str, Any]
) -> NodeSpec:
    """Seed a restored node before its first start; the node to start.

    It starts with AOF off, so that it loads the RDB (AOF would be loaded
    instead), and ``seen["live"]`` says so: the reconciler then switches AOF on
    live if the parameter group wants it. A second start of a node that was
    seeded means the engine died while loading: RestoreFailed.
    """
    if seen.get("restore_started"):
        raise RestoreFailed("the engine stopped while it was loading the snapshot")
    try:
        await asyncio.to_thread(seed_node, files, source, node.node_dir)
    except (SnapshotCorrupt, OSError) as exc:
        raise RestoreFailed(str(exc)) from None
    seen["restore_started"] = True
    seen["live"] = {**seen.get("live", {}), "appendonly": "no"}
    return replace(node, redis_config={**node.redis_config, "appendonly": "no"})
