"""What the plan benchmarks (issue 10) share: a CPU quota for the uploader (cgroup v1 ``cpu``, as a slower Pi), a
shaped link whose rate changes between cells, the four uploaders measured side by side (``edgefleet upload``
adaptive, forced raw, forced FLAC 5, and ``rclone``), and a JSON-lines record of every run.

Needs root (network namespace, ``tc``, the cgroup). Plain module, imported by the bench tests only."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from edgefleet.localservices import SeaweedS3
from tests.corpus import write_wav
from tests.shapedlink import LinkPlan, sent_bytes, tbf_burst

REPO = Path(__file__).resolve().parents[2]
BENCH = Path(os.environ.get("EDGEFLEET_BENCH_DIR", "/tmp/edgefleet-bench-plan"))
CPU_CGROUP = Path("/sys/fs/cgroup/cpu")
PERIOD_US = 100_000
BYTES_PER_S_AUDIO = 48_000 * 2 * 2  # stereo 16-bit 48 kHz
KINDS = ("field", "voice", "field", "music")  # the corpus mixes, in turn
RETRY = re.compile(r"(upload of part \d+) of \S+ failed: .*; retry \d+ in")
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
#: edgefleet's start-up, from its ``-vv`` log: (milestone, the first line that marks it)
MILESTONES = (
    ("first log line", ""),
    ("plan chosen", "compression: "),
    ("first S3 answer", '"HEAD /'),
    ("upload created", '?uploads= HTTP/1.1" 200'),
    ("first part connection", "Starting new HTTP connection (2)"),
)


def env_mb(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


# -- audio ---------------------------------------------------------------------------------------------------
def wav(name: str, megabytes: float, seed: int, kind: str = "field") -> Path:
    """A realistic stereo 48 kHz 16-bit WAV of about ``megabytes`` MB (tests/corpus.py), generated once."""
    path = BENCH / "audio" / f"{name}.wav"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        seconds = megabytes * 1e6 / BYTES_PER_S_AUDIO
        write_wav(tmp, seconds=seconds, rate=48_000, channels=2, kind=kind, seed=seed)  # type: ignore[arg-type]
        tmp.rename(path)
    return path


def wav_batch(total_mb: float, files: int = 4) -> list[Path]:
    """``files`` recordings of ``total_mb / files`` MB each, the corpus kinds in turn (a recorder's day)."""
    each = total_mb / files
    return [wav(f"batch-{each:g}mb-{i}", each, seed=1000 + i, kind=KINDS[i % len(KINDS)]) for i in range(files)]


# -- the slower CPU ------------------------------------------------------------------------------------------
@contextlib.contextmanager
def cpu_quota(percent: int) -> Iterator[Path]:
    """A child group of the cgroup v1 ``cpu`` controller allowed ``percent`` % of one core (CFS quota)."""
    group = CPU_CGROUP / f"efbench-{os.getpid()}-{percent}"
    group.mkdir(exist_ok=True)
    try:
        (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (group / "cpu.cfs_quota_us").write_text(str(PERIOD_US * percent // 100))
        yield group
    finally:
        for pid in (group / "cgroup.procs").read_text().split():  # none left when every run was waited for
            (CPU_CGROUP / "cgroup.procs").write_text(pid)
        group.rmdir()


def throttled_s(group: Path) -> float:
    """Seconds the group's tasks were held back by the quota so far (cpu.stat throttled_time, ns)."""
    stat = dict(line.split() for line in (group / "cpu.stat").read_text().splitlines())
    return int(stat.get("throttled_time", "0")) / 1e9


# -- the link --------------------------------------------------------------------------------------------------
def link_plan(tag: str, subnet: int, rate_mbit: float) -> LinkPlan:
    """A veth pair named after ``tag`` and this process, with a /30 of 10.233.0.0/16 of its own (``subnet`` < 63),
    so benches running side by side never share names or addresses."""
    tag, net = f"{tag}{os.getpid() % 1000}", f"10.233.{os.getpid() % 250}"
    return LinkPlan(tag, f"{tag}-h", f"{tag}-n", f"{net}.{subnet * 4 + 1}", f"{net}.{subnet * 4 + 2}", rate_mbit,
                    burst=tbf_burst(rate_mbit))  # fmt: skip


# -- the uploaders -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Uploader:
    name: str
    level: str | None = None  # edgefleet: --compression-level; None = no flag (adaptive); rclone: unused

    @property
    def is_rclone(self) -> bool:
        return self.name == "rclone"


ADAPTIVE, RAW, FLAC5, RCLONE = Uploader("adaptive"), Uploader("raw", "-1"), Uploader("flac5", "5"), Uploader("rclone")
ALL = (ADAPTIVE, RAW, FLAC5, RCLONE)


@dataclass
class Run:
    uploader: str
    seconds: float
    ok: bool
    wav_bytes: int
    stored_bytes: int
    cpu_s: float = 0.0  # user + system CPU seconds of the uploader process and its children
    link_bytes: int = 0  # bytes through the token bucket during the run
    throttled_s: float = 0.0  # CPU quota: seconds the uploader was held back
    part_retries: int = 0  # edgefleet: retries of part uploads (engine's retry log lines)
    parts_resent: int = 0  # edgefleet: distinct parts sent more than once
    retries: int = 0  # edgefleet: every retried request
    outcome: list[str] = field(default_factory=list)  # edgefleet's "stored ..." lines / rclone's exit
    plan: list[str] = field(default_factory=list)  # edgefleet's "compression: REASON" log lines (the level chosen)
    tail: str = ""  # the end of stderr when the run failed
    link_head_s: float | None = None  # with a timeline: from the start to the link's first 64 kB
    link_tail_s: float | None = None  # with a timeline: from the link's last byte to the exit
    startup: dict[str, float] = field(default_factory=dict)  # edgefleet: seconds from start to MILESTONES


def startup_milestones(err: str, started_at: float) -> dict[str, float]:
    """Seconds from the process start (``started_at``, ``time.time()``) to each of :data:`MILESTONES` in an
    edgefleet ``-vv`` log (its times are local wall-clock times with milliseconds)."""
    found: dict[str, float] = {}
    for line in err.splitlines():
        stamp = LOG_TIME.match(line)
        if stamp is None:
            continue
        at = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        for name, mark in MILESTONES:
            if name not in found and mark in line:
                found[name] = round(at - started_at, 3)
    return found


def rclone_config(s3: SeaweedS3, directory: Path, endpoint: str | None = None) -> Path:
    conf = directory / "rclone.conf"
    conf.write_text(
        f"[s3]\ntype = s3\nprovider = Other\naccess_key_id = {s3.access_key}\nsecret_access_key = {s3.secret_key}\n"
        f"endpoint = {endpoint or s3.endpoint}\nregion = us-east-1\n"
    )
    return conf


def command(who: Uploader, files: Sequence[Path], prefix: str, work: Path, s3: SeaweedS3, endpoint: str) -> list[str]:
    """The command line; ``rclone`` with its defaults (multipart above 200 MiB, 4 transfers, 4 x 5 MiB chunks)."""
    if who.is_rclone:
        src = work / "rclone-src"
        src.mkdir(exist_ok=True)
        for f in files:
            with contextlib.suppress(FileExistsError):
                (src / f.name).symlink_to(f)
        conf = rclone_config(s3, work, endpoint)
        return ["rclone", "--config", str(conf), "copy", "--copy-links", "--ignore-times", str(src),
                f"s3:{s3.bucket}/{prefix}"]  # fmt: skip
    level = ["--compression-level", who.level] if who.level is not None else []
    return [sys.executable, "-m", "edgefleet.cli", "-vv", "upload", *map(str, files), "--prefix", prefix,
            "--agent-id", "bench", "--state-dir", str(work / f"state-{who.name}"), "--s3-endpoint", endpoint,
            *level]  # fmt: skip


def stored_bytes(s3: SeaweedS3, prefix: str) -> int:
    return sum(o.size or 0 for o in s3.client().list_objects(s3.bucket, prefix=f"{prefix}/", recursive=True))


class LinkTimeline:
    """The shaped link's byte counter, polled every ``every_s`` while a run lasts (``tc -s``): when the run's
    first bytes went through the link and when its last did."""

    def __init__(self, plan: LinkPlan, every_s: float = 0.1) -> None:
        self._plan = plan
        self._every = every_s
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while True:
            self.samples.append((time.perf_counter(), sent_bytes(self._plan)))
            if self._stop.wait(self._every):
                return

    def __enter__(self) -> LinkTimeline:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def head_tail(self, start: float, seconds: float) -> tuple[float, float]:
        """(seconds from ``start`` to the first 64 kB through the link, seconds from its last byte to the end)."""
        base, last = self.samples[0][1], self.samples[-1][1]
        first = next((t for t, n in self.samples if n - base >= 64_000), start)
        done = next((t for t, n in self.samples if n >= last), start + seconds)
        return round(first - start, 2), round(max(0.0, start + seconds - done), 2)


def upload(
    who: Uploader,
    files: Sequence[Path],
    s3: SeaweedS3,
    work: Path,
    *,
    plan: LinkPlan | None = None,
    group: Path | None = None,
    endpoint: str | None = None,
    ceiling_s: float = 3600,
    timeline: bool = False,
) -> Run:
    """One timed upload of ``files`` by ``who`` (inside ``group`` when given) into a fresh prefix; with
    ``timeline`` (and ``plan``), when the link's first and last bytes of the run went through."""
    prefix = f"{who.name}-{time.time_ns()}"
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"} | s3.env()
    cmd = command(who, files, prefix, work, s3, endpoint or s3.endpoint)
    join = (lambda: (group / "cgroup.procs").write_text(str(os.getpid()))) if group else None
    sent0, held0 = (sent_bytes(plan) if plan else 0), (throttled_s(group) if group else 0.0)
    watch = LinkTimeline(plan) if timeline and plan else None
    with watch or contextlib.nullcontext():
        start, started_at = time.perf_counter(), time.time()
        ok, seconds, cpu, out, err = timed(cmd, env, work / f"{prefix}.log", ceiling_s, join)
    head, tail = watch.head_tail(start, seconds) if watch else (None, None)
    retried = RETRY.findall(err)
    return Run(
        uploader=who.name,
        seconds=round(seconds, 2),
        ok=ok,
        cpu_s=round(cpu, 1),
        wav_bytes=sum(f.stat().st_size for f in files),
        stored_bytes=stored_bytes(s3, prefix),
        link_bytes=(sent_bytes(plan) - sent0) if plan else 0,
        throttled_s=round(throttled_s(group) - held0, 1) if group else 0.0,
        part_retries=len(retried),
        parts_resent=len(set(retried)),
        retries=err.count("; retry "),
        outcome=[ln for ln in out.splitlines() if ln.startswith(("stored", "FAILED"))],
        plan=[ln.split("compression: ", 1)[1] for ln in err.splitlines() if "compression: " in ln][:50],
        tail="" if ok else err[-3000:],
        link_head_s=head,
        link_tail_s=tail,
        startup={} if who.is_rclone else startup_milestones(err, started_at),
    )


def timed(
    cmd: list[str], env: dict[str, str], log: Path, ceiling_s: float, preexec: Callable[[], object] | None
) -> tuple[bool, float, float, str, str]:
    """Run ``cmd`` to its end, killed after ``ceiling_s`` (a stuck run, never a slow one): (exit 0, wall seconds,
    CPU seconds from wait4, stdout, stderr); the output goes through files beside ``log``."""
    out_path, err_path = log.with_suffix(".out"), log.with_suffix(".err")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=err, preexec_fn=preexec)
        watchdog = threading.Timer(ceiling_s, proc.kill)
        watchdog.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        watchdog.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = err_path.read_text(errors="replace")
    if proc.returncode == -signal.SIGKILL:
        stderr += f"\nkilled after the {ceiling_s:.0f} s ceiling"
    return proc.returncode == 0, seconds, usage.ru_utime + usage.ru_stime, out_path.read_text(), stderr


# -- the record ----------------------------------------------------------------------------------------------
def machine() -> dict[str, object]:
    """What ran where: CPU model, cores, load average at the time, kernel, the tools' versions."""
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "?")  # fmt: skip
    rclone = subprocess.run(["rclone", "version"], capture_output=True, text=True).stdout.split("\n")[0]
    return {"cpu": cpu, "cores": os.cpu_count(), "load": os.getloadavg(), "kernel": os.uname().release,
            "rclone": rclone, "commit": os.environ.get("EDGEFLEET_BENCH_CODE") or _git("rev-parse", "--short", "HEAD"),
            }  # fmt: skip


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()


def record(bench: str, **values: object) -> None:
    """One JSON line in $EDGEFLEET_BENCH_DIR/plan-results.jsonl (and on stdout)."""
    BENCH.mkdir(parents=True, exist_ok=True)
    values = {k: ([asdict(r) for r in v] if isinstance(v, list) and v and isinstance(v[0], Run) else v)
              for k, v in values.items()}  # fmt: skip
    line = json.dumps({"bench": bench, "at": datetime.now(UTC).isoformat(timespec="seconds"), **values})
    with open(BENCH / "plan-results.jsonl", "a") as f:
        f.write(line + "\n")
    print(line, flush=True)
