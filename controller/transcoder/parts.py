"""The parts of a multipart upload whose first bytes (the FLAC header) are final only at the end (pure).

Part 1 is the header plus the first ``part_size`` body bytes, held in memory and yielded LAST; parts 2..N are
``part_size`` body bytes each (the last one shorter), yielded as soon as they are full. So every part but the
last-numbered is at least ``part_size`` (S3's 5 MiB minimum holds) and memory stays at about two parts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator


def split(body: Iterable[bytes], header: Callable[[], bytes], part_size: int) -> Iterator[tuple[int, bytes]]:
    """(part number, bytes) for the object ``header() + body``; ``header`` is called after ``body`` is done."""
    if part_size < 1:
        raise ValueError(f"part size must be positive, got {part_size}")
    held = bytearray()
    buf = bytearray()
    number = 2
    for block in body:
        view = memoryview(block)
        take = min(len(view), part_size - len(held))
        if take > 0:
            held += view[:take]
            view = view[take:]
        buf += view
        while len(buf) >= part_size:
            yield number, bytes(buf[:part_size])
            del buf[:part_size]
            number += 1
    if buf:
        yield number, bytes(buf)
    yield 1, header() + bytes(held)
