"""Keep freed tensor memory in the process instead of handing it back to the kernel (glibc malloc).

A forward pass allocates and frees the same few large activations over and over (a packed chunk's
(2,048, 1,536) fp32 feed-forward states are 12.6 MB). By default glibc serves blocks that large with
a fresh `mmap` and unmaps them on free, or trims them off the heap's top, so every layer's outputs
land on pages the kernel has to fault in and zero again: on the 2-core AVX2 machine that was about
a quarter of an int8 re-ranking. Raising the mmap and trim thresholds makes glibc reuse the freed
blocks; this is the in-process form of what PyTorch's CPU performance guide gets by preloading
jemalloc or tcmalloc. Measured with the bench's 100 pairs on that machine (int8 engine, 2 threads):
27-30 pairs/s before, 36-40 after.

The cost is resident memory: freed blocks stay with the process up to the trim threshold instead of
going back to the system, bounded by the largest working set a request has needed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache

# mallopt parameters, from glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc refuses mmap thresholds above 32 MiB on 64-bit (HEAP_MAX_SIZE / 2); our largest per-chunk
# tensors are well under it. Blocks above it still come from mmap, as before.
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 1 << 30


@lru_cache(maxsize=1)
def retain_freed_memory() -> bool:
    """Set glibc's mmap threshold to 32 MiB and its trim threshold to 1 GiB for this process, once.

    Returns whether both took effect: False where the C library is not glibc (musl, macOS, Windows),
    which then keeps its own behaviour. Never raises.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt, _ = libc.mallopt, libc.gnu_get_libc_version  # only glibc has both
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
