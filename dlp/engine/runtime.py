"""CPU settings that make the engine's loops run at full speed.

Both are measured on this project's benchmarks, not folklore:

* glibc's malloc serves blocks above its (self-adjusting) mmap threshold with
  fresh mappings and trims the heap top once 128 KiB are free, so each pass
  re-faults its activation buffers page by page.  The same training loop took 0 to
  850 page faults per iteration in different processes (up to 20 % of its time);
  a 256x256 FCN's batch-of-8 inference took 60,000 per forward (35 % of its time:
  its 76 MB conv1 output is above any threshold glibc accepts).  So large blocks
  come from the heap too and freed memory stays there for the next pass; peak
  memory is unchanged, and :func:`release_free_memory` hands it back when a long
  job ends.
* Momentum histories and gradients decay into denormal floats, which x86 CPUs
  process up to ~100x slower; flushing them to zero made a small net's training
  iteration 10-15 % faster.  Values below 1.2e-38 do not change training.  The
  flag is scoped to the training loop: set for a whole process it sent SciPy's
  cKDTree (the Hausdorff distance) into endless recursion.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import platform
import threading
from collections.abc import Iterator

import torch

# mallopt parameters from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
#: glibc's largest accepted mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
MMAP_THRESHOLD = 32 * 1024 * 1024
#: free memory at the heap top kept for reuse before it is returned to the kernel
TRIM_THRESHOLD = 512 * 1024 * 1024

_lock = threading.Lock()
_allocator_state: bool | None = None  # None: not tried yet


def tune_allocator() -> bool:
    """Fix glibc's malloc thresholds once per process; True when they are set.

    Other C libraries (macOS, Windows, musl) manage this themselves: False.
    """
    global _allocator_state
    with _lock:
        if _allocator_state is None:
            _allocator_state = _set_malloc_thresholds()
        return _allocator_state


def _set_malloc_thresholds() -> bool:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        and mallopt(_M_MMAP_MAX, 0)
    )


def release_free_memory() -> None:
    """Return the heap's free pages to the kernel (after a batch, when a model closes)."""
    if not tune_allocator():
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


@contextlib.contextmanager
def denormals_flushed() -> Iterator[None]:
    """Flush denormal floats to zero in this thread while the block runs."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
