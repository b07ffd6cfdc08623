"""The process a cohort trains in: torch's CPU threads for a call, and what mlplab's own
processes (the console script, a sweep worker) set once, after their imports, so that
later cohorts do not pay for the garbage collector or the C library's memory handling.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator

import torch


def freeze_imports(trim_mb: int = 256) -> None:
    """For a process of mlplab's own (the console script, a sweep worker): move what the
    imports made (torch's ~400k objects) out of the garbage collector's sight, so its full
    collections scan only what training makes. Without this one lands every few cohorts
    and adds ~150 ms to it (W1 compiled: 366-504 ms cohorts among 210-250 ms ones);
    imported modules are never garbage anyway. Also :func:`keep_freed_memory` with
    ``trim_mb``. Not for a process mlplab is a library in."""
    gc.freeze()
    keep_freed_memory(trim_mb)


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory(trim_mb: int = 256, mmap_mb: int = 32) -> bool:
    """Have glibc's malloc keep freed memory for reuse instead of handing it back to the
    kernel at once: blocks up to ``mmap_mb`` come from the heap (not a mapping of their
    own, unmapped when freed), and the heap is trimmed only when more than ``trim_mb`` at
    its top are free. A cohort's records are a few large arrays (W1's step rows: 17.6
    MB); given back and asked for again, every later cohort of the process pays a page
    fault per 4 KiB it writes fresh (W1 compiled with the probe: ~4700 faults, ~2 us
    each on the development machine, against none). True if set; False where the C
    library has no mallopt (nothing changes)."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):          # no C library to ask, or no mallopt in it
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_mb * 2 ** 20)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, trim_mb * 2 ** 20))


@contextmanager
def cpu_threads(threads: int | None, device: torch.device) -> Iterator[None]:
    """torch's intra-op CPU threads set to ``threads`` inside, restored after."""
    before = torch.get_num_threads()
    if threads is None or device.type != "cpu" or threads == before:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
