"""Snapshots of a live local index: one committed generation, copied while the server searches and commits.

What changes where: segments (``segments/``) and vector files (``vectors/``) are written once under fresh
names and only removed after a later commit retires them; the SQLite store changes in place, one
transaction per change; a tantivy keyword folder gains files and has ``meta.json`` replaced at each
keyword commit, which always follows the store commit that journals it.

How one is taken, holding no lock that a writer waits for:

1. A read transaction on the store fixes one committed generation: its state and the files it names.
2. The keyword folders' files are hard-linked into a staging folder beside the live one, then the store's
   state is read again outside the transaction. Unchanged, with no keyword work pending, means no keyword
   commit ran in between (each follows a store commit), so the links hold exactly that generation's
   keyword indexes; otherwise the attempt is dropped and made again.
3. The segments and vector files the transaction names are hard-linked: once linked, a commit retiring
   them cannot take them away. One already gone sends the snapshot back to step 1; links made by an
   earlier attempt are kept, so a retry links only what is new.
4. SQLite's online backup copies the store inside the same read transaction; writers go on meanwhile.
5. The pinned files are copied to the destination (copies, not links: a snapshot sharing the live files'
   inodes would share any damage done to them), synced, and ``snapshot.json``, written last, records
   the generation and every file's sha256. The staging folder is then removed.

Why not the writer lock: the index's file lock refuses a second writer at once, so a snapshot holding it
for even the milliseconds of linking would fail an upload that arrived then (409), and since a writer
holds it for a whole build, the snapshot would first have to find a gap between uploads. Here a commit
costs a retry only when it lands inside the window of step 2, a few milliseconds.
Why not rebuild the keyword indexes at restore: that costs time in proportion to the collection, and the
rebuilt BM25 statistics would differ from the source's (its tantivy segments count replaced entries until
they merge), so the restored index would not answer exactly as the source did at that generation.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from search.backends.contract import IndexLocation
from search.backends.local.backend import LocalBackend
from search.backends.local.layout import (
    FORMAT_VERSION,
    KEYWORD_DIRS,
    SEGMENTS_DIR,
    SNAPSHOT_MANIFEST,
    STORE_FILE,
    VECTORS_DIR,
    hold_writer_lock,
    index_exists,
    live_folder,
    new_folder,
    publish,
    remove_stale_folders,
    snapshot_staging,
)
from search.backends.local.store import Store
from search.durability import fsync_file, write_durably
from search.errors import SnapshotError

SNAPSHOT_FORMAT = 1
# Commits make a retry only when they land in step 2's window; this bounds a writer that never pauses (and damage).
_PATIENCE_SECONDS = 30.0
_RETRY_SECONDS = 0.02
_FILE_FOLDERS = (SEGMENTS_DIR, VECTORS_DIR, *KEYWORD_DIRS)
# Where service backends keep their own backups.
_SERVER_BACKUP = {"milvus": "Milvus's own backup tool, milvus-backup (https://github.com/zilliztech/milvus-backup)"}


@dataclass(frozen=True)
class SnapshotManifest:
    """What ``snapshot.json`` records: the generation copied and the sha256 of every file, by relative path."""

    generation: int
    index_version: str
    created_at: str
    documents: int
    passages: int
    files: dict[str, str]

    def write(self, path: Path) -> None:
        record = {"format": SNAPSHOT_FORMAT, "index_format": FORMAT_VERSION, **asdict(self)}
        path.write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")


def take_snapshot(location: IndexLocation, dest: Path) -> SnapshotManifest:
    """Copy the generation committed now to the new folder ``dest``; searches and writes go on meanwhile."""
    if location.backend != "local":
        tool = _SERVER_BACKUP.get(location.backend, "that server's own backup tool")
        raise SnapshotError(
            f"snapshots copy a local index folder; the {location.backend} backend keeps the index in its server: back it up with {tool}"
        )
    if dest.exists():
        raise SnapshotError(f"{dest} already exists; a snapshot is written to a new folder")
    live_folder(location.path)
    staging = snapshot_staging(location.path)
    try:
        manifest = replace(_pin_generation(location.path, staging), files=_copy_out(staging, dest))
        write_durably(dest / SNAPSHOT_MANIFEST, manifest.write)
    except BaseException as exc:
        shutil.rmtree(dest, ignore_errors=True)
        if isinstance(exc, OSError):
            raise SnapshotError(f"cannot write a snapshot of {location.path} to {dest} ({exc})") from None
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def restore_snapshot(snapshot: Path, index_dir: Path, force: bool = False) -> SnapshotManifest:
    """Check ``snapshot`` against its checksums and publish a copy of it as the index at ``index_dir``.

    An existing index is replaced only when asked; one being served follows the swap as it follows a rebuild."""
    manifest = verify_snapshot(snapshot)
    if index_exists(index_dir) and not force:
        raise SnapshotError(f"an index already exists at {index_dir}; restore into another folder, or pass --force to replace it")
    with hold_writer_lock(index_dir):
        folder = new_folder(index_dir)
        try:
            for name in manifest.files:
                target = folder / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(snapshot / name, target)
            publish(index_dir, folder)
        except BaseException as exc:
            shutil.rmtree(folder, ignore_errors=True)
            if isinstance(exc, OSError):
                raise SnapshotError(f"cannot restore {snapshot} into {index_dir} ({exc})") from None
            raise
        remove_stale_folders(index_dir)
    LocalBackend.open(IndexLocation(index_dir)).close()
    return manifest


def verify_snapshot(snapshot: Path) -> SnapshotManifest:
    """The manifest of ``snapshot``, once every file it lists is there with its recorded sha256."""
    manifest = read_manifest(snapshot)
    for name, expected in manifest.files.items():
        path = snapshot / name
        if not path.is_file():
            raise SnapshotError(f"snapshot {snapshot} lacks {name}, which {SNAPSHOT_MANIFEST} lists; it cannot be restored")
        if _sha256(path) != expected:
            raise SnapshotError(f"snapshot file {path} is damaged: its sha256 differs from the one in {SNAPSHOT_MANIFEST}")
    return manifest


def read_manifest(snapshot: Path) -> SnapshotManifest:
    """``snapshot.json``, refused unless it is a manifest of this format naming only files an index folder holds."""
    path = snapshot / SNAPSHOT_MANIFEST
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SnapshotError(f"no snapshot at {snapshot}: {SNAPSHOT_MANIFEST} is missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SnapshotError(f"{path} cannot be read ({exc})") from None
    if not isinstance(raw, dict) or raw.get("format") != SNAPSHOT_FORMAT or raw.get("index_format") != FORMAT_VERSION:
        raise SnapshotError(f"{path} is not a format {SNAPSHOT_FORMAT} snapshot of a format {FORMAT_VERSION} index")
    try:
        manifest = SnapshotManifest(**{name: raw[name] for name in SnapshotManifest.__dataclass_fields__})
    except KeyError as exc:
        raise SnapshotError(f"{path} lacks {exc}") from None
    names = manifest.files if isinstance(manifest.files, dict) else {}
    if STORE_FILE not in names or not all(_index_file(name) and isinstance(sha, str) for name, sha in names.items()):
        raise SnapshotError(f"{path} must list {STORE_FILE} and only files of an index folder, by relative path")
    return manifest


def _pin_generation(index_dir: Path, staging: Path) -> SnapshotManifest:
    """Steps 1 to 4 of the module docstring, retried until a commit stays out of the window."""
    deadline = time.monotonic() + _PATIENCE_SECONDS
    while True:
        folder = live_folder(index_dir)
        store = Store(folder / STORE_FILE)
        try:
            with store.snapshot():
                state = store.state()
                named = [f"{SEGMENTS_DIR}/{s.file}" for s in store.segments()]
                named += [f"{VECTORS_DIR}/{name}" for name in store.vector_files().values()]
                if (
                    not state[1]
                    and _link_keyword_files(folder, staging)
                    and _state_now(folder) == state
                    and _link_all(folder, staging, named)
                ):
                    store.backup_to(staging / STORE_FILE)
                    documents, passages = store.counts()
                    break
        finally:
            store.close()
        if time.monotonic() > deadline:
            raise SnapshotError(
                f"no generation of the index at {index_dir} could be pinned in {_PATIENCE_SECONDS:.0f} s: commits kept landing "
                "in the window, or a file the store names is missing; try again, and rebuild the index if it persists"
            )
        time.sleep(_RETRY_SECONDS)
    _unlink_unnamed(staging, set(named))
    created = datetime.now(UTC).isoformat(timespec="seconds")
    return SnapshotManifest(state[0], f"{folder.name}/{state[0]}", created, documents, passages, {})


def _copy_out(staging: Path, dest: Path) -> dict[str, str]:
    """Copies of the pinned files in ``dest``, synced to disk, by relative path with their sha256. Copies, not the
    links: a snapshot sharing the live files' inodes would share any damage done to them."""
    shutil.copytree(staging, dest)
    files = {}
    for path in sorted(dest.rglob("*")):
        if path.is_file():
            fsync_file(path)
            files[path.relative_to(dest).as_posix()] = _sha256(path)
    return files


def _link_keyword_files(folder: Path, staging: Path) -> bool:
    """Fresh links to every file of the keyword folders; False if one went while they were listed."""
    for name in KEYWORD_DIRS:
        shutil.rmtree(staging / name, ignore_errors=True)
        (staging / name).mkdir(parents=True)
        if not _link_all(folder, staging, [f"{name}/{path.name}" for path in (folder / name).iterdir() if path.is_file()]):
            return False
    return True


def _link_all(folder: Path, staging: Path, names: list[str]) -> bool:
    """Hard links in ``staging`` to the named files of ``folder``; False if one is gone (a later commit retired it)."""
    for name in names:
        target = staging / name
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(folder / name, target)
        except FileNotFoundError:
            return False
    return True


def _unlink_unnamed(staging: Path, named: set[str]) -> None:
    """Drop links an earlier attempt made to files the final generation no longer names."""
    for name in (SEGMENTS_DIR, VECTORS_DIR):
        for path in (staging / name).glob("*"):
            if f"{name}/{path.name}" not in named:
                path.unlink()


def _state_now(folder: Path) -> tuple[int, int]:
    """The store's state as committed now, read outside the caller's transaction."""
    store = Store(folder / STORE_FILE)
    try:
        return store.state()
    finally:
        store.close()


def _index_file(name: str) -> bool:
    """Whether a manifest entry names a file of an index folder (never an absolute path or one that climbs out)."""
    path = PurePosixPath(name)
    return name == STORE_FILE or (str(path.parent) in _FILE_FOLDERS and path.name not in ("", ".", ".."))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
