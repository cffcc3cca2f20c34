"""5 agents × 20 recordings through the whole system while a fault campaign runs (issue 6).

Faults: network cuts between agents and S3 (refused connections, a cut in the middle of a part, a stalled
link), ``kill -9`` and restart of agents, restarts of the broker, the S3 server and the controller. The
agents use retention ``move``, so nothing is ever deleted: the test keeps every original and compares.

At the end: every recording is in the store exactly once and ``restore`` gives back its original sha256; no
multipart upload is left; no file was moved to the done folder before its object existed (a watcher checks
each moved file against the store as it appears); the dashboard API reports the same counts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlmodel import Session

from controller.store.database import make_engine
from controller.store.repo import reject_counts
from fleet_protocol.topics import AgentChannel, agent_topic
from tests.e2e.recordings import Recorder, Recording, plan, sha256, write_not_wav, write_truncated
from tests.e2e.store import RetirementWatcher, list_keys, open_uploads
from tests.e2e.system import PREFIX, EventRecorder, System, fleet_json, wait_for
from tests.faultproxy import FaultProxy

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

AGENTS = [f"pi-e2e-{i:02d}" for i in range(5)]
WAVE_S = 12.0  # a new wave of recordings "finishes" every WAVE_S seconds
MiB = 1024 * 1024
JANITOR_AGE_S = 72
Step = tuple[float, str, Callable[[], object]]


@pytest.fixture
def recorder(tmp_path: Path) -> Recorder:
    """Starts writing the recordings at once, while the system starts."""
    rec = Recorder(plan(AGENTS), tmp_path / "recorder", wave_s=WAVE_S)
    rec.start()
    return rec


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    changes = {
        "settle_seconds": 1,
        "scan_interval_s": 0.5,
        "telemetry_interval_s": 1,
        "defaults": {"concurrency": 2, "part_size": 5 * MiB},
    }
    # The janitor aborts multipart uploads that no agent works on after 72 s (production: 24 h), so the orphans a
    # lost CreateMultipartUpload response leaves (the retry creates a second upload) are cleaned up in the run.
    janitor = {"s3": {"stale_upload_hours": JANITOR_AGE_S / 3600, "janitor_interval_s": 10}}
    fleet = System(tmp_path / "fleet", AGENTS, changes, janitor)
    try:
        yield fleet.start()
    finally:
        fleet.close()


def bad_files(system: System) -> None:
    for agent in AGENTS[:2]:  # an agent that has not made its spool folder yet (a slow start) gets them all the same
        system.spool(agent).mkdir(parents=True, exist_ok=True)
    write_truncated(system.spool(AGENTS[0]) / TRUNCATED)
    write_not_wav(system.spool(AGENTS[1]) / NOT_WAV)


def refuse(*proxies: FaultProxy, on: bool) -> None:
    for proxy in proxies:
        proxy.refuse(on)


def cut(*proxies: FaultProxy) -> None:
    for proxy in proxies:
        proxy.cut_all()


TRUNCATED = "pi-e2e-00-cut-short.wav"
NOT_WAV = "pi-e2e-01-not-a-wav.wav"


def publish_garbage(system: System, agent_id: str) -> None:
    """An agent (its own credentials, its own topics) sends malformed payloads: not JSON, and wrong fields."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{agent_id}-garbage", protocol=mqtt.MQTTv5)
    client.username_pw_set(agent_id, system.state.agent_password(agent_id))
    client.connect(system.broker.host, system.broker.port)
    client.loop_start()
    try:
        for payload in (b"{not json", b'{"v": 1, "agent_id": "' + agent_id.encode() + b'", "temperature_c": "hot"}'):
            client.publish(agent_topic(agent_id, AgentChannel.TELEMETRY), payload, qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def campaign(system: System) -> list[Step]:
    a0, a1, a2, a3, a4 = AGENTS
    px = system.proxies
    sup = system.supervisor
    steps: list[Step] = [
        (2.0, "a truncated recording and a non-WAV .wav", lambda: bad_files(system)),
        (4.0, "malformed MQTT payloads", lambda: publish_garbage(system, a2)),
        (3.0, f"cut {a0},{a1} <-> S3", lambda: refuse(px[a0], px[a1], on=True)),
        (9.0, f"reconnect {a0},{a1}", lambda: refuse(px[a0], px[a1], on=False)),
        (6.0, f"cut {a2} in the middle of a part", lambda: px[a2].cut_after(3 * MiB)),
        (13.0, f"kill -9 {a3}", lambda: sup.kill(a3)),
        (16.0, f"restart {a3}", lambda: sup.restart(a3)),
        (20.0, "restart the broker", lambda: system.broker.restart(downtime=2.0)),
        (27.0, "restart the S3 server", lambda: system.s3.restart(downtime=2.0)),
        (35.0, "kill -9 and restart the controller", lambda: sup.restart("controller", hard=True, downtime=1.0)),
        (39.0, f"stall {a4} <-> S3", lambda: px[a4].stall()),
        (45.0, f"resume {a4}", lambda: px[a4].resume()),
        (41.0, f"kill -9 {a1}", lambda: sup.kill(a1)),
        (44.0, f"restart {a1}", lambda: sup.restart(a1)),
        (50.0, f"cut {a2},{a3} <-> S3 again", lambda: cut(px[a2], px[a3])),
    ]
    return sorted(steps, key=lambda s: s[0])


def run_steps(steps: list[Step], log: list[str]) -> None:
    """Each step starts at its time in its own thread (a slow restart does not delay the other faults)."""
    start = time.monotonic()
    threads = []
    errors: list[BaseException] = []

    def run(label: str, action: Callable[[], object]) -> None:
        began = time.monotonic() - start
        try:
            action()
        except BaseException as exc:
            errors.append(exc)
        log.append(f"{began:6.1f} s  {label} (took {time.monotonic() - start - began:.1f} s)")

    for at, label, action in steps:
        time.sleep(max(0.0, start + at - time.monotonic()))
        thread = threading.Thread(target=run, args=(label, action), name=label)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(120)
    if errors:
        raise errors[0]


def all_done(system: System, recordings: list[Recording]) -> bool:
    return (system.done(AGENTS[1]) / NOT_WAV).exists() and all(
        (system.done(r.agent_id) / r.name).exists() for r in recordings
    )


def completed_uploads(client: httpx.Client, agent_id: str) -> list[dict[str, Any]]:
    rows = client.get(f"/api/agents/{agent_id}/uploads", params={"limit": 1000}).json()
    return [r for r in rows if r["kind"] == "upload_completed"]


def test_fault_campaign_loses_nothing_and_duplicates_nothing(
    recorder: Recorder, system: System, tmp_path: Path
) -> None:
    began = time.monotonic()
    recordings = recorder.recordings
    s3 = system.s3.client()
    watcher = RetirementWatcher(s3, system.s3.bucket, PREFIX, {a: system.done(a) for a in AGENTS})
    watcher.start()
    observer = EventRecorder(system.broker)
    log: list[str] = []
    recorder.begin(system.spool)
    run_steps(campaign(system), log)
    originals = recorder.sha256
    finished = wait_for(lambda: all_done(system, recordings), timeout=200)
    watcher.stop()
    assert recorder.error is None
    log += [f"{at:6.1f} s  wave {wave} recorded" for at, wave in recorder.landed]
    took = time.monotonic() - began
    report = "\n".join(log) + f"\nall retired {took:.0f} s after the start"
    missing = [r.name for r in recordings if not (system.done(r.agent_id) / r.name).exists()]
    assert finished, f"not retired after the campaign: {missing}\n{report}\n{system.log_tails()}"
    assert watcher.violations == [], report

    # every local file was kept (moved, not deleted) and is still the original
    for rec in recordings:
        assert sha256(system.done(rec.agent_id) / rec.name) == originals[rec.name]

    # every recording in the store exactly once, nothing else, no upload left open
    keys = list_keys(s3, system.s3.bucket, PREFIX)
    stems = sorted(Path(k).stem for k in keys)
    assert stems == sorted([Path(NOT_WAV).stem, *(Path(r.name).stem for r in recordings)]), keys
    left = open_uploads(s3, system.s3.bucket)
    report += f"\nmultipart uploads open when all was retired: {len(left)} {left}"
    assert wait_for(lambda: open_uploads(s3, system.s3.bucket) == [], timeout=JANITOR_AGE_S + 30), (
        f"left behind: {open_uploads(s3, system.s3.bucket)}\n{report}"
    )

    # restore gives back the original bytes, for every object
    from fleet_audio.restore import restore_object

    out = tmp_path / "restored"
    out.mkdir()
    by_stem = {Path(k).stem: k for k in keys}
    multipart = 0
    for rec in recordings:
        key = by_stem[Path(rec.name).stem]
        target = out / rec.name
        result = restore_object(s3, system.s3.bucket, key, target)
        assert result.sha256 == originals[rec.name] == sha256(target), key
        multipart += (s3.stat_object(system.s3.bucket, key).etag or "").endswith(("-2", "-3", "-4"))
        target.unlink()
    assert multipart >= len(AGENTS), f"only {multipart} multipart objects: the sizes no longer test multipart"

    # bad input: the non-WAV is stored raw and comes back exactly; the truncated one is rejected and kept
    raw = restore_object(s3, system.s3.bucket, by_stem[Path(NOT_WAV).stem], out / NOT_WAV)
    assert (raw.kind, raw.sha256) == ("raw", sha256(write_not_wav(tmp_path / NOT_WAV))), raw
    assert (system.spool(AGENTS[0]) / TRUNCATED).exists()
    assert Path(TRUNCATED).stem not in by_stem

    # the command line agrees, for one multipart object
    big = max(recordings, key=lambda r: r.wav_bytes)
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgefleet.cli",
            "verify",
            by_stem[Path(big.name).stem],
            str(system.done(big.agent_id) / big.name),
        ],
        env={**os.environ, **system.s3.env()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr

    # the dashboard reports the same counts: one completed upload per recording, none missing, none twice
    client = system.dashboard()
    wait_for(lambda: fleet_json(client)["totals"]["uploaded_today_files"] > len(recordings), timeout=60)
    reported = Counter(Path(r["key"]).stem for agent_id in AGENTS for r in completed_uploads(client, agent_id))
    stored = Counter(Path(k).stem for k in keys)
    missing_in_dashboard = sorted((stored - reported).elements())
    reported_twice = sorted(stem for stem, n in reported.items() if n > 1)
    totals = fleet_json(client)["totals"]
    observer.close()
    events = observer.events()
    on_broker = Counter(Path(e.key).stem for e in events if e.kind == "upload_completed")
    assert [e.file for e in events if e.kind == "file_rejected"] == [TRUNCATED]
    with Session(make_engine(system.paths.database_url)) as session:
        rejects = reject_counts(session)
    assert sum(n for kind, n in rejects.items() if kind.startswith("telemetry")) >= 2, rejects
    seen = f"a persistent-session subscriber got {sum(on_broker.values())} completed events; the dashboard lacks "
    seen += str(sorted((on_broker - reported).elements()))
    print(report)
    assert reported_twice == [], f"{totals}\n{report}"
    assert missing_in_dashboard == [], f"{totals}\n{seen}\n{report}"
    assert totals["uploaded_today_files"] == len(recordings) + 1, totals
    assert totals["rejected_today"] == 1, totals
