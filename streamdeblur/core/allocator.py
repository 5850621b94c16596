"""The C heap's settings for a process that handles frame-sized buffers (glibc only)."""

from __future__ import annotations

import ctypes
import platform


def tune_allocator() -> bool:
    """Keep freed frame-sized buffers in the heap for reuse (glibc only; a no-op elsewhere).

    By default glibc gives large freed blocks back to the kernel, and the next frame
    page-faults them in again (the kernel zeroing every page): with UHDVD on a CPU that cost
    as much system time as the model's arithmetic cost user time (docs/benchmarks.md, issue
    #13). Three settings, each needed:

    - M_MMAP_MAX = 0: no block gets a mapping of its own. Raising M_MMAP_THRESHOLD is not
      enough: glibc caps it at 32 MiB, and UHDVD's activations are ~50 MB already at
      320x180 (any model's are at 4K), so they were mapped and unmapped on every call.
    - M_TRIM_THRESHOLD = 2 GiB: the free top of the heap is not given back after a frame.
    - M_ARENA_MAX = 1: every thread allocates from the main heap. The model runs on the
      pipeline's process thread, whose own arena is made of 64 MiB heaps: a larger block
      cannot come from them, so glibc maps it anyway (whatever M_MMAP_MAX says) and unmaps
      it when freed. A thread keeps the arena it got at its first allocation, so this is
      set before the pipeline's threads start (the CLI does it in `main`, before any command).

    Freed memory then stays in the process: resident memory stays at its peak between frames
    (the peak itself rose by at most 2% in the measured runs, and fell in most). When the heap
    cannot grow, glibc still falls back to mmap, so large requests do not fail. It is a
    process-wide setting, made once by the command-line tool (and the CPU benchmarks).
    """
    if platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8
    settings = ((m_mmap_max, 0), (m_trim_threshold, 2**31 - 1), (m_arena_max, 1))
    applied = [libc.mallopt(param, value) == 1 for param, value in settings]  # all of them, even if one fails
    return all(applied)
