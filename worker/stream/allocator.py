"""glibc's allocator told to keep the classifier's big buffers instead of handing them back.

Each batch moves a few MB through buffers of that size: record batches built in C, produce
requests joined and framed, fetch responses read and copied out. glibc serves an allocation above
its mmap threshold (128 KB at start, raised as such blocks are freed, to 32 MB at most) with a
fresh ``mmap``, and gives the heap's top back to the kernel once more than twice that threshold is
free. Either way the next buffer lands on new pages, which the kernel zeroes and maps one fault
at a time. Measured on a 200,000-MO STOP storm (``perf stat -e minor-faults`` on the classifier
of ``python -m bench.peers --contenders classifier --mixes storm``): 100,000 minor faults a run
with glibc's defaults, 35,000 with the thresholds below (about the run's RSS in pages: what is
left is the memory it keeps); six alternated rounds: 68.9-79.2k (median 76.2k) -> 75.0-86.5k
(80.7k) msgs/s, CPU-s per million MOs 12.5 -> 11.8 (medians), peak RSS 152-161 -> 167-174 MB.

Applied once at start by the classifier. Not where the operator tuned the allocator already
(``MALLOC_*_`` variables, ``GLIBC_TUNABLES``), nor off glibc (musl, macOS): there it does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
from collections.abc import Mapping

log = logging.getLogger("optout.classifier")

#: glibc's ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Blocks below this come from the heap and are reused: glibc's own dynamic ceiling, reached from
#: the start instead of after the first frees.
MMAP_THRESHOLD = 32 * 1024 * 1024
#: Free heap kept before its top is given back: two batches' buffers and room to spare.
TRIM_THRESHOLD = 64 * 1024 * 1024
#: Set by the operator: their allocator settings win.
_OPERATOR_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")


def keep_big_buffers(environ: Mapping[str, str] = os.environ) -> bool:
    """Set glibc's mmap and trim thresholds (above); False where it is not glibc or the operator
    set their own. Process-wide: call it once, at start."""
    if any(name in environ for name in _OPERATOR_SETTINGS):
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    )
    if not done:
        log.info("glibc refused the allocator thresholds: big buffers are mapped afresh each batch (slower)")
    return done
