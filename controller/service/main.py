"""``edgefleet controller --config FILE``: the long-running fleet controller (``--migrate``: the database only)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from controller.config import ConfigError, ControllerConfig, load_config
from controller.service.app import Controller
from controller.store.database import make_engine
from controller.store.schema import SchemaError, migrate, state

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="controller.toml (environment variables override it)")
    parser.add_argument(
        "--stats-file", type=Path, default=None, help="write ingest/tick statistics as JSON here every 5 s"
    )
    parser.add_argument("--check", action="store_true", help="validate the configuration and exit")
    parser.add_argument(
        "--migrate",
        nargs="?",
        const="head",
        metavar="REVISION",
        help="migrate the database to this release's schema (or to REVISION, e.g. a rollback to 0001) and exit",
    )


def run(args: argparse.Namespace) -> int:
    if getattr(args, "verbose", 0) == 0:  # a service logs what it does
        logging.getLogger().setLevel(logging.INFO)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"edgefleet controller: {exc}", file=sys.stderr)
        return 2
    if args.check:
        telemetry = config.mqtt.telemetry
        print(
            f"configuration OK: controller {config.controller_id}, MQTT {config.mqtt.parsed.redacted()}"
            + (f", telemetry {telemetry.redacted()}" if telemetry else "")
            + f", {len(config.agent_sites)} agents provisioned with a site"
            + (f", health and metrics on {config.metrics.listen}" if config.metrics.listen else "")
        )
        return 0
    if args.migrate is not None:
        return _migrate(config, args.migrate)
    controller = Controller(config, stats_file=args.stats_file)

    def _terminate(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    log.info("controller %s starting (database %s)", config.controller_id, _redacted(config.database_url))
    with contextlib.suppress(KeyboardInterrupt):
        try:
            controller.run_forever()
        except SchemaError as exc:
            print(f"edgefleet controller: {exc}", file=sys.stderr)
            return 2
    return 0


def _migrate(config: ControllerConfig, target: str) -> int:
    """``--migrate``: the database to ``target`` under the migration lock (another controller migrating at the
    same time is waited for), then exit."""
    engine = make_engine(config.database_url)
    try:
        found = migrate(engine, target)
        now = state(engine)
    except SchemaError as exc:
        print(f"edgefleet controller: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(f"database {_redacted(config.database_url)}: {found.current or 'unversioned'} -> {now.current or 'base'}")
    return 0


def _redacted(url: str) -> str:
    return url.split("@")[-1]
