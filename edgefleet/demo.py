"""``edgefleet demo``: the whole system on one machine, under one data folder, until Ctrl-C.

Starts a real Mosquitto broker and a real S3 server (SeaweedFS), then every service part that is
installed: controller, dashboard and a simulated fleet. Prints where everything is.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
from pathlib import Path

from edgefleet.localservices import Mosquitto, SeaweedS3

DEFAULT_DIR = Path(".demo")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="data folder, reused by the next run")
    parser.add_argument("--fresh", action="store_true", help="clear the data folder first")
    parser.add_argument("--agents", type=int, default=6, help="simulated agents")


def run(args: argparse.Namespace) -> int:
    root: Path = args.dir.resolve()
    if args.fresh and root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    broker = Mosquitto(directory=root / "mosquitto")
    broker.add_user("controller", "controller-demo", role="controller")
    s3 = SeaweedS3(directory=root / "s3", access_key="edgefleet-demo", secret_key="edgefleet-demo-secret")
    with broker, s3:
        print(f"MQTT broker : {broker.url_for('controller')}")
        print(f"S3 endpoint : {s3.endpoint}  bucket={s3.bucket}  key={s3.access_key}")
        print("controller, dashboard and simulated agents: not built yet (see the open issues)")
        print("Ctrl-C stops everything.", flush=True)
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
    print("demo stopped", file=sys.stderr)
    return 0
