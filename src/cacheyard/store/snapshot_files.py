"""Snapshots on disk: a directory per snapshot, present only when complete.

    <root>/<name>/manifest.json
    <root>/<name>/<name>-<node_group_id>.rdb

A snapshot is assembled in ``<root>/.staging/<name>.<random>/`` (files
fsynced, manifest last) and renamed into place, so a crash leaves no snapshot
or a complete one, plus staging garbage for clean_staging(). The manifest
holds every file's size and SHA-256, and whatever reads a file back checks
them first.

Every call blocks on file I/O (hashing runs at about 1.5 GB/s): async callers
run them in ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
STAGING = ".staging"
SIDECAR_SUFFIX = ".sha256"
CHECK_TIMEOUT = 600.0
_CHUNK = 1 << 20
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RDB_HEADER = re.compile(rb"REDIS[0-9]{4}")
# Why os.link may refuse where a copy works: another filesystem, or no links there.
_CANNOT_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP}
_RDB_ERROR_MARK = "--- RDB ERROR DETECTED ---"


@dataclass(frozen=True)
class SnapshotFile:
    node_group_id: str
    file: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    name: str
    engine: str
    engine_version: str
    node_type: str
    num_node_groups: int
    files: tuple[SnapshotFile, ...]
    created_at: str
    source: dict[str, Any] = field(hash=False)


class SnapshotCorrupt(Exception):
    """A snapshot (or foreign RDB) file is missing, or not what it should be."""


class SnapshotFiles:
    def __init__(self, root: Path) -> None:
        self._root = root

    def exists(self, name: str) -> bool:
        return self._dir(name).is_dir()

    def write(
        self,
        name: str,
        *,
        engine: str,
        engine_version: str,
        node_type: str,
        num_node_groups: int,
        source: Mapping[str, Any],
        sources: Mapping[str, Path],
        link: bool = True,
    ) -> Manifest:
        """A new snapshot of the finished RDB files in ``sources`` (by node group id).

        With ``link`` the files are hard-linked where possible: redis replaces
        its dump.rdb by a rename and never edits it, so a link is a stable copy.
        """
        if len(sources) != num_node_groups:
            raise ValueError(f"{len(sources)} files for {num_node_groups} node groups")
        for path in sources.values():
            check_rdb_header(path)
        manifest = Manifest(
            name=name,
            engine=engine,
            engine_version=engine_version,
            node_type=node_type,
            num_node_groups=num_node_groups,
            files=(),
            created_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            source=dict(source),
        )
        items = ((group, path, None) for group, path in sources.items())
        return self._publish(manifest, items, link)

    def read_manifest(self, name: str) -> Manifest:
        path = self._dir(name) / MANIFEST
        try:
            text = path.read_bytes()
        except FileNotFoundError as exc:
            raise SnapshotCorrupt(f"{path}: missing") from exc
        except OSError as exc:
            raise SnapshotCorrupt(f"{path}: unreadable: {exc}") from exc
        try:
            return _manifest_from_json(json.loads(text), name)
        except ValueError as exc:
            raise SnapshotCorrupt(f"{path}: invalid: {exc}") from exc

    def verify(self, name: str) -> Manifest:
        """The manifest, once every file has been read and matched against it."""
        manifest = self.read_manifest(name)
        for entry in manifest.files:
            path = self._dir(name) / entry.file
            _present(path)
            _match(path, entry, *_digest(path))
        return manifest

    def place(self, name: str, node_group_id: str, dest: Path) -> None:
        """Put that node group's file at ``dest`` (a new node's dump.rdb), verified.

        ``dest`` changes only if the file matches the manifest.
        """
        manifest = self.read_manifest(name)
        entry = _entry(manifest, node_group_id)
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._place_verified(name, entry, dest, link=True)
        _fsync_dir(dest.parent)

    def copy(self, source: str, target: str) -> Manifest:
        """A new snapshot ``target`` with the files of ``source``, checked on the way.

        Copied, not linked: a copy is kept as a second backup, and a link would
        share any damage to the first one's file.
        """
        manifest = self.read_manifest(source)
        items = ((f.node_group_id, self._dir(source) / f.file, f) for f in manifest.files)
        return self._publish(dataclasses.replace(manifest, name=target), items, link=False)

    def export(self, name: str, directory: Path, target_name: str) -> list[Path]:
        """Copies of the files as ``<target_name>-<node_group_id>.rdb``, each with a sidecar.

        The sidecar ``<file>.sha256`` is in sha256sum's format. Always copies:
        an exported file leaves our hands, and a link would let an edit there
        change the snapshot.
        """
        manifest = self.read_manifest(name)
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for entry in manifest.files:
            dest = directory / _file_name(target_name, entry.node_group_id)
            self._place_verified(name, entry, dest, link=False)
            sidecar = dest.with_name(dest.name + SIDECAR_SUFFIX)
            _write_atomically(sidecar, f"{entry.sha256}  {dest.name}\n".encode())
            written += [dest, sidecar]
        _fsync_dir(directory)
        return written

    def delete(self, name: str) -> None:
        """Remove the snapshot; moved out of sight first, so it is never seen half-deleted."""
        doomed = self._staging_path(name)
        try:
            os.rename(self._dir(name), doomed)
        except FileNotFoundError:
            return
        _fsync_dir(self._root)
        shutil.rmtree(doomed)

    def names(self) -> list[str]:
        try:
            with os.scandir(self._root) as entries:
                return sorted(
                    e.name
                    for e in entries
                    if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")
                )
        except FileNotFoundError:
            return []

    def clean_staging(self) -> None:
        """Remove what crashed writes and deletes left; only while none runs (at start)."""
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self._root / STAGING)

    def size(self, name: str) -> int:
        return sum(entry.size for entry in self.read_manifest(name).files)

    def _dir(self, name: str) -> Path:
        return self._root / _checked(name)

    def _staging_path(self, name: str) -> Path:
        staging = self._root / STAGING
        staging.mkdir(parents=True, exist_ok=True)
        return staging / f"{_checked(name)}.{secrets.token_hex(8)}"

    def _publish(
        self,
        manifest: Manifest,
        items: Iterable[tuple[str, Path, SnapshotFile | None]],
        link: bool,
    ) -> Manifest:
        """Stage each (group, file, what it must match) and the manifest; rename into place."""
        final = self._dir(manifest.name)
        if final.exists():
            raise FileExistsError(f"snapshot {manifest.name} exists")
        staging = self._staging_path(manifest.name)
        staging.mkdir()
        try:
            files = []
            for group, path, expected in sorted(items, key=lambda item: item[0]):
                name = _file_name(manifest.name, group)
                if expected is not None:
                    _present(path)
                size, sha256 = _take(path, staging / name, link)
                if expected is not None:
                    _match(path, expected, size, sha256)
                files.append(SnapshotFile(group, name, size, sha256))
            manifest = dataclasses.replace(manifest, files=tuple(files))
            with (staging / MANIFEST).open("xb") as out:
                out.write(_manifest_to_json(manifest))
                out.flush()
                os.fsync(out.fileno())
            _fsync_dir(staging)
            try:
                os.rename(staging, final)
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    raise FileExistsError(f"snapshot {manifest.name} exists") from exc
                raise
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _fsync_dir(self._root)
        return manifest

    def _place_verified(self, name: str, entry: SnapshotFile, dest: Path, link: bool) -> None:
        """Write ``dest.tmp``, check it against the manifest, rename it to ``dest``."""
        path = self._dir(name) / entry.file
        _present(path)
        tmp = dest.with_name(dest.name + ".tmp")
        tmp.unlink(missing_ok=True)
        try:
            _match(path, entry, *_take(path, tmp, link))
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def check_foreign_rdb(
    path: Path, check_binary: str | None = "redis-check-rdb", timeout: float = CHECK_TIMEOUT
) -> int:
    """Check an RDB file that has no manifest (a user's, to restore from); its size.

    Its ``.sha256`` sidecar, when present, must match; then ``check_binary``
    (redis-check-rdb, which checks every record and the CRC64) must accept it.
    """
    _present(path)
    check_rdb_header(path)
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if sidecar.exists():
        expected = _read_sidecar(sidecar, path.name)
        _size, sha256 = _digest(path)
        if sha256 != expected:
            raise SnapshotCorrupt(f"{path}: SHA-256 {sha256} does not match {sidecar.name}")
    if check_binary is not None:
        _run_check(check_binary, path, timeout)
    return path.stat().st_size


def check_rdb_header(path: Path) -> None:
    """SnapshotCorrupt unless the file starts as an RDB does ("REDIS" and 4 version digits)."""
    with path.open("rb") as file:
        header = file.read(9)
    if not _RDB_HEADER.fullmatch(header):
        raise SnapshotCorrupt(f"{path}: not an RDB file (starts with {header!r})")


def _take(source: Path, dest: Path, link: bool) -> tuple[int, str]:
    """Hard-link (if ``link`` and possible) or copy source to dest, fsynced; size and SHA-256."""
    if link:
        try:
            os.link(source, dest)
        except OSError as exc:
            if exc.errno not in _CANNOT_LINK:
                raise
        else:
            return _digest(dest, fsync=True)
    with dest.open("xb") as out:
        digest = _digest(source, copy_to=out)
        out.flush()
        os.fsync(out.fileno())
    return digest


def _digest(path: Path, copy_to: BinaryIO | None = None, fsync: bool = False) -> tuple[int, str]:
    """Size and SHA-256 of a file in one read (copied to ``copy_to`` on the way)."""
    sha256 = hashlib.sha256()
    size = 0
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as file:
        while count := file.readinto(buffer):
            chunk = view[:count]
            sha256.update(chunk)  # releases the GIL
            if copy_to is not None:
                copy_to.write(chunk)
            size += count
        if fsync:
            os.fsync(file.fileno())
    return size, sha256.hexdigest()


def _present(path: Path) -> None:
    if not path.is_file():
        raise SnapshotCorrupt(f"{path}: missing")


def _match(path: Path, entry: SnapshotFile, size: int, sha256: str) -> None:
    if size != entry.size:
        raise SnapshotCorrupt(f"{path}: {size} bytes, the manifest says {entry.size}")
    if sha256 != entry.sha256:
        raise SnapshotCorrupt(f"{path}: SHA-256 {sha256}, the manifest says {entry.sha256}")


def _entry(manifest: Manifest, node_group_id: str) -> SnapshotFile:
    for entry in manifest.files:
        if entry.node_group_id == node_group_id:
            return entry
    raise KeyError(f"snapshot {manifest.name} has no node group {node_group_id}")


def _checked(name: str) -> str:
    """A name usable as one path component, never a dot file (``.staging``) or a path."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid snapshot file name {name!r}")
    return name


def _file_name(snapshot: str, node_group_id: str) -> str:
    return _checked(f"{_checked(snapshot)}-{_checked(node_group_id)}.rdb")


def _manifest_to_json(manifest: Manifest) -> bytes:
    fields = {"version": MANIFEST_VERSION, **dataclasses.asdict(manifest)}
    return json.dumps(fields, indent=2).encode() + b"\n"


_MANIFEST_TYPES: dict[str, type] = {
    "name": str,
    "engine": str,
    "engine_version": str,
    "node_type": str,
    "num_node_groups": int,
    "files": list,
    "created_at": str,
    "source": dict,
}
_FILE_TYPES: dict[str, type] = {"node_group_id": str, "file": str, "size": int, "sha256": str}


def _manifest_from_json(raw: Any, name: str) -> Manifest:
    if not isinstance(raw, dict) or raw.get("version") != MANIFEST_VERSION:
        raise ValueError(f"not a version {MANIFEST_VERSION} manifest")
    fields = _typed(raw, _MANIFEST_TYPES)
    if fields["name"] != name:
        raise ValueError(f"names snapshot {fields['name']!r}")
    files = tuple(SnapshotFile(**_typed(item, _FILE_TYPES)) for item in fields["files"])
    for entry in files:
        if entry.file != _file_name(fields["name"], entry.node_group_id):
            raise ValueError(f"file {entry.file!r} misnamed")
        if not _SHA256.fullmatch(entry.sha256):
            raise ValueError(f"bad SHA-256 {entry.sha256!r}")
    groups = {entry.node_group_id for entry in files}
    if len(groups) != len(files) or len(files) != fields["num_node_groups"]:
        raise ValueError(f"{len(files)} files for {fields['num_node_groups']} node groups")
    return Manifest(**{**fields, "files": files})


def _typed(raw: Any, types: Mapping[str, type]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValueError(f"expected an object, got {raw!r}")
    for key, kind in types.items():
        if key not in raw:
            raise ValueError(f"{key!r} missing")
        value = raw[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"{key!r} is not {kind.__name__}: {value!r}")
    return {key: raw[key] for key in types}


def _read_sidecar(sidecar: Path, file_name: str) -> str:
    """The digest of a ``<sha256>  <name>`` line (``*<name>`` too) naming ``file_name``."""
    try:
        digest, name = sidecar.read_text().strip().split(maxsplit=1)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SnapshotCorrupt(f"{sidecar}: unreadable: {exc}") from exc
    if not _SHA256.fullmatch(digest.lower()) or Path(name.lstrip("*")).name != file_name:
        raise SnapshotCorrupt(f"{sidecar}: not a SHA-256 line for {file_name}")
    return digest.lower()


def _run_check(binary: str, path: Path, timeout: float) -> None:
    try:
        done = subprocess.run(
            [binary, str(path)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SnapshotCorrupt(f"{path}: {binary} did not finish within {timeout}s") from exc
    if done.returncode != 0:
        output = done.stdout + done.stderr
        output = output.partition(_RDB_ERROR_MARK)[2] or output
        reasons = [line for line in output.splitlines() if line and not line.startswith("[info]")]
        raise SnapshotCorrupt(f"{path}: {binary} rejects it: {'; '.join(reasons)}")


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
