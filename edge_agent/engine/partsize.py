"""Part sizing, one pure function (like rclone's ``chunksize.Calculator`` / s3transfer's ``ChunksizeAdjuster``).

S3 rules (``fleet_protocol.assignment``): every part but the last is >= 5 MiB, at most 10,000 parts, a part is
<= 5 GiB. Our rules on top:
- part 1 holds the object's header, which is final only at the end, so part 1 is held in memory for the
  whole file and uploaded last. It is kept as small as S3 allows (5 MiB, or the header plus 1 MiB when the
  header is bigger) so holding it costs little; a raw upload (no header) has no held part;
- part 2, the first part sent when part 1 is held, is as small as S3 allows too (5 MiB): the link gets its
  first bytes after 10 MiB of output, not 5 MiB + a whole part (issue 10, the link-bound run). A plan
  journaled before ``second`` existed reads with ``second=0``: part 2 at ``size``, as it was started;
- the other parts use the requested size (a valid ``part_size``: the assignment's, or the size a resumed upload
  was started with), raised, from ``size_bound`` with a margin (FLAC can come out a little bigger than its WAV),
  to whatever keeps the count <= 10,000;
- sizes are whole MiB.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleet_protocol.assignment import MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, PART_SIZE, MiB

MARGIN_NUM, MARGIN_DEN = 21, 20  # size_bound x 1.05 ...
MARGIN_ADD = MiB  # ... + 1 MiB


class ObjectTooLarge(ValueError):
    """The object cannot fit in 10,000 parts of at most 5 GiB."""


@dataclass(frozen=True)
class PartPlan:
    first: int  # size of part 1 (object bytes [0, first)), the held part when ``held``
    size: int  # size of parts 2..N (the last one may be smaller)
    held: bool  # part 1 waits for the header and goes last
    second: int = 0  # size of part 2; 0: ``size`` (a plan journaled before part 2 had its own size)

    def part_size(self, number: int) -> int:
        """The size of part ``number`` (the object's last part may be smaller)."""
        if number == 1:
            return self.first
        return self.second or self.size if number == 2 else self.size

    def capacity(self) -> int:
        """The largest object this plan can store."""
        return self.first + self.part_size(2) + (MAX_PARTS - 2) * self.size


def _ceil_mib(n: int) -> int:
    return -(-n // MiB) * MiB


def plan_parts(requested: int, size_bound: int, header_size: int) -> PartPlan:
    PART_SIZE.check(requested)
    if size_bound < 0 or header_size < 0:
        raise ValueError(f"bad part plan input: size_bound={size_bound} header={header_size}")
    bound = size_bound * MARGIN_NUM // MARGIN_DEN + MARGIN_ADD
    held = header_size > 0
    size = _ceil_mib(requested)  # (5 GiB is whole MiB: still a valid part size)
    first = max(MIN_PART_SIZE, _ceil_mib(header_size + MiB)) if held else size
    fixed = (first, MIN_PART_SIZE) if held else (size,)  # the parts whose size does not grow
    needed = _ceil_mib(-(-max(0, bound - sum(fixed)) // (MAX_PARTS - len(fixed))))
    size = max(size, needed)
    first, second = (first, MIN_PART_SIZE) if held else (size, size)
    if size > MAX_PART_SIZE or first > MAX_PART_SIZE:
        raise ObjectTooLarge(f"an object of up to {size_bound} bytes does not fit in {MAX_PARTS} parts of 5 GiB")
    return PartPlan(first=first, size=size, held=held, second=second)
