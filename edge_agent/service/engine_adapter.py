"""The real transfer engine (``edge_agent.transfer.engine.Engine`` on S3 and the SQLite journal), built from the
agent's configuration."""

from __future__ import annotations

from collections.abc import Callable

from edge_agent.engine import EngineEvent, Limits
from edge_agent.service.config import AgentConfig
from edge_agent.transfer.bootstrap import open_engine
from edge_agent.transfer.config import EngineConfig
from edge_agent.transfer.engine import Engine


def build_engine(config: AgentConfig, limits: Limits, on_event: Callable[[EngineEvent], None]) -> Engine:
    """The journal lives in ``state_dir`` next to the agent's ledger and stored assignment."""
    engine_config = EngineConfig(
        s3=config.s3.settings(),
        prefix=config.s3.prefix,
        agent_id=config.agent_id,
        state_dir=config.state_dir,
        stall_timeout_s=config.stall_timeout_s,
    )
    return open_engine(engine_config, limits, on_event=on_event)
