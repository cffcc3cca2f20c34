"""The real transfer engine (``edge_agent.transfer.engine.Engine`` on S3 and the SQLite journal), built from the
agent's configuration."""

from __future__ import annotations

from collections.abc import Callable

from edge_agent.engine import EngineEvent, Limits
from edge_agent.service.config import AgentConfig
from edge_agent.service.ports import Capabilities
from edge_agent.transfer.bootstrap import open_engine
from edge_agent.transfer.config import EngineConfig
from edge_agent.transfer.encoding import Compression, Mode
from edge_agent.transfer.engine import Engine


def build_engine(
    config: AgentConfig,
    limits: Limits,
    on_event: Callable[[EngineEvent], None],
    capabilities: Capabilities | None = None,
) -> Engine:
    """The journal lives in ``state_dir`` next to the agent's ledger and stored assignment. Each new file's level
    comes from the cost model (``Mode.MODEL`` until the service says the limits are assigned), seeded with the
    start-up probe of ``capabilities``."""
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
    )
    return open_engine(engine_config, limits, on_event=on_event, compression=compression)
