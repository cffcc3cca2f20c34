"""Keep part buffers out of the malloc heap.

glibc raises its mmap threshold dynamically (up to 32 MiB) after a large mmapped block is freed, so from the
second part on, 8-32 MiB part buffers would come from the (per-thread) heaps, where freed space is not always
given back: the RSS then creeps up with the file size. Pinning the threshold at 1 MiB makes every part buffer
its own mmap, returned to the system the moment the part is acknowledged. No-op where glibc is absent.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

M_MMAP_THRESHOLD = -3
THRESHOLD = 1024 * 1024
_done = False


def pin_mmap_threshold() -> bool:
    global _done
    if _done:
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _done = bool(libc.mallopt(M_MMAP_THRESHOLD, THRESHOLD))
    except (OSError, AttributeError):
        logging.getLogger("edgefleet.upload").debug("mallopt not available; part buffers use the default malloc")
    return _done
