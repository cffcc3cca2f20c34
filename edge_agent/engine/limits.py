"""``Limits``: what the controller's assignment sets; it can change while the engine runs."""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.engine.windows import parse_windows

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    concurrency: int = 2  # max parts in flight (being filled or sent) across ALL files; 0 = paused
    part_size: int = 8 * MiB  # requested; raised to >= 5 MiB and to fit 10,000 parts
    windows: tuple[str, ...] = ()  # "HH:MM-HH:MM" local time; empty = always
    bandwidth_bps: int = 0  # bytes/s, 0 = no cap; one token bucket for the whole engine
    compression_level: int = 5  # FLAC 0-8, -1 = upload raw
    paused: bool = False
    upload_now: bool = False  # ignore windows

    def __post_init__(self) -> None:
        if self.concurrency < 0:
            raise ValueError(f"concurrency must be >= 0, got {self.concurrency}")
        if self.part_size <= 0:
            raise ValueError(f"part_size must be > 0, got {self.part_size}")
        if self.bandwidth_bps < 0:
            raise ValueError(f"bandwidth_bps must be >= 0, got {self.bandwidth_bps}")
        if not -1 <= self.compression_level <= 8:
            raise ValueError(f"compression_level must be -1..8, got {self.compression_level}")
        parse_windows(self.windows)  # raises ValueError on a malformed window

    @property
    def stopped(self) -> bool:
        """No new part may start (in-flight parts still finish)."""
        return self.paused or self.concurrency == 0
