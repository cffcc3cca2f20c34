"""Adapters around the pure upload core (:mod:`edge_agent.engine`): S3, journal, threads, clock.

Public API (used by ``edgefleet upload`` and the agent service)::

    from edge_agent.transfer import EngineConfig, open_engine
    engine = open_engine(EngineConfig(s3=..., prefix=..., agent_id=..., state_dir=...), Limits(...), on_event=...)
    engine.enqueue(path); report = engine.run_until_idle()      # once (CLI)
    engine.start(); engine.set_limits(...); engine.stats(); engine.stop(timeout)   # background (service)
"""

from edge_agent.transfer.bootstrap import open_engine
from edge_agent.transfer.config import EngineConfig
from edge_agent.transfer.engine import Engine

__all__ = ["Engine", "EngineConfig", "open_engine"]
