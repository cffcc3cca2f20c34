"""``edgefleet simulate --agents N``: simulated Raspberry Pi agents on real MQTT (see docs/simulator.md).

Secrets never go on the command line: per-agent passwords and S3 identities come from ``--credentials FILE``
(mode 0600), shared ones from ``EDGEFLEET_MQTT_URL`` / ``EDGEFLEET_S3_*``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from edgefleet.sim.credentials import AgentCredentials, CredentialsError, load_credentials
from edgefleet.sim.fleet import Fleet, FleetOptions, agent_ids
from fleet_base.configfile import ConfigError
from fleet_base.mqtt_url import ENV_VAR, MqttUrl
from fleet_base.s3settings import DEFAULTS, ENV, S3Settings, S3SettingsError, add_s3_arguments


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agents", type=int, default=6, help="how many simulated Pis")
    parser.add_argument(
        "--mqtt-url",
        default=os.environ.get(ENV_VAR),
        help=f"broker URL (default ${ENV_VAR}); agents listed in --credentials log in as themselves. When the "
        "URL's user is one of the simulated agent ids, every agent logs in as its own id with the URL's password",
    )
    parser.add_argument(
        "--credentials",
        type=Path,
        help="per-agent MQTT passwords, S3 keys and sites: a TOML file readable by its owner only "
        '(tables [agents."<id>"] with mqtt_password, s3_access_key, s3_secret_key, site)',
    )
    parser.add_argument("--hot", type=int, default=0, help="how many agents sit in a hot enclosure (the first N)")
    parser.add_argument("--upload", action="store_true", help="real uploads of generated recordings to S3")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, help="state and spool folders (default: a new temporary folder)")
    parser.add_argument("--id-prefix", default="sim", help="agent ids are PREFIX-NN-PROFILE")
    parser.add_argument("--site", default="sim", help="the site agents report (unless --credentials sets one)")
    parser.add_argument("--prefix", default="sim", help="object key prefix")
    parser.add_argument("--telemetry-interval", type=float, default=5.0, help="seconds between telemetry")
    parser.add_argument("--record-every", type=float, default=60.0, help="--upload: seconds between recordings")
    parser.add_argument("--record-seconds", type=float, default=30.0, help="--upload: length of each recording")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0 = Ctrl-C)")
    parser.add_argument("--list-ids", action="store_true", help="print the agent ids and exit")
    add_s3_arguments(parser)


def s3_base(args: argparse.Namespace, credentials: dict[str, AgentCredentials], ids: list[str]) -> dict[str, str]:
    """The shared S3 settings (flags, then ``EDGEFLEET_S3_*``). The shared keys may be left out when every agent
    has its own in the credentials file."""
    values = {
        name: getattr(args, f"s3_{name}", None) or os.environ.get(var, "") or DEFAULTS.get(name, "")
        for name, var in ENV.items()
    }
    if not values["endpoint"]:
        raise S3SettingsError(f"S3 endpoint is not set (flag --s3-endpoint or {ENV['endpoint']})")
    if all(credentials.get(agent, AgentCredentials()).s3_access_key for agent in ids):
        S3Settings(**{**values, "access_key": values["access_key"] or "-", "secret_key": values["secret_key"] or "-"})
    else:
        S3Settings(**values)  # some agent uses the shared keys: they must be there
    return values


def run(args: argparse.Namespace) -> int:
    ids = agent_ids(args.agents, args.id_prefix)
    if args.list_ids:
        print("\n".join(ids))
        return 0
    if args.agents < 1 or not 0 <= args.hot <= args.agents:
        print("edgefleet simulate: need --agents >= 1 and 0 <= --hot <= --agents", file=sys.stderr)
        return 2
    if not args.mqtt_url:
        print(f"edgefleet simulate: --mqtt-url or {ENV_VAR} is required", file=sys.stderr)
        return 2
    try:
        url = MqttUrl.parse(args.mqtt_url)
        credentials = load_credentials(args.credentials) if args.credentials else {}
        s3 = s3_base(args, credentials, ids) if args.upload else None
    except (ValueError, S3SettingsError, CredentialsError) as exc:
        print(f"edgefleet simulate: {exc}", file=sys.stderr)
        return 2
    password = url.password if url.username in ids else None  # the URL names one of our agents
    root = args.dir or Path(tempfile.mkdtemp(prefix="edgefleet-sim-"))
    options = FleetOptions(
        agents=args.agents,
        mqtt_url=url,
        root=root,
        agent_password=password,
        credentials=credentials,
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
    try:
        fleet = Fleet(options)
    except ConfigError as exc:
        print(f"edgefleet simulate: {exc}", file=sys.stderr)
        return 2
    _run_until_stopped(fleet, args.duration, f"{args.agents} agents ({args.hot} hot) on {url.redacted()}", root)
    return 0


def _run_until_stopped(fleet: Fleet, duration: float, what: str, root: Path) -> None:
    """Run the fleet until SIGTERM, SIGINT or ``duration`` seconds (0 = no limit)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if duration > 0:
        threading.Timer(duration, stop.set).start()
    print(f"simulating {what}, state in {root}", flush=True)
    for agent in fleet.agents:
        print(f"  {agent.agent_id}: {agent.profile.model}{' [hot enclosure]' if agent.hot else ''}", flush=True)
    fleet.run(stop)
