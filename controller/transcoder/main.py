"""Turn raw objects into the FLAC (or zstd) objects the agents write, verified before the raw one goes.

``edgefleet transcoder --config FILE``, the central transcoder service (docs/transcoder.md).

Turns raw objects (uploaded raw by hot or slow Pis, or files FLAC cannot hold) into the FLAC objects the agents
write, or zstd objects, verified before the raw object is deleted. Run several side by side (one process per
core): they share the job queue in the controller's database.
"""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path
from types import FrameType

from prometheus_client import start_http_server
from sqlalchemy.exc import SQLAlchemyError

from controller.store.database import make_engine
from controller.store.schema import SchemaError, check, migrate
from controller.transcoder.config import load_config
from controller.transcoder.metrics import TranscoderMetrics
from controller.transcoder.work import Worker
from fleet_base.configfile import ConfigError

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.splitlines()[0]
    parser.add_argument("--config", type=Path, required=True, help="transcoder.toml (README, 'Configuration')")
    parser.add_argument("--once", action="store_true", help="work the queue until it is empty, then exit")


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"edgefleet transcoder: {exc}")
        return 2
    engine = make_engine(config.database_url)
    try:
        if config.database_migrate:
            migrate(engine)
        else:
            check(engine)
    except (SQLAlchemyError, SchemaError) as exc:
        print(f"edgefleet transcoder: database: {exc}")
        return 1
    metrics = TranscoderMetrics()
    address = config.metrics.address
    if address is not None:
        start_http_server(address[1], addr=address[0], registry=metrics.registry)
    worker = Worker(config, engine, config.s3.settings().client(), metrics)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        worker.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("transcoder %s started (level %d)", worker.name, config.compression_level)
    if args.once:
        worker.poll()
        while worker.run_once():
            pass
        return 0
    worker.run()
    return 0
