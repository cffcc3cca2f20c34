"""The composition root of the transfer layer: the engine on the real adapters.

``edgefleet upload`` (``edge_agent/cli_upload.py``) and the agent service (``edge_agent/service/engine_adapter.py``)
build their engine here; unit tests build :class:`Engine` themselves with in-memory fakes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from edge_agent.engine.events import EngineEvent
from edge_agent.engine.limits import Limits
from edge_agent.transfer.config import EngineConfig
from edge_agent.transfer.context import Codec
from edge_agent.transfer.encoding import Compression
from edge_agent.transfer.engine import Engine
from edge_agent.transfer.journal import Journal
from edge_agent.transfer.s3 import S3Store


def open_engine(
    config: EngineConfig,
    limits: Limits,
    on_event: Callable[[EngineEvent], None] | None = None,
    *,
    codec: Codec | None = None,
    clock: Callable[[], float] = time.time,
    compression: Compression | None = None,
) -> Engine:
    """S3 over minio (``config.s3``, ``config.stall_timeout_s``) and the SQLite journal in ``config.state_dir``."""
    store = S3Store(config.s3, stall_timeout_s=config.stall_timeout_s)
    journal = Journal(config.journal_path)
    return Engine(
        config, limits, on_event, store=store, journal=journal, codec=codec, clock=clock, compression=compression
    )
