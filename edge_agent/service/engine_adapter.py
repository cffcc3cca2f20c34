"""The real transfer engine (``edge_agent.transfer.engine.Engine`` on S3 and the SQLite journal), built from the
agent's configuration, with queue control (``edge_agent.service.queue_control``) over its journal."""

from __future__ import annotations

from collections.abc import Callable

from edge_agent.engine import EngineEvent, Limits
from edge_agent.service.config import AgentConfig
from edge_agent.service.ports import Capabilities
from edge_agent.service.queue_control import ControlledJournal, QueueController, QueueMarks, Uploading
from edge_agent.transfer.config import EngineConfig
from edge_agent.transfer.encoding import Compression, CpuBusy, Mode
from edge_agent.transfer.engine import Engine
from edge_agent.transfer.journal import Journal
from edge_agent.transfer.s3 import S3Store
from fleet_audio.probe import quota_share

MARKS_FILE = "queue_marks.db"


class AgentEngine(Engine):
    """The engine with the agent's queue control (``queue_control``) over its journal."""

    queue_control: QueueController


def build_engine(
    config: AgentConfig,
    limits: Limits,
    on_event: Callable[[EngineEvent], None],
    capabilities: Capabilities | None = None,
) -> AgentEngine:
    """The journal lives in ``state_dir`` next to the agent's ledger, stored assignment and queue marks. Each new
    file's level comes from the cost model (``Mode.MODEL`` until the service says the limits are assigned),
    seeded with the start-up probe of ``capabilities``."""
    engine_config = EngineConfig(
        s3=config.s3.settings(),
        prefix=config.s3.prefix,
        agent_id=config.agent_id,
        state_dir=config.state_dir,
        stall_timeout_s=config.stall_timeout_s,
    )
    compression = Compression(
        Mode.MODEL,
        probed=capabilities.encode_bps_by_level if capabilities else None,
        encode_cores=capabilities.encode_cores if capabilities and capabilities.encode_cores > 0 else 1.0,
        default_level=config.defaults.compression_level,
        cpu_busy=CpuBusy(quota_share()),
    )
    journal = ControlledJournal(Journal(engine_config.journal_path), QueueMarks(config.state_dir / MARKS_FILE))
    uploading = Uploading()

    def observed(event: EngineEvent) -> None:
        uploading.observe(event)
        on_event(event)

    store = S3Store(engine_config.s3, stall_timeout_s=engine_config.stall_timeout_s)
    engine = AgentEngine(engine_config, limits, observed, store=store, journal=journal, compression=compression)
    engine.queue_control = QueueController(journal, uploading, aging_bps=engine_config.aging_bps)
    return engine
