"""One running agent: the service core, its MQTT link, its engine and the queue between their threads.

Used by ``edgefleet agent`` (one real agent) and by ``edgefleet simulate`` (many simulated ones in one
process, each with its own runtime). MQTT messages and engine events arrive on other threads and are
handed to the single-threaded core through ``inbox``; ``pump`` drains it and runs the core's timers.
"""

from __future__ import annotations

import itertools
import logging
import queue
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from edge_agent.engine import EngineEvent, Limits
from edge_agent.service.agent import AgentService
from edge_agent.service.assignment_store import AssignmentStore
from edge_agent.service.config import AgentConfig
from edge_agent.service.ledger import Ledger
from edge_agent.service.limits import limits_from_defaults
from edge_agent.service.mqtt_link import MqttLink
from edge_agent.service.outbox import Outbox
from edge_agent.service.ports import Capabilities, EnginePort, FinishedCheck, HostProbe
from edge_agent.service.queue_control import QueueController, QueueRequests
from fleet_protocol.messages import Message, State
from fleet_protocol.topics import queue_request_topic
from fleet_protocol.vocabulary import AgentStatus

log = logging.getLogger(__name__)

EngineFactory = Callable[[AgentConfig, Limits, Callable[[EngineEvent], None]], EnginePort]


@dataclass(frozen=True)
class QueueRequestIn:
    """A queue control request as the link received it (edge_agent.service.queue_control)."""

    payload: bytes
    response_topic: str | None
    correlation: bytes | None


Inbound = tuple[str, bytes] | EngineEvent | QueueRequestIn


@runtime_checkable
class HasQueueControl(Protocol):
    """An engine with queue control (the real one, ``engine_adapter.AgentEngine``)."""

    queue_control: QueueController


class AgentRuntime:
    def __init__(
        self,
        config: AgentConfig,
        *,
        engine_factory: EngineFactory,
        host: HostProbe,
        capabilities: Capabilities,
        check_finished: FinishedCheck,
        simulated: bool = False,
    ) -> None:
        for folder in (config.spool_dir, config.state_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.inbox: queue.Queue[Inbound] = queue.Queue()
        seq = itertools.count()
        self.link = MqttLink(
            config.mqtt.parsed,
            config.agent_id,
            will=State(agent_id=config.agent_id, seq=next(seq), state=AgentStatus.OFFLINE),
            on_connect_messages=self._connect_messages,
            subscriptions=(),
            on_message=lambda topic, payload: self.inbox.put((topic, payload)),
            outbox=Outbox(config.state_dir / "outbox.db"),
            request_topic=queue_request_topic(config.agent_id),
            on_request=lambda payload, topic, correlation: self.inbox.put(QueueRequestIn(payload, topic, correlation)),
        )
        self.engine = engine_factory(config, limits_from_defaults(config.defaults), self.inbox.put)
        control = self.engine.queue_control if isinstance(self.engine, HasQueueControl) else None
        self.queue_requests = QueueRequests(config.agent_id, control)
        self.service = AgentService(
            config,
            engine=self.engine,
            publisher=self.link,
            host=host,
            check_finished=check_finished,
            capabilities=capabilities,
            store=AssignmentStore(config.state_dir),
            ledger=Ledger(config.state_dir / "spool.db"),
            seq=seq,
            simulated=simulated,
            connected=self.link.connected.is_set,
        )
        self.link.set_subscriptions((*self.service.subscriptions, queue_request_topic(config.agent_id)))

    def _connect_messages(self) -> list[Message]:
        return list(self.service.on_connected())

    def start(self, now: float) -> None:
        self.service.start(now)
        self.link.start()

    def pump(self, now: float, wait_s: float = 0.0) -> None:
        """Handle everything queued (waiting up to ``wait_s`` for the first item), then run the timers."""
        self._drain(wait_s)
        self.service.tick(now)

    def _drain(self, wait_s: float = 0.0) -> None:
        try:
            item = self.inbox.get(timeout=wait_s) if wait_s > 0 else self.inbox.get_nowait()
        except queue.Empty:
            return
        while True:
            if isinstance(item, EngineEvent):
                self.service.handle_engine_event(item)
            elif isinstance(item, QueueRequestIn):
                self._answer(item)
            else:
                self.service.handle_message(*item)
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                return

    def _answer(self, request: QueueRequestIn) -> None:
        reply = self.queue_requests.handle(request.payload, request.response_topic, request.correlation)
        if reply is not None:
            self.link.reply(reply.topic, reply.payload, reply.correlation)

    def stop(self, timeout: float, now: float) -> None:
        """Parts in flight finish first (up to ``timeout`` s) while the agent is still online, their events are
        published and retention applied; then the retained ``offline``, a clean disconnect, and the journal and
        ledger are closed (the journal keeps what is unfinished for the next start)."""
        self.service.stop_engine(timeout)
        self._drain()
        self.link.stop(final=self.service.state(AgentStatus.OFFLINE))
        self.service.close()
