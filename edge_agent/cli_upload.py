"""``edgefleet upload FILE...``: the agent's engine, once, with a progress bar (DESIGN §7).

Prints one line per file with its object key; exit 0 only when every file is stored and verified; run it
again after a crash (even ``kill -9``) and it resumes from the journal in ``--state-dir``.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

from edge_agent.engine.limits import Limits, MiB
from edge_agent.engine.linkguard import STALL_TIMEOUT_S
from edge_agent.s3settings import S3SettingsError, add_s3_arguments, s3_settings_from_args

EXIT_FAILED = 1
EXIT_USAGE = 2


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "edgefleet" / "upload"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="WAV recordings to upload")
    parser.add_argument("--prefix", default=os.environ.get("EDGEFLEET_PREFIX", "recordings"), help="key prefix")
    parser.add_argument("--agent-id", default=socket.gethostname(), help="agent id in the key (default: hostname)")
    parser.add_argument("--concurrency", type=int, default=4, help="parts in flight across all files (4)")
    parser.add_argument("--part-size", type=int, default=8 * MiB, metavar="BYTES", help="requested part size")
    parser.add_argument("--compression-level", type=int, default=5, help="FLAC level 0-8, -1 = upload raw (5)")
    parser.add_argument("--bandwidth", type=int, default=0, metavar="BYTES_PER_S", help="rate cap, 0 = none")
    parser.add_argument("--window", action="append", default=[], metavar="HH:MM-HH:MM", help="upload window")
    parser.add_argument("--state-dir", type=Path, default=_default_state_dir(), help="journal directory")
    stall_help = "retry a request that moved no bytes for S seconds (60); there is no whole-request timeout"
    parser.add_argument("--stall-timeout", type=float, default=STALL_TIMEOUT_S, metavar="S", help=stall_help)
    parser.add_argument(  # the old name, kept working
        "--io-timeout", dest="stall_timeout", type=float, default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--give-up-after", type=float, default=0.0, help="stop retrying a failing request after N s (0 = never)"
    )
    add_s3_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from edge_agent.transfer import EngineConfig, open_engine
    from edge_agent.transfer.progress import Progress

    try:
        settings = s3_settings_from_args(args)
        limits = Limits(
            concurrency=args.concurrency,
            part_size=args.part_size,
            windows=tuple(args.window),
            bandwidth_bps=args.bandwidth,
            compression_level=args.compression_level,
        )
        if limits.concurrency < 1:
            raise ValueError("--concurrency must be >= 1")
        if not args.stall_timeout > 0:
            raise ValueError("--stall-timeout must be > 0")
    except (S3SettingsError, ValueError) as exc:
        print(f"edgefleet upload: {exc}", file=sys.stderr)
        return EXIT_USAGE
    config = EngineConfig(
        s3=settings,
        prefix=args.prefix,
        agent_id=args.agent_id,
        state_dir=args.state_dir,
        stall_timeout_s=args.stall_timeout,
        give_up_after_s=args.give_up_after,
        settle_s=0.0,  # files named on the command line are finished
    )
    missing = [f for f in args.files if not f.is_file()]
    for f in missing:
        print(f"FAILED  {f}: not a readable file", file=sys.stdout)
    files = [f.absolute() for f in args.files if f.is_file()]
    progress = Progress({str(f): f.stat().st_size for f in files})
    engine = open_engine(config, limits, on_event=progress.on_event)
    engine.set_progress_callback(progress.on_bytes)
    try:
        for f in files:
            engine.enqueue(f, recheck=True)
        progress.start()
        try:
            report = engine.run_until_idle()
        finally:
            progress.close()
    finally:
        engine.close()
    by_file = {r.file: r for r in report.results}
    ok = not missing
    for f in files:
        r = by_file.get(str(f))
        if r is not None and r.ok:
            note = f"  ({r.reason})" if r.reason else f"  ({r.original_bytes} -> {r.stored_bytes} bytes, {r.stored_as})"
            print(f"stored  {f} -> {r.key}{note}", flush=True)
        else:
            ok = False
            print(f"FAILED  {f}: {r.reason if r else 'not attempted'}", flush=True)
    return 0 if ok else EXIT_FAILED
