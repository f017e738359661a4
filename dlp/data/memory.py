"""Let glibc keep freed memory for reuse instead of handing it back at once.

A dataset build allocates and frees a few hundred KiB per slice (float images,
Datum bytes, LMDB pages).  glibc's defaults return freed memory to the kernel as
soon as 128 KiB lie free at the top of the heap and serve blocks above a threshold
that starts at 128 KiB from fresh mappings; every page of that memory then faults
again on its next use, which on this class of (virtual) machine costs a few
microseconds per 4 KiB — thousands of faults per build, ~5-10 % of its time.

glibc raises both limits by itself once a program frees one large block (the
"dynamic mmap threshold", up to 32 MiB); :func:`keep_freed_memory` sets that
converged state up front: blocks below 32 MiB come from the heap and up to 64 MiB of
free heap is kept.  It is process-wide, harmless to other code (a long-running numpy
or torch program ends up there anyway) and a no-op where glibc is not the allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt(3) parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 << 20   # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
_TRIM_THRESHOLD = 2 * _MMAP_THRESHOLD  # what glibc's dynamic adjustment pairs with it

_done = False


def keep_freed_memory() -> bool:
    """Set glibc's mmap/trim thresholds to their converged values, once per process.

    Returns whether they are set (False off Linux/glibc).
    """
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other allocators have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _done = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
                 and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    return _done
