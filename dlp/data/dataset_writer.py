"""The files of a dataset being built: its split LMDBs and small files, synced to disk.

Everything is written inside the build's temporary folder, which is renamed into place
only after :meth:`DatasetWriter.close` has synced it all: so the LMDB batches skip
their own syncs and the small files are written plainly, not through a temporary
sibling each.  Syncs wait on the disk, not the CPU, so helper threads run them while
the build goes on.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from pathlib import Path

from dlp.data.lmdb_io import DatumWriter, format_key


class SplitWriter:
    """The features and labels DBs of one split, written in lock-step."""

    def __init__(self, root: Path, split: str) -> None:
        self.features_rel = f"{split}_db/features"
        self.labels_rel = f"{split}_db/labels"
        # small batches committed in the background overlap disk writes with decoding;
        # the folder is renamed into place only after close() synced it, so the batches
        # themselves need no sync
        self.dbs = [DatumWriter(root / rel, batch_bytes=4 << 20, background=True,
                                sync_commits=False)
                    for rel in (self.features_rel, self.labels_rel)]
        self.count = 0

    def put(self, features: bytes, labels: bytes) -> str:
        key = format_key(self.count)
        self.dbs[0].put_bytes(key, features)
        self.dbs[1].put_bytes(key, labels)
        self.count += 1
        return key


class DatasetWriter:
    """The split DBs and files of a build, synced to disk by helper threads.

    Splits are written one after another, so when a new split starts the previous one
    is complete: it is closed (committed and synced, which releases the GIL) while
    the build goes on.  The last DBs and the small files are synced together.
    """

    def __init__(self, root: Path, splits: Iterable[str] = ()) -> None:
        """``splits``: the splits records will likely go to; their DBs are created by a
        helper thread at once (creating an LMDB costs file-system round trips)."""
        self.root = root
        self.splits: dict[str, SplitWriter] = {}
        self._open: list[DatumWriter] = []
        # fsyncs wait on the disk, not the CPU: enough threads to have them all in flight
        self._syncer = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dataset-sync")
        self._pending: list[Future[None]] = []
        self._created = {split: self._syncer.submit(SplitWriter, root, split)
                         for split in dict.fromkeys(splits)}

    def put(self, split: str, features: bytes, labels: bytes) -> str:
        writer = self.splits.get(split)
        if writer is None:
            self.close_databases()
            created = self._created.pop(split, None)
            writer = self.splits[split] = (created.result() if created is not None
                                           else SplitWriter(self.root, split))
            self._open += writer.dbs
        return writer.put(features, labels)

    def _drop_unused(self) -> None:
        """Remove the DBs created for splits that got no record."""
        created, self._created = self._created, {}
        for split, future in created.items():
            if future.exception() is None:
                for db in future.result().dbs:
                    db.abort()
            shutil.rmtree(self.root / f"{split}_db", ignore_errors=True)

    def close_databases(self) -> None:
        """Start closing (committing, syncing) every open DB."""
        self._pending += [self._syncer.submit(db.close) for db in self._open]
        self._open.clear()

    def write_file(self, name: str, data: bytes) -> None:
        """Start writing and syncing the new file ``name``.  Plain writes suffice: the
        folder is renamed into place only once everything in it is synced."""
        self._pending.append(self._syncer.submit(write_synced, self.root / name, data))

    def close(self) -> None:
        """Wait until every DB and file is on disk; re-raise the first failure."""
        try:
            self._drop_unused()
            self.close_databases()
            for future in self._pending:
                future.result()
        finally:
            self._syncer.shutdown(wait=True)
        sync_folder(self.root)

    def abort(self) -> None:
        """Drop what is not written (after a failure or a cancel); let the writes in
        flight end, so nothing writes into the folder being removed."""
        futures_wait(self._pending)
        self._drop_unused()
        for db in self._open:
            db.abort()
        self._open.clear()
        self._syncer.shutdown(wait=True)


def sync_folder(folder: Path) -> None:
    """Sync a folder's entries (the files just created in it) to disk, where supported."""
    with contextlib.suppress(OSError):  # Windows cannot open a folder to sync it
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def write_synced(path: Path, data: bytes) -> None:
    """Write the new file ``path`` and sync it to disk."""
    with open(path, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
