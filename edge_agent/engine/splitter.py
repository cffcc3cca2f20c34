"""Object bytes in, numbered parts out.

The body (object bytes after the header) arrives in blocks of any size; parts come out as soon as they are
full, numbered 2, 3, ..., each of its plan's size (``PartPlan.part_size``). Part 1 (the header plus the first
body bytes) is held and comes out last, from :meth:`PartSplitter.finish`, once the header is known. Without a
header (raw upload) part 1 is an ordinary part and comes out first.

Memory: one part buffer being filled plus, when held, part 1's body bytes. A full buffer is handed out as is
(no copy); the next one is allocated only when the next byte arrives.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from edge_agent.engine.partsize import PartPlan
from fleet_protocol.assignment import MAX_PARTS


class TooManyParts(ValueError):
    """The object turned out bigger than its size bound allowed for."""


@dataclass(frozen=True, eq=False)
class Part:
    number: int
    offset: int  # object offset of the first byte
    data: bytearray


class PartSplitter:
    def __init__(self, plan: PartPlan, header_size: int) -> None:
        if plan.held != (header_size > 0) or header_size >= plan.first:
            raise ValueError(f"plan {plan} does not fit a header of {header_size} bytes")
        self._plan = plan
        self._header_size = header_size
        self._held = bytearray() if plan.held else None  # part 1's body bytes
        self._held_want = plan.first - header_size
        self._buf: bytearray | None = None
        self._fill = 0
        self._number = 2 if plan.held else 1
        self._offset = plan.first if plan.held else 0  # object offset of the current buffer
        self.body_bytes = 0
        self._finished = False

    def feed(self, block: bytes) -> Iterator[Part]:
        """Take the next body block; yields the parts it completes."""
        if self._finished:
            raise ValueError("feed() after finish()")
        view = memoryview(block)
        self.body_bytes += len(view)
        if self._held is not None and len(self._held) < self._held_want:
            take = min(len(view), self._held_want - len(self._held))
            self._held += view[:take]
            view = view[take:]
        while len(view):
            if self._buf is None:
                if self._number > MAX_PARTS:
                    raise TooManyParts(f"object needs more than {MAX_PARTS} parts with plan {self._plan}")
                self._buf = bytearray(self._plan.part_size(self._number))
                self._fill = 0
            take = min(len(view), len(self._buf) - self._fill)
            self._buf[self._fill : self._fill + take] = view[:take]
            self._fill += take
            view = view[take:]
            if self._fill == len(self._buf):
                yield self._emit()

    def _emit(self) -> Part:
        assert self._buf is not None
        if self._fill < len(self._buf):
            del self._buf[self._fill :]
        part = Part(self._number, self._offset, self._buf)
        self._offset += self._fill
        self._number += 1
        self._buf = None
        self._fill = 0
        return part

    def finish(self, header: bytes) -> Iterator[Part]:
        """The body is exhausted: yields the last body part (if partial) and then, when held, part 1."""
        if len(header) != self._header_size:
            raise ValueError(f"header is {len(header)} bytes, expected {self._header_size}")
        self._finished = True
        if self._buf is not None and self._fill:
            yield self._emit()
        if self._held is not None:
            first, self._held = self._held, None
            first[:0] = header  # in place: no second copy of the held part
            yield Part(1, 0, first)
        elif self._number == 1:  # an empty raw object: one empty part
            yield Part(1, 0, bytearray())

    def object_size(self) -> int:
        return self._header_size + self.body_bytes
