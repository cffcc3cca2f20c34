"""Concurrency from cores and RAM, part size from RAM and measured throughput, both within the agent's memory
limit (``fleet_plan.memory``); pure helpers."""

from __future__ import annotations

from controller.policy.bounds import finite
from controller.policy.inputs import AgentView, PolicyConfig
from fleet_plan import memory
from fleet_protocol.assignment import DEFAULT_PART_SIZE, MIN_PART_SIZE, PART_SIZE, MiB
from fleet_protocol.numbers import MAX_RATE_BPS

#: the policy's largest part (S3 would take 5 GiB; a Pi's RAM would not)
MAX_PART = 64 * MiB
SLOW_LINK_BPS = 1 * MiB
#: A part should take about this long to send on the measured link.
PART_SECONDS = 4.0


def ram_budget(ram_bytes: int, config: PolicyConfig) -> int:
    """Bytes of RAM the agent may hold in part buffers; 0 = unknown."""
    return int(ram_bytes * config.ram_budget_fraction)


def _pow2_floor(value: int) -> int:
    return 1 << (value.bit_length() - 1) if value > 0 else 0


def part_size(ram_bytes: int, throughput_bps: float, previous: int | None, config: PolicyConfig) -> int:
    """Slow link → 5 MiB, fast link → up to 64 MiB (a power of two, so jitter does not change it),
    never more than half the RAM budget, never below 5 MiB. No measurement yet (0) keeps the previous.
    Total: a throughput that is NaN, infinite or beyond the protocol's bound counts as 0 or as that bound."""
    throughput_bps = finite(throughput_bps, MAX_RATE_BPS)
    if throughput_bps <= 0:
        size = previous if previous is not None else DEFAULT_PART_SIZE
    elif throughput_bps < SLOW_LINK_BPS:
        size = MIN_PART_SIZE
    else:
        size = min(MAX_PART, max(DEFAULT_PART_SIZE, _pow2_floor(int(throughput_bps * PART_SECONDS))))
    budget = ram_budget(ram_bytes, config)
    if budget:
        size = min(size, budget // 2 // MiB * MiB)
    return PART_SIZE.fit(size)


def full_concurrency(cores: int, ram_bytes: int, part: int, config: PolicyConfig) -> tuple[int, str]:
    """Parallel part uploads for a cool agent, and why: min(max, 2 × cores, RAM budget ÷ part size)."""
    limits = [(config.max_concurrency, f"max {config.max_concurrency}"), (2 * max(1, cores), f"{cores} cores")]
    budget = ram_budget(ram_bytes, config)
    if budget:
        limits.append((max(1, budget // part), f"RAM budget {budget / MiB:.0f} MiB ÷ {part // MiB} MiB parts"))
    value, why = min(limits, key=lambda item: item[0])
    return max(1, value), why


def within_memory(full: int, part: int, why: str, agent: AgentView) -> tuple[int, int, str]:
    """``(full, part)`` fitted into the memory limit the agent reports (``fleet_plan.memory``), and why; an agent
    that reports none (older) keeps them (the RAM budget above already bounds them)."""
    plan = memory.fit(full, part, agent.memory_limit_bytes, agent.baseline_rss_bytes)
    return plan.concurrency, plan.part_size, f"{why}; {plan.why}" if plan.why else why
