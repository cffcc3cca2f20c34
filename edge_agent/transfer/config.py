"""``EngineConfig``: the one documented configuration object of the engine (what does not change at run time;
what the controller changes is :class:`edge_agent.engine.Limits`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge_agent.engine.linkguard import STALL_TIMEOUT_S
from edge_agent.engine.queue import AGING_BPS
from fleet_base.s3settings import S3Settings


@dataclass(frozen=True)
class EngineConfig:
    s3: S3Settings
    prefix: str
    agent_id: str
    state_dir: Path  # the journal lives here (journal.sqlite3)
    stall_timeout_s: float = STALL_TIMEOUT_S  # a request that writes and gets acknowledged nothing this long is
    # retried (any link speed works: there is no whole-request timeout; a part also has a deadline from the
    # measured link rate, see edge_agent.engine.linkguard)
    retry_base_s: float = 0.5  # backoff: full jitter, base * 2**attempt, capped
    retry_cap_s: float = 30.0
    give_up_after_s: float = 0.0  # stop retrying one request after this long (0 = never; the file is kept)
    aging_bps: float = AGING_BPS  # queue aging, see edge_agent.engine.queue
    restarts_per_attempt: int = 2  # clean restarts (changed parts, upload gone) before the attempt fails
    settle_s: float = 60.0  # a file unchanged this long is finished: odd RIFF sizes then mean truncated
    dedup: bool = True  # skip a file whose object already exists with the same original sha256

    @property
    def journal_path(self) -> Path:
        return self.state_dir / "journal.sqlite3"
