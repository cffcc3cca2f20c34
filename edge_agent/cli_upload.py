"""``edgefleet upload FILE...``: the agent's engine, once, with a progress bar (docs/design.md, "The command line").

Prints one line per file on stdout with its object key (or why it failed); that line is the one place a file's
outcome is told. Progress, and what it waits for when S3 does not answer, go to stderr. Exit 0 only when every
file is stored and verified; run it again after a crash (even ``kill -9``) and it resumes from the journal in
``--state-dir``.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.engine.events import FileResult, RunReport
from edge_agent.engine.limits import Limits, MiB
from edge_agent.engine.linkguard import STALL_TIMEOUT_S
from edge_agent.engine.partsize import plan_parts
from fleet_base.filenames import display_name, safe_text
from fleet_base.s3settings import S3Settings, S3SettingsError, add_s3_arguments, s3_settings_from_args
from fleet_protocol.assignment import DEFAULT_COMPRESSION_LEVEL, DEFAULT_PART_SIZE, RAW

if TYPE_CHECKING:  # the engine loads minio, the codec numpy: only when a command runs, the codec first
    from edge_agent.transfer import Engine, EngineConfig
    from edge_agent.transfer.encoding import Compression
    from edge_agent.transfer.progress import Progress
    from fleet_audio.headstart import HeadStart
    from fleet_audio.source import ObjectSource

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports it
#: the levels the command's start-up probe measures: the model scales the others from them (``RELATIVE_CPU``);
#: each costs ~40 ms of CPU, which is 0.16 s of wall time at a quarter of a core: one level, not nine
PROBE_LEVELS = (5,)

EPILOG = """\
One line per file on stdout:
  stored  FILE -> KEY  (ORIGINAL -> STORED bytes, flac)
  stored  FILE -> KEY  (BYTES bytes, stored raw: REASON)   e.g. not a WAV, 32-bit float PCM: kept unchanged
  stored  FILE -> KEY  (already stored)
  FAILED  FILE: REASON                                     e.g. empty file, truncated, S3 unreachable
Progress and S3 trouble (with the time of the next attempt) go to stderr.

Exit status: 0 every file stored and verified; 1 a file failed (run the same command again: what was sent is
kept in the journal and the upload resumes); 2 bad flags or S3 settings; 130 stopped with Ctrl-C (resumes too).
"""


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "edgefleet" / "upload"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    add = parser.add_argument
    add("files", nargs="+", type=Path, metavar="FILE", help="recordings to upload (WAV; anything else is stored raw)")
    add(
        "--prefix",
        default=os.environ.get("EDGEFLEET_PREFIX", "recordings"),
        help="first part of the object key (default: $EDGEFLEET_PREFIX, else %(default)s)",
    )
    add("--agent-id", default=socket.gethostname(), help="second part of the key (default: this host, %(default)s)")
    _add_limit_flags(add)
    _add_journal_and_network_flags(add)
    add_s3_arguments(parser)


def _add_limit_flags(add: Callable[..., object]) -> None:
    add("--concurrency", type=int, default=4, metavar="N", help="parts in flight, all files (default: %(default)s)")
    add(
        "--part-size",
        type=int,
        default=DEFAULT_PART_SIZE,
        metavar="BYTES",
        help=f"requested part size (default: {DEFAULT_PART_SIZE // MiB} MiB)",
    )
    add(
        "--compression-level",
        type=int,
        default=None,
        metavar="LEVEL",
        help="FLAC level 0-8 for every file, or -1 to store every file raw (default: chosen per file by the cost "
        f"model from a quick encode-speed probe and the measured link rate; FLAC {DEFAULT_COMPRESSION_LEVEL} "
        "until the link is measured)",
    )
    add("--bandwidth", type=int, default=0, metavar="BYTES_PER_S", help="rate cap (default: 0, none)")
    add(
        "--window",
        action="append",
        default=[],
        metavar="HH:MM-HH:MM",
        help="send only inside this local-time window; repeat for several (default: any time)",
    )


def _add_journal_and_network_flags(add: Callable[..., object]) -> None:
    add(
        "--state-dir",
        type=Path,
        default=_default_state_dir(),
        metavar="DIR",
        help="the journal (journal.sqlite3) that makes a rerun resume (default: %(default)s, "
        "from $XDG_STATE_HOME or ~/.local/state)",
    )
    add(
        "--stall-timeout",
        type=float,
        default=STALL_TIMEOUT_S,
        metavar="SECONDS",
        help="retry a request that moved no bytes for this long; there is no whole-request timeout "
        "(default: %(default)g)",
    )
    add("--io-timeout", dest="stall_timeout", type=float, default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # old name
    add(
        "--give-up-after",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="when a request to S3 has failed for this long, stop retrying it: the file is FAILED, exit 1 "
        "(default: 0, keep retrying until S3 answers)",
    )


def _outcome_line(path: Path, result: FileResult | None, model_chose: bool = False) -> str:
    """The one line that tells what became of a file: its path as printable text (``display_name``), so a name
    that is not UTF-8, or holds a newline or a bidi override, is one readable line and not a dead command.
    ``model_chose``: the levels came from the cost model (no ``--compression-level``), so a file sent raw at
    level -1 was the model's choice, not the user's request."""
    shown = display_name(str(path))
    if result is None:
        return f"FAILED  {shown}: not attempted"
    if not result.ok:
        return f"FAILED  {shown}: {safe_text(result.reason.removeprefix(f'{path}: '))}"
    notes = [result.reason] if result.reason else []  # "already stored"
    if result.stored_as == "raw":
        if not result.reason:
            notes.append(f"{result.stored_bytes} bytes")
        from fleet_audio.source import RAW_REQUESTED  # loaded by the upload itself

        why = result.raw_reason or "reason unknown"
        if model_chose and why == RAW_REQUESTED:
            why = "the cost model chose raw for this CPU and link (-v shows why)"
        notes.append(f"stored raw: {why}")
    elif not result.reason:
        notes.append(f"{result.original_bytes} -> {result.stored_bytes} bytes, {result.stored_as}")
        if result.stored_as == "zstd":  # what FLAC cannot hold, compressed (docs/audio-format.md)
            notes.append(f"not FLAC: {result.raw_reason or 'reason unknown'}")
    return f"stored  {shown} -> {result.key}  ({safe_text(', '.join(notes))})"


class _AlsoReported(logging.Filter):
    """Drops log records whose news this command prints itself (retries, file outcomes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "also_reported", False)


def run(args: argparse.Namespace) -> int:
    try:
        settings = s3_settings_from_args(args)
        limits = Limits(
            concurrency=args.concurrency,
            part_size=args.part_size,
            windows=tuple(args.window),
            bandwidth_bps=args.bandwidth,
            compression_level=DEFAULT_COMPRESSION_LEVEL if args.compression_level is None else args.compression_level,
        )
        if limits.concurrency < 1:
            raise ValueError("--concurrency must be >= 1")
        if not args.stall_timeout > 0:
            raise ValueError("--stall-timeout must be > 0")
    except (S3SettingsError, ValueError) as exc:
        print(f"edgefleet upload: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return _upload(args, _engine_config(args, settings), limits)


def _engine_config(args: argparse.Namespace, settings: S3Settings) -> EngineConfig:
    from edge_agent.transfer import EngineConfig

    return EngineConfig(
        s3=settings,
        prefix=args.prefix,
        agent_id=args.agent_id,
        state_dir=args.state_dir,
        stall_timeout_s=args.stall_timeout,
        give_up_after_s=args.give_up_after,
        settle_s=0.0,  # files named on the command line are finished
    )


def _head_start(files: list[Path], limits: Limits) -> HeadStart | None:
    """The file the engine starts first (the smallest: ``edge_agent.engine.queue``), opened at the level it will
    ask for (the default until the link is measured), its first two parts encoding in a thread while the engine
    opens its journal and sets the upload up with S3 (``fleet_audio.headstart``). None for raw uploads.

    Called once the modules are loaded, not before: beside the imports the encoder thread competes with them for
    the GIL (it needs it between its calls into libFLAC: a Python write callback per FLAC frame), and the
    link-bound benchmark's run with it there was no faster (docs/bench/plan.md, "Run 6")."""
    readable = [f for f in files if f.is_file()]
    if not readable or limits.compression_level == RAW:
        return None
    from fleet_audio.headstart import HeadStart

    def head_bytes(src: ObjectSource) -> int:
        plan = plan_parts(limits.part_size, src.size_bound, src.header_size)
        return plan.first + plan.part_size(2)

    return HeadStart(min(readable, key=lambda f: f.stat().st_size), limits.compression_level, head_bytes)


def _upload(args: argparse.Namespace, config: EngineConfig, limits: Limits) -> int:
    from edge_agent.transfer import open_engine
    from edge_agent.transfer.progress import Progress

    missing = [f for f in args.files if not f.is_file()]
    for f in missing:
        print(f"FAILED  {display_name(str(f))}: not a readable file", file=sys.stdout)
    files = [f.absolute() for f in args.files if f.is_file()]
    if not args.verbose:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_AlsoReported())
    progress = Progress({str(f): f.stat().st_size for f in files})
    compression = _compression(args.compression_level)
    head = _head_start(files, limits)
    try:
        engine = open_engine(config, limits, on_event=progress.on_event, codec=head, compression=compression)
        report = _run_engine(engine, files, progress)
    finally:
        if head is not None:
            head.close()
    if report is None:  # Ctrl-C
        print(
            f"edgefleet upload: stopped; what was sent is kept in {args.state_dir}: the same command resumes",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    by_file = {r.file: r for r in report.results}
    ok = not missing
    for f in files:
        r = by_file.get(str(f))
        ok = ok and r is not None and r.ok
        print(_outcome_line(f, r, model_chose=args.compression_level is None), flush=True)
    return 0 if ok else EXIT_FAILED


def _compression(level: int | None) -> Compression:
    """The level as given (``FORCED``), or the cost model on a quick probe of this machine (``MODEL``). The probe
    runs beside the upload, not before it: until it hands its rates on (~0.1 s, while the engine sets up and the
    first file opens) the model has no encode rate and keeps the default level, as it does anyway until the link
    is measured."""
    from edge_agent.transfer.encoding import Compression, Mode

    if level is not None:
        return Compression(Mode.FORCED)
    from edge_agent.transfer.encoding import CpuBusy
    from fleet_audio.probe import EncodeProbe, encode_cores, measure_encode_rates, quota_share

    share = quota_share()
    probe = EncodeProbe(lambda: measure_encode_rates(PROBE_LEVELS, seconds_per_level=0.05, cpu_share=share))
    # from here: the interpreter's start is not the sender's, and neither is the probe's CPU
    busy = CpuBusy(share, cpu=lambda: time.process_time() - probe.cpu_seconds())
    compression = Compression(Mode.MODEL, encode_cores=encode_cores(), cpu_busy=busy)
    probe.start(compression.add_probed)
    return compression


def _run_engine(engine: Engine, files: list[Path], progress: Progress) -> RunReport | None:
    """Every file through the engine with the progress display; None when stopped with Ctrl-C."""
    engine.set_progress_callback(progress.on_bytes)
    engine.set_retry_callback(progress.on_retry)
    report = None
    try:
        for f in files:
            engine.enqueue(f, recheck=True)
        progress.start()
        try:
            report = engine.run_until_idle()
        finally:
            progress.close()
    except KeyboardInterrupt:
        print("edgefleet upload: stopping (parts in flight may take a few seconds)", file=sys.stderr, flush=True)
    finally:
        engine.close()
    return report
