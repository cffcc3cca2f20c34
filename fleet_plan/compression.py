"""The compression cost model: raw or FLAC 0-8, whichever moves the batch soonest. Pure: numbers in, a plan out.

Moving WAV bytes is a pipeline: the CPU reads, encodes (FLAC only), hashes (MD5 for S3, SHA-256 of the
original for the catalogue) and sends; the link carries the stored bytes. **The CPU is one budget**: encoding
and sending share it, so a CPU-starved sender is slow on any link and raw is not free::

    cpu cost per WAV byte:  raw = send          FLAC L = encode[L] + send × (HASH_SHARE + (1 - HASH_SHARE) × ratio[L])
    throughput (WAV bytes/s) = min(link ÷ stored bytes per WAV byte,  CPU ÷ cpu cost per WAV byte)

where ``encode[L] = 1 ÷ encode_bps[L]`` and ``send = 1 ÷ send_bps``, both in seconds of one probed thread, so
a CPU quota below one core is already in the rates and ``cores`` counts the threads that run side by side.

A **plan** is "of the ``files`` files in flight, ``flac_files`` are FLAC at ``level``, the rest raw": the engine
starts a file as FLAC while fewer than ``flac_files`` FLAC files run, else raw. In steady state (the link shared
by the files in flight in proportion to their number; one file's pipeline uses at most one core)::

    flac_wav = min(min(flac_files, cores) ÷ cost[L],  link × flac_files/files ÷ ratio[L])
    raw_wav  = min(link - flac_wav × ratio[L],  (cores - flac_wav × cost[L]) ÷ send,  raw files ÷ send)
    time per WAV byte = 1 ÷ (flac_wav + raw_wav)

**Robustness** (a plan is chosen once per file and cannot be taken back):

- every plan is scored as if the CPU gave ``ROBUST_CPU`` of what was measured (the start-up probe is short, and
  a loaded machine gives less than it promised: a level that only just keeps up on paper does not win);
- the **cheapest** plan (least CPU per WAV byte) whose time is within ``PREFER_CHEAPER`` of the fastest wins:
  level 8 must save more than a few per cent over level 5 to be worth 1.75 × the CPU;
- a mix of raw and FLAC files must beat the best plan of one kind by ``MIX_MARGIN``;
- **a measured link rate may be the CPU's limit, not the link's**: the sender measures the link from its own
  parts, and a starved sender sees a fast link as slow. When the senders were held by the CPU (``sender_held`` ≥
  ``SENDER_HELD``, or without it ``cpu_busy`` ≥ ``CPU_BUSY``) while measuring, or the rate is a whole file's
  (``link_is_floor``), the link is only known to be *at least* that fast: the model then weighs two links, the
  measured one and an unlimited one (the cap, if any), and takes the plan whose worst ratio to the best plan of
  either link is least (in practice: raw, the cheapest in CPU). Sending raw then measures the link with less
  CPU, and the next file's plan follows it.

``Plan.seconds_per_byte`` is the plan's time on the measured link (CPU derated), times its worst ratio when two
links were weighed: comparable between calls, which is what the controller's stickiness compares. The rates in
``Plan.reason`` are the derated ones the choice was made with.

**Inputs** are measurements, any of which may be missing:

- ``encode_bps``: WAV bytes/s of ONE encoder thread per level (wall clock, so a CPU quota shows in it);
  a level not measured is scaled from the nearest measured one by ``RELATIVE_CPU``; none at all → unknown;
- ``ratio``: stored ÷ WAV bytes per level from real encodes; a level not measured is scaled from the nearest
  measured one by ``RELATIVE_SIZE``; none at all → ``DEFAULT_RATIO_5`` scaled the same way;
- ``cores``: threads that can run at that rate side by side (≥ 1; a quota below one core is in the rate);
- ``link_bps``: the measured link rate (stored bytes/s), ``None`` or ≤ 0 = unknown; ``bandwidth_cap_bps``
  (0 = none) lowers it. ``link_is_floor``: it is only a whole file's stored bytes over the file's whole time (a
  fast link carried the first file before the engine's estimate had a second of busy time): at least that. An
  unknown link or encode rate gives the safe default: FLAC ``DEFAULT_COMPRESSION_LEVEL``;
- ``send_bps``: bytes/s one thread hashes and sends (raw); ``None`` = ``SEND_RELATIVE`` of level 5's encode cost;
- ``sender_held``: of the time the part requests that measured the link were on the wire, the share their
  threads ran or waited to run (``edge_agent.engine.senderheld``): near 0 the link (or the cap's pacing) made
  them wait, near 1 the CPU did. The direct answer to "may the CPU have set this rate?";
- ``cpu_busy``: where ``sender_held`` is not measured, the sender's CPU seconds per wall second ÷ the share of a
  core one thread may use, while the link was measured (``edge_agent.transfer.encoding.CpuBusy``). Coarser: an
  encoder that is itself the bottleneck keeps the process busy while its parts go at the link's pace;
- neither (the controller: telemetry carries neither) = the link is what was measured. The model's own CPU
  rates are estimates from a short probe and were too noisy (2 × under a quota) to tell a CPU-bound measurement
  from a link-bound one.

The defaults come from our real-audio measurements: level 8 is about 2 % smaller than level 5 for 1.75 × the
CPU, level 0 about 23 % larger for half of it; the levels between are interpolated (documented guesses, replaced
by the agent's own measurements as they arrive).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fleet_protocol.assignment import DEFAULT_COMPRESSION_LEVEL, MAX_COMPRESSION_LEVEL, RAW

LEVELS: tuple[int, ...] = tuple(range(MAX_COMPRESSION_LEVEL + 1))
#: CPU time per WAV byte relative to level 5 (0, 5, 8 measured; the rest interpolated)
RELATIVE_CPU: Mapping[int, float] = {0: 0.5, 1: 0.55, 2: 0.6, 3: 0.7, 4: 0.85, 5: 1.0, 6: 1.1, 7: 1.5, 8: 1.75}
#: stored bytes relative to level 5 (0, 5, 8 measured; the rest interpolated)
RELATIVE_SIZE: Mapping[int, float] = {
    0: 1.23, 1: 1.18, 2: 1.15, 3: 1.05, 4: 1.01, 5: 1.0, 6: 0.995, 7: 0.985, 8: 0.98,
}  # fmt: skip
#: stored ÷ WAV bytes at level 5 on our real-audio corpus (64.9 %), until the agent has measured its own
DEFAULT_RATIO_5 = 0.65
#: CPU per byte sent raw (read, MD5 + SHA-256, the HTTP send) relative to level 5's encode CPU per WAV byte:
#: measured with `edgefleet upload` of the 200 MB bench batch (docs/bench/plan.md): raw ~0.8 CPU s beyond the
#: interpreter's start (4 ns a byte), where the start-up probe's level 5 costs ~6 ns a byte of one core
SEND_RELATIVE = 0.65
#: of the cost of moving bytes, the share paid per WAV byte (SHA-256 of the original, reading); the rest is paid
#: per stored byte (MD5, the send)
HASH_SHARE = 0.5
#: plans are scored as if the CPU gave this share of what was measured
ROBUST_CPU = 0.7
#: the cheapest plan within this fraction of the fastest one's time wins
PREFER_CHEAPER = 0.03
#: a sender that kept its CPU at least this busy (``cpu_busy``) while measuring the link may be what limited it
CPU_BUSY = 0.75
#: senders that ran or waited to run at least this share of their time on the wire (``sender_held``) may be what
#: limited the measured link
SENDER_HELD = 0.5
#: a measured ratio is kept inside this range (FLAC of pure noise is slightly larger than the WAV)
RATIO_RANGE = (0.01, 1.2)
#: rates are kept below this (bytes/s): the protocol's bound on rates is far above any real machine
MAX_RATE = 1e12
#: a mix of raw and FLAC files must be this much faster than the best plan of one kind: files of unequal size
#: hurt a mix first
MIX_MARGIN = 0.10
#: the most files in flight the model splits (the assignment's concurrency may be higher; splits are by 1/n)
MAX_FILES = 64


@dataclass(frozen=True, slots=True)
class Inputs:
    encode_bps: Mapping[int, float]
    ratio: Mapping[int, float]
    cores: float = 1.0
    link_bps: float | None = None
    bandwidth_cap_bps: float = 0.0
    files: int = 1  # files in flight (the engine runs at most ``concurrency`` files at once)
    send_bps: float | None = None  # bytes/s one thread hashes and sends; None = SEND_RELATIVE of level 5
    cpu_busy: float | None = None  # the sender's CPU use ÷ one thread's share while the link was measured
    sender_held: float | None = None  # share of the parts' time on the wire their threads ran or waited to run
    link_is_floor: bool = False  # ``link_bps`` is a whole file's rate, start to answer: the link is at least that
    # (the agent passes it only where no part's own rate was measured)


@dataclass(frozen=True, slots=True)
class Plan:
    """Of the ``files`` files in flight, ``flac_files`` are FLAC at ``level``, the rest raw."""

    level: int
    flac_files: int
    files: int
    seconds_per_byte: float  # predicted, per WAV byte; ``math.inf`` when nothing was measured
    reason: str

    def level_for(self, flac_running: int) -> int:
        """The level of a file started while ``flac_running`` FLAC files are in flight (a plan of one kind is
        that kind for every file, however many are open)."""
        if self.flac_files >= self.files:
            return self.level
        return self.level if flac_running < self.flac_files else RAW


#: the least rate the model computes with: below one byte a second nothing moves, and tinier figures underflow
#: to zero in the arithmetic (hypothesis found a link of 5e-324 B/s dividing by zero)
MIN_RATE = 1.0


def _positive(value: float | None, cap: float = MAX_RATE) -> float | None:
    if value is None or not isinstance(value, int | float) or math.isnan(value) or value <= 0:
        return None
    return min(float(value), cap)


def _rate(value: float | None) -> float | None:
    """A measured rate the model can use (at least ``MIN_RATE``), or None."""
    rate = _positive(value)
    return None if rate is None else max(MIN_RATE, rate)


def _fill(measured: Mapping[int, float], relative: Mapping[int, float], higher_is_cheaper: bool) -> dict[int, float]:
    """Every level's value from the measured ones: a level not measured scales the nearest measured one."""
    known = dict(measured)
    filled: dict[int, float] = {}
    for level in LEVELS:
        if level in known:
            filled[level] = known[level]
            continue
        near = min(known, key=lambda m: (abs(m - level), m))
        factor = relative[near] / relative[level] if higher_is_cheaper else relative[level] / relative[near]
        filled[level] = known[near] * factor
    return filled


def encode_rates(measured: Mapping[int, float]) -> dict[int, float] | None:
    """Every level's encode rate (WAV bytes/s per encoder), or None if no level has a usable measurement."""
    known = {k: r for k, v in measured.items() if k in RELATIVE_CPU and (r := _rate(v)) is not None}
    return _fill(known, RELATIVE_CPU, higher_is_cheaper=True) if known else None


def ratios(measured: Mapping[int, float]) -> dict[int, float]:
    """Every level's stored ÷ WAV ratio: the measured ones (kept in ``RATIO_RANGE``), else the defaults."""
    low, high = RATIO_RANGE
    known = {
        k: max(low, min(high, r)) for k, v in measured.items() if k in RELATIVE_SIZE and (r := _positive(v)) is not None
    }
    return _fill(known or {5: DEFAULT_RATIO_5}, RELATIVE_SIZE, higher_is_cheaper=False)


def _effective_link(inputs: Inputs) -> float | None:
    link = _rate(inputs.link_bps)
    cap = _rate(inputs.bandwidth_cap_bps)
    if link is not None and cap is not None:
        return min(link, cap)
    return link


def _cores(value: float) -> float:
    return 1.0 if not isinstance(value, int | float) or math.isnan(value) else max(1.0, min(float(value), 4096.0))


@dataclass(frozen=True, slots=True)
class Machine:
    """The CPU side of the model, nominal (as measured): seconds of one thread per byte, and threads."""

    encode: Mapping[int, float]  # per WAV byte, by level
    ratio: Mapping[int, float]  # stored ÷ WAV, by level
    send: float  # per byte moved raw
    cores: float

    def cost(self, level: int) -> float:
        """CPU seconds per WAV byte of a file at ``level`` (``RAW``: hashing and sending only)."""
        if level == RAW:
            return self.send
        return self.encode[level] + self.send * (HASH_SHARE + (1 - HASH_SHARE) * self.ratio[level])

    def stored(self, level: int) -> float:
        return 1.0 if level == RAW else self.ratio[level]

    def derated(self, share: float) -> Machine:
        return Machine({lv: s / share for lv, s in self.encode.items()}, self.ratio, self.send / share, self.cores)


def machine(inputs: Inputs) -> Machine | None:
    """The model's view of the CPU from the inputs, or None when no encode rate is measured."""
    rates = encode_rates(inputs.encode_bps)
    if rates is None:
        return None
    send_bps = _rate(inputs.send_bps)
    send = 1.0 / send_bps if send_bps is not None else SEND_RELATIVE / rates[5]
    return Machine({lv: 1.0 / r for lv, r in rates.items()}, ratios(inputs.ratio), send, _cores(inputs.cores))


@dataclass(frozen=True, slots=True)
class _Score:
    seconds: float  # per WAV byte (1 / the batch's WAV throughput)
    stored: float  # stored bytes per WAV byte
    cpu: float  # CPU seconds per WAV byte
    cpu_bound: bool  # the CPU, not the link, limits the plan
    busy: float  # the share of the CPU the plan uses (0 .. 1)


def score(m: Machine, level: int, flac: int, files: int, link: float) -> _Score:
    """Steady state of ``flac`` FLAC slots at ``level`` and ``files - flac`` raw slots on one CPU budget and one
    link (see the module)."""
    cores, raw_cost = m.cores, m.cost(RAW)
    x, c = 0.0, 0.0
    if flac:
        c, r = m.cost(level), m.ratio[level]
        x = min(min(float(flac), cores) / c, link * flac / files / r)
    y = 0.0
    if flac < files:
        y = max(0.0, min(link - x * m.stored(level), (cores - x * c) / raw_cost, (files - flac) / raw_cost))
    wav = max(x + y, 1e-300)
    cpu = x * c + y * raw_cost
    stored = (x * (m.ratio[level] if flac else 1.0) + y) / wav
    return _Score(1.0 / wav, stored, cpu / wav, stored * wav < link * (1 - 1e-9), cpu / cores)


def _share(value: float | None) -> float | None:
    return None if value is None or not isinstance(value, int | float) or math.isnan(value) else float(value)


def link_may_be_faster(inputs: Inputs) -> str | None:
    """Why the measured link rate is only a floor (the link may be faster), or None when it is the link's:

    - ``link_is_floor``: it is a whole file's stored bytes over its whole time (encoding and start-up included);
    - the CPU may have set it: the part senders ran or waited to run for at least ``SENDER_HELD`` of their time
      on the wire or, where that was not measured, the sender kept its CPU busy (``cpu_busy`` ≥ ``CPU_BUSY``).

    At the bandwidth cap (or below it) the cap is what the plan must fit, and nothing is doubted."""
    link, cap = _rate(inputs.link_bps), _rate(inputs.bandwidth_cap_bps)
    if link is None or (cap is not None and cap <= link):
        return None
    held, busy = _share(inputs.sender_held), _share(inputs.cpu_busy)
    if inputs.link_is_floor:
        return "the link was measured only as a whole file's rate"
    if held is not None:
        if held >= SENDER_HELD:
            return f"the senders ran or waited for the CPU {held:.0%} of their time on the wire measuring the link"
        return None
    if busy is not None and busy >= CPU_BUSY:
        return f"the sender was {busy:.0%} busy measuring the link"
    return None


Candidate = tuple[int, int]  # (level, flac files); level RAW with 0 FLAC files


def _candidates(levels: Sequence[int], files: int) -> list[Candidate]:
    return [(RAW, 0)] + [(level, flac) for level in levels for flac in range(1, files + 1)]


def _mb(rate: float) -> str:
    return f"{rate / 1e6:.1f} MB/s"


def _reason(c: Candidate, files: int, m: Machine, s: _Score, link: float) -> str:
    level, flac = c
    if flac == 0:
        fastest = _mb(_flac_wav(m, 0, files))
        return f"raw: the CPU sends raw at {_mb(m.cores / m.cost(RAW))}, FLAC 0 at {fastest} of WAV; link {_mb(link)}"
    if flac < files:
        return (
            f"{flac} of {files} files in flight FLAC {level}, rest raw: its encoders store "
            f"{_mb(_flac_wav(m, level, flac) * m.ratio[level])} < link {_mb(link)}, raw files fill the link"
        )
    if s.cpu_bound:
        return f"FLAC {level}: CPU-bound, encoder {_mb(_flac_wav(m, level, files))}, link {_mb(link)}"
    idle = ", CPU idle" if s.busy < 0.5 else ""
    return f"FLAC {level}: link-bound at {_mb(link)}{idle}"


def _flac_wav(m: Machine, level: int, files: int = 1) -> float:
    """WAV bytes/s the CPU encodes and sends at ``level`` with ``files`` files (nominal)."""
    return min(float(files), m.cores) / m.cost(level)


def _regrets(m: Machine, links: Sequence[float], cands: list[Candidate], files: int) -> dict[Candidate, float]:
    """Each candidate's worst ratio, over the links, of its time to the best time any level or raw reaches there."""
    robust = m.derated(ROBUST_CPU)
    everything = _candidates(LEVELS, files)
    worst = dict.fromkeys(cands, 0.0)
    for link in links:
        best = min(score(robust, lv, f, files, link).seconds for lv, f in everything)
        for c in cands:
            worst[c] = max(worst[c], score(robust, *c, files, link).seconds / best)
    return worst


def _pick(m: Machine, regret: dict[Candidate, float], files: int) -> tuple[Candidate, str]:
    """The cheapest plan of one kind within ``PREFER_CHEAPER`` of the best, unless a mix beats it by the margin."""
    kinds = [c for c in regret if c[1] in (0, files)]
    least = min(regret[c] for c in kinds)
    near = [c for c in kinds if regret[c] <= least * (1 + PREFER_CHEAPER)]
    chosen = min(near, key=lambda c: (m.cost(c[0]), m.stored(c[0]), c))
    fastest = min(kinds, key=lambda c: (regret[c], m.cost(c[0])))
    note = ""
    if fastest != chosen:
        gain = regret[chosen] / regret[fastest] - 1
        note = f" (over {_name(fastest)}: only {gain:.1%} faster, more CPU)"
    mixes = [c for c in regret if 0 < c[1] < files]
    if mixes:
        mix = min(mixes, key=lambda c: (regret[c], m.cost(c[0])))
        if regret[mix] * (1 + MIX_MARGIN) <= regret[chosen]:
            return mix, ""
    return chosen, note


def _name(c: Candidate) -> str:
    return "raw" if c[1] == 0 else f"FLAC {c[0]}"


def choose(inputs: Inputs, levels: Sequence[int] = LEVELS, default: int = DEFAULT_COMPRESSION_LEVEL) -> Plan:
    """The plan the model prefers (see the module's docstring); total on any inputs.

    ``levels`` limits the FLAC levels considered (the thermal guard's cap); raw is always a candidate. Until the
    link and an encode rate are measured: every file FLAC at ``default`` (or the highest allowed level below it)."""
    files = max(1, min(inputs.files, MAX_FILES))
    allowed = [lv for lv in LEVELS if lv in levels]
    link = _effective_link(inputs)
    if not allowed:
        return Plan(RAW, 0, files, 1.0 / link if link else math.inf, "raw: no FLAC level allowed")
    m = machine(inputs)
    if link is None or m is None:
        level = max((lv for lv in allowed if lv <= default), default=allowed[0])
        missing = "link rate" if link is None else "encode rate"
        return Plan(level, files, files, math.inf, f"FLAC {level}: default ({missing} not measured yet)")
    doubt = link_may_be_faster(inputs)
    links = [link, _rate(inputs.bandwidth_cap_bps) or MAX_RATE] if doubt else [link]
    regret = _regrets(m, links, _candidates(allowed, files), files)
    chosen, note = _pick(m, regret, files)
    robust = m.derated(ROBUST_CPU)
    best_here = min(score(robust, lv, f, files, link).seconds for lv, f in _candidates(LEVELS, files))
    s = score(robust, *chosen, files, link)
    why = _reason(chosen, files, robust, s, link) + note
    if doubt:
        why += f"; {doubt}: it may be faster"
    level, flac = chosen
    return Plan(level, flac, files, regret[chosen] * best_here, why)
