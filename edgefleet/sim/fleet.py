"""N simulated Pis in one process. Each is a real ``AgentRuntime`` (the agent service's own core and MQTT
link, so it speaks exactly the real protocol) with a simulated host and, unless ``upload``, a simulated engine.
With ``upload`` the real engine uploads generated recordings that appear in each agent's spool folder."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edge_agent.engine import EngineEvent, Limits
from edge_agent.service.config import AgentConfig, parse_config
from edge_agent.service.ports import EnginePort, FinishedCheck, Verdict
from edge_agent.service.runtime import AgentRuntime
from edgefleet.sim.audio import write_recording
from edgefleet.sim.credentials import AgentCredentials
from edgefleet.sim.engine import CombinedEngine, SimEngine
from edgefleet.sim.host import SimHost
from edgefleet.sim.profiles import ORDER, PROFILES, HardwareProfile
from fleet_base.mqtt_url import MqttUrl

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FleetOptions:
    agents: int
    mqtt_url: MqttUrl
    root: Path
    agent_password: str | None = None  # set: each agent logs in as its own id (per-agent ACL)
    credentials: Mapping[str, AgentCredentials] | None = None  # per agent: own password, S3 identity, site
    hot: int = 0  # the first ``hot`` agents sit in a hot enclosure
    upload: bool = False
    s3: dict[str, str] | None = None  # endpoint/access_key/secret_key/bucket(/region/ca_file), needed for upload
    seed: int = 0
    id_prefix: str = "sim"
    site: str = "sim"
    prefix: str = "sim"
    telemetry_interval_s: float = 5.0
    record_every_s: float = 60.0
    record_seconds: float = 30.0


def agent_ids(count: int, id_prefix: str = "sim") -> list[str]:
    """The ids ``simulate`` uses, so a demo can create their broker users beforehand."""
    return [f"{id_prefix}-{i + 1:02d}-{ORDER[i % len(ORDER)]}" for i in range(count)]


def _ignore(_event: EngineEvent) -> None:
    pass


def _always_ready(_path: Path) -> tuple[Verdict, str]:
    return Verdict.READY, ""


class SimulatedAgent:
    def __init__(self, index: int, options: FleetOptions, now: float) -> None:
        self.profile: HardwareProfile = PROFILES[ORDER[index % len(ORDER)]]
        self.agent_id = agent_ids(index + 1, options.id_prefix)[index]
        self.hot = index < options.hot
        self.options = options
        self.rng = random.Random(options.seed * 1000 + index)
        self.sim_engine: SimEngine | None = None
        self.config = self._config(options)
        thermal = self.profile.thermal.hot_enclosure() if self.hot else self.profile.thermal
        self.host = SimHost(self.profile, thermal, self._load, now, part_size=self._part_size)
        self.runtime = AgentRuntime(
            self.config,
            engine_factory=self._engine_factory(now),
            host=self.host,
            capabilities=self.host.capabilities(),
            check_finished=_always_ready if not options.upload else _codec_check(),
            simulated=True,
        )
        self._next_recording = now

    def _config(self, options: FleetOptions) -> AgentConfig:
        """Its own credentials (when given) win over the shared URL user / ``agent_password`` and S3 keys."""
        own = (options.credentials or {}).get(self.agent_id, AgentCredentials())
        url = options.mqtt_url
        password = own.mqtt_password or options.agent_password
        if password is not None:
            url = replace(url, username=self.agent_id, password=password)
        base = options.root / self.agent_id
        s3 = dict(options.s3 or {"endpoint": "http://127.0.0.1:9", "access_key": "-", "secret_key": "-", "bucket": "-"})
        if own.s3_access_key:
            s3 |= {"access_key": own.s3_access_key, "secret_key": own.s3_secret_key}
        data: dict[str, Any] = {
            "agent_id": self.agent_id,
            "site": own.site or options.site,
            "spool_dir": str(base / "spool"),
            "state_dir": str(base / "state"),
            "retention": "delete",
            "min_free_bytes": 0,
            "settle_seconds": 1.0,
            "scan_interval_s": 1.0,
            "telemetry_interval_s": options.telemetry_interval_s,
            "mqtt": {"url": str(url)},
            "s3": s3 | {"prefix": options.prefix},
            "defaults": {"concurrency": 2, "compression_level": 5},
        }
        return parse_config(data, env={})

    def _engine_factory(self, now: float) -> Callable[[AgentConfig, Limits, Callable[[EngineEvent], None]], EnginePort]:
        def make(config: AgentConfig, limits: Limits, on_event: Callable[[EngineEvent], None]) -> EnginePort:
            upload = self.options.upload
            self.sim_engine = SimEngine(
                self.agent_id,
                self.options.prefix,
                self.profile.stream_bps,
                _ignore if upload else on_event,
                rng=self.rng,
                now=now,
            )
            self.sim_engine.set_limits(limits)
            if not upload:
                return self.sim_engine
            from edge_agent.service.engine_adapter import build_engine

            return CombinedEngine(build_engine(config, limits, on_event), self.sim_engine)

        return make

    def _limits(self) -> Limits:
        runtime = getattr(self, "runtime", None)
        return Limits() if runtime is None else runtime.service.limits  # (the defaults before it runs)

    def _load(self) -> tuple[int, int]:
        runtime = getattr(self, "runtime", None)
        active = 0 if runtime is None else runtime.engine.stats().active_uploads
        return active, self._limits().compression_level

    def _part_size(self) -> int:
        return self._limits().part_size

    def start(self, now: float) -> None:
        self.runtime.start(now)

    def step(self, now: float) -> None:
        if self.sim_engine is not None:
            self.sim_engine.advance(now)
        self.host.advance(now)
        if self.options.upload and now >= self._next_recording:
            self._next_recording = now + self.options.record_every_s
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = self.config.spool_dir / f"{self.agent_id}-{stamp}.wav"
            write_recording(path, self.options.record_seconds, seed=self.rng.randrange(2**31))
        self.runtime.pump(now)

    def stop(self, now: float) -> None:
        self.runtime.stop(10.0, now)


def _codec_check() -> FinishedCheck:
    from edge_agent.service.finished import codec_check

    return codec_check


class Fleet:
    def __init__(self, options: FleetOptions, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        now = clock()
        self.agents = [SimulatedAgent(i, options, now) for i in range(options.agents)]

    def run(self, stop: threading.Event, tick_s: float = 0.2) -> None:
        now = self.clock()
        for agent in self.agents:
            agent.start(now)
            log.info("%s: %s%s", agent.agent_id, agent.profile.model, " (hot enclosure)" if agent.hot else "")
        try:
            while not stop.wait(tick_s):
                now = self.clock()
                for agent in self.agents:
                    agent.step(now)
        finally:
            # in parallel: each stop waits for its retained "offline" to be acknowledged and its network thread
            with ThreadPoolExecutor(max_workers=32) as pool:
                list(pool.map(lambda agent: agent.stop(self.clock()), self.agents))
