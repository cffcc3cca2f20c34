"""The compression cost model: raw or FLAC 0-8, whichever moves the batch soonest. Pure: numbers in, a plan out.

Moving WAV bytes is a pipeline: the encoder turns them into FLAC on its CPU share while the link sends what
is already encoded, so the time per WAV byte of a plan is the slower of the two stages::

    time ≈ max(encode time on the CPU share, stored bytes ÷ link rate)

A **plan** is "of the ``files`` files in flight, ``flac_files`` are FLAC at ``level``, the rest raw": the engine
starts a file as FLAC while fewer than ``flac_files`` FLAC files run, else raw. In steady state (a backlog of
several files; the link shared by the files in flight in proportion to their number), per second:

    flac_wav = min(encode_bps[level] × min(flac_files, cores),  link × flac_files/files ÷ ratio[level])
    raw_wav  = link - flac_wav × ratio[level]     (0 when every file is FLAC: nothing raw to fill the link)
    time per WAV byte = 1 ÷ (flac_wav + raw_wav)

which is the pipeline's ``max(encode time, stored bytes ÷ link)`` with the bytes split so that both stages
finish together. Raw files keep the link busy while the CPU encodes what it can: a mix beats both "all raw" and
"all FLAC" when the encoders are slower than their share of the link. Raw bytes cost no CPU worth counting.

Every level and every split ``0..files`` is scored and the fastest wins; ties go to fewer stored bytes, then
to less CPU; a mix must beat the best plan of one kind (all raw, or all FLAC at one level) by ``MIX_MARGIN``.
So a plan is never slower, under the model, than "all raw" or "all FLAC 5": both are candidates.
``flac_files == 0`` is written ``level = RAW``; ``flac_files == files`` is plain FLAC at ``level``.

**Inputs** are measurements, any of which may be missing:

- ``encode_bps``: WAV bytes/s of ONE encoder thread per level (wall clock, so a CPU quota shows in it);
  a level not measured is scaled from the nearest measured one by ``RELATIVE_CPU``; none at all → unknown;
- ``ratio``: stored ÷ WAV bytes per level from real encodes; a level not measured is scaled from the nearest
  measured one by ``RELATIVE_SIZE``; none at all → ``DEFAULT_RATIO_5`` scaled the same way;
- ``cores``: encoders that can run at that rate side by side (≥ 1; a quota below one core is in the rate);
- ``link_bps``: the measured link rate (stored bytes/s), ``None`` or ≤ 0 = unknown; ``bandwidth_cap_bps``
  (0 = none) lowers it. An unknown link or encode rate gives the safe default: FLAC ``DEFAULT_COMPRESSION_LEVEL``.

The defaults come from our real-audio measurements: level 8 is about 2 % smaller than level 5 for 1.75 × the
CPU, level 0 about 23 % larger for half of it; the levels between are interpolated (documented guesses, replaced
by the agent's own measurements as they arrive).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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
#: a measured ratio is kept inside this range (FLAC of pure noise is slightly larger than the WAV)
RATIO_RANGE = (0.01, 1.2)
#: rates are kept below this (bytes/s): the protocol's bound on rates is far above any real machine
MAX_RATE = 1e12
#: a mix of raw and FLAC files must be this much faster than the best plan of one kind: the model counts neither
#: the CPU that sending itself takes nor files of unequal size, and a mix is what they hurt first
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
class _Score:
    seconds: float  # per WAV byte (1 / the batch's WAV throughput)
    stored: float  # stored bytes per WAV byte
    cpu: float  # encoder-seconds per WAV byte
    cpu_bound: bool  # the encoders, not the link, limit the FLAC files
    busy: float  # the share of the encoders' capacity the plan uses (0 .. 1)


def _score(flac: int, files: int, rate: float, ratio: float, cores: float, link: float) -> _Score:
    """Steady state of ``flac`` FLAC slots and ``files - flac`` raw slots sharing one link (see the module)."""
    if flac == 0:
        return _Score(1.0 / link, 1.0, 0.0, False, 0.0)
    encoders = min(float(flac), cores) * rate  # WAV bytes/s the FLAC slots can encode
    flac_wav = min(encoders, link * flac / files / ratio)  # ... and their fair share of the link can carry
    raw_wav = 0.0 if flac == files else link - flac_wav * ratio  # the raw slots take what the link has left
    wav = flac_wav + raw_wav
    stored = (flac_wav * ratio + raw_wav) / wav
    cpu_bound = encoders < link * flac / files / ratio
    return _Score(1.0 / wav, stored, flac_wav / rate / wav, cpu_bound, flac_wav / encoders)


def _mb(rate: float) -> str:
    return f"{rate / 1e6:.1f} MB/s"


def _reason(plan: tuple[int, int, int], score: _Score, encoders: float, link: float) -> str:
    level, flac, files = plan
    if flac == 0:
        return f"raw: encoder {_mb(encoders)} at FLAC 0 < link {_mb(link)}"
    if flac < files:
        return (
            f"{flac} of {files} files in flight FLAC {level}, rest raw: encoder {_mb(encoders)} < "
            f"link {_mb(link)}, raw files fill the link"
        )
    if score.cpu_bound:
        return f"FLAC {level}: CPU-bound, encoder {_mb(encoders)}, link {_mb(link)}"
    idle = ", CPU idle" if score.busy < 0.5 else ""
    return f"FLAC {level}: link-bound at {_mb(link)}{idle}"


def choose(inputs: Inputs, levels: tuple[int, ...] = LEVELS, default: int = DEFAULT_COMPRESSION_LEVEL) -> Plan:
    """The fastest plan under the model (see the module's docstring); total on any inputs.

    ``levels`` limits the FLAC levels considered (the thermal guard's cap); raw is always a candidate. Until the
    link and an encode rate are measured: every file FLAC at ``default`` (or the highest allowed level below it)."""
    files = max(1, min(inputs.files, MAX_FILES))
    allowed = [lv for lv in LEVELS if lv in levels]
    link = _effective_link(inputs)
    if not allowed:
        return Plan(RAW, 0, files, 1.0 / link if link else math.inf, "raw: no FLAC level allowed")
    rates = encode_rates(inputs.encode_bps)
    if link is None or rates is None:
        level = max((lv for lv in allowed if lv <= default), default=allowed[0])
        missing = "link rate" if link is None else "encode rate"
        return Plan(level, files, files, math.inf, f"FLAC {level}: default ({missing} not measured yet)")
    sizes, cores = ratios(inputs.ratio), _cores(inputs.cores)
    best: dict[bool, tuple[tuple[float, float, float], int, int, _Score]] = {}  # by "mixed"
    for level in allowed:
        for flac in range(files + 1):
            score = _score(flac, files, rates[level], sizes[level], cores, link)
            key = (score.seconds, score.stored, score.cpu)
            mixed = 0 < flac < files
            if mixed not in best or key < best[mixed][0]:
                best[mixed] = (key, level if flac else RAW, flac, score)
    _, level, flac, score = best[False]
    if True in best and best[True][3].seconds * (1 + MIX_MARGIN) <= score.seconds:
        _, level, flac, score = best[True]
    encoders = rates[max(level, 0)] * min(flac or files, cores)  # raw: what every file's encoder could do
    return Plan(level, flac, files, score.seconds, _reason((level, flac, files), score, encoders, link))
