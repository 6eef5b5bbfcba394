"""glibc heap settings for training, and giving freed heap pages back to the OS; no-ops elsewhere.

PyTorch's CPU allocator has no cache: every training step mallocs and frees its activation and
gradient buffers (tens of MB for the default model). glibc serves blocks that large with a fresh
mmap and returns them to the OS on free, so each step page-faults its whole working set in again.
Keeping large blocks in the heap and not trimming its top lets every step reuse the last step's
pages (docs/performance.md has the measurements). The cost is that freed memory stays resident
until a trim, so the app trims when a run or a generation ends (release_free_heap).

Keeping only works in glibc's main heap: a thread's own arena lives in 64 MB heaps that are unmapped
as soon as they are empty, so training in a worker thread (as the TUI does) would gain little. One
arena for the process puts every thread on the main heap; that must be set before worker threads
first allocate, so importing lstmtui.core does it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from typing import Any

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
# Blocks below this come from the heap and are reused; larger ones (models far past the defaults)
# are still mapped and unmapped per use.
MMAP_THRESHOLD = 256 << 20
# Free memory at the heap's top kept for the next step instead of being returned at once.
TRIM_THRESHOLD = 512 << 20

_libc: Any = None
_kept = False


def _glibc() -> Any:
    global _libc
    if _libc is None:
        _libc = False
        # LSTMTUI_HEAP=glibc leaves glibc's own heap behaviour alone (and is how it is measured).
        if sys.platform.startswith("linux") and os.environ.get("LSTMTUI_HEAP", "").lower() != "glibc":
            try:
                lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                lib.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
                lib.malloc_trim.argtypes = [ctypes.c_size_t]
                _libc = lib
            except (OSError, AttributeError):  # musl or another libc without these
                _libc = False
    return _libc


def keep_step_buffers() -> bool:
    """Let freed training buffers be reused from the heap instead of re-mapped every step; True if set."""
    global _kept
    libc = _glibc()
    if not libc:
        return False
    if not _kept:
        # The trim threshold first: setting either one turns off glibc's own adjustment of both.
        ok = libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        _kept = bool(ok)
    return _kept


def use_one_arena() -> bool:
    """Serve every thread from glibc's main heap (M_ARENA_MAX 1), where keep_step_buffers works; True if set."""
    libc = _glibc()
    return bool(libc and libc.mallopt(_M_ARENA_MAX, 1))


def release_free_heap() -> None:
    """Return the C heap's free pages to the OS (glibc's malloc_trim)."""
    libc = _glibc()
    if libc:
        libc.malloc_trim(0)
