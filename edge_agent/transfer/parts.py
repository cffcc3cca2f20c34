"""The parts of one pass: the source's body through the splitter, one gate slot for the buffer being filled, and
the sender's threads. The executor runs the attempt's ``ReadPart`` / ``SendPart`` / ``SkipPart`` /
``CollectSends`` / ``CloseParts`` commands on it.

Slots: one is taken before a part buffer starts to fill and goes with the part to its sender thread, which
releases it when S3 acknowledged the part (or gave up); a skipped part's slot fills the next buffer. So at
most ``concurrency`` part buffers exist across all files, and the encoder waits on the gate (backpressure).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator

from edge_agent.engine.commands import PartSent
from edge_agent.engine.partsize import PartPlan
from edge_agent.engine.splitter import Part, PartSplitter
from edge_agent.engine.upload import md5_hex
from edge_agent.transfer.context import Context, Source
from edge_agent.transfer.gate import Stopped
from edge_agent.transfer.sender import PartSender, SendFailed


class PartStream:
    def __init__(
        self,
        ctx: Context,
        src: Source,
        sender: tuple[str, str, str],  # path, key, upload id
        plan: PartPlan,
        cancelled: Callable[[], bool],
    ) -> None:
        self._ctx = ctx
        self._src = src
        self._cancelled = cancelled
        self._gone = threading.Event()  # this pass is over: its part threads stop retrying
        self._sender = PartSender(ctx, *sender, lambda: self._gone.is_set() or cancelled())
        self._splitter = PartSplitter(plan, src.header_size)
        self._parts = self._produce()
        self._have_slot = False
        self._part: tuple[Part, str] | None = None  # read, not yet sent or skipped; with its MD5

    def _take_slot(self) -> None:
        if not self._have_slot:
            self._ctx.gate.acquire(self._cancelled)
            self._have_slot = True

    def _produce(self) -> Generator[Part, None, None]:
        for block in self._src.body():
            self._take_slot()
            for part in self._splitter.feed(block):
                yield part
                del part
                self._take_slot()  # the rest of this block starts the next buffer: it needs a slot first
            del block
        yield from self._splitter.finish(self._src.header())
        if self._have_slot:
            self._ctx.gate.release()
            self._have_slot = False

    def read(self) -> tuple[Part, str] | None:
        """The next part and its MD5 (kept until it is sent or skipped); None when the body is done."""
        part = next(self._parts, None)
        self._part = None if part is None else (part, md5_hex(part.data))
        return self._part

    def _take(self, number: int) -> tuple[Part, str]:
        taken, self._part = self._part, None
        if taken is None or taken[0].number != number:
            raise RuntimeError(f"part {number} is not the part just read")
        return taken

    def send(self, number: int) -> None:
        part, md5 = self._take(number)
        self._take_slot()
        self._sender.send(part.number, part.offset, part.data, md5)  # the sender releases the slot
        self._have_slot = False

    def skip(self, number: int) -> None:
        self._take(number)  # its slot fills the next buffer

    def collect(self, wait: bool) -> PartSent | SendFailed | None:
        """A finished send; None when none has finished and not ``wait``. Waiting ends in Stopped on a stop."""
        while True:
            try:
                return self._sender.results.get(timeout=0.5) if wait else self._sender.results.get_nowait()
            except queue.Empty:
                if not wait:
                    return None
                if self._cancelled():
                    raise Stopped from None

    def close(self) -> None:
        """Sends in flight stop retrying; wait for their threads. Idempotent."""
        self._part = None
        self._parts.close()
        if self._have_slot:
            self._ctx.gate.release()
            self._have_slot = False
        self._gone.set()
        self._sender.join(timeout=self._ctx.config.stall_timeout_s + 5)
