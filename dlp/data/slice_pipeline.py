"""Load and preprocess a source's items, in this process or with worker processes.

Preparing an item (decode a DICOM, rasterise its contours, normalise and resize) is
numpy and pydicom code that holds the GIL, so threads cannot share it out; worker
processes can.  :class:`SlicePreparer` cuts the item list into chunks that the
workers, and the builder's own process whenever it has nothing to write, claim from
a shared counter; it yields the prepared items **in list order** whatever order they
were finished in, so a parallel build writes exactly the records, in exactly the
order, of a sequential one.  Pixels come back through shared memory (one slot per
chunk in flight), the rest through a pipe per worker.

Workers are forked (Linux): they inherit the imported modules, the source and the
item list, so starting one costs tens of milliseconds where a fresh interpreter
would spend half a second importing numpy and pydicom.  Where fork is not the
platform's safe choice (Windows, macOS) items are prepared in-process.  Like
PyTorch's DataLoader workers, forked workers touch none of the parent's threads or
GUI state: they only run :func:`prepare_item`.  By default workers are used only
when cores are idle (:func:`resolve_workers`): on a busy machine they cost more
than they give.
"""

from __future__ import annotations

import contextlib
import gc
import math
import mmap
import multiprocessing
import os
import pickle
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np

from dlp.data.lmdb_io import encode_datum
from dlp.data.preprocess import Preprocessing, preprocess_label, preprocess_slice
from dlp.data.sources import DatasetSource, Problem, SkipItem, SourceItem
from dlp.errors import DLPError

#: builds with fewer items than this run in-process when the worker count is automatic:
#: a forked worker costs ~50 ms to start (copy-on-write of the parent's pages it
#: touches) and ~20 % more per slice than this process, which few slices do not repay
MIN_ITEMS_FOR_WORKERS = 64
#: the builder's own process writes every record, so more processes stop paying off
MAX_AUTO_WORKERS = 4
#: chunks in flight per process: enough to ride out a worker the OS parks for a while
_CHUNKS_AHEAD_PER_WORKER = 4
_MAX_CHUNK = 4


class WorkerError(DLPError):
    """A worker process died (killed, out of memory) while preparing slices."""


@dataclass
class PreparedSlice:
    """One slice ready to store: features (C, H, W) and labels (1, H, W)."""

    name: str
    features: np.ndarray
    labels: np.ndarray
    #: pixels per label value 0..labels.max() (for the manifest's class frequencies)
    class_counts: np.ndarray
    #: the features Datum, when it is compressed (PNG costs as much as decoding)
    features_datum: bytes | None = None


@dataclass
class PreparedItem:
    """What one source item gave: slices, or why it gave none."""

    #: in source order; a Problem stands for a slice preprocessing rejected
    slices: list[PreparedSlice | Problem] = field(default_factory=list)
    skipped: Problem | None = None   # the item has nothing for this dataset
    problem: Problem | None = None   # the item's file(s) could not be used


def label_counts(labels: np.ndarray) -> np.ndarray:
    """int64 pixel counts of the label values 0..max in ``labels``."""
    # a compare-and-count per value present beats bincount's cast of every pixel to intp
    highest = int(labels.max(initial=0))
    return np.array([np.count_nonzero(labels == value) for value in range(highest + 1)],
                    dtype=np.int64)


def prepare_item(
    source: DatasetSource, item: SourceItem, prep: Preprocessing, encoding: str | None
) -> PreparedItem:
    """Load ``item`` from ``source`` and preprocess its slices; user errors become Problems."""
    try:
        loaded = source.load(item)
    except SkipItem as skip:
        return PreparedItem(skipped=Problem(item.name, str(skip)))
    except DLPError as exc:
        return PreparedItem(problem=Problem(str(getattr(exc, "path", item.name)),
                                            getattr(exc, "reason", str(exc))))
    prepared = PreparedItem()
    for name, image, labels in loaded:
        try:
            features = preprocess_slice(image, prep)
            label_plane = preprocess_label(labels, prep)
        except DLPError as exc:
            prepared.slices.append(Problem(name, str(exc)))
            continue
        datum = encode_datum(features, 0, encoding) if encoding else None
        prepared.slices.append(
            PreparedSlice(name, features, label_plane, label_counts(label_plane), datum)
        )
    return prepared


@dataclass(frozen=True)
class _InArena:
    """Where a worker left an array in the shared arena (it travels instead of the pixels)."""

    offset: int
    dtype: str
    shape: tuple[int, ...]


class _Arena:
    """Shared anonymous memory, inherited by forked workers, cut into one slot per chunk.

    Pixels travel through it rather than through the result pipe: a pipe moves 64 KiB
    per wake-up of the reader, which on a loaded machine costs more than preparing them.
    """

    def __init__(self, slots: int, slot_bytes: int) -> None:
        self.slots, self.slot_bytes = slots, slot_bytes
        # pages are only committed when written: a generous size costs address space only
        self._memory = mmap.mmap(-1, slots * slot_bytes)

    def pack(self, items: list[PreparedItem], slot: int) -> None:
        """Move the arrays of ``items`` into ``slot`` (those that fit; the rest stay inline)."""
        used, end = slot * self.slot_bytes, (slot + 1) * self.slot_bytes
        for ready in _slices(items):
            for name in ("features", "labels"):
                array = np.ascontiguousarray(getattr(ready, name))
                if used + array.nbytes > end:
                    return
                self._memory[used:used + array.nbytes] = memoryview(array).cast("B")
                setattr(ready, name, _InArena(used, array.dtype.str, array.shape))
                used += array.nbytes

    def unpack(self, items: list[PreparedItem]) -> None:
        """Give ``items`` back the arrays :meth:`pack` left in the arena, as read-only
        views: valid until the slot is handed out again (the consumer copies the pixels
        into its records anyway)."""
        for ready in _slices(items):
            for name in ("features", "labels"):
                where = getattr(ready, name)
                if isinstance(where, _InArena):
                    array = np.frombuffer(self._memory, dtype=where.dtype,
                                          count=math.prod(where.shape), offset=where.offset)
                    array.flags.writeable = False
                    setattr(ready, name, array.reshape(where.shape))

    def close(self) -> None:
        # a view the consumer still holds keeps the mapping alive until it is dropped
        with contextlib.suppress(BufferError):
            self._memory.close()


def _slices(items: list[PreparedItem]) -> Iterator[PreparedSlice]:
    return (ready for item in items for ready in item.slices
            if isinstance(ready, PreparedSlice))


@dataclass(frozen=True)
class _Job:
    """Everything a worker needs, inherited through fork (never pickled)."""

    source: DatasetSource
    items: list[SourceItem]
    prep: Preprocessing
    encoding: str | None
    chunk_size: int

    @property
    def chunks(self) -> int:
        return -(-len(self.items) // self.chunk_size)

    def run(self, start: int, stop: int) -> list[PreparedItem]:
        return [prepare_item(self.source, item, self.prep, self.encoding)
                for item in self.items[start:stop]]

    def run_chunk(self, chunk: int, first: int) -> list[PreparedItem]:
        """Chunk ``chunk`` of the items from index ``first`` on."""
        start = first + chunk * self.chunk_size
        return self.run(start, min(start + self.chunk_size, len(self.items)))


@dataclass
class _Shared:
    """The coordination state parent and workers share (all inherited through fork)."""

    arena: _Arena
    #: one token per free arena slot: a worker takes one before it claims a chunk, the
    #: parent returns it when it has consumed a chunk (in order, so chunk c's slot
    #: c % slots was last used by chunk c - slots, already consumed)
    free_slots: Any
    #: the next chunk to claim; the parent sets it past the end to stop the workers
    next_chunk: Any


def _work(job: _Job, shared: _Shared, first: int, results: Connection) -> None:
    """A worker's life: claim chunks, prepare them, leave pixels in the arena, report."""
    # Ctrl+C reaches the whole process group: the builder's process handles it and
    # stops the workers; they must not print tracebacks of their own
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # objects inherited from the parent are never garbage here: keeping the collector
    # off them spares copying every page it would touch (copy-on-write after fork)
    gc.freeze()
    try:
        while True:
            shared.free_slots.acquire()
            with shared.next_chunk.get_lock():
                chunk = shared.next_chunk.value
                shared.next_chunk.value = chunk + 1
            if chunk >= job.chunks:
                results.send(("done", None))
                return
            items = job.run_chunk(chunk, first)
            shared.arena.pack(items, chunk % shared.arena.slots)
            results.send((chunk, items))
    except (BrokenPipeError, EOFError):
        return  # the parent stopped listening: it is shutting the workers down
    except BaseException as exc:  # reported to the parent, which raises it
        with contextlib.suppress(BrokenPipeError, EOFError):
            results.send(("error", _transportable(exc)))


def _transportable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a RuntimeError carrying its traceback."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        text = "".join(traceback.format_exception(exc))
        return RuntimeError(f"a worker preparing slices failed:\n{text}")


def _fork_context() -> multiprocessing.context.BaseContext | None:
    if not sys.platform.startswith("linux"):
        return None
    if "fork" not in multiprocessing.get_all_start_methods():
        return None
    return multiprocessing.get_context("fork")


def available_cores() -> int:
    """CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


@dataclass(frozen=True)
class _CpuSample:
    when: float  # time.monotonic()
    busy: float  # CPU seconds every process on the machine has used (since boot)
    own: float   # CPU seconds this process and its finished workers have used


def _cpu_sample() -> _CpuSample | None:
    """Now's CPU counters, from Linux's /proc/stat; None where there is none."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            ticks = [int(value) for value in handle.readline().split()[1:9]]
        per_second = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    # user nice system idle iowait irq softirq steal: all but idle and iowait is work
    busy = (sum(ticks) - ticks[3] - ticks[4]) / per_second
    times = os.times()
    own = times.user + times.system + times.children_user + times.children_system
    return _CpuSample(time.monotonic(), busy, own)


_last_sample: _CpuSample | None = None


def busy_elsewhere() -> float:
    """Cores other processes keep busy: measured since this process's previous build
    when that was under a minute ago (its own CPU time subtracted), else the system's
    1-minute load average."""
    global _last_sample
    now = _cpu_sample()
    previous, _last_sample = _last_sample, now
    if now is not None and previous is not None and 0.05 < now.when - previous.when < 60:
        others = (now.busy - previous.busy) - (now.own - previous.own)
        return max(others / (now.when - previous.when), 0.0)
    try:
        return max(os.getloadavg()[0], 0.0)
    except OSError:
        return 0.0


def resolve_workers(requested: int | None, item_count: int) -> int:
    """Processes to prepare ``item_count`` items, this one included (0: this one alone).

    ``requested`` None chooses more than one when it can help: a build of at least
    :data:`MIN_ITEMS_FOR_WORKERS` items with two or more cores idle (one process per
    idle core, up to :data:`MAX_AUTO_WORKERS`).  On busy cores workers only add their
    own cost: Linux shares the CPU between sessions, not processes, so more processes
    get no more of it.  ``requested`` 0 or 1 prepares in-process; N uses N processes.
    """
    if _fork_context() is None or item_count < 2:
        return 0
    if requested is None:
        if item_count < MIN_ITEMS_FOR_WORKERS:
            return 0
        idle = int(available_cores() - busy_elsewhere() + 0.5)
        return min(idle, MAX_AUTO_WORKERS) if idle >= 2 else 0
    return requested if requested >= 2 else 0


class SlicePreparer:
    """Prepared items of ``items`` in order, from ``workers`` processes in all.

    ``workers`` counts this process: 0 or 1 prepares everything here; N forks N - 1
    worker processes and this process prepares chunks too whenever no result is
    waiting to be consumed, so no core idles while it writes.  Iterate once; an
    item's arrays may be read-only views of memory the workers share, valid until the
    next item is asked for (copy what must outlive that).  Use as a context manager:
    leaving it (normally, on an error or a cancel) stops the workers and frees their
    shared memory.
    """

    def __init__(
        self,
        source: DatasetSource,
        items: list[SourceItem],
        prep: Preprocessing,
        encoding: str | None = None,
        workers: int = 0,
    ) -> None:
        self.workers = workers
        # several chunks per process balance the load; a few items per chunk keep the
        # per-message cost small
        chunk_size = max(1, min(_MAX_CHUNK, len(items) // (max(workers, 1) * 8)))
        self._job = _Job(source, items, prep, encoding, chunk_size)
        self._first = 0
        self._processes: list[multiprocessing.process.BaseProcess] = []
        self._connections: list[Connection] = []
        self._shared: _Shared | None = None

    def __enter__(self) -> SlicePreparer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[PreparedItem]:
        count = len(self._job.items)
        if self.workers < 2 or count < 2:
            for index in range(count):
                yield from self._job.run(index, index + 1)
            return
        # the first item is prepared here before the workers fork: whatever it imports
        # or caches on first use (pydicom, decoders) is then inherited, not redone in each
        yield from self._job.run(0, 1)
        self._start_workers(first=1)
        yield from self._receive()

    def _slice_bytes(self) -> int:
        """Room for one slice's features and labels; a guess when the size is not fixed."""
        prep = self._job.prep
        if prep.size is None or prep.size_policy == "none":
            return 4 << 20
        height, width = prep.size
        return height * width * (prep.channels * (1 if prep.bits == 8 else 4) + 1)

    def _start_workers(self, first: int) -> None:
        context = _fork_context()
        assert context is not None, "workers need fork (resolve_workers checks)"
        self._first = first
        slots = self.workers * _CHUNKS_AHEAD_PER_WORKER
        self._shared = shared = _Shared(
            _Arena(slots, self._job.chunk_size * self._slice_bytes()),
            context.Semaphore(slots), context.Value("q", 0),
        )
        for index in range(self.workers - 1):
            # each pipe is made just before its worker forks and the parent closes its
            # sending end at once: a worker that dies then shows as end-of-file
            receiving, sending = context.Pipe(duplex=False)
            process = context.Process(target=_work, args=(self._job, shared, first, sending),
                                      name=f"dlp-slices-{index}", daemon=True)
            process.start()
            sending.close()
            self._processes.append(process)
            self._connections.append(receiving)

    def _claim(self) -> int | None:
        """Claim the next chunk for this process, if one is left and the window allows."""
        assert self._shared is not None
        shared = self._shared
        if not shared.free_slots.acquire(False):
            return None
        with shared.next_chunk.get_lock():
            chunk = shared.next_chunk.value
            if chunk < self._job.chunks:
                shared.next_chunk.value = chunk + 1
                return chunk
        shared.free_slots.release()
        return None

    def _receive(self) -> Iterator[PreparedItem]:
        assert self._shared is not None
        shared, waiting = self._shared, list(self._connections)
        # chunk -> (items, whether their pixels wait in the arena)
        arrived: dict[int, tuple[list[PreparedItem], bool]] = {}
        for chunk in range(self._job.chunks):
            while chunk not in arrived:
                ready = wait(waiting, timeout=0) if waiting else []
                if not ready:
                    mine = self._claim()
                    if mine is not None:  # nothing to consume: prepare a chunk here
                        arrived[mine] = (self._job.run_chunk(mine, self._first), False)
                        continue
                    if not waiting:
                        raise WorkerError("the workers preparing slices stopped before the end")
                    ready = wait(waiting)
                for connection in ready:
                    self._read(connection, waiting, arrived)
            items, in_arena = arrived.pop(chunk)
            if in_arena:
                shared.arena.unpack(items)
            yield from items
            # the consumer asks for the next item: it is done with this chunk's pixels
            shared.free_slots.release()

    @staticmethod
    def _read(
        connection: Connection,
        waiting: list[Connection],
        arrived: dict[int, tuple[list[PreparedItem], bool]],
    ) -> None:
        try:
            key, payload = connection.recv()
        except EOFError:
            raise WorkerError(
                "a worker process preparing slices died (out of memory or killed); "
                "retry with --workers 1 to build in one process"
            ) from None
        if key == "done":
            waiting.remove(connection)
        elif key == "error":
            raise payload
        else:
            arrived[key] = (payload, True)

    def close(self) -> None:
        """Stop the workers (they finish the chunk in hand) and free the shared memory."""
        if self._shared is None:
            return
        shared, self._shared = self._shared, None
        with shared.next_chunk.get_lock():
            shared.next_chunk.value = 1 << 62
        for _ in self._processes:
            shared.free_slots.release()  # a worker waiting for a slot wakes and sees the end
        for connection in self._connections:
            connection.close()  # a worker blocked sending a large result gets a broken pipe
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        self._processes.clear()
        self._connections.clear()
        shared.arena.close()
