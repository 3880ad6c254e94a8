"""The snapshot store on disk, with RDB files written and loaded by real redis-server processes.

Servers listen on a unix socket in their directory: no address to allocate.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from cacheyard.store.snapshot_files import (
    MANIFEST,
    STAGING,
    Manifest,
    SnapshotCorrupt,
    SnapshotFiles,
    check_foreign_rdb,
)

Contents = dict[str, tuple[str, Any, int]]
HOUR_MS = 3_600_000


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[redis.Redis]:
    """A redis-server in ``directory`` (loading its dump.rdb, if any) until it answers."""
    directory.mkdir(parents=True, exist_ok=True)
    socket = directory / "redis.sock"
    argv = ["redis-server", "--port", "0", "--unixsocket", str(socket), "--dir", str(directory)]
    argv += ["--save", "", "--appendonly", "no", "--logfile", str(directory / "redis.log")]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(unix_socket_path=str(socket), decode_responses=True)
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                client.ping()
                break
            except (redis.ConnectionError, redis.BusyLoadingError):
                assert time.monotonic() < deadline, f"redis-server in {directory} does not answer"
                time.sleep(0.01)
        yield client
    finally:
        client.close()
        process.kill()
        process.wait()


def contents(client: redis.Redis) -> Contents:
    """Every key: its type, value and PEXPIRETIME (exact, unlike a TTL that counts down)."""
    read: dict[str, Callable[[str], Any]] = {
        "string": client.get,
        "hash": client.hgetall,
        "list": lambda key: client.lrange(key, 0, -1),
        "set": lambda key: sorted(client.smembers(key)),
        "zset": lambda key: client.zrange(key, 0, -1, withscores=True),
    }
    seen: Contents = {}
    for key in client.scan_iter(count=1000):
        kind = str(client.type(key))
        seen[key] = (kind, read[kind](key), client.pexpiretime(key))
    return seen


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Contents]:
    """An RDB of every common type, half of the keys with an expiry; and what it holds."""
    directory = tmp_path_factory.mktemp("dataset")
    expire_at = int(time.time() * 1000) + HOUR_MS
    with redis_server(directory) as client:
        client.mset({f"string:{i}": f"value {i}" for i in range(500)})
        client.hset("hash", mapping={f"field:{i}": i for i in range(100)})
        client.rpush("list", *range(100))
        client.sadd("set", *(f"member:{i}" for i in range(100)))
        client.zadd("zset", {f"player:{i}": i * 1.5 for i in range(100)})
        for i, key in enumerate(client.scan_iter()):
            if i % 2:
                client.pexpireat(key, expire_at + i)
        expected = contents(client)
        client.save()
    return directory / "dump.rdb", expected


@pytest.fixture
def rdb(tmp_path: Path, dataset: tuple[Path, Contents]) -> Path:
    """A node's finished dump.rdb: a copy of the dataset's own, since snapshots link to it."""
    path = tmp_path / "node" / "dump.rdb"
    path.parent.mkdir()
    shutil.copyfile(dataset[0], path)
    return path


@pytest.fixture
def files(tmp_path: Path) -> SnapshotFiles:
    return SnapshotFiles(tmp_path / "snapshots")


def write(files: SnapshotFiles, name: str, *sources: Path, link: bool = True) -> Manifest:
    groups = {f"{i:04d}": path for i, path in enumerate(sources, start=1)}
    return files.write(
        name,
        engine="redis",
        engine_version="7.0.15",
        node_type="cache.t3.micro",
        num_node_groups=len(groups),
        source={"cache_cluster_id": "cluster-1", "layout": [1, 2]},
        sources=groups,
        link=link,
    )


def staged(files_root: Path) -> list[str]:
    staging = files_root / STAGING
    return sorted(os.listdir(staging)) if staging.exists() else []


def test_write_verify_place_round_trip(
    files: SnapshotFiles, rdb: Path, tmp_path: Path, dataset: tuple[Path, Contents]
) -> None:
    manifest = write(files, "snap", rdb)

    assert manifest.name == "snap" and manifest.num_node_groups == 1
    (entry,) = manifest.files
    assert (entry.node_group_id, entry.file, entry.size) == (
        "0001",
        "snap-0001.rdb",
        rdb.stat().st_size,
    )
    assert manifest.source == {"cache_cluster_id": "cluster-1", "layout": [1, 2]}
    snapshot_dir = tmp_path / "snapshots" / "snap"
    assert sorted(os.listdir(snapshot_dir)) == [MANIFEST, "snap-0001.rdb"]
    assert (snapshot_dir / entry.file).stat().st_ino == rdb.stat().st_ino  # a hard link
    assert files.exists("snap") and files.names() == ["snap"]
    assert files.read_manifest("snap") == manifest
    assert files.verify("snap") == manifest
    assert files.size("snap") == entry.size
    assert staged(tmp_path / "snapshots") == []

    restored = tmp_path / "restored"
    files.place("snap", "0001", restored / "dump.rdb")

    assert sorted(os.listdir(restored)) == ["dump.rdb"]
    with redis_server(restored) as client:
        assert contents(client) == dataset[1]


def test_write_copies_when_asked(files: SnapshotFiles, rdb: Path, tmp_path: Path) -> None:
    manifest = write(files, "snap", rdb, link=False)

    stored = tmp_path / "snapshots" / "snap" / manifest.files[0].file
    assert stored.stat().st_ino != rdb.stat().st_ino
    assert stored.read_bytes() == rdb.read_bytes()
    assert files.verify("snap") == manifest


def test_write_copies_across_filesystems(files: SnapshotFiles, rdb: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == rdb.stat().st_dev:
        pytest.skip("no second filesystem at /dev/shm")
    with contextlib.ExitStack() as stack:
        elsewhere = shm / f"cacheyard-test-{os.getpid()}.rdb"
        stack.callback(elsewhere.unlink, missing_ok=True)
        shutil.copyfile(rdb, elsewhere)

        manifest = write(files, "snap", elsewhere)

    assert files.verify("snap") == manifest


def test_one_file_per_node_group(
    files: SnapshotFiles, rdb: Path, tmp_path: Path, dataset: tuple[Path, Contents]
) -> None:
    other = tmp_path / "other.rdb"
    with redis_server(tmp_path / "other") as client:
        client.set("only-in-0002", "1")
        client.save()
    shutil.copyfile(tmp_path / "other" / "dump.rdb", other)

    manifest = write(files, "snap", rdb, other)

    assert [(f.node_group_id, f.file) for f in manifest.files] == [
        ("0001", "snap-0001.rdb"),
        ("0002", "snap-0002.rdb"),
    ]
    assert files.size("snap") == rdb.stat().st_size + other.stat().st_size
    for group in ("0001", "0002"):
        files.place("snap", group, tmp_path / group / "dump.rdb")
    with redis_server(tmp_path / "0002") as client:
        assert contents(client) == {"only-in-0002": ("string", "1", -1)}
    with pytest.raises(KeyError, match="no node group 0003"):
        files.place("snap", "0003", tmp_path / "0003" / "dump.rdb")


def test_write_refuses_an_existing_name_and_a_file_that_is_no_rdb(
    files: SnapshotFiles, rdb: Path, tmp_path: Path
) -> None:
    write(files, "snap", rdb)
    with pytest.raises(FileExistsError):
        write(files, "snap", rdb)

    not_rdb = tmp_path / "not.rdb"
    not_rdb.write_bytes(b"*1\r\n$4\r\nPING\r\n")
    with pytest.raises(SnapshotCorrupt, match=r"not\.rdb: not an RDB file"):
        write(files, "other", not_rdb)

    with pytest.raises(ValueError, match="2 files for 1 node groups"):
        files.write(
            "two",
            engine="redis",
            engine_version="7.0.15",
            node_type="cache.t3.micro",
            num_node_groups=1,
            source={},
            sources={"0001": rdb, "0002": rdb},
        )
    assert files.names() == ["snap"]
    assert staged(tmp_path / "snapshots") == []


@pytest.mark.parametrize("name", ["", ".staging", "../escape", "a/b", "-dash"])
def test_names_that_are_not_one_plain_path_component_are_refused(
    files: SnapshotFiles, rdb: Path, name: str
) -> None:
    with pytest.raises(ValueError, match="invalid snapshot file name"):
        write(files, name, rdb)
    with pytest.raises(ValueError):
        files.exists(name)


def flip_a_byte(path: Path) -> None:
    with path.open("r+b") as file:
        file.seek(path.stat().st_size // 2)
        byte = file.read(1)
        file.seek(-1, os.SEEK_CUR)
        file.write(bytes([byte[0] ^ 0xFF]))


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size - 1)


DAMAGES: dict[str, tuple[Callable[[Path], object], str]] = {
    "flipped byte": (flip_a_byte, "SHA-256 [0-9a-f]+, the manifest says"),
    "truncated": (truncate, "[0-9]+ bytes, the manifest says [0-9]+"),
    "deleted": (Path.unlink, "missing"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_file_is_reported_and_never_placed(
    files: SnapshotFiles, rdb: Path, tmp_path: Path, damage: str
) -> None:
    write(files, "snap", rdb)
    harm, reason = DAMAGES[damage]
    harm(tmp_path / "snapshots" / "snap" / "snap-0001.rdb")
    dest = tmp_path / "restored" / "dump.rdb"
    dest.parent.mkdir()
    dest.write_bytes(b"what was there")
    pattern = f"snap-0001.rdb: {reason}"

    with pytest.raises(SnapshotCorrupt, match=pattern):
        files.verify("snap")
    with pytest.raises(SnapshotCorrupt, match=pattern):
        files.place("snap", "0001", dest)
    with pytest.raises(SnapshotCorrupt, match=pattern):
        files.copy("snap", "copy")
    with pytest.raises(SnapshotCorrupt, match=pattern):
        files.export("snap", tmp_path / "bucket", "exported")

    assert sorted(os.listdir(dest.parent)) == ["dump.rdb"]
    assert dest.read_bytes() == b"what was there"
    assert files.names() == ["snap"]
    assert os.listdir(tmp_path / "bucket") == []
    assert staged(tmp_path / "snapshots") == []


def edit_manifest(change: Callable[[dict[str, Any]], object]) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        raw = json.loads(path.read_text())
        change(raw)
        path.write_text(json.dumps(raw))

    return edit


MANIFEST_DAMAGES: dict[str, tuple[Callable[[Path], object], str]] = {
    "deleted": (Path.unlink, "missing"),
    "not JSON": (lambda path: path.write_text('{"name": "snap", '), "invalid: Expecting"),
    "field missing": (edit_manifest(lambda raw: raw.pop("engine")), "invalid: 'engine' missing"),
    "wrong type": (
        edit_manifest(lambda raw: raw["files"][0].update(size="12")),
        "invalid: 'size' is not int",
    ),
    "another snapshot's": (
        edit_manifest(lambda raw: raw.update(name="other")),
        "invalid: names snapshot 'other'",
    ),
    "file outside": (
        edit_manifest(lambda raw: raw["files"][0].update(file="../other/other-0001.rdb")),
        "invalid: file '../other/other-0001.rdb' misnamed",
    ),
}


@pytest.mark.parametrize("damage", MANIFEST_DAMAGES)
def test_a_damaged_manifest_is_reported(
    files: SnapshotFiles, rdb: Path, tmp_path: Path, damage: str
) -> None:
    write(files, "snap", rdb)
    harm, reason = MANIFEST_DAMAGES[damage]
    harm(tmp_path / "snapshots" / "snap" / MANIFEST)

    for call in (files.read_manifest, files.verify, files.size):
        with pytest.raises(SnapshotCorrupt, match=f"manifest.json: {reason}"):
            call("snap")
    with pytest.raises(SnapshotCorrupt):
        files.place("snap", "0001", tmp_path / "restored" / "dump.rdb")
    assert not (tmp_path / "restored" / "dump.rdb").exists()


@pytest.mark.parametrize(("module", "attribute"), [(os, "rename"), (json, "dumps")])
def test_a_failed_write_leaves_no_snapshot_and_no_staging(
    files: SnapshotFiles,
    rdb: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    module: object,
    attribute: str,
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("injected")

    monkeypatch.setattr(module, attribute, fail)
    with pytest.raises(OSError, match="injected"):
        write(files, "snap", rdb)
    monkeypatch.undo()

    assert not files.exists("snap")
    assert files.names() == []
    assert staged(tmp_path / "snapshots") == []
    with pytest.raises(SnapshotCorrupt):
        files.read_manifest("snap")


def crash_at(function: str, script: str, cwd: Path) -> None:
    """Run ``script`` in a child Python that dies (os._exit) the first time it calls function."""
    module, name = function.split(".")
    crashing = f"import os, {module}\n{module}.{name} = lambda *a, **k: os._exit(9)\n"
    child = subprocess.run([sys.executable, "-c", crashing + script], cwd=cwd, check=False)
    assert child.returncode == 9


WRITE_SCRIPT = """
from pathlib import Path
from cacheyard.store.snapshot_files import SnapshotFiles
SnapshotFiles(Path("snapshots")).write(
    "snap", engine="redis", engine_version="7.0.15", node_type="cache.t3.micro",
    num_node_groups=1, source={}, sources={"0001": Path("node/dump.rdb")},
)
"""


# The first fsync is the first file's (staged, no manifest yet); the rename publishes.
@pytest.mark.parametrize("function", ["os.fsync", "os.rename"])
def test_a_crash_during_write_leaves_no_snapshot(
    files: SnapshotFiles, rdb: Path, tmp_path: Path, function: str
) -> None:
    crash_at(function, WRITE_SCRIPT, tmp_path)

    assert not files.exists("snap")
    assert files.names() == []
    assert len(staged(tmp_path / "snapshots")) == 1
    files.clean_staging()
    assert staged(tmp_path / "snapshots") == []
    assert write(files, "snap", rdb) == files.verify("snap")


def test_a_crash_during_delete_leaves_no_snapshot(
    files: SnapshotFiles, rdb: Path, tmp_path: Path
) -> None:
    write(files, "snap", rdb)
    script = "from pathlib import Path\nfrom cacheyard.store.snapshot_files import SnapshotFiles\n"
    script += 'SnapshotFiles(Path("snapshots")).delete("snap")\n'

    crash_at("shutil.rmtree", script, tmp_path)

    assert not files.exists("snap")
    assert files.names() == []
    assert len(staged(tmp_path / "snapshots")) == 1
    files.clean_staging()
    assert staged(tmp_path / "snapshots") == []


def test_copy_delete_and_names(files: SnapshotFiles, rdb: Path, tmp_path: Path) -> None:
    original = write(files, "snap", rdb)

    copied = files.copy("snap", "copy")

    assert copied.name == "copy"
    assert [f.file for f in copied.files] == ["copy-0001.rdb"]
    assert [(f.size, f.sha256) for f in copied.files] == [
        (f.size, f.sha256) for f in original.files
    ]
    assert copied.created_at == original.created_at
    assert files.verify("copy") == copied
    stored = [tmp_path / "snapshots" / n / f"{n}-0001.rdb" for n in ("snap", "copy")]
    assert stored[0].stat().st_ino != stored[1].stat().st_ino  # a second backup, not a link
    assert files.names() == ["copy", "snap"]
    with pytest.raises(FileExistsError):
        files.copy("snap", "copy")

    files.delete("snap")
    files.delete("snap")  # already gone: fine

    assert files.names() == ["copy"]
    assert not files.exists("snap")
    assert files.verify("copy") == copied
    assert staged(tmp_path / "snapshots") == []


def test_export_writes_verified_files_with_sidecars(
    files: SnapshotFiles, rdb: Path, tmp_path: Path
) -> None:
    manifest = write(files, "snap", rdb)
    bucket = tmp_path / "bucket"

    written = files.export("snap", bucket, "exported")

    exported = bucket / "exported-0001.rdb"
    sidecar = bucket / "exported-0001.rdb.sha256"
    assert written == [exported, sidecar]
    assert sorted(os.listdir(bucket)) == [exported.name, sidecar.name]
    assert sidecar.read_text() == f"{manifest.files[0].sha256}  exported-0001.rdb\n"
    assert exported.stat().st_ino != rdb.stat().st_ino  # a copy: an edit there stays there
    subprocess.run(["sha256sum", "--check", "--quiet", sidecar.name], cwd=bucket, check=True)
    assert check_foreign_rdb(exported) == manifest.files[0].size


def test_check_foreign_rdb_rejects_damaged_files(
    files: SnapshotFiles, rdb: Path, tmp_path: Path
) -> None:
    write(files, "snap", rdb)
    exported, sidecar = files.export("snap", tmp_path / "bucket", "exported")
    truncate(exported)

    with pytest.raises(SnapshotCorrupt, match=r"does not match exported-0001\.rdb\.sha256"):
        check_foreign_rdb(exported)
    sidecar.unlink()
    with pytest.raises(SnapshotCorrupt, match=r"rejects it: .*Unexpected EOF reading RDB file"):
        check_foreign_rdb(exported)

    flipped = tmp_path / "flipped.rdb"
    shutil.copyfile(rdb, flipped)
    flip_a_byte(flipped)
    with pytest.raises(SnapshotCorrupt, match=r"flipped\.rdb: redis-check-rdb rejects it"):
        check_foreign_rdb(flipped)

    with pytest.raises(SnapshotCorrupt, match="missing"):
        check_foreign_rdb(tmp_path / "nothing.rdb")
    garbage = tmp_path / "garbage.rdb"
    garbage.write_bytes(b"REDIS")
    with pytest.raises(SnapshotCorrupt, match=r"not an RDB file \(starts with b'REDIS'\)"):
        check_foreign_rdb(garbage)
    Path(f"{rdb}.sha256").write_text("not a digest\n")
    with pytest.raises(SnapshotCorrupt, match=r"not a SHA-256 line for dump\.rdb"):
        check_foreign_rdb(rdb)
