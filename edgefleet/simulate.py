"""``edgefleet simulate --agents N``: simulated Raspberry Pi agents on real MQTT (see docs/simulator.md)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from edge_agent.s3settings import S3SettingsError, add_s3_arguments, s3_settings_from_args
from edgefleet.sim.fleet import Fleet, FleetOptions, agent_ids
from fleet_protocol.mqtt_url import ENV_VAR, MqttUrl


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agents", type=int, default=6, help="how many simulated Pis")
    parser.add_argument("--mqtt-url", default=os.environ.get(ENV_VAR), help=f"broker URL (default ${ENV_VAR})")
    parser.add_argument(
        "--agent-password",
        help="each agent logs in as its own id with this password (per-agent broker ACL); implied, with the "
        "URL's password, when the URL's user is one of the simulated agent ids",
    )
    parser.add_argument("--hot", type=int, default=0, help="how many agents sit in a hot enclosure (the first N)")
    parser.add_argument("--upload", action="store_true", help="real uploads of generated recordings to S3")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, help="state and spool folders (default: a new temporary folder)")
    parser.add_argument("--id-prefix", default="sim", help="agent ids are PREFIX-NN-PROFILE")
    parser.add_argument("--site", default="sim")
    parser.add_argument("--prefix", default="sim", help="object key prefix")
    parser.add_argument("--telemetry-interval", type=float, default=5.0, help="seconds between telemetry")
    parser.add_argument("--record-every", type=float, default=60.0, help="--upload: seconds between recordings")
    parser.add_argument("--record-seconds", type=float, default=30.0, help="--upload: length of each recording")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0 = Ctrl-C)")
    parser.add_argument("--list-ids", action="store_true", help="print the agent ids and exit")
    add_s3_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.list_ids:
        print("\n".join(agent_ids(args.agents, args.id_prefix)))
        return 0
    if args.agents < 1 or not 0 <= args.hot <= args.agents:
        print("edgefleet simulate: need --agents >= 1 and 0 <= --hot <= --agents", file=sys.stderr)
        return 2
    if not args.mqtt_url:
        print(f"edgefleet simulate: --mqtt-url or {ENV_VAR} is required", file=sys.stderr)
        return 2
    s3: dict[str, str] | None = None
    try:
        url = MqttUrl.parse(args.mqtt_url)
        if args.upload:
            settings = s3_settings_from_args(args)
            s3 = {
                "endpoint": settings.endpoint,
                "access_key": settings.access_key,
                "secret_key": settings.secret_key,
                "bucket": settings.bucket,
                "region": settings.region,
            }
    except (ValueError, S3SettingsError) as exc:
        print(f"edgefleet simulate: {exc}", file=sys.stderr)
        return 2
    password = args.agent_password
    if password is None and url.username in agent_ids(args.agents, args.id_prefix):
        password = url.password  # the URL names one of our agents: every agent logs in as itself with it
    root = args.dir or Path(tempfile.mkdtemp(prefix="edgefleet-sim-"))
    options = FleetOptions(
        agents=args.agents,
        mqtt_url=url,
        root=root,
        agent_password=password,
        hot=args.hot,
        upload=args.upload,
        s3=s3,
        seed=args.seed,
        id_prefix=args.id_prefix,
        site=args.site,
        prefix=args.prefix,
        telemetry_interval_s=args.telemetry_interval,
        record_every_s=args.record_every,
        record_seconds=args.record_seconds,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.duration > 0:
        threading.Timer(args.duration, stop.set).start()
    fleet = Fleet(options)
    print(f"simulating {args.agents} agents ({args.hot} hot) on {url.redacted()}, state in {root}", flush=True)
    for agent in fleet.agents:
        print(f"  {agent.agent_id}: {agent.profile.model}{' [hot enclosure]' if agent.hot else ''}", flush=True)
    fleet.run(stop)
    return 0
