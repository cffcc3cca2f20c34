"""``edgefleet agent --config FILE``: the composition root of the agent service.

Wires the real adapters (paho link, transfer engine, codec check, host probe, SQLite ledger) around the
single-threaded ``AgentService`` (see ``runtime.py``) and runs its loop until SIGTERM/SIGINT: then parts in
flight finish (up to ``--stop-timeout``), the retained ``offline`` state is published and the journal keeps the
rest for the next start.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from edge_agent.engine import EngineEvent, Limits
from edge_agent.service.config import AgentConfig, ConfigError, load_config
from edge_agent.service.ports import Capabilities, EnginePort, FinishedCheck
from edge_agent.service.runtime import AgentRuntime, EngineFactory
from edge_agent.service.sdnotify import Notifier

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="agent.toml (see docs/agent.md)")
    parser.add_argument("--stop-timeout", type=float, default=30.0, help="seconds parts in flight may take at stop")


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"edgefleet agent: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return serve(config, stop, stop_timeout=args.stop_timeout)


def real_engine(
    config: AgentConfig,
    limits: Limits,
    on_event: Callable[[EngineEvent], None],
    capabilities: Capabilities | None = None,
) -> EnginePort:
    from edge_agent.service.engine_adapter import build_engine

    return build_engine(config, limits, on_event, capabilities)


def serve(
    config: AgentConfig,
    stop: threading.Event,
    *,
    engine_factory: EngineFactory | None = None,
    check_finished: FinishedCheck | None = None,
    stop_timeout: float = 30.0,
    tick_s: float = 0.2,
) -> int:
    from edge_agent.service.finished import codec_check
    from edge_agent.service.host import LocalHost

    if engine_factory is real_engine:  # loaded before the baseline RSS is measured (in ``capabilities``)
        import edge_agent.service.engine_adapter  # noqa: F401

    for folder in (config.spool_dir, config.state_dir):
        folder.mkdir(parents=True, exist_ok=True)
    host = LocalHost(config.spool_dir)
    capabilities = host.capabilities()
    log.info(
        "agent %s on %s: %d cores (%g encoders), FLAC encode MB/s by level: %s",
        config.agent_id,
        capabilities.model,
        capabilities.cores,
        capabilities.encode_cores,
        " ".join(f"{level}:{bps / 1e6:.1f}" for level, bps in sorted(capabilities.encode_bps_by_level.items())),
    )
    runtime = AgentRuntime(
        config,
        engine_factory=engine_factory or partial(real_engine, capabilities=capabilities),
        host=host,
        capabilities=capabilities,
        check_finished=check_finished or codec_check,
    )
    runtime.start(time.monotonic())
    notifier = Notifier()
    notifier.ready()
    try:
        while not stop.is_set():
            runtime.pump(time.monotonic(), wait_s=tick_s)
            notifier.alive(time.monotonic())
    finally:
        notifier.stopping()
        log.info("stopping: publishing offline, letting parts in flight finish (up to %.0f s)", stop_timeout)
        runtime.stop(stop_timeout, time.monotonic())
    return 0
