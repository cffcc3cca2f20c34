"""``edgefleet agent --config FILE``: the composition root of the agent service.

Wires the real adapters (paho link, transfer engine, codec check, host probe, SQLite ledger) around the
single-threaded ``AgentService`` and runs its loop. MQTT messages and engine events arrive on other threads
and are handed to the loop through one queue. SIGTERM/SIGINT stop it cleanly: retained ``offline`` is
published, parts in flight finish (up to ``--stop-timeout``), the journal keeps the rest for the next start.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from edge_agent.service.agent import AgentService
from edge_agent.service.assignment_store import AssignmentStore
from edge_agent.service.config import AgentConfig, ConfigError, load_config
from edge_agent.service.ledger import Ledger
from edge_agent.service.limits import UploadLimits, limits_from_defaults
from edge_agent.service.mqtt_link import MqttLink
from edge_agent.service.ports import EnginePort, FinishedCheck, UploadEvent
from fleet_protocol import AgentStatus, State

log = logging.getLogger(__name__)

EngineFactory = Callable[[AgentConfig, UploadLimits, Callable[[UploadEvent], None]], EnginePort]
Inbound = tuple[str, bytes] | UploadEvent


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


def _default_engine(config: AgentConfig, limits: UploadLimits, on_event: Callable[[UploadEvent], None]) -> EnginePort:
    from edge_agent.service.engine_adapter import build_engine

    return build_engine(config, limits, on_event)


def _default_check() -> FinishedCheck:
    from edge_agent.service.finished import codec_check

    return codec_check


def serve(
    config: AgentConfig,
    stop: threading.Event,
    *,
    engine_factory: EngineFactory = _default_engine,
    check_finished: FinishedCheck | None = None,
    stop_timeout: float = 30.0,
    tick_s: float = 0.2,
) -> int:
    from edge_agent.service.host import LocalHost

    for folder in (config.spool_dir, config.state_dir):
        folder.mkdir(parents=True, exist_ok=True)
    inbox: queue.Queue[Inbound] = queue.Queue()
    seq = itertools.count()
    host = LocalHost(config.spool_dir)
    capabilities = host.capabilities()
    log.info(
        "agent %s on %s: %d cores, FLAC %.1f MB/s",
        config.agent_id,
        capabilities.model,
        capabilities.cores,
        capabilities.flac_encode_bps / 1e6,
    )
    service: AgentService | None = None

    def connect_messages() -> list[State]:
        return [] if service is None else list(service.on_connected())  # type: ignore[arg-type]

    link = MqttLink(
        config.mqtt.parsed,
        config.agent_id,
        will=State(agent_id=config.agent_id, seq=next(seq), state=AgentStatus.OFFLINE),
        on_connect_messages=connect_messages,
        subscriptions=(),
        on_message=lambda topic, payload: inbox.put((topic, payload)),
    )
    engine = engine_factory(config, limits_from_defaults(config.defaults), inbox.put)
    service = AgentService(
        config,
        engine=engine,
        publisher=link,
        host=host,
        check_finished=check_finished or _default_check(),
        capabilities=capabilities,
        store=AssignmentStore(config.state_dir),
        ledger=Ledger(config.state_dir / "spool.db"),
        seq=seq,
    )
    link.set_subscriptions(service.subscriptions)
    service.start(time.monotonic())
    link.start()
    try:
        while not stop.is_set():
            _drain(service, inbox, tick_s)
            service.tick(time.monotonic())
    finally:
        log.info("stopping: publishing offline, letting parts in flight finish (up to %.0f s)", stop_timeout)
        link.stop(final=service.state(AgentStatus.OFFLINE))
        service.stop(stop_timeout)
        _drain(service, inbox, 0)
    return 0


def _drain(service: AgentService, inbox: queue.Queue[Inbound], wait_s: float) -> None:
    try:
        item = inbox.get(timeout=wait_s) if wait_s > 0 else inbox.get_nowait()
    except queue.Empty:
        return
    while True:
        if isinstance(item, UploadEvent):
            service.handle_engine_event(item)
        else:
            service.handle_message(*item)
        try:
            item = inbox.get_nowait()
        except queue.Empty:
            return
