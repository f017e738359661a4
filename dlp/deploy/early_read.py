"""Read the files of a drag while it hovers, for the drop that usually follows.

Between a drag entering the Deploy panel and the drop, a user's hand takes a few
hundred milliseconds; reading a dropped image (pydicom, gzip) takes milliseconds
that otherwise come before the net can start.  :class:`EarlyRead` reads small drags
(a few files, not folders) in a thread of its own and hands the volumes to the drop
as its reader; anything it has not read, or whose file changed since, is read as
usual.  A read that failed fails the drop's input the same way a late read would.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from dlp.deploy.inputs import InputItem, load_input

#: Only drags of at most this many files, and this many bytes in all, are read early:
#: a drag that is not dropped then wastes little.
MAX_FILES = 4
MAX_BYTES = 64 * 1024 * 1024

_Stamp = tuple[int, int]  # (st_mtime_ns, st_size): the file as it was read


def _stamp(path: Path) -> _Stamp | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


class EarlyRead:
    """Volumes of the current drag's files, read in the background."""

    def __init__(self, read: Callable[[InputItem], Any] = load_input) -> None:
        self._read = read
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._pending: dict[Path, tuple[_Stamp, Future]] = {}

    def start(self, paths: Iterable[str | os.PathLike[str]]) -> bool:
        """Begin reading ``paths`` if they are a few plain files; True when started."""
        files = [Path(p) for p in paths]
        if not files or len(files) > MAX_FILES:
            return False
        stamps = [_stamp(f) if f.is_file() else None for f in files]
        if any(s is None for s in stamps) or sum(s[1] for s in stamps) > MAX_BYTES:
            return False
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1,
                                                    thread_name_prefix="dlp-early-read")
            pending = {}
            for path, stamp in zip(files, stamps, strict=True):
                known = self._pending.get(path)
                if known is not None and known[0] == stamp:
                    pending[path] = known  # the same drag again: already read
                else:
                    item = InputItem(path=path, name=path.name)
                    pending[path] = (stamp, self._executor.submit(self._read, item))
            self._pending = pending
        return True

    def discard(self) -> None:
        """The drag left without a drop: forget what was read."""
        with self._lock:
            for _, future in self._pending.values():
                future.cancel()
            self._pending = {}

    def take(self) -> Callable[[InputItem], Any]:
        """A reader for the drop: the early volumes (once each), else a read as usual."""
        with self._lock:
            pending, self._pending = self._pending, {}

        def read(item: InputItem) -> Any:
            early = None if item.is_series else pending.pop(Path(item.path), None)
            if early is not None and _stamp(Path(item.path)) == early[0]:
                return early[1].result()  # a read error is raised here, as it would be
            return self._read(item)

        return read

    def close(self) -> None:
        self.discard()
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
