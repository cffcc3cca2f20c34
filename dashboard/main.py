"""``edgefleet dashboard --config FILE`` (uvicorn) and ``edgefleet dashboard --hash-password``."""

from __future__ import annotations

import argparse
import gc
import getpass
import ipaddress
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dashboard.config import DashboardConfig

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="dashboard.toml (see docs/dashboard.md)")
    parser.add_argument(
        "--hash-password",
        action="store_true",
        help="read a password (prompt, or stdin when piped; at least 12 characters) and print its bcrypt hash "
        "for [[users]]",
    )
    parser.add_argument("--host", help="override the configured host")
    parser.add_argument("--port", type=int, help="override the configured port")


# Reading a 2,000-agent fleet allocates ~50,000 short-lived objects; with the default thresholds the
# cyclic collector then walks the whole heap every few requests and doubles the slow tail (p95 150 ms
# → 55 ms CPU in docs/bench/dashboard.md). Startup objects are frozen out of its way, and it runs less often.
GC_THRESHOLDS = (20_000, 50, 100)


def tune_gc() -> None:
    """For the server process, once everything is imported and built."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if first != getpass.getpass("again: "):
            raise ValueError("the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def run(args: argparse.Namespace) -> int:
    if args.hash_password:
        return _print_password_hash()
    if args.config is None:
        print("edgefleet dashboard: --config FILE is required", file=sys.stderr)
        return 2
    from dashboard.config import ConfigError, load_config

    try:
        config = load_config(args.config, os.environ)
    except ConfigError as exc:
        print(f"edgefleet dashboard: {exc}", file=sys.stderr)
        return 2
    return _serve(config, args.host or config.host, args.port if args.port is not None else config.port)


def _print_password_hash() -> int:
    from dashboard.auth import hash_password

    try:
        print(hash_password(_read_password()))
    except ValueError as exc:
        print(f"edgefleet dashboard: {exc}", file=sys.stderr)
        return 2
    return 0


def _serve(config: DashboardConfig, host: str, port: int) -> int:
    """The composition root: the database, the app, then uvicorn until it stops."""
    import uvicorn
    from sqlalchemy.exc import SQLAlchemyError

    from controller.store.database import make_engine
    from controller.store.schema import SchemaError, wait_for_head
    from dashboard.app import create_app

    if not config.users:
        log.warning("no [[users]] configured: nobody can log in")
    engine = make_engine(config.database_url)
    try:  # the controller migrates the database (maybe right now); the dashboard refuses one that stays behind
        wait_for_head(engine, config.schema_wait_s)
    except SchemaError as exc:
        print(f"edgefleet dashboard: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        log.warning("database not reachable yet (pages answer 503 until it is): %s", exc)
    app = create_app(config, engine=engine)
    tune_gc()
    if not config.over_tls and not _loopback(host):
        log.warning(
            "serving plain HTTP on %s: passwords and session cookies cross the network in the clear; "
            "set tls_cert_file/tls_key_file, or bind 127.0.0.1 behind a TLS proxy (docs/dashboard.md)",
            host,
        )
    scheme = "https" if config.serves_tls else "http"
    print(f"edgefleet dashboard on {scheme}://{host}:{port}/", flush=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=True,
        forwarded_allow_ips=config.trusted_proxies,
        ssl_certfile=config.tls_cert_file,
        ssl_keyfile=config.tls_key_file,
    )
    return 0


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
