"""Run the first bytes of an iterator of byte blocks in a thread, before anyone reads them.

``Ahead(blocks, limit)`` starts a thread at once that pulls blocks from ``blocks`` until ``limit`` bytes are
buffered (or the iterator ends or fails), then stops. Iterating the ``Ahead`` (once) yields the buffered blocks
as they come, then continues ``blocks`` in the reader's own thread: memory stays at ``limit`` plus one block,
and after the head nothing runs in the background. The thread never touches ``blocks`` after its last ``next``,
so the hand-over is safe. An exception in the thread is raised to the reader at that point of the stream.
``close()`` stops the thread (after the block it is on) and closes ``blocks``.

``edgefleet upload`` uses it to encode the first parts of its first file while the S3 client loads
(``fleet_audio.headstart``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator

#: what the thread puts after its last block: the iterator ended, or the rest is the reader's
_END, _HANDOVER = object(), object()


class Ahead:
    def __init__(self, blocks: Iterator[bytes], limit: int, name: str = "encode-ahead") -> None:
        self._blocks = blocks
        self._limit = limit
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._taken = False
        self._thread = threading.Thread(target=self._fill, name=name, daemon=True)
        self._thread.start()

    def _fill(self) -> None:
        buffered = 0
        try:
            while buffered < self._limit and not self._stop.is_set():
                block = next(self._blocks, None)
                if block is None:
                    self._queue.put(_END)
                    return
                self._queue.put(block)
                buffered += len(block)
            self._queue.put(_HANDOVER)
        except BaseException as exc:  # the reader gets it where the stream broke
            self._queue.put(exc)

    @property
    def taken(self) -> bool:
        """Iterated already (or being iterated)."""
        return self._taken

    def __iter__(self) -> Generator[bytes, None, None]:
        if self._taken:
            raise RuntimeError("an Ahead is iterated once")
        self._taken = True
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if item is _HANDOVER:
                self._thread.join()
                yield from self._blocks
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item

    def close(self) -> None:
        """Stop the thread after its current block, wait for it, close ``blocks``. Idempotent; not while another
        thread iterates."""
        self._stop.set()
        self._thread.join()
        close = getattr(self._blocks, "close", None)
        if close is not None:
            close()
