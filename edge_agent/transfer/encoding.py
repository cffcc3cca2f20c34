"""Each new file's compression level: the cost model (``fleet_plan.compression``) on this agent's own measurements.

Three modes (``Mode``):

- ``FORCED``: every new file at the limits' ``compression_level`` (``edgefleet upload --compression-level``);
- ``MODEL``: the model chooses among every level and raw, from the measured encode rates, ratios and link rate
  (the agent before its first assignment; ``edgefleet upload`` without a level). A limit whose level is below
  the default (the local thermal guard lowering it) caps the levels the model may use;
- ``WITHIN``: the controller chose the level (``compression_level`` of the assignment; raw stays raw); the agent
  decides only how many of the files in flight are FLAC at that level and how many raw (the model's mix, with
  its own fresher measurements): raw never costs more CPU, so the heat's cap still holds.

A file's level is chosen when it starts (in ``MODEL`` mode the engine starts one file until the link is measured,
``Engine._files_allowed``): FLAC while fewer than the plan's ``flac_files`` FLAC files are in flight (a file
counts from the moment its level is chosen, so files started together split as planned), else raw
(``fleet_plan.compression.Plan.level_for``). A resumed upload keeps the level it started with.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Mapping

from edge_agent.engine.encoderate import EncodeRates, as_list
from edge_agent.engine.limits import Limits
from fleet_plan.compression import LEVELS, Inputs, Plan, choose
from fleet_protocol.assignment import DEFAULT_COMPRESSION_LEVEL, RAW
from fleet_protocol.numbers import MAX_RATE_BPS, MAX_RATIO

log = logging.getLogger("edgefleet.upload")


class Mode(enum.Enum):
    FORCED = "forced"
    MODEL = "model"
    WITHIN = "within"


class CpuBusy:
    """How busy this process keeps the CPU share ONE thread may use (1 = a whole core, or the whole quota below
    one core): process CPU seconds over wall seconds ÷ that share, over the window since the last reading that is
    at least ``window_s`` long (a shorter one keeps the last value). Near 1 or above while the link was measured:
    the sender may be what limited the rate (``fleet_plan.compression``, ``Inputs.cpu_busy``). Not thread-safe."""

    def __init__(
        self,
        share: float = 1.0,
        window_s: float = 1.0,
        cpu: Callable[[], float] = time.process_time,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        self._share = max(1e-3, min(1.0, share))
        self._window = window_s
        self._cpu, self._wall = cpu, wall
        self._since = (cpu(), wall())
        self._value: float | None = None

    def read(self) -> float | None:
        cpu, wall = self._cpu(), self._wall()
        elapsed = wall - self._since[1]
        if elapsed >= self._window:
            self._value = max(0.0, cpu - self._since[0]) / (elapsed * self._share)
            self._since = (cpu, wall)
        return self._value


class Compression:
    """Thread-safe: file jobs ask for a level, report what they encoded; telemetry reads the measurements."""

    def __init__(
        self,
        mode: Mode = Mode.FORCED,
        probed: Mapping[int, float] | None = None,
        encode_cores: float = 1.0,
        default_level: int = DEFAULT_COMPRESSION_LEVEL,
        cpu_busy: CpuBusy | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._busy = cpu_busy
        self._rates = EncodeRates(probed)
        self._mode = mode
        self._cores = encode_cores
        self._default = default_level
        self._flac_open = 0
        self._last_reason = ""
        self._file_rate: float | None = None  # stored bytes/s of the last file stored, start to answer
        self._early_link: float | None = None  # its parts' bytes over their time on the wire (short)

    @property
    def mode(self) -> Mode:
        return self._mode

    def add_probed(self, probed: Mapping[int, float]) -> None:
        """The start-up probe's speeds, when it ran beside the first file (``fleet_audio.probe.EncodeProbe``)."""
        with self._lock:
            self._rates.add_probed(probed)

    def set_assigned(self, assigned: bool) -> None:
        """The controller's level (``WITHIN``) or the agent's own choice (``MODEL``); ``FORCED`` stays forced."""
        with self._lock:
            if self._mode is not Mode.FORCED:
                self._mode = Mode.WITHIN if assigned else Mode.MODEL

    def _levels(self, limits: Limits) -> tuple[int, ...] | None:
        """The FLAC levels the model may choose from, or None for "exactly the limits' level"."""
        level = limits.compression_level
        if self._mode is Mode.FORCED or level == RAW:
            return None
        if self._mode is Mode.WITHIN:
            return (level,)
        return LEVELS if level >= self._default else tuple(lv for lv in LEVELS if lv <= level)

    def link_known(self, link_bps: float | None) -> bool:
        """Whether the model has a link rate: the engine's measurement, or a whole file stored before it."""
        with self._lock:
            return link_bps is not None or self._file_rate is not None or self._early_link is not None

    def file_stored(self, stored_bytes: int, seconds: float, link_so_far: float | None = None) -> None:
        """A file was stored, on a link so fast that it may have carried the whole file before the engine's estimate
        had its first second of busy time: ``link_so_far`` (``Link.rate_so_far``), the answered parts' bytes over
        their time on the wire, is then the model's link rate, and without it the file's stored bytes over its
        whole time (encoding and start-up included) is the link's floor."""
        with self._lock:
            if stored_bytes > 0 and seconds > 0:
                self._file_rate = stored_bytes / seconds
            if link_so_far is not None and link_so_far > 0:
                self._early_link = link_so_far

    def plan(self, limits: Limits, link_bps: float | None, sender_held: float | None = None) -> Plan | None:
        """The model's plan for these limits and link (None in ``FORCED`` mode or when raw is assigned);
        ``sender_held``: how much the CPU held the senders that measured the link (``Link.sender_held``)."""
        with self._lock:
            levels = self._levels(limits)
            if levels is None:
                return None
            link = next((r for r in (link_bps, self._early_link, self._file_rate) if r is not None), None)
            inputs = Inputs(
                self._rates.rates(),
                self._rates.ratios(),
                self._cores,
                link,
                float(limits.bandwidth_bps),
                max(1, limits.concurrency),
                cpu_busy=self._busy.read() if self._busy is not None else None,
                sender_held=sender_held,
                link_is_floor=link_bps is None and self._early_link is None and self._file_rate is not None,
            )
        return choose(inputs, levels, min(self._default, max(levels)))

    def start_file(self, limits: Limits, link_bps: float | None, sender_held: float | None = None) -> int:
        """The level of a new file, counted in flight at once (so files started together split as the plan
        says) until :meth:`close_file`; :meth:`recount` if the file's source turns out to use another level."""
        plan = self.plan(limits, link_bps, sender_held)
        with self._lock:
            if plan is None:
                level = limits.compression_level
            else:
                level = plan.level_for(self._flac_open)
                if plan.reason != self._last_reason:
                    self._last_reason = plan.reason
                    log.info("compression: %s", plan.reason)
            self._flac_open += level != RAW
        return level

    def recount(self, counted: int, level: int) -> None:
        """A file counted at ``counted`` runs at ``level`` (a resumed upload keeps the level it started with)."""
        if (counted == RAW) != (level == RAW):
            with self._lock:
                self._flac_open = max(0, self._flac_open + (level != RAW) - (counted != RAW))

    def close_file(self, level: int) -> None:
        """A file counted at ``level`` ended."""
        if level != RAW:
            with self._lock:
                self._flac_open = max(0, self._flac_open - 1)

    def observe(self, level: int, wav_bytes: int, seconds: float, stored_bytes: int, original_bytes: int) -> None:
        with self._lock:
            self._rates.observe(level, wav_bytes, seconds, stored_bytes, original_bytes)

    def measured(self) -> tuple[list[float], list[float]]:
        """Encode rates and ratios per level as the wire carries them (index = level, 0 = not measured)."""
        with self._lock:
            return as_list(self._rates.rates(), MAX_RATE_BPS), as_list(self._rates.ratios(), MAX_RATIO)
