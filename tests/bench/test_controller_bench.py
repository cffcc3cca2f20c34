"""Controller benchmark: N simulated agents × telemetry every 5 s through a real Mosquitto, on SQLite and
PostgreSQL side by side (results: docs/bench/controller.md).

Measures, per database:
- ingest lag (telemetry ``sent_at`` → committed in the store), p50/p99, from the controller's own stats;
- controller process CPU (% of one core) and peak RSS over the measured window;
- thermal reaction: a hot reading (85 °C) for one agent → that agent's paused assignment arriving at an
  MQTT subscriber, p50/p99.

The load generator runs in its own process: a few MQTT v5 connections (privileged user) publish for all
agents, spread evenly over the interval; it is a load generator, not the full simulator.

    EDGEFLEET_BENCH_AGENTS=2000 EDGEFLEET_BENCH_SECONDS=60 \\
        .venv/bin/pytest -m bench tests/bench/test_controller_bench.py -s
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edgefleet.localservices import Mosquitto, Postgres, ServiceError
from fleet_base.mqtt_url import MqttUrl
from fleet_protocol.codec import encode
from fleet_protocol.messages import Birth, State, Telemetry
from fleet_protocol.topics import AgentChannel, agent_filter, agent_topic

pytestmark = pytest.mark.bench

AGENTS = int(os.environ.get("EDGEFLEET_BENCH_AGENTS", "2000"))
SECONDS = float(os.environ.get("EDGEFLEET_BENCH_SECONDS", "60"))
INTERVAL = 5.0
WARMUP = 20.0
CLIENTS = 8
PROBE_EVERY = 0.5
SITES = 40
RESULT = Path(os.environ.get("EDGEFLEET_BENCH_OUT", "/tmp/edgefleet-controller-bench.json"))


def _client(url: MqttUrl, name: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
    client.username_pw_set(url.username, url.password)
    client.max_queued_messages_set(0)
    client.connect(url.host, url.port, keepalive=30)
    client.loop_start()
    return client


def _telemetry(agent: str, seq: int, rng: random.Random, base: dict[str, float], temp: float | None = None) -> bytes:
    return encode(
        Telemetry(
            agent_id=agent,
            seq=seq,
            temperature_c=temp if temp is not None else base["temp"] + rng.uniform(-0.5, 0.5),
            cpu_percent=rng.uniform(5, 60),
            mem_available_bytes=int(base["ram"] * 0.6),
            disk_free_bytes=20 << 30,
            backlog_files=int(base["files"]),
            backlog_bytes=int(base["files"]) * 300 << 20,
            backlog_oldest_age_s=base["age"],
            active_uploads=1 if base["files"] else 0,
            throughput_bps=base["bps"] * rng.uniform(0.98, 1.02),
            assignment_version=1,
        )
    )


def run_loadgen(url_text: str, agents: int, seconds: float, out: str) -> None:
    """Publish births, then telemetry for every agent every INTERVAL s; probe thermal reaction."""
    url = MqttUrl.parse(url_text)
    rng = random.Random(7)
    ids = [f"sim-{i:04d}" for i in range(agents)]
    clients = [_client(url, f"loadgen-{os.getpid()}-{n}") for n in range(CLIENTS)]
    arrivals: list[tuple[str, bool, float]] = []
    lock = threading.Lock()

    def on_assignment(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        body = json.loads(message.payload)
        with lock:
            arrivals.append((body["agent_id"], body["paused"], time.time()))

    watcher = _client(url, f"loadgen-watch-{os.getpid()}")
    watcher.on_message = on_assignment
    watcher.subscribe(agent_filter(AgentChannel.ASSIGNMENT), qos=1)
    base = {
        agent: {
            "temp": rng.uniform(45, 62),
            "ram": rng.choice([512 << 20, 1 << 30, 4 << 30, 8 << 30]),
            "files": float(rng.choice([0, 0, 1, 3, 10])),
            "age": rng.choice([60.0, 3600.0, 8 * 3600.0]),
            "bps": rng.choice([300e3, 1.5e6, 6e6]),
        }
        for agent in ids
    }
    for i, agent in enumerate(ids):
        client = clients[i % CLIENTS]
        birth = Birth(
            agent_id=agent,
            seq=0,
            model="Raspberry Pi 4 Model B",
            cores=4,
            ram_bytes=int(base[agent]["ram"]),
            software_version="bench",
            flac_encode_bps=2e7,
            site=f"site-{i % SITES:02d}",
            simulated=True,
        )
        client.publish(agent_topic(agent, AgentChannel.BIRTH), encode(birth), qos=1, retain=True)
        state = State(agent_id=agent, seq=1, state="online")  # type: ignore[arg-type]
        client.publish(agent_topic(agent, AgentChannel.STATE), encode(state), qos=1, retain=True)
    start = time.time()
    due = [start + i * INTERVAL / agents for i in range(agents)]
    seqs = [2] * agents
    pointer, sent = 0, 0
    probes: list[tuple[str, float]] = []
    probe_pool = [a for a in ids if a.endswith(("3", "7"))]
    rng.shuffle(probe_pool)
    next_probe = start + WARMUP
    while time.time() < start + WARMUP + seconds:
        now = time.time()
        while due[pointer] <= now:
            agent = ids[pointer]
            payload = _telemetry(agent, seqs[pointer], rng, base[agent])
            clients[pointer % CLIENTS].publish(agent_topic(agent, AgentChannel.TELEMETRY), payload, qos=0)
            seqs[pointer] += 1
            sent += 1
            due[pointer] += INTERVAL
            pointer = (pointer + 1) % agents
        if now >= next_probe and probe_pool:
            agent = probe_pool.pop()
            index = ids.index(agent)
            base[agent]["temp"] = 85.0  # it stays hot from now on
            payload = _telemetry(agent, seqs[index], rng, base[agent], temp=85.0)
            seqs[index] += 1
            sent_at = time.time()
            clients[index % CLIENTS].publish(agent_topic(agent, AgentChannel.TELEMETRY), payload, qos=0)
            probes.append((agent, sent_at))
            next_probe += PROBE_EVERY
        time.sleep(0.01)
    time.sleep(2.0)  # let the last reactions arrive
    with lock:
        seen = list(arrivals)
    reactions = []
    for agent, sent_at in probes:
        hits = [at for who, paused, at in seen if who == agent and paused and at >= sent_at]
        reactions.append(min(hits) - sent_at if hits else None)
    for client in [*clients, watcher]:
        client.disconnect()
        client.loop_stop()
    Path(out).write_text(json.dumps({"sent": sent, "reactions": reactions, "assignments_seen": len(seen)}))


def _pct(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(fraction * len(ordered) + 0.999999) - 1))]


def _run_one(database_url: str, label: str, workdir: Path) -> dict[str, Any]:
    broker = Mosquitto(directory=workdir / f"mqtt-{label}")
    (workdir / f"mqtt-{label}").mkdir(parents=True, exist_ok=True)
    broker.add_user("controller", role="controller")
    broker.add_user("loadgen", role="controller")
    with broker:
        config = workdir / f"controller-{label}.toml"
        config.write_text(
            f'controller_id = "bench-{label}"\ndatabase_url = "{database_url}"\ntick_seconds = 1.0\n'
            "database_migrate = true\n"
            f'[mqtt]\nurl = "{broker.url_for("controller")}"\n[policy]\nsite_uplink_bps = 12500000\n'
        )
        stats_file = workdir / f"stats-{label}.json"
        log = (workdir / f"controller-{label}.log").open("w")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edgefleet.cli",
                "controller",
                "--config",
                str(config),
                "--stats-file",
                str(stats_file),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        out = workdir / f"loadgen-{label}.json"
        gen = multiprocessing.get_context("spawn").Process(
            target=run_loadgen, args=(broker.url_for("loadgen"), AGENTS, SECONDS, str(out))
        )
        ps = psutil.Process(proc.pid)
        try:
            gen.start()
            time.sleep(WARMUP)
            cpu0, t0 = ps.cpu_times(), time.monotonic()
            rss_peak = 0
            while gen.is_alive():
                rss_peak = max(rss_peak, ps.memory_info().rss)
                time.sleep(1.0)
                if time.monotonic() - t0 >= SECONDS:
                    break
            cpu1, t1 = ps.cpu_times(), time.monotonic()
            gen.join(timeout=60)
            time.sleep(6)  # one more stats dump
            stats = json.loads(stats_file.read_text())
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()
    generated = json.loads(out.read_text())
    reactions = [r for r in generated["reactions"] if r is not None]
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (t1 - t0)
    return {
        "database": label,
        "agents": AGENTS,
        "telemetry_per_s": AGENTS / INTERVAL,
        "sent": generated["sent"],
        "stored": stats["stored"],
        "rejected": stats["rejected"],
        "dropped": stats["dropped"],
        "ingest_lag_p50_s": stats["ingest_lag_last_60s"]["p50_s"],
        "ingest_lag_p99_s": stats["ingest_lag_last_60s"]["p99_s"],
        "ingest_lag_max_s": stats["ingest_lag_last_60s"]["max_s"],
        "controller_cpu_percent_of_one_core": round(100 * cpu, 1),
        "controller_rss_peak_mib": round(rss_peak / 2**20, 1),
        "tick_p50_s": stats["tick_p50_s"],
        "tick_max_s": stats["tick_max_s"],
        "assignments_published": stats["published"],
        "probes": len(generated["reactions"]),
        "probes_answered": len(reactions),
        "reaction_p50_s": _pct(reactions, 0.5) if reactions else None,
        "reaction_p99_s": _pct(reactions, 0.99) if reactions else None,
        "reaction_max_s": max(reactions) if reactions else None,
    }


def test_controller_ingest_and_thermal_reaction_sqlite_vs_postgresql() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="edgefleet-ctl-bench-"))
    results = [_run_one(f"sqlite:///{workdir / 'bench.db'}", "sqlite", workdir)]
    try:
        pg = Postgres()
        pg.ensure_running()
        results.append(_run_one(pg.create_database("edgefleet_bench"), "postgresql", workdir))
    except ServiceError as exc:
        print(f"PostgreSQL not available, SQLite only: {exc}")
    machine = {"cpus": os.cpu_count(), "cpu_model": _cpu_model(), "python": sys.version.split()[0]}
    RESULT.write_text(json.dumps({"machine": machine, "results": results}, indent=1))
    print(json.dumps({"machine": machine, "results": results}, indent=1))
    for result in results:
        assert result["dropped"] == 0
        assert result["stored"] >= 0.95 * result["sent"], result
        assert result["ingest_lag_p99_s"] < 1.0, result
        assert result["probes_answered"] == result["probes"], result
        assert result["reaction_p99_s"] < 1.0, result


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"
