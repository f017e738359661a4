"""Let glibc keep freed memory for reuse instead of faulting it in again.

glibc's malloc serves blocks above its (self-adjusting) mmap threshold with fresh
mappings and hands memory back to the kernel as soon as 128 KiB lie free at the top
of the heap; every page of that memory then faults again on its next use, which on
this class of (virtual) machine costs microseconds per 4 KiB.  Measured here:

* a dataset build allocates a few hundred KiB per slice: thousands of faults per
  build, 5-10 % of its time;
* the same training loop took 0 to 850 page faults per iteration in different
  processes (the self-adjusting threshold depends on the allocation history), up
  to 20 % of its time;
* a 256x256 FCN's batch-of-8 inference took 60,000 faults per forward, 35 % of its
  time: its 76 MB conv1 output is above any mmap threshold glibc accepts.

:func:`tune_allocator` therefore serves every block from the heap and keeps up to
512 MiB of free heap for the next pass; peak memory is unchanged, and
:func:`release_free_memory` hands the free pages back when a long job ends.

Threads other than the main one get arenas of their own, whose heaps hold at most
64 MiB: a larger block is mapped afresh on every allocation there, whatever the
parameters (the same batch-of-8 forward in a worker thread: 51,000 faults each).
:func:`tune_allocator` also limits glibc to one arena, the main heap, for every
thread; that holds for threads that have not allocated yet, so DLP's entry points
call it first thing.  The threads that allocate (image reading, the engine, result
writing) are few, so sharing one arena's lock costs nothing measurable.

All of it is process-wide and a no-op where glibc is not the allocator (macOS,
Windows, musl).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import platform
import threading

# mallopt(3) parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
#: glibc's largest accepted mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
MMAP_THRESHOLD = 32 * 1024 * 1024
#: free memory at the heap top kept for reuse before it is returned to the kernel
TRIM_THRESHOLD = 512 * 1024 * 1024

_lock = threading.Lock()
_allocator_state: bool | None = None  # None: not tried yet


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def tune_allocator() -> bool:
    """Set glibc's malloc parameters once per process; True when they are set."""
    global _allocator_state
    with _lock:
        if _allocator_state is None:
            _allocator_state = _set_malloc_parameters()
        return _allocator_state


def _set_malloc_parameters() -> bool:
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        and mallopt(_M_MMAP_MAX, 0) and mallopt(_M_ARENA_MAX, 1)
    )


def release_free_memory() -> None:
    """Return the heap's free pages to the kernel (after a batch, when a model closes)."""
    libc = _libc()
    if libc is not None:
        with contextlib.suppress(AttributeError):  # a glibc without malloc_trim
            libc.malloc_trim(0)
